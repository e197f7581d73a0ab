"""Blank frames: a diffused frame of one flat colour is a glitch, not a picture.

A safety filter or a numerical overflow (NaN latents in half precision) makes
the decoder return one colour.  ``reroll_blank_frames`` decides: "reroll"
diffuses the frame again with seed + 1, + 2, … up to ``reroll_patience``
times and stops the run if every try is blank; "interrupt" stops at the first
blank frame; "ignore" keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import BlankFrame

REROLL_CHOICES = ("reroll", "interrupt", "ignore")


def is_blank(image: np.ndarray) -> bool:
    """True when every pixel has the same value in every channel (an array or a tensor:
    on a GPU this reads back one bool)."""
    return bool((image == image.reshape(-1)[0]).all())


def guard_blank(diffusion: Callable[..., np.ndarray],
                settings: Mapping[str, Any]) -> Callable[..., np.ndarray]:
    """``diffusion`` with the ``reroll_blank_frames`` policy applied to each result."""
    policy, patience = settings["reroll_blank_frames"], settings["reroll_patience"]
    if policy == "ignore":
        return diffusion

    def guarded(init: np.ndarray | None, *, seed: int, frame: int = 0,
                **kwargs: Any) -> np.ndarray:
        image = diffusion(init, seed=seed, frame=frame, **kwargs)
        if image is init:  # nothing was diffused (no steps): a flat init stays as given
            return image
        tries = 0
        while is_blank(image) and policy == "reroll" and tries < patience:
            tries += 1
            image = diffusion(init, seed=seed + tries, frame=frame, **kwargs)
        if is_blank(image):
            detail = (f"still blank after {tries} rerolls (reroll_patience {patience})"
                      if policy == "reroll" else "reroll_blank_frames is 'interrupt'")
            raise BlankFrame(f"frame {frame} came out blank (one flat colour); {detail}. "
                             "Try half_precision off or another seed")
        return image
    return guarded
