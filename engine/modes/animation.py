"""2D and 3D animation: the camera moves and keyframes are diffused.

The loop is written around ``generate(init, frame)``: the motion preview
passes the prepared image through, the diffusion engine diffuses it.  Order
for a keyframe F > 0: warp the previous keyframe (then hybrid motion, the guide
video's motion into F: ``engine.hybrid``; hybrid compositing mixes the video
frame in before or after that motion, or into the generated frame:
``engine.hybrid_composite``) → colour coherence and
grey (``color.Coherence`` says which reference) → contrast → anti-blur →
generate (noise and diffusion; blank frames rerolled) → colour coherence of the
generated frame.  With cadence c, frame f (s = c·⌊f/c⌋) is the blend of the
keyframes diffused at s−c and s, each warped forward frame by frame, weight
(f − s + 1)/c on the newer one (with ``optical_flow_cadence``, both first
moved along the flow between them to that in-between position; with
``flow_source`` 'scene' the scene's exact flow, ``engine.scene_flow``).  Deforum's
original code leaves the frames of the last block unwritten; here every frame exists.  Depth is asked for once
per output frame and shared by everything that warps into it.  The pictures stay
where ``engine.frames`` keeps them (on a GPU pipeline, on the GPU) until each
written frame's one copy to the writer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..blank import guard_blank
from ..color import Coherence
from ..errors import InputError, SettingsError
from ..flow import check_methods, flow_tween
from ..frames import Frames, NumpyFrames, choose_frames, later
from ..guided import diffusion_settings, guided, load_guides
from ..hybrid import HybridMotion, check_hybrid, hybrid_set_up
from ..hybrid_clip import ClipColours, clip_changes, clip_colours, extract_clip, is_hybrid
from ..hybrid_composite import (ExtraFrames, HybridComposite, check_composite,
                                composite_set_up, wants_depth)
from ..motion import Motion
from ..output import decodes, frame_path, read_image, remove_stale_temps, write_png
from ..progress import Progress
from ..redo import Redo
from ..scene_flow import SceneFlow, scene_flow_set_up
from ..seeds import seed_sequence
from ..settings import Settings
from ..sharpen import AntiBlur
from ..testcard import make_test_card
from ..writer import Writer
from .common import (CancelToken, Job, Mode, check_init_image, colour_reference, init_image,
                     warn_inpaint_ignored, write_frame)

# generate(init, frame, uncovered=None): the picture of ``frame``; ``uncovered`` (H×W
# float, 1 = newly visible) restricts a keyframe's diffusion to that area.
Generate = Callable[..., np.ndarray]
# depth(frame, image): z for warping ``image`` (the picture at frame−1) into ``frame``.
DepthFn = Callable[[int, np.ndarray], np.ndarray | None]
# on_depth(frame, z): receives the depth estimated from frame's picture (save_depth_maps).
DepthSaver = Callable[[int, np.ndarray], None]
# scene_depth(frame): the true (metric) depth of frame, from the scene's depth maps.
SceneDepthFn = Callable[[int], np.ndarray]
# used(keyframe): the diffusion values keyframe was made with (its frames' events carry them).
UsedFn = Callable[[int], dict[str, Any] | None]


class Animation(Mode):
    """``animation_mode`` 2D or 3D; without a model it renders the motion preview."""

    resumable = True

    def __init__(self, job: Job) -> None:
        super().__init__(job)
        self.depth: DepthFn | None = None
        self.on_depth: DepthSaver | None = None
        self.scene_depth: SceneDepthFn | None = None
        self.resume: ResumeState | None = None
        self.generate: Generate | None = None
        self.colour_image: np.ndarray | None = None
        self.used: UsedFn | None = None
        self.hybrid: HybridMotion | None = None
        self.composite: HybridComposite | None = None
        self.clip_colours: ClipColours | None = None
        self.changes: dict[str, Any] = {}  # what the hybrid clip decides (frame count, init)
        self._depth_models: dict[str, Any] = {}
        self.scene_flow: SceneFlow | None = None

    def set_up(self, settings: Settings) -> None:
        """Depth, the resumed run's state and the init image: each can fail on user input,
        so all before the run writes anything."""
        check_methods(settings)
        settings = self._hybrid_set_up(settings)
        self.colour_image = colour_reference(settings, self.job.progress,
                                             video=self.clip_colours is not None)
        if settings["animation_mode"] == "3D" or settings["save_depth_maps"]:
            self.depth, self.on_depth, self.scene_depth = depth_set_up(settings, self.job,
                                                                       self._depth_model)
        if self.scene_depth is None:
            warn_inpaint_ignored(settings, self.job.progress)
        self.scene_flow = scene_flow_set_up(settings, Motion(settings, settings["max_frames"]),
                                            self.scene_depth)
        if self.hybrid is not None and self.scene_flow is not None:
            self.hybrid.scene_flow = self.scene_flow.into
        if self.job.resuming:
            self.resume = self._resume(settings)
        if self.resume is None or self.resume.start == 0:
            check_init_image(settings)
        if load_guides(settings) is not None and settings["seed_behavior"] != "schedule":
            self.job.progress.warning(f"use_looper: seed_behavior {settings['seed_behavior']!r} "
                                      "becomes 'schedule' (seed_schedule), as in Deforum's "
                                      "guided images", key="seed_behavior")

    def _hybrid_set_up(self, settings: Settings) -> Settings:
        """The guide clip's frames, the settings it decides, its motion and compositing."""
        if not is_hybrid(settings):
            return settings
        job = self.job
        check_hybrid(settings)
        check_composite(settings, job.progress)
        frames = extract_clip(settings, job.folder, job.progress)
        self.changes = clip_changes(settings, frames, job.progress)
        settings = settings.replace(**self.changes)
        self.hybrid = hybrid_set_up(settings, frames, job.progress)
        self.clip_colours = clip_colours(settings, frames)
        depth = None
        if wants_depth(settings) and settings["depth_model_path"]:
            depth = self._depth_model(settings["depth_model_path"], self._device(),
                                      settings["half_precision"]).predict
        self.composite = composite_set_up(settings, frames, job.folder, job.timestring, depth)
        if settings["hybrid_comp_save_extra_frames"] and self.hybrid is not None:
            self.hybrid.extras = ExtraFrames(job.folder, job.timestring)
        return settings

    def _device(self) -> Any:
        return self.job.pipes.device if self.job.pipes is not None else "cpu"

    def _depth_model(self, path: str, device: Any, half: bool) -> Any:
        """The depth model at ``path``, loaded once for the warp and the composite masks."""
        if path not in self._depth_models:
            self._depth_models[path] = self.job.loaders.depth_model(path, device, half)
        return self._depth_models[path]

    def prepare(self, settings: Settings) -> Settings:
        return settings.replace(**self.changes) if self.changes else settings

    def start(self, settings: Settings, diffusion: Any | None, mask: np.ndarray | None) -> int:
        self.settings = settings
        if diffusion is not None:
            self.generate = animation_generate(guard_blank(diffusion, settings), settings,
                                               mask)
            self.used = diffusion.used_for
        total = settings["max_frames"]
        if self.resume is None:
            return total
        # A resumed run counts the frames it writes: those missing or broken on disk.
        kept = _frames_on_disk(self.job.folder, self.job.timestring) - self.resume.broken
        return total - len({f for f in kept if f < total})

    def _resume(self, settings: Settings) -> ResumeState:
        """The resumed run's state, after clearing what a killed run left half-written."""
        job = self.job
        remove_stale_temps(job.folder, re.escape(job.timestring) + r"(?:_.+|\.mp4)")
        remove_stale_temps(disocclusion_path(job.folder, job.timestring, 0).parent, r"\d+\.png")
        state = resume_state(settings, job.folder, job.timestring)
        for index in sorted(state.broken):
            path = frame_path(job.folder, job.timestring, index)
            job.progress.warning(f"resume_timestring: {path} is not a whole image (an "
                                 "interrupted write); rendering it again", key="resume_timestring")
        return state

    def render(self) -> int:
        job = self.job
        return render_animation(self.settings, job.folder, job.timestring, job.progress,
                                job.cancel, generate=self.generate, depth=self.depth,
                                resume=self.resume, on_depth=self.on_depth,
                                scene_depth=self.scene_depth,
                                colors=Coherence(self.settings, self.colour_image),
                                used=self.used, hybrid=self.hybrid, composite=self.composite,
                                clip_colours=self.clip_colours, scene_flow=self.scene_flow,
                                frames=choose_frames(self._device(), self.settings))


def depth_set_up(settings: Settings, job: Job, load: Any = None
                 ) -> tuple[DepthFn, DepthSaver | None, SceneDepthFn | None]:
    """The loop's depth function, the saver (``save_depth_maps``) and, for scene
    depth with the pinhole warp, the true depth per frame (disocclusion masks);
    ``load(path, device, half)`` loads the depth model (default: the job's loader)."""
    from ..depth import ModelDepth, SceneDepth, depth_map_path, make_depth_source, save_depth_map

    progress = job.progress
    device = job.pipes.device if job.pipes is not None else "cpu"
    source, notices = make_depth_source(settings, device, settings["half_precision"],
                                        load=load or job.loaders.depth_model)
    for note in notices:
        progress.warning(note)
    on_depth = None
    if settings["save_depth_maps"]:
        if isinstance(source, ModelDepth):
            def on_depth(frame: int, z: np.ndarray) -> None:
                path = depth_map_path(job.folder, job.timestring, frame)
                if not path.exists():  # a resumed run keeps the maps it already has
                    save_depth_map(path, z)
        else:
            progress.warning("save_depth_maps: depth maps are written only when a depth model "
                             "estimates them (depth_model_path)", key="save_depth_maps")
    scene_depth = None
    if isinstance(source, SceneDepth):
        if settings["warp_model"] == "pinhole":
            scene_depth = source.depth
        else:
            progress.warning("depth_source 'scene' is metric: warp_model 'pinhole' follows the "
                             "camera exactly; with 'deforum' no disocclusion masks are made",
                             key="warp_model")
    return source.for_frame, on_depth, scene_depth


def animation_generate(diffusion: Any, settings: Settings, mask: np.ndarray | None) -> Generate:
    """The loop's ``generate(init, frame, uncovered)`` for a 2D/3D run with a model.

    Frame 0 is txt2img without an init image, else img2img with ``strength``;
    keyframe F > 0 uses the strength and noise schedules at F, the prompt of
    F and the seed of the F/c-th diffused frame.  ``uncovered`` (inpainting
    disocclusions) limits the diffusion to that area, with every step.  With
    ``enable_noise_multiplier_scheduling`` img2img's initial noise is scaled by
    ``noise_multiplier_schedule`` at F.
    """
    settings = diffusion_settings(settings)
    frames = settings["max_frames"]
    cadence = max(1, min(settings["diffusion_cadence"], frames))
    keyframes = list(range(0, frames, cadence))
    strength = settings.schedule("strength_schedule").values(frames)
    noise = settings.schedule("noise_schedule").values(frames)
    multiplier = settings.schedule("noise_multiplier_schedule").values(frames) \
        if settings["enable_noise_multiplier_scheduling"] else [1.0] * frames
    seed_values = settings.schedule("seed_schedule").values(frames) \
        if settings["seed_behavior"] == "schedule" else None
    seeds = seed_sequence(settings["seed"], settings["seed_behavior"], len(keyframes),
                          iter_n=settings["seed_iter_N"], schedule=seed_values, frames=keyframes)
    prompts = settings.prompts()
    redo = Redo(settings, frames)

    def upcoming(frame: int) -> int | None:
        """The seed of the keyframe after ``frame`` when that one is noised (its noise field
        is drawn while ``frame`` diffuses)."""
        after = frame // cadence + 1
        return seeds[after] if after < len(keyframes) and noise[keyframes[after]] else None

    def generate(init: np.ndarray | None, frame: int,
                 uncovered: np.ndarray | None = None) -> np.ndarray:
        positive, negative = prompts.at(frame)
        if frame == 0:
            return diffusion(init, strength=settings["strength"], seed=seeds[0], noise=0.0,
                             prompt=positive, negative=negative, mask=mask, frame=0,
                             noise_multiplier=multiplier[0], next_seed=upcoming(0))
        if uncovered is not None:
            # Newly visible scene: generated from scratch (all steps) inside the
            # uncovered area, the rest held at the warped picture.
            return diffusion(init, strength=0.0, seed=seeds[frame // cadence],
                             noise=noise[frame], prompt=positive, negative=negative,
                             mask=uncovered if mask is None else uncovered * mask, frame=frame,
                             noise_multiplier=multiplier[frame], next_seed=upcoming(frame))

        def diffuse(image: np.ndarray, seed: int) -> np.ndarray:
            return diffusion(image, strength=strength[frame], seed=seed, noise=noise[frame],
                             prompt=positive, negative=negative, mask=mask, frame=frame,
                             noise_multiplier=multiplier[frame], next_seed=upcoming(frame))
        seed = seeds[frame // cadence]
        return diffuse(redo(init, frame, seed, diffuse), seed)
    return generate


def preview_generate(settings: Mapping[str, Any]) -> Generate:
    """The motion preview's 'diffusion': keep the prepared image (test card at frame 0)."""
    def generate(init: np.ndarray | None, frame: int,
                 uncovered: np.ndarray | None = None) -> np.ndarray:
        return make_test_card(settings["W"], settings["H"]) if init is None else init
    return generate


# ---------------------------------------------------------------- resuming

@dataclass
class ResumeState:
    """Where an interrupted run continues: the first keyframe to diffuse and its inputs."""

    start: int                       # first keyframe still to diffuse
    newest: np.ndarray | None        # the previous keyframe carried to start − 1
    reference: np.ndarray | None     # colour-coherence reference, if already taken
    broken: frozenset[int] = frozenset()  # frames on disk that do not decode: replaced
    # frame c−1, whose way into keyframe c (warp, hybrid motion and compositing) the
    # loop retraces to get the colour reference the uninterrupted run took there
    reference_from: np.ndarray | None = None


def _frames_on_disk(folder: Path, timestring: str) -> set[int]:
    """The frame numbers of ``timestring`` that have a file (whole or not)."""
    pattern = re.compile(re.escape(timestring) + r"_(\d{5})\.png$")
    return {int(m.group(1)) for p in folder.glob(f"{timestring}_*.png")
            if (m := pattern.match(p.name))}


def _complete_blocks(frames: set[int], cadence: int) -> int:
    """How many frames 0, 1, 2, … of ``frames`` fill whole cadence blocks without a gap."""
    count = 0
    while count in frames:
        count += 1
    return cadence * (count // cadence)


def _broken_frames(folder: Path, timestring: str, present: set[int], cadence: int,
                   coherent: bool) -> frozenset[int]:
    """The frames a resume relies on or keeps that are not whole images.

    Checked: the last frame of the newest complete block (the carried
    keyframe), the colour reference (frame c−1) and every frame after the
    block, which the resumed run keeps as they are.  A broken one counts as
    missing, which can move the resume point back, so the check repeats.
    Frames are written in order, so a kill can break only these.
    """
    broken: set[int] = set()
    checked: set[int] = set()
    while True:
        complete = _complete_blocks(present - broken, cadence)
        relied = {i for i in present if i >= complete - 1}
        if coherent and complete > cadence:
            relied.add(cadence - 1)
        if not relied - checked:
            return frozenset(broken)
        broken |= {i for i in relied - checked
                   if not decodes(frame_path(folder, timestring, i))}
        checked |= relied


def _check_size(settings: Mapping[str, Any], frame: Path) -> None:
    """A resumed run continues its frames at their size: another W or H would make a
    shot of two sizes (and a movie of one of them)."""
    from PIL import Image

    with Image.open(frame) as image:
        width, height = image.size
    for key, made in (("W", width), ("H", height)):
        if settings[key] != made:
            raise SettingsError(f"{key}: {settings[key]} differs from the {width}×{height} "
                                f"frames being resumed ({frame.name}…); resume them at the "
                                "size they were made at", key=key, value=settings[key])


def resume_state(settings: Mapping[str, Any], folder: Path, timestring: str) -> ResumeState:
    """Rebuild the loop state after the last complete cadence block of whole frames.

    The last frame of a block is exactly the newest keyframe carried to it,
    and frame c−1 carried into c is the colour reference (frame 0 itself where
    frame 0 as generated is; the loop carries it), so a resumed run writes the same frames as an
    uninterrupted one.  Frames that do not decode (left by a kill mid-write before
    writes were atomic) are rendered again and replace the broken file; a frame that
    decodes is never rewritten.
    """
    cadence = max(1, min(settings["diffusion_cadence"], settings["max_frames"]))
    present = _frames_on_disk(folder, timestring)
    if 0 not in present:
        raise InputError(f"resume_timestring: no frames {timestring}_00000.png… in {folder}",
                         key="resume_timestring", value=timestring)
    coherent = settings["color_coherence"] != "None"
    broken = _broken_frames(folder, timestring, present, cadence, coherent)
    if 0 not in broken:
        _check_size(settings, frame_path(folder, timestring, 0))
    complete = _complete_blocks(present - broken, cadence)
    if complete == 0:
        return ResumeState(0, None, None, broken)
    size = (settings["W"], settings["H"])
    newest = read_image(frame_path(folder, timestring, complete - 1), size, "resume_timestring")
    reference = first = None
    fresh_start = not (settings["use_init"] and settings["init_image"])
    if settings["color_coherence"] not in ("None", "Image", "Video Input") \
            and not settings["legacy_colormatch"] and fresh_start:  # frame 0 is the reference
        reference = read_image(frame_path(folder, timestring, 0), size, "resume_timestring")
    elif coherent and complete > cadence:
        first = read_image(frame_path(folder, timestring, cadence - 1), size, "resume_timestring")
    return ResumeState(complete, newest, reference, broken, first)


# ---------------------------------------------------------------- the loop

def render_animation(settings: Mapping[str, Any], folder: Path, timestring: str,
                     progress: Progress, cancel: CancelToken,
                     generate: Generate | None = None, depth: DepthFn | None = None,
                     resume: ResumeState | None = None,
                     on_depth: DepthSaver | None = None,
                     scene_depth: SceneDepthFn | None = None,
                     colors: Coherence | None = None,
                     used: UsedFn | None = None,
                     hybrid: HybridMotion | None = None,
                     composite: HybridComposite | None = None,
                     clip_colours: ClipColours | None = None,
                     scene_flow: SceneFlow | None = None,
                     writer: Writer | None = None, frames: Frames | None = None) -> int:
    """Render frames 0…max_frames−1 into ``folder``; returns the number written.

    ``on_depth(frame, z)`` receives, once, the depth estimated from the picture
    of each frame (used to save depth maps).  ``scene_depth(k)``, the true
    depth of frame k (pinhole warp), adds disocclusion masks: each frame's is
    saved (``disocclusion_path``), and with ``inpaint_disocclusions`` a keyframe
    is diffused only where the frames since the last keyframe uncovered the
    scene.  Frames already on disk (a resumed run) are kept, not rewritten.
    ``colors`` holds the colour reference (default: from the settings alone).
    Anti-blur sharpens the inits of diffused keyframes only, not the preview's.
    ``hybrid`` moves every carried picture by the guide video's motion after the warp;
    ``composite`` mixes the guide video into each keyframe; ``clip_colours`` gives the
    colour reference of color_coherence Video Input from the guide clip; ``scene_flow``
    (flow_source 'scene') gives optical-flow cadence its flow.  Files are written by
    ``writer`` (default: a background one, closed on return; one passed in is the
    caller's to close, after which every file is on disk).  ``frames`` keeps the
    pictures between frames (``engine.frames``; default: arrays on the host).
    """
    with nullcontext(writer) if writer is not None else Writer() as files:
        loop = _Loop(settings, folder, timestring, progress, cancel,
                     generate, depth or (lambda frame, image: None),
                     on_depth, scene_depth, keep_existing=resume is not None,
                     broken=resume.broken if resume is not None else frozenset(),
                     colors=colors or Coherence(settings), sharpen=generate is not None,
                     writer=files)
        loop.used, loop.hybrid, loop.composite = used, hybrid, composite
        loop.clip_colours, loop.scene_flow = clip_colours, scene_flow
        loop.ops = frames or NumpyFrames()
        loop.colors.use(loop.ops)
        return loop.run(resume or ResumeState(0, None, None))


class _Loop:
    """One pass of ``render_animation``: keyframes, the tweens between them, and output."""

    def __init__(self, settings: Mapping[str, Any], folder: Path, timestring: str,
                 progress: Progress, cancel: CancelToken, generate: Generate | None,
                 depth: DepthFn, on_depth: DepthSaver | None,
                 scene_depth: SceneDepthFn | None, keep_existing: bool,
                 broken: frozenset[int], colors: Coherence, sharpen: bool,
                 writer: Writer) -> None:
        self.settings, self.folder, self.timestring = settings, folder, timestring
        self.writer = writer
        self.progress, self.cancel = progress, cancel
        self.generate = guided(generate or preview_generate(settings), settings)
        self.depth, self.on_depth, self.keep_existing = depth, on_depth, keep_existing
        self.broken = broken
        self.frames = settings["max_frames"]
        self.cadence = max(1, min(settings["diffusion_cadence"], self.frames))
        self.motion = Motion(settings, self.frames)
        self.contrast = settings.schedule("contrast_schedule").values(self.frames)
        self.strength = settings.schedule("strength_schedule").values(self.frames)
        self.colors = colors
        # The preview's prepared image is its frame: sharpened again at every
        # keyframe without diffusion it would only grow harsher.
        self.antiblur = AntiBlur(settings, self.frames) if sharpen else None
        self.hidden = _Disocclusions(self.motion, scene_depth, depth, folder, timestring,
                                     self.cadence, writer) if scene_depth is not None else None
        self.inpaint = self.hidden is not None and settings["inpaint_disocclusions"]
        # The motion preview invents what the camera uncovers (stretched edge pixels):
        # tinted, that area reads as "a model paints here", not as a broken warp.
        self.tint = generate is None and self.hidden is not None and settings["preview_tint"]
        self.written = 0
        self.used: UsedFn | None = None
        self.hybrid: HybridMotion | None = None
        self.composite: HybridComposite | None = None
        self.clip_colours: ClipColours | None = None
        self.scene_flow: SceneFlow | None = None
        self.flow = settings["optical_flow_cadence"]
        self.flow_factor = settings.schedule("cadence_flow_factor_schedule").values(
            self.frames) if self.flow != "None" else None
        self.ops: Frames = NumpyFrames()  # where the pictures are kept (``engine.frames``)

    def run(self, state: ResumeState) -> int:
        if self.clip_colours is not None and state.start > 0:
            self.colors.set_reference(self.clip_colours.in_force(state.start, self.cadence))
        if state.reference is not None and self.colors.reference is None:
            self.colors.set_reference(state.reference)
        elif state.reference_from is not None and self.colors.reference is None:
            first, c = self.ops.upload(state.reference_from), self.cadence
            z = self.depth(c, first)
            self.colors.set_reference(self._init(first, self._carry(first, c, z), c, z))
        newest = self.ops.upload(state.newest)
        started = time.monotonic()
        if state.start == 0:
            self._clip_colour(0)
            init = self.ops.upload(init_image(self.settings))
            newest = self.colors.finish(self.ops.upload(self.generate(init, 0)), 0,
                                        self.strength[0], had_init=init is not None)
        for s in range(state.start, self.frames, self.cadence):
            older = None
            if s > 0:
                self.cancel.check()
                started = time.monotonic()
                # ``newest`` has been carried to s−1; one more step gives both the
                # older tween buffer and the init of keyframe s.
                z = self._depth_into(s, newest)
                older = self._carry(newest, s, z)
                self._clip_colour(s)
                newest = self._keyframe(self._init(newest, older, s, z), s, newest, z)
            newest = self._block(s, newest, older, started)
        if self.on_depth is not None and newest is not None:
            self._depth_into(self.frames, newest)  # the last frame's own depth, for saving only
        return self.written

    def _clip_colour(self, s: int) -> None:
        """At keyframe ``s``, the guide clip's frame becomes the colour reference when due."""
        reference = self.clip_colours.at(s) if self.clip_colours is not None else None
        if reference is not None:
            self.colors.set_reference(reference)

    def _init(self, previous: np.ndarray, carried: np.ndarray, s: int,
              z: np.ndarray | None) -> np.ndarray:
        """Keyframe ``s``'s init: ``previous`` (at s−1) ``carried`` into s, with the guide
        video composited in after the carry (Normal) or between warp and hybrid motion."""
        when = self.composite.when if self.composite is not None else "None"
        if when == "Normal":
            return self.composite(carried, s, previous, z)
        if when != "Before Motion":
            return carried
        mixed = self.composite(self.motion.warp(previous, s, z), s, previous, z)
        return mixed if self.hybrid is None else self.hybrid(mixed, s)

    def _after(self, image: np.ndarray, s: int, previous: np.ndarray | None,
               z: np.ndarray | None) -> np.ndarray:
        """A generated keyframe with the guide video composited in (After Generation)."""
        if self.composite is None or self.composite.when != "After Generation":
            return image
        return self.composite(image, s, previous, z)

    def _keyframe(self, warped: np.ndarray, s: int, previous: np.ndarray | None = None,
                  z: np.ndarray | None = None) -> np.ndarray:
        """Keyframe ``s`` from its init ``warped`` (``previous``: keyframe s−1's picture
        at s−1, ``z`` its depth, for compositing)."""
        init = self.ops.contrast(self.colors.prepare(warped), self.contrast[s])
        if not self.inpaint:
            if self.antiblur is not None:
                init = self.antiblur(init, s)
            image = self.ops.upload(self.generate(init, s))
        else:  # kept as warped outside the region, diffused from scratch inside: no anti-blur
            region = self.hidden.since_keyframe(s)
            if not region.any():
                return init  # nothing new came into view: the warped picture is the frame
            image = self.generate(init, s, uncovered=region.astype(np.float32))
        return self.colors.finish(self._after(image, s, previous, z), s, self.strength[s],
                                  had_init=True)

    def _block(self, s: int, newest: np.ndarray, older: np.ndarray | None,
               started: float) -> np.ndarray:
        """Write frames s…s+c−1, both keyframes carried along; returns the newer one at the end."""
        carried = newest
        for f in range(s, min(s + self.cadence, self.frames)):
            if f > s:
                self.cancel.check()
                started = time.monotonic()
                z = self._depth_into(f, carried)
                carried = self._carry(carried, f, z)
                older = self._carry(older, f, z) if older is not None else None
            if self.hidden is not None and f > 0:
                self.hidden.step(f)
            image = self._tween(older, carried, s, f)
            if self.tint and f > 0:
                image = _tinted(image, self.hidden.unseen(f))
            self._emit(f, image, started, s)
        return carried

    def _tween(self, older: np.ndarray | None, newer: np.ndarray, s: int,
               f: int) -> np.ndarray:
        """Frame f of block s; with ``optical_flow_cadence`` both keyframes first move along
        the flow between them to f's position (not when keyframe s was diffused from
        scratch, strength 0: its picture is unrelated to the older one)."""
        weight = (f - s + 1) / self.cadence
        if self.flow != "None" and older is not None and weight < 1.0 and self.strength[s] > 0:
            if self.scene_flow is not None:
                older, newer = self.scene_flow.tween(older, newer, weight, (s - self.cadence, s),
                                                     self.flow_factor[f])
            else:
                older, newer = flow_tween(older, newer, weight, self.flow, self.flow_factor[f])
        return self.ops.tween(older, newer, weight)

    def _carry(self, image: np.ndarray, frame: int, z: np.ndarray | None) -> np.ndarray:
        """``image`` (the picture at frame−1) moved into ``frame``: the camera's warp, then
        the guide video's motion (hybrid_motion)."""
        moved = self.ops.warp(self.motion, image, frame, z)
        return moved if self.hybrid is None else self.hybrid(moved, frame)

    def _depth_into(self, frame: int, image: np.ndarray) -> np.ndarray | None:
        z = self.depth(frame, image)
        if z is not None and self.on_depth is not None:
            self.writer.submit(later(self.on_depth, frame - 1, self.ops.download(z)))
        return z

    def _emit(self, index: int, image: np.ndarray, started: float, keyframe: int) -> None:
        path = frame_path(self.folder, self.timestring, index)
        broken = index in self.broken
        if self.keep_existing and not broken and path.exists():
            return
        self.written += 1
        used = self.used(keyframe) if self.used is not None else None
        self.writer.submit(later(write_frame, self.progress, index, path,
                                 self.ops.to_host(image), time.monotonic() - started, used,
                                 replace=broken))


TINT = np.array([255.0, 0.0, 255.0], dtype=np.float32)  # preview_tint's colour


def _tinted(image: np.ndarray, unseen: np.ndarray) -> np.ndarray:
    """``image`` under translucent magenta, as strong as each pixel is ``unseen`` (0…1);
    a copy: the loop keeps the original."""
    alpha = (0.5 * unseen)[..., None]
    return np.rint(image * (1.0 - alpha) + TINT * alpha).astype(np.uint8)


# ---------------------------------------------------------------- disocclusions

def disocclusion_path(folder: Path, timestring: str, frame: int) -> Path:
    """``{timestring}_disocclusion/{frame:05d}.png``: beside, not among, the frames."""
    return folder / f"{timestring}_disocclusion" / f"{frame:05d}.png"


class _Disocclusions:
    """Per-frame disocclusion masks from true depth, saved once, kept for one block."""

    def __init__(self, motion: Motion, scene_depth: SceneDepthFn,
                 depth: DepthFn, folder: Path, timestring: str, cadence: int,
                 writer: Writer | None = None) -> None:
        self.motion, self.scene_depth, self.depth = motion, scene_depth, depth
        self.writer = writer or Writer(background=False)
        self.folder, self.timestring, self.cadence = folder, timestring, cadence
        self._masks: dict[int, np.ndarray] = {}
        self._seen: tuple[int, np.ndarray] | None = None  # (frame, 0…255 map) of ``unseen``

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
                self.writer.submit(partial(write_png, path, mask.astype(np.uint8) * 255))
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

    def unseen(self, frame: int) -> np.ndarray:
        """H×W in 0…1: how much of each pixel of ``frame`` no frame has shown (what the
        preview, which never repaints, invents), carried along with the picture.  Out of
        picture counts as unseen, so the stretched border shows too, however slow the pan."""
        uncovered = self.step(frame)
        if self._seen is not None and self._seen[0] == frame - 1:
            before = self._seen[1]
        else:
            before = np.full(uncovered.shape, 255, np.uint8)
        seen = self.motion.warp(before, frame, self.depth(frame, None), padding_mode="zeros")
        seen[uncovered] = 0
        self._seen = (frame, seen)
        return 1.0 - seen / 255.0
