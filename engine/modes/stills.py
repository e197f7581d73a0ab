"""Still images (animation_mode None): ``n_batch`` pictures per prompt, as Deforum makes them."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..output import decodes, image_files, read_image
from ..progress import Progress
from ..schedules import split_negative
from ..seeds import seed_sequence
from ..settings import Settings
from ..writer import Writer
from .common import (CancelToken, Mode, check_init_image, frame_indices, init_image,
                     write_frame)


class Stills(Mode):
    """``animation_mode`` None (also any run without ``--enable_animation_mode``)."""

    makes_movie = False
    independent_frames = True

    def set_up(self, settings: Settings) -> None:
        super().set_up(settings)
        check_init_image(settings, folders=True)

    def start(self, settings: Settings, diffusion: Any | None, mask: np.ndarray | None) -> int:
        self.settings, self.diffusion, self.mask = settings, diffusion, mask
        return len(settings["still_prompts"] or settings["animation_prompts"]) \
            * settings["n_batch"]

    def render(self) -> int:
        job = self.job
        return render_stills(self.settings, job.folder, job.timestring, job.progress,
                             job.cancel, self.diffusion, self.mask, job.frames)


def _sanitize(prompt: str) -> str:
    """Deforum's still-image file name part: ASCII letters and spaces, spaces → _."""
    return re.sub(r"[^A-Za-z ]", "", prompt)[:160].strip().replace(" ", "_")


def still_name(settings: Mapping[str, Any], timestring: str, index: int, prompt: str,
               seed: int) -> str:
    """File name of a still image per ``filename_format`` (Deforum's two formats)."""
    if "{seed}" in settings["filename_format"]:
        return f"{timestring}_{index:05d}_{seed}.png"
    name = _sanitize(prompt)
    return f"{timestring}_{index:05d}_{name}.png" if name else f"{timestring}_{index:05d}.png"


def _prompts(settings: Mapping[str, Any]) -> list[str]:
    """``still_prompts``, else the animation prompts in key order, else one empty prompt."""
    return list(settings["still_prompts"]) or list(
        dict(sorted(settings["animation_prompts"].items(), key=lambda kv: int(kv[0])
                    if str(kv[0]).isdigit() else 0)).values()) or [""]


def still_count(settings: Mapping[str, Any]) -> int:
    """How many images a still-image run makes: one per prompt, batch and init image."""
    folder = settings["init_image"]
    inits = len(image_files(Path(folder))) if settings["use_init"] and folder \
        and Path(folder).is_dir() else 1
    return len(_prompts(settings)) * settings["n_batch"] * max(inits, 1)


def _init_images(settings: Mapping[str, Any]) -> list[np.ndarray | None]:
    """The init picture, or every picture of an ``init_image`` folder (one still each)."""
    folder = settings["init_image"]
    if not (settings["use_init"] and folder and Path(folder).is_dir()):
        return [init_image(settings)]
    files = image_files(Path(folder))
    if not files:
        raise InputError(f"init_image: no images in folder {folder}", key="init_image",
                         value=folder)
    size = (settings["W"], settings["H"])
    return [read_image(p, size, "init_image") for p in files]


def render_stills(settings: Mapping[str, Any], folder: Path, timestring: str,
                  progress: Progress, cancel: CancelToken, diffusion: Any,
                  mask: np.ndarray | None = None,
                  frames: tuple[int, int | None] | None = None) -> int:
    """``n_batch`` images per prompt (and per init image); returns the number written.

    Still images are a batch, not frames in time: as the webui's still images take its
    single guidance, steps and sampler, every image here takes the per-frame values of
    frame 0 (the single values unless a schedule is set), whatever its index.
    """
    inits = _init_images(settings)
    jobs = [(prompt, init) for prompt in _prompts(settings) for _ in range(settings["n_batch"])
            for init in inits]
    seeds = seed_sequence(settings["seed"], settings["seed_behavior"], len(jobs),
                          iter_n=settings["seed_iter_N"])
    wanted = frame_indices(frames, len(jobs))
    written = 0
    with Writer() as writer:
        for index, ((prompt, init), seed) in enumerate(zip(jobs, seeds)):
            positive, negative = split_negative(prompt)
            path = folder / still_name(settings, timestring, index, positive, seed)
            if index not in wanted or frames is not None and decodes(path):
                continue  # another range's, or finished by an earlier try of this range
            cancel.check()
            started = time.monotonic()
            image = diffusion(init, strength=settings["strength"], seed=seed, noise=0.0,
                              prompt=positive, negative=negative, mask=mask, frame=index,
                              values_of=0)
            writer.submit(partial(write_frame, progress, index, path, image,
                                  time.monotonic() - started, diffusion.used_for(index),
                                  replace=frames is not None and path.exists()))
            written += 1
    return written
