"""Where the animation loop keeps its pictures between frames: host arrays or device tensors.

On a GPU a 512² SD 1.5 keyframe is about 100 ms of UNet; warping, colour
matching and copying the picture between host and device every frame would
add a third to that.  So the loop calls its picture operations (warp, colour
coherence, grey, contrast, tween, the copy out) through one backend chosen
once per run:

* ``NumpyFrames`` — uint8 H×W×3 arrays, OpenCV and NumPy: today's path, the
  fastest on a CPU, and the reference the other is measured against.
* ``TorchFrames`` — uint8 H×W×3 tensors on the pipeline's device, from the
  first frame to the last.  The 3D grid is built and sampled there, the 2D
  warp redoes OpenCV's integer arithmetic there, colours are matched there
  with OpenCV's conversions as tables (``engine.color_device``: 48 MiB of
  device memory for each of the two a colour space needs), depth is estimated
  from the tensor and the diffusion noises and encodes it where it is.  The
  one copy per written frame is the finished picture to the writer: queued
  without waiting into pinned memory, and waited for by the writer's thread.

Features written for arrays (optical-flow cadence and redo, diffusion redo,
hybrid video, anti-blur, masks, guided images, scene-depth disocclusions and
the preview tint) keep the loop on ``NumpyFrames`` (``blockers`` names them):
converting at each of their boundaries would cost the copies the device loop
exists to avoid.  Two more crossings are per frame when asked for, neither
making the loop wait: a depth map for ``save_depth_maps`` goes down like a
frame, and a scene depth map (``depth_source`` scene) goes up from pinned
memory.  The blank-frame check (``reroll_blank_frames``) reads back one bool
per diffused keyframe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .color import grayscale, match_colors

DEVICE_TYPES = ("cuda", "mps")  # where the picture stays on the device


class Download:
    """A device → host copy under way; calling it waits for it and gives the array."""

    def __init__(self, tensor: Any) -> None:
        import torch

        self._done = None
        if tensor.device.type == "cuda":
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor, non_blocking=True)
            self._done = torch.cuda.Event()
            self._done.record()
        else:  # CPU (tests) and MPS: the copy is made where it is waited for
            self._host = tensor

    def __call__(self) -> np.ndarray:
        if self._done is not None:
            self._done.synchronize()
        return self._host.cpu().numpy()


def later(task: Callable[..., None], *args: Any, **kwargs: Any) -> Callable[[], None]:
    """``task(*args, **kwargs)`` to run on the writer's thread, each ``Download`` among the
    arguments waited for there, not in the loop."""
    def run() -> None:
        task(*(a() if isinstance(a, Download) else a for a in args),
             **{k: v() if isinstance(v, Download) else v for k, v in kwargs.items()})
    return run


class NumpyFrames:
    """Pictures as uint8 arrays on the host (OpenCV and NumPy)."""

    name = "numpy"

    def upload(self, image: np.ndarray | None) -> np.ndarray | None:
        """A picture from outside the loop (init, resumed frame, reference), where the
        backend keeps pictures: here, as it is."""
        return image

    def warp(self, motion: Any, image: np.ndarray, frame: int,
             depth: np.ndarray | None) -> np.ndarray:
        """``image`` (at frame−1) moved by ``motion`` into ``frame``."""
        return motion.warp(image, frame, depth)

    def match(self, image: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
        """Colour coherence: ``image``'s histograms matched to ``reference``'s in ``mode``."""
        return match_colors(image, reference, mode)

    def grey(self, image: np.ndarray) -> np.ndarray:
        """``color_force_grayscale``: luma in all three channels."""
        return grayscale(image)

    def contrast(self, image: np.ndarray, amount: float) -> np.ndarray:
        """``image`` × ``amount``, rounded and clipped (the contrast schedule)."""
        if amount == 1.0:
            return image
        return np.clip(np.rint(image.astype(np.float32) * amount), 0, 255).astype(np.uint8)

    def tween(self, older: np.ndarray | None, newer: np.ndarray, weight: float) -> np.ndarray:
        """``weight`` of ``newer`` over ``older``; the newer alone at weight 1 or without older."""
        if older is None or weight >= 1.0:
            return newer
        blend = older.astype(np.float32) * (1 - weight) + newer.astype(np.float32) * weight
        return np.clip(np.rint(blend), 0, 255).astype(np.uint8)

    def to_host(self, image: np.ndarray) -> np.ndarray:
        """A written frame's own copy: the loop goes on with ``image``."""
        return image.copy()

    def download(self, value: Any) -> Any:
        """A depth map for the writer's thread (``save_depth_maps``): already on the host."""
        return value


class TorchFrames:
    """Pictures as uint8 H×W×3 tensors on ``device``; ``transfers`` counts the frames copied
    to the host."""

    name = "torch"

    def __init__(self, device: Any) -> None:
        import torch

        self.device = torch.device(device)
        self.transfers = 0

    def upload(self, image: Any) -> Any:
        """An array (the init image, a resumed frame, a reference) onto the device, once."""
        import torch

        if image is None or isinstance(image, torch.Tensor) and image.device == self.device:
            return image
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(np.ascontiguousarray(image))
        return image.to(self.device)

    def warp(self, motion: Any, image: Any, frame: int, depth: Any) -> Any:
        from .warp import warp_2d_tensor, warp_3d_tensor

        kind, args = motion.step(frame)
        if kind == "2D":
            return warp_2d_tensor(image, **args)
        if kind == "3D":
            return warp_3d_tensor(image, depth, **args)
        return image

    def match(self, image: Any, reference: Any, mode: str) -> Any:
        from .color_device import match_colors_tensor

        return match_colors_tensor(image, reference, mode)

    def grey(self, image: Any) -> Any:
        from .color_device import grayscale_tensor

        return grayscale_tensor(image)

    def contrast(self, image: Any, amount: float) -> Any:
        import torch

        if amount == 1.0:
            return image
        return (image.float() * amount).round_().clamp_(0, 255).to(torch.uint8)

    def tween(self, older: Any, newer: Any, weight: float) -> Any:
        import torch

        if older is None or weight >= 1.0:
            return newer
        blend = older.float() * (1 - weight) + newer.float() * weight
        return blend.round_().clamp_(0, 255).to(torch.uint8)

    def to_host(self, image: Any) -> Download:
        """The written frame's copy to the host, started now and waited for by the writer."""
        self.transfers += 1
        return Download(image)

    def download(self, value: Any) -> Any:
        """A depth map on its way to the host (``save_depth_maps``); arrays stay as they are."""
        import torch

        return Download(value) if isinstance(value, torch.Tensor) else value


Frames = NumpyFrames | TorchFrames


def blockers(settings: Mapping[str, Any]) -> list[str]:
    """The settings that keep a run's pictures on the host (features written for arrays)."""
    frames = settings["max_frames"]
    return [name for name, on in (
        ("optical_flow_cadence", settings["optical_flow_cadence"] != "None"),
        ("optical_flow_redo_generation", settings["optical_flow_redo_generation"] != "None"),
        ("diffusion_redo", settings["diffusion_redo"] > 0),
        ("hybrid_motion", settings["hybrid_motion"] != "None"),
        ("hybrid_composite", settings["hybrid_composite"] != "None"),
        ("amount_schedule", any(v > 0 for v in
                                settings.schedule("amount_schedule").values(frames))),
        ("use_mask", settings["use_mask"]),
        ("use_looper", settings["use_looper"]),
        ("depth_source", settings["animation_mode"] == "3D"
         and settings["depth_source"] == "scene" and settings["warp_model"] == "pinhole"),
    ) if on]


def choose_frames(device: Any, settings: Mapping[str, Any]) -> Frames:
    """``TorchFrames`` on a CUDA or MPS pipeline unless a host-only feature is on, else
    ``NumpyFrames``."""
    kind = getattr(device, "type", str(device).split(":")[0])  # no torch for a preview
    if kind in DEVICE_TYPES and not blockers(settings):
        return TorchFrames(device)
    return NumpyFrames()
