"""What every animation mode shares: the job it runs in, the mode interface,
cancelling, the init image and the loop for frames made one at a time."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Cancelled, InputError
from ..output import decodes, frame_path, read_image, write_png
from ..paths import local_path
from ..progress import Progress
from ..writer import Writer


class CancelToken:
    """Set by SIGINT/SIGTERM or by the appearance of a cancel file."""

    def __init__(self, cancel_file: str | Path | None = None) -> None:
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self._flag = False

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self._flag = True
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def request(self) -> None:
        self._flag = True

    @property
    def requested(self) -> bool:
        if not self._flag and self.cancel_file is not None and self.cancel_file.exists():
            self._flag = True
        return self._flag

    def check(self) -> None:
        if self.requested:
            raise Cancelled("cancelled")


@dataclass(frozen=True)
class Job:
    """What a mode gets from the run besides the settings, which change as it prepares."""

    folder: Path            # the batch folder: frames and the settings file go here
    timestring: str         # names this run's frames
    progress: Progress
    cancel: CancelToken
    pipes: Any              # the diffusion pipelines; None for a motion preview
    loaders: Any            # ``cli.Loaders``: how to load a depth model
    resuming: bool          # continuing the frames of ``timestring`` (resume_from_timestring)
    frames: tuple[int, int | None] | None = None  # ``--frames A-B``: only these (B None: to the end)


class Mode:
    """One animation mode's part of a run.

    ``cli.run`` calls, in this order: ``set_up`` (nothing written yet),
    ``prepare`` (the batch folder exists; the settings it returns are recorded),
    ``start`` (the diffusion is ready; returns the frame count announced) and
    ``render``.  The flags tell the common preparation what the mode supports.
    """

    resumable = False       # True: resume_from_timestring continues an earlier run
    makes_movie = True      # False: the output is images, never an mp4
    independent_frames = False  # True: any frame range can be rendered alone (``--frames``)

    def __init__(self, job: Job) -> None:
        self.job = job

    def set_up(self, settings: Mapping[str, Any]) -> None:
        """Before anything is written: load what the mode needs besides the model.

        By default that is nothing, and ``inpaint_disocclusions`` is ignored.
        """
        warn_inpaint_ignored(settings, self.job.progress)

    def prepare(self, settings: Any) -> Any:
        """The settings to record, after any change the mode makes (e.g. frame count)."""
        return settings

    def start(self, settings: Any, diffusion: Any | None, mask: np.ndarray | None) -> int:
        """Get the frames' maker ready (``diffusion`` None: preview); returns how many
        frames the run writes."""
        raise NotImplementedError

    def render(self) -> int:
        """Write the frames; returns how many were written."""
        raise NotImplementedError


def warn_inpaint_ignored(settings: Mapping[str, Any], progress: Progress) -> None:
    """Only a 3D run with true scene depth knows what a move uncovers; say so once."""
    if settings["inpaint_disocclusions"]:
        progress.warning("inpaint_disocclusions needs animation_mode 3D, depth_source 'scene' "
                         "and warp_model 'pinhole'; it is ignored", key="inpaint_disocclusions")


def check_init_image(settings: Mapping[str, Any], folders: bool = False) -> None:
    """The init image that ``use_init`` names exists (or, with ``folders``, a folder of them).

    Called from ``set_up``, so that a missing file fails the run before its
    settings file is written, not at frame 0.
    """
    if not (settings["use_init"] and settings["init_image"]):
        return
    path = local_path(settings["init_image"], "init_image")
    if not (path.is_file() or folders and path.is_dir()):
        raise InputError(f"init_image: file not found: {path}", key="init_image",
                         value=settings["init_image"])


def init_image(settings: Mapping[str, Any]) -> np.ndarray | None:
    """Frame 0's init picture when ``use_init`` names one, else None (txt2img)."""
    if not (settings["use_init"] and settings["init_image"]):
        return None
    path = local_path(settings["init_image"], "init_image")
    return read_image(path, (settings["W"], settings["H"]), "init_image")


def render_sequence(count: int, make: Callable[[int], np.ndarray], job: Job,
                    used: Callable[[int], dict[str, Any] | None] | None = None) -> int:
    """Frames 0…count−1 made independently of each other (Video Input, Interpolation),
    each written in the background while the next is made; ``used(index)``: the
    diffusion values a frame was made with, for its event."""
    written = 0
    with Writer() as writer:
        for index in frame_indices(job.frames, count):
            job.cancel.check()
            started = time.monotonic()
            path = frame_path(job.folder, job.timestring, index)
            if job.frames is not None and decodes(path):
                continue  # a retried frame range keeps the frames it finished
            image = make(index)
            writer.submit(partial(write_frame, job.progress, index, path, image,
                                  time.monotonic() - started,
                                  used(index) if used is not None else None,
                                  replace=job.frames is not None and path.exists()))
            written += 1
    return written


def frame_indices(frames: tuple[int, int | None] | None, count: int) -> range:
    """The frames of a run of ``count`` that ``--frames`` asks for (all without it)."""
    if frames is None:
        return range(count)
    last = count - 1 if frames[1] is None else min(frames[1], count - 1)
    return range(frames[0], last + 1)


def write_frame(progress: Progress, index: int, path: Path, image: np.ndarray,
                seconds: float, used: dict[str, Any] | None, replace: bool = False) -> None:
    """Write frame ``index`` and report it: its event follows the whole file."""
    write_png(path, image, replace=replace)
    progress.frame(index, str(path), seconds, used)


def colour_reference(settings: Mapping[str, Any], progress: Progress,
                     video: bool) -> np.ndarray | None:
    """The fixed colour reference of ``color_coherence`` Image (the picture, at W×H).

    Video Input needs the video's frames; a mode without them (``video``
    False) says so and keeps the first warped frame as the reference.
    """
    mode = settings["color_coherence"]
    if mode == "Video Input" and not video:
        progress.warning("color_coherence 'Video Input': this animation mode has no video "
                         "frames to match; colours are matched (LAB) to the first warped frame, "
                         "and color_coherence_video_every_N_frames is unused",
                         key="color_coherence")
    if mode != "Image":
        return None
    if not settings["color_coherence_image_path"]:
        raise InputError("color_coherence_image_path: color_coherence 'Image' needs a "
                         "picture to match; the path is empty",
                         key="color_coherence_image_path", value="")
    path = local_path(settings["color_coherence_image_path"], "color_coherence_image_path")
    return read_image(path, (settings["W"], settings["H"]), "color_coherence_image_path")
