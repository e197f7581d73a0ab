"""The render loops: 2D/3D animation (product.md §5) and still images.

The animation loop is written around ``generate(init, frame)``: the motion
preview passes the prepared image through, the diffusion engine diffuses it.
Order for a keyframe F > 0: warp the previous keyframe → colour coherence
(reference = the first warped frame) → contrast → generate (noise and
diffusion).  With cadence c, frame f (s = c·⌊f/c⌋) is the blend of the
keyframes diffused at s−c and s, each warped forward frame by frame, weight
(f − s + 1)/c on the newer one.  Unlike the reference, the last block is
written too, so every frame exists.  Depth is asked for once per output frame
and shared by everything that warps into it.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .color import match_colors
from .errors import Cancelled, InputError
from .motion import Motion
from .output import frame_path, image_files, read_image, write_png
from .progress import Progress
from .testcard import make_test_card

# generate(init, frame, uncovered=None): the picture of ``frame``; ``uncovered`` (H×W
# float, 1 = newly visible) restricts a keyframe's diffusion to that area.
Generate = Callable[..., np.ndarray]
# depth(frame, image): z for warping ``image`` (the picture at frame−1) into ``frame``.
DepthFn = Callable[[int, np.ndarray], np.ndarray | None]


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


def init_image(settings: Mapping[str, Any]) -> np.ndarray | None:
    """Frame 0's init picture when ``use_init`` names one, else None (txt2img)."""
    if not (settings["use_init"] and settings["init_image"]):
        return None
    path = settings["init_image"]
    if "://" in path:
        raise InputError(f"init_image: {path!r} is a URL; this engine never downloads, "
                         "give a local file", key="init_image", value=path)
    return read_image(path, (settings["W"], settings["H"]), "init_image")


def preview_generate(settings: Mapping[str, Any]) -> Generate:
    """The motion preview's 'diffusion': keep the prepared image (test card at frame 0)."""
    def generate(init: np.ndarray | None, frame: int,
                 uncovered: np.ndarray | None = None) -> np.ndarray:
        return make_test_card(settings["W"], settings["H"]) if init is None else init
    return generate


@dataclass
class ResumeState:
    """Where an interrupted run continues: the first keyframe to diffuse and its inputs."""

    start: int                       # first keyframe still to diffuse
    newest: np.ndarray | None        # the previous keyframe carried to start − 1
    reference: np.ndarray | None     # colour-coherence reference, if already taken


def _contiguous_frames(folder: Path, timestring: str) -> int:
    """How many frames 0, 1, 2, … of ``timestring`` exist without a gap."""
    pattern = re.compile(re.escape(timestring) + r"_(\d{5})\.png$")
    present = {int(m.group(1)) for p in folder.glob(f"{timestring}_*.png")
               if (m := pattern.match(p.name))}
    count = 0
    while count in present:
        count += 1
    return count


def resume_state(settings: Mapping[str, Any], folder: Path, timestring: str,
                 depth: DepthFn) -> ResumeState:
    """Rebuild the loop state after the last complete cadence block on disk.

    The last frame of a block is exactly the newest keyframe carried to it,
    and frame c−1 warped into c is the colour reference, so a resumed run
    writes the same frames as an uninterrupted one.
    """
    cadence = max(1, min(settings["diffusion_cadence"], settings["max_frames"]))
    count = _contiguous_frames(folder, timestring)
    if count == 0:
        raise InputError(f"resume_timestring: no frames {timestring}_00000.png… in {folder}",
                         key="resume_timestring", value=timestring)
    complete = cadence * (count // cadence)
    if complete == 0:
        return ResumeState(0, None, None)
    size = (settings["W"], settings["H"])
    newest = read_image(frame_path(folder, timestring, complete - 1), size, "resume_timestring")
    reference = None
    if settings["color_coherence"] != "None" and complete > cadence:
        motion = Motion(settings, max(settings["max_frames"], cadence + 1))
        first = read_image(frame_path(folder, timestring, cadence - 1), size, "resume_timestring")
        reference = motion.warp(first, cadence, depth(cadence, first))
    return ResumeState(complete, newest, reference)


def render_animation(settings: Mapping[str, Any], folder: Path, timestring: str,
                     progress: Progress, cancel: CancelToken,
                     generate: Generate | None = None, depth: DepthFn | None = None,
                     resume: ResumeState | None = None,
                     on_depth: Callable[[int, np.ndarray], None] | None = None,
                     scene_depth: Callable[[int], np.ndarray] | None = None) -> int:
    """Render frames 0…max_frames−1 into ``folder``; returns the number written.

    ``on_depth(frame, z)`` receives, once, the depth estimated from the picture
    of each frame (used to save depth maps).  ``scene_depth(k)``, the true
    depth of frame k (pinhole warp), adds disocclusion masks: each frame's is
    saved (``disocclusion_path``), and with ``inpaint_disocclusions`` a keyframe is diffused only where
    the frames since the last keyframe uncovered the scene.  Frames already on
    disk (a resumed run) are kept, not rewritten.
    """
    frames = settings["max_frames"]
    cadence = max(1, min(settings["diffusion_cadence"], frames))
    motion = Motion(settings, frames)
    contrast = settings.schedule("contrast_schedule").values(frames)
    coherence = settings["color_coherence"]
    generate = generate or preview_generate(settings)
    depth = depth or (lambda frame, image: None)
    written = 0
    hidden = _Disocclusions(motion, scene_depth, depth, folder, timestring, cadence) \
        if scene_depth is not None else None
    inpaint = hidden is not None and settings["inpaint_disocclusions"]

    def depth_into(frame: int, image: np.ndarray) -> np.ndarray | None:
        z = depth(frame, image)
        if z is not None and on_depth is not None:
            on_depth(frame - 1, z)
        return z

    def emit(index: int, image: np.ndarray, started: float) -> None:
        nonlocal written
        path = frame_path(folder, timestring, index)
        if resume is not None and path.exists():
            return
        write_png(path, image)
        written += 1
        progress.frame(index, str(path), time.monotonic() - started)

    state = resume or ResumeState(0, None, None)
    reference = state.reference
    newest = state.newest
    started = time.monotonic()
    if state.start == 0:
        newest = generate(init_image(settings), 0)
    older: np.ndarray | None = None
    for s in range(state.start, frames, cadence):
        if s > 0:
            cancel.check()
            started = time.monotonic()
            # ``newest`` has been carried to s−1; one more step gives both the
            # older tween buffer and the init of keyframe s.
            older = motion.warp(newest, s, depth_into(s, newest))
            init = older
            if coherence != "None":
                if reference is None:
                    reference = init
                else:
                    init = match_colors(init, reference, coherence)
            c = contrast[s]
            if c != 1.0:
                init = np.clip(np.rint(init.astype(np.float32) * c), 0, 255).astype(np.uint8)
            if not inpaint:
                newest = generate(init, s)
            elif (region := hidden.since_keyframe(s)).any():
                newest = generate(init, s, uncovered=region.astype(np.float32))
            else:  # nothing new came into view: the warped picture is the frame
                newest = init
        carried = newest
        for f in range(s, min(s + cadence, frames)):
            if f > s:
                cancel.check()
                started = time.monotonic()
                z = depth_into(f, carried)
                carried = motion.warp(carried, f, z)
                older = motion.warp(older, f, z) if older is not None else None
            if hidden is not None and f > 0:
                hidden.step(f)
            w = (f - s + 1) / cadence
            if older is None or w >= 1.0:
                image = carried
            else:
                blend = older.astype(np.float32) * (1 - w) + carried.astype(np.float32) * w
                image = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
            emit(f, image, started)
        newest = carried
    if on_depth is not None and newest is not None:
        depth_into(frames, newest)  # the last frame's own depth, for saving only
    return written


def disocclusion_path(folder: Path, timestring: str, frame: int) -> Path:
    """``{timestring}_disocclusion/{frame:05d}.png``: beside, not among, the frames."""
    return folder / f"{timestring}_disocclusion" / f"{frame:05d}.png"


class _Disocclusions:
    """Per-frame disocclusion masks from true depth, saved once, kept for one block."""

    def __init__(self, motion: Motion, scene_depth: Callable[[int], np.ndarray],
                 depth: DepthFn, folder: Path, timestring: str, cadence: int) -> None:
        self.motion, self.scene_depth, self.depth = motion, scene_depth, depth
        self.folder, self.timestring, self.cadence = folder, timestring, cadence
        self._masks: dict[int, np.ndarray] = {}

    def step(self, frame: int) -> np.ndarray:
        """What ``frame`` shows that frame−1 did not; written as a grey PNG."""
        if frame not in self._masks:
            for old in [f for f in self._masks if f <= frame - self.cadence]:
                del self._masks[old]
            mask = self.motion.disocclusion(frame, self.scene_depth(frame - 1),
                                            self.scene_depth(frame))
            path = disocclusion_path(self.folder, self.timestring, frame)
            path.parent.mkdir(exist_ok=True)
            if not path.exists():
                write_png(path, mask.astype(np.uint8) * 255)
            self._masks[frame] = mask
        return self._masks[frame]

    def since_keyframe(self, keyframe: int) -> np.ndarray:
        """Everything uncovered in frames keyframe−c+1…keyframe, carried to keyframe."""
        region = None
        for f in range(max(1, keyframe - self.cadence + 1), keyframe + 1):
            if region is not None:  # earlier uncovered areas move with the picture
                moved = self.motion.warp(region.astype(np.uint8) * 255, f, self.depth(f, None))
                region = moved >= 64
            region = self.step(f) if region is None else region | self.step(f)
        return region


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


def render_stills(settings: Mapping[str, Any], folder: Path, timestring: str,
                  progress: Progress, cancel: CancelToken, diffusion: Any,
                  mask: np.ndarray | None = None) -> int:
    """None mode: ``n_batch`` images per prompt; an init folder gives one per image."""
    from .seeds import seed_sequence

    prompts = list(settings["still_prompts"]) or list(
        dict(sorted(settings["animation_prompts"].items(), key=lambda kv: int(kv[0])
                    if str(kv[0]).isdigit() else 0)).values()) or [""]
    inits: list[np.ndarray | None] = [None]
    if settings["use_init"] and settings["init_image"] and Path(settings["init_image"]).is_dir():
        files = image_files(Path(settings["init_image"]))
        if not files:
            raise InputError(f"init_image: no images in folder {settings['init_image']}",
                             key="init_image", value=settings["init_image"])
        size = (settings["W"], settings["H"])
        inits = [read_image(p, size, "init_image") for p in files]
    else:
        inits = [init_image(settings)]
    jobs = [(prompt, init) for prompt in prompts for _ in range(settings["n_batch"])
            for init in inits]
    seeds = seed_sequence(settings["seed"], settings["seed_behavior"], len(jobs),
                          iter_n=settings["seed_iter_N"])
    from .schedules import split_negative

    written = 0
    for index, ((prompt, init), seed) in enumerate(zip(jobs, seeds)):
        cancel.check()
        started = time.monotonic()
        positive, negative = split_negative(prompt)
        image = diffusion(init, strength=settings["strength"], seed=seed, noise=0.0,
                          prompt=positive, negative=negative, mask=mask, frame=index)
        path = folder / still_name(settings, timestring, index, positive, seed)
        write_png(path, image)
        written += 1
        progress.frame(index, str(path), time.monotonic() - started)
    return written


def render_sequence(count: int, make: Callable[[int], np.ndarray], folder: Path,
                    timestring: str, progress: Progress, cancel: CancelToken) -> int:
    """Frames 0…count−1 made independently (Video Input, Interpolation)."""
    for index in range(count):
        cancel.check()
        started = time.monotonic()
        path = frame_path(folder, timestring, index)
        write_png(path, make(index))
        progress.frame(index, str(path), time.monotonic() - started)
    return count


def video_input_generate(settings: Mapping[str, Any], frames: list[Path],
                         masks: list[Path] | None, diffusion: Any | None):
    """``make(i)``: img2img of video frame i with strength_schedule[i] and mask i.

    Without a model (preview) the extracted frame itself is the output.
    """
    import cv2

    from .masks import adjust_mask
    from .seeds import seed_sequence

    size = (settings["W"], settings["H"])
    count = len(frames)
    strength = settings.schedule("strength_schedule").values(count)
    seeds = seed_sequence(settings["seed"], settings["seed_behavior"], count,
                          iter_n=settings["seed_iter_N"],
                          schedule=settings.schedule("seed_schedule").values(count)
                          if settings["seed_behavior"] == "schedule" else None,
                          frames=list(range(count)))
    prompts = settings.prompts()

    def make(index: int) -> np.ndarray:
        init = read_image(frames[index], size, "video_init_path")
        if diffusion is None:
            return init
        mask = None
        if masks is not None and index < len(masks):
            grey = cv2.resize(cv2.imread(str(masks[index]), cv2.IMREAD_GRAYSCALE), size,
                              interpolation=cv2.INTER_LANCZOS4)
            mask = adjust_mask(grey.astype(np.float32) / 255.0,
                               brightness=settings["mask_brightness_adjust"],
                               contrast=settings["mask_contrast_adjust"],
                               invert=settings["invert_mask"])
        positive, negative = prompts.at(index)
        return diffusion(init, strength=strength[index], seed=seeds[index], noise=0.0,
                         prompt=positive, negative=negative, mask=mask, frame=index)
    return make
