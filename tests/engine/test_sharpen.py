"""Anti-blur: Deforum's unsharp mask raises edge contrast by the amount; 0 changes nothing."""

import cv2
import numpy as np
import pytest

from engine.errors import SettingsError
from engine.settings import parse_settings
from engine.sharpen import AntiBlur, unsharp_mask


def soft_edge(blur: float = 2.0) -> np.ndarray:
    """A blurred vertical step from dark to light grey, as a warp leaves it."""
    image = np.full((32, 64, 3), 60, np.uint8)
    image[:, 32:] = 180
    return cv2.GaussianBlur(image, (0, 0), blur)


def edge_contrast(image: np.ndarray) -> float:
    """Light side minus dark side within four pixels of the edge."""
    row = image[16, :, 0].astype(float)
    return float(row[32:36].mean() - row[28:32].mean())


def test_amount_zero_changes_nothing():
    image = soft_edge()
    assert unsharp_mask(image, 5, 1.0, 0.0, 0.0) is image


def test_edge_contrast_grows_with_the_amount():
    image = soft_edge()
    contrasts = [edge_contrast(unsharp_mask(image, 5, 1.0, a, 0.0)) for a in (0.0, 0.2, 0.5, 1.0)]
    assert contrasts == sorted(contrasts) and len(set(contrasts)) == 4
    # Deforum's formula: the step grows by about ``amount`` times its high-pass part.
    blurred = cv2.GaussianBlur(image, (5, 5), 1.0).astype(float)
    expected = np.clip(np.rint(1.5 * image - 0.5 * blurred), 0, 255)
    assert np.array_equal(unsharp_mask(image, 5, 1.0, 0.5, 0.0), expected.astype(np.uint8))


def test_threshold_keeps_flat_areas():
    rng = np.random.default_rng(0)
    image = soft_edge(blur=0.8).astype(int)
    image[:, :20] += rng.integers(-1, 2, (32, 20, 3))  # faint texture in the flat part
    image = image.astype(np.uint8)
    sharpened = unsharp_mask(image, 5, 1.0, 1.0, 3.0)
    assert np.array_equal(sharpened[:, :20], image[:, :20])
    assert edge_contrast(sharpened) > edge_contrast(image)


def test_an_even_kernel_is_a_settings_error():
    with pytest.raises(SettingsError, match="kernel_schedule: 4"):
        unsharp_mask(soft_edge(), 4, 1.0, 0.2, 0.0)


def test_schedules_pick_each_frames_amount():
    settings = parse_settings({"max_frames": 3, "amount_schedule": "0:(0), 1:(0), 2:(0.8)"})
    antiblur, image = AntiBlur(settings, 3), soft_edge()
    assert antiblur(image, 1) is image
    assert edge_contrast(antiblur(image, 2)) > edge_contrast(image)
