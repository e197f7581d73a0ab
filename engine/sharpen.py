"""Anti-blur: an unsharp mask on the prepared init, against the softening of repeated warps.

Deforum's formula: ``(1 + amount)·image − amount·GaussianBlur(image, k×k, sigma)``,
clipped to 0…255 and rounded; where the image differs from its blur by less
than ``threshold`` (flat areas, where sharpening only lifts noise) the pixel
is kept.  Amount 0 returns the image untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import SettingsError


def unsharp_mask(image: np.ndarray, kernel: int, sigma: float, amount: float,
                 threshold: float) -> np.ndarray:
    """``image`` (uint8) sharpened by ``amount``; a kernel of 0 is sized from ``sigma``."""
    if amount == 0:
        return image
    if kernel < 0 or kernel % 2 == 0 and kernel != 0:
        raise SettingsError(f"kernel_schedule: {kernel} is not valid; the anti-blur kernel "
                            "must be an odd number of pixels (or 0: from sigma)",
                            key="kernel_schedule", value=kernel)
    if kernel == 0 and sigma <= 0:
        raise SettingsError(f"sigma_schedule: {sigma} is not valid with kernel 0; give a "
                            "sigma above 0 or an odd kernel", key="sigma_schedule", value=sigma)
    import cv2

    blurred = cv2.GaussianBlur(image, (kernel, kernel), sigma).astype(np.float32)
    original = image.astype(np.float32)
    sharpened = np.clip(np.rint((1 + amount) * original - amount * blurred), 0, 255)
    if threshold > 0:
        flat = np.abs(original - blurred) < threshold
        sharpened = np.where(flat, original, sharpened)
    return sharpened.astype(np.uint8)


class AntiBlur:
    """The anti-blur schedules of a run, applied to a keyframe's prepared init."""

    def __init__(self, settings: Any, frames: int) -> None:
        self.kernel, self.sigma, self.amount, self.threshold = (
            settings.schedule(name).values(frames) for name in
            ("kernel_schedule", "sigma_schedule", "amount_schedule", "threshold_schedule"))

    def __call__(self, image: np.ndarray, frame: int) -> np.ndarray:
        """``image`` sharpened with frame's amount (the kernel truncated to whole pixels)."""
        if self.amount[frame] <= 0:
            return image
        return unsharp_mask(image, int(self.kernel[frame]), float(self.sigma[frame]),
                            float(self.amount[frame]), float(self.threshold[frame]))
