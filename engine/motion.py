"""Per-frame 2D/3D motion from the settings' schedules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .settings_table import BY_NAME, motion_keys

_FLIP = tuple(k for k in motion_keys("2D") if k.startswith("perspective_flip_"))


def _schedules(mode: str, flip: bool) -> tuple[str, ...]:
    """The motion schedules of ``mode``; the flip's only when the flip is on."""
    return tuple(k for k in motion_keys(mode)
                 if BY_NAME[k].is_schedule and (flip or k not in _FLIP))


class Motion:
    """Evaluates the motion schedules once and warps an image by frame f's motion."""

    def __init__(self, settings: Mapping[str, Any], frames: int) -> None:
        self.mode = settings["animation_mode"]
        self.settings = settings
        names = _schedules(self.mode, settings["flip_2d_perspective"])
        self.values = {n: np.asarray(settings.schedule(n).values(frames)) for n in names}

    @property
    def moves(self) -> bool:
        return self.mode in ("2D", "3D")

    def warp(self, image: np.ndarray, frame: int, depth: np.ndarray | None = None,
             padding_mode: str | None = None) -> np.ndarray:
        """``image`` (at frame−1) moved by frame ``frame``'s motion; ``padding_mode`` (3D)
        replaces the setting's, e.g. "zeros" for a map of what was in the picture."""
        from . import warp

        kind, args = self.step(frame, padding_mode)
        if kind == "2D":
            return warp.warp_2d(image, **args)
        if kind == "3D":
            return warp.warp_3d(image, depth, **args)
        return image

    def step(self, frame: int, padding_mode: str | None = None) -> tuple[str, dict]:
        """Frame ``frame``'s warp: "2D" or "3D" (else no motion) and the keyword arguments
        ``warp_2d``/``warp_3d`` (or their tensor versions) take besides image and depth."""
        s = self.settings
        if self.mode == "2D":
            return "2D", dict(border=s["border"], **self._2d_step(frame))
        if self.mode == "3D":
            return "3D", dict(padding_mode=padding_mode or s["padding_mode"],
                              sampling_mode=s["sampling_mode"], warp_model=s["warp_model"],
                              aspect=self._aspect(frame), **self.camera_step(frame))
        return self.mode, {}

    @property
    def size(self) -> tuple[int, int]:
        return self.settings["W"], self.settings["H"]

    def _2d_step(self, frame: int) -> dict:
        """The 2D warp's arguments at ``frame``."""
        v = {k: float(a[frame]) for k, a in self.values.items()}
        flip = tuple(v[k] for k in _FLIP) if self.settings["flip_2d_perspective"] else None
        return dict(angle=v["angle"], zoom=v["zoom"], translation_x=v["translation_x"],
                    translation_y=v["translation_y"], perspective_flip=flip,
                    center=(v["transform_center_x"], v["transform_center_y"]))

    def matrix(self, frame: int) -> np.ndarray:
        """The 2D warp of ``frame`` as a 3×3 source→destination transform."""
        from . import warp

        return warp.matrix_2d(*self.size, **self._2d_step(frame))

    def camera_step(self, frame: int) -> dict:
        """translation, rotation, fov and lens shift of ``frame`` and the frame before."""
        v = {k: float(a[frame]) for k, a in self.values.items()}
        prev = max(frame - 1, 0)
        return dict(
            translation=(v["translation_x"], v["translation_y"], v["translation_z"]),
            rotation=(v["rotation_3d_x"], v["rotation_3d_y"], v["rotation_3d_z"]),
            fov=v["fov"], prev_fov=float(self.values["fov"][prev]),
            shift=(v["lens_shift_x"], v["lens_shift_y"]),
            prev_shift=(float(self.values["lens_shift_x"][prev]),
                        float(self.values["lens_shift_y"][prev])))

    def _aspect(self, frame: int) -> float | None:
        """The webui's aspect_ratio_schedule for the deforum warp; None (W/H) with the old
        formula or the pinhole warp, whose camera is the picture's own."""
        s = self.settings
        if s["aspect_ratio_use_old_formula"] or s["warp_model"] != "deforum":
            return None
        return float(self.values["aspect_ratio_schedule"][frame])

    def disocclusion(self, frame: int, prev_depth: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Bool mask of the pixels of ``frame`` that frame−1 did not see (3D pinhole)."""
        from . import warp

        return warp.disocclusion_mask(prev_depth, depth, **self.camera_step(frame))
