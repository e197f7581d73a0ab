"""Mask adjustments do what their names say (Deforum swaps them)."""

import numpy as np

from engine.masks import adjust_mask, overlay


def test_brightness_scales_and_contrast_spreads_about_the_mean():
    mask = np.array([[0.2, 0.4]], np.float32)
    assert np.allclose(adjust_mask(mask, brightness=2.0), [[0.4, 0.8]])
    assert np.allclose(adjust_mask(mask, contrast=2.0), [[0.1, 0.5]])
    assert np.allclose(adjust_mask(mask, invert=True), [[0.8, 0.6]])


def test_overlay_keeps_black_exactly_and_softens_inside_white():
    original = np.zeros((20, 20, 3), np.uint8)
    generated = np.full((20, 20, 3), 200, np.uint8)
    mask = np.zeros((20, 20), np.float32)
    mask[:, 10:] = 1.0
    out = overlay(original, generated, mask, blur=2.0)
    assert (out[:, :10] == 0).all()
    assert (out[:, 18:] >= 190).all() and 0 < out[0, 10, 0] < 200
