"""Throw-away diffusions of a keyframe before the real one (the webui's "redo").

``optical_flow_redo_generation`` diffuses the prepared init once with a
throw-away seed, measures the optical flow from the init to that result, and
carries the result along the flow (× ``redo_flow_factor_schedule``): the warped
picture becomes the init.  ``diffusion_redo`` then diffuses the init that many
times more, each result the next init.  The real diffusion, with the keyframe's
own seed, follows.  Both skip keyframes of strength 0, which ignore their init.
Throw-away seeds come from the keyframe's seed and number, so a run (and a
resumed one) is repeatable, where the webui draws them at random.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .flow import estimate, warp

# diffuse(init, seed): the keyframe's diffusion of ``init`` with ``seed``.
Diffuse = Callable[[np.ndarray, int], np.ndarray]


class Redo:
    """The redo passes of one run; calling it returns the init the real diffusion uses."""

    def __init__(self, settings: Mapping[str, Any], frames: int) -> None:
        self.method = settings["optical_flow_redo_generation"]
        self.count = settings["diffusion_redo"]
        self.strength = settings.schedule("strength_schedule").values(frames)
        self.factor = settings.schedule("redo_flow_factor_schedule").values(frames) \
            if self.method != "None" else None

    def __call__(self, init: np.ndarray | None, frame: int, seed: int,
                 diffuse: Diffuse) -> np.ndarray | None:
        if init is None or frame == 0 or self.strength[frame] <= 0:
            return init
        if self.method != "None":
            disposable = diffuse(init, throwaway_seed(seed, frame, 0))
            init = warp(disposable, estimate(init, disposable, self.method),
                        self.factor[frame])
        for n in range(self.count):
            init = diffuse(init, throwaway_seed(seed, frame, n + 1))
        return init


def throwaway_seed(seed: int, frame: int, n: int) -> int:
    """A 32-bit seed for the n-th throw-away diffusion of ``frame``, fixed by ``seed``."""
    rng = np.random.default_rng([seed % 2**32, frame, n])
    return int(rng.integers(0, 2**32))
