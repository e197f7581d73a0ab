"""Colour coherence: histogram matching as skimage does it, in true RGB order."""

import cv2
import numpy as np
import pytest

from engine.color import match_colors

CONVERSIONS = {"LAB": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
               "HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)}


def unique_match(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """skimage.exposure's per-channel algorithm, written out with np.unique."""
    values, inverse, counts = np.unique(source.ravel(), return_inverse=True,
                                        return_counts=True)
    ref_values, ref_counts = np.unique(reference.ravel(), return_counts=True)
    quantiles = np.cumsum(counts) / source.size
    ref_quantiles = np.cumsum(ref_counts) / reference.size
    mapped = np.interp(quantiles, ref_quantiles, ref_values)
    return mapped[inverse].reshape(source.shape)


def reference_match_colors(image: np.ndarray, reference: np.ndarray, space: str) -> np.ndarray:
    forward, back = CONVERSIONS.get(space, (None, None))
    src = image if forward is None else cv2.cvtColor(image, forward)
    ref = reference if forward is None else cv2.cvtColor(reference, forward)
    out = np.stack([unique_match(src[..., c], ref[..., c]) for c in range(3)], axis=-1)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out if back is None else cv2.cvtColor(out, back)


def picture(seed: int, shape=(48, 64), blur=2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


@pytest.mark.parametrize("mode", ["LAB", "HSV", "RGB"])
@pytest.mark.parametrize("seeds", [(0, 1), (2, 3), (4, 5)])
def test_identical_to_unique_based_matching(mode, seeds):
    image = picture(seeds[0])
    # A reference with a different palette, size and a few saturated pixels.
    reference = cv2.convertScaleAbs(picture(seeds[1], (40, 50), 1.0), alpha=1.4, beta=-30)
    expected = reference_match_colors(image, reference, mode)
    assert np.array_equal(match_colors(image, reference, mode), expected)
    assert np.array_equal(match_colors(image, reference, f"Match Frame 0 {mode}"), expected)


@pytest.mark.parametrize("mode", ["LAB", "HSV", "RGB", "match frame 0 lab", "rgb"])
def test_matching_an_image_to_itself_changes_nothing(mode):
    """Only the 8-bit colour-space round trip (lossy for LAB/HSV) remains."""
    image = picture(7)
    forward, back = CONVERSIONS.get(mode.split()[-1].upper(), (None, None))
    round_trip = image if forward is None else cv2.cvtColor(cv2.cvtColor(image, forward), back)
    assert np.array_equal(match_colors(image, image, mode), round_trip)


@pytest.mark.parametrize("mode", ["None", "none", "NONE"])
def test_none_returns_the_image(mode):
    image = picture(8)
    assert match_colors(image, picture(9), mode) is image


def scene(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth green-blue landscape (no hue wrap-around, as in most frames)."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(3)
    img = np.stack([30 + 50 * y / h, 80 + 120 * x / w,
                    90 + 40 * np.sin(x / 7.0) * np.cos(y / 5.0)], axis=-1)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["LAB", "HSV", "RGB"])
def test_colour_drift_is_pulled_back_towards_the_reference(mode):
    reference = scene()
    drifted = np.clip(reference.astype(int) + [25, -15, 20], 0, 255).astype(np.uint8)
    before = np.abs(drifted.astype(int) - reference).mean()
    after = np.abs(match_colors(drifted, reference, mode).astype(int) - reference).mean()
    assert after < 0.5 * before


def test_channels_are_matched_in_rgb_order():
    """A red-tinted frame matched to a neutral reference loses its tint in red."""
    reference = picture(11)
    tinted = reference.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 60, 0, 255)
    out = match_colors(tinted, reference, "RGB")
    assert abs(out[..., 0].mean() - reference[..., 0].mean()) < 1.0
    assert np.array_equal(out[..., 1:], reference[..., 1:])


def test_images_of_different_sizes():
    image, reference = picture(12, (30, 70)), picture(13, (64, 20))
    out = match_colors(image, reference, "LAB")
    assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("mode", ["Lab2", "Match Frame 1 LAB", "", "YUV"])
def test_unknown_mode_is_rejected_by_name(mode):
    with pytest.raises(ValueError, match=repr(mode).replace("(", r"\(")):
        match_colors(picture(14), picture(15), mode)


def test_a_reference_changed_in_place_is_matched_as_it_is_now():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    reference = rng.integers(0, 128, (32, 32, 3), dtype=np.uint8)
    before = match_colors(image, reference, "LAB")
    reference += 100  # the same array object, new colours
    after = match_colors(image, reference, "LAB")
    assert np.array_equal(after, match_colors(image, reference.copy(), "LAB"))
    assert not np.array_equal(before, after)


@pytest.mark.parametrize("mode", ["LAB", "RGB"])
def test_huge_pictures_count_exactly(mode, monkeypatch):
    """Past 2²⁴ pixels OpenCV's float counts could be inexact and NumPy counts instead:
    the same matching either way (the limit lowered to reach that path here)."""
    import engine.color as color

    image, reference = picture(16), picture(17, (40, 50), 1.0)
    expected = reference_match_colors(image, reference, mode)
    monkeypatch.setattr(color, "_EXACT_COUNTS", 100)
    assert np.array_equal(match_colors(image, reference, mode), expected)


def test_a_strided_view_is_matched_like_its_copy():
    image, reference = picture(18)[:, ::-1], picture(19)[::2, ::2]
    assert np.array_equal(match_colors(image, reference, "RGB"),
                          reference_match_colors(image.copy(), reference.copy(), "RGB"))
