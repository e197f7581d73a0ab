"""The check before a run: what would waste the artist's time, found before the engine starts.

Plain values in, one report out (no bpy), so every rule is unit-tested without
Blender. Warnings are things a user may mean (an odd resolution, a slow CPU
run, prompts that never show); errors are runs that cannot do what is asked
(a file the run reads is missing). ``compose`` gathers the values from the
scene; the render operator shows the warnings in a confirm popup (or, without
a UI, reports them and goes on) and stops on errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.settings_table import PREVIEW_MODES

# Native picture sizes (one side of the square the model was trained at).
NATIVE_SIZES = {"sd1": 512, "sd2": 768, "sdxl": 1024}
PRESET_SIZES = (512, 768, 1024)
# A picture this many times the native area (or 1/this) repeats subjects or loses detail.
AREA_TOLERANCE = 2.0
ASPECT_TOLERANCE = 0.05  # a shape changed more by rounding the size to multiples of 8 warns
# Seconds per denoising step of SD 1.x at 512×512 on a desktop CPU: rough, for an estimate.
CPU_SECONDS_PER_STEP = 4.0


@dataclass(frozen=True)
class Needed:
    """A file the run reads: the setting that names it, the path ('' = none chosen);
    ``required``: the run cannot go on without it (else an empty path is a warning)."""

    setting: str
    label: str
    path: str
    required: bool = False


@dataclass(frozen=True)
class Plan:
    """What the run will do, in plain values (scene frames for the prompts)."""

    width: int
    height: int
    native: int = 512
    diffuse: bool = True
    mode: str = "3D"
    has_model: bool = True  # a model is set (it may still be unused: Preview Motion)
    on_cpu: bool = False
    frames: int = 1
    steps: int = 50
    cadence: int = 1
    strength: float = 0.65
    frame_start: int = 1
    frame_end: int = 1
    prompts: tuple[tuple[int, str], ...] = ()  # (scene frame, prompt text)
    files: tuple[Needed, ...] = ()
    guides: tuple[tuple[int, str], ...] | None = None  # (scene frame, path); None: looper off
    scene_size: tuple[int, int] | None = None  # before width, height were made multiples of 8


@dataclass
class Report:
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    resolution: tuple[int, int] | None = None  # a better size, when the size is off

    @property
    def clean(self) -> bool:
        return not self.warnings and not self.errors


def native_size(model_path: str) -> int:
    """The model's native side: a diffusers folder's UNet says it; else the file name
    hints (``xl`` → 1024, ``768``/``v2`` → 768); unknown (or no model) → 512."""
    if not model_path:
        return 512
    path = Path(model_path)
    config = path / "unet" / "config.json"
    if config.is_file():
        try:
            sample = json.loads(config.read_text(encoding="utf-8")).get("sample_size")
        except (OSError, ValueError):
            sample = None
        if isinstance(sample, int) and sample > 0:
            return sample * 8
    name = path.name.lower()
    if "xl" in name:
        return NATIVE_SIZES["sdxl"]
    if "768" in name or "v2" in name or "sd2" in name:
        return NATIVE_SIZES["sd2"]
    return NATIVE_SIZES["sd1"]


def preset_resolution(width: int, height: int, size: int) -> tuple[int, int]:
    """The picture's aspect at about ``size``² pixels, each side a multiple of 64."""
    aspect = width / height if width > 0 and height > 0 else 1.0
    w = size * math.sqrt(aspect)
    return max(64, round(w / 64) * 64), max(64, round(w / aspect / 64) * 64)


def _resolution(plan: Plan, report: Report) -> None:
    if plan.scene_size is not None and min(plan.scene_size) > 0:
        sw, sh = plan.scene_size
        if abs(plan.width * sh / (plan.height * sw) - 1) > ASPECT_TOLERANCE:
            report.warnings.append(
                f"Resolution {sw}×{sh} renders as {plan.width}×{plan.height} (sizes are "
                "multiples of 8, at least 8), another shape: raise the resolution or its %")
    if not plan.diffuse:  # the motion preview has no model to be far from
        return
    area = plan.width * plan.height
    ratio = area / float(plan.native * plan.native)
    if 1 / AREA_TOLERANCE <= ratio <= AREA_TOLERANCE:
        return
    report.resolution = preset_resolution(plan.width, plan.height, plan.native)
    effect = "repeated subjects and slow frames" if ratio > 1 else "blurry, shapeless frames"
    w, h = report.resolution
    report.warnings.append(
        f"Resolution {plan.width}×{plan.height} is far from the model's native "
        f"{plan.native}×{plan.native}: expect {effect}; {w}×{h} keeps the aspect "
        "(Output › Resolution presets)")


def estimate_seconds(plan: Plan) -> float:
    """Rough CPU time: diffused frames × denoising steps each × a per-step cost by area."""
    diffused = math.ceil(plan.frames / max(plan.cadence, 1))
    later_steps = max(1, round(plan.steps * (1.0 - plan.strength)))
    steps = plan.steps + (diffused - 1) * later_steps
    area = plan.width * plan.height / (512.0 * 512.0)
    return steps * CPU_SECONDS_PER_STEP * area


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60:02d} min"


def _cpu(plan: Plan, report: Report) -> None:
    if plan.diffuse and plan.on_cpu:
        report.warnings.append(
            f"Diffusion runs on the CPU: {_duration(estimate_seconds(plan))} for "
            f"{plan.frames} frames (a rough estimate: frames × steps × "
            f"~{CPU_SECONDS_PER_STEP:g} s per step at 512×512); Motion Preview needs no model")


def _prompts(plan: Plan, report: Report) -> None:
    texts = [(frame, text) for frame, text in plan.prompts if text.strip()]
    if plan.diffuse and not texts:
        report.warnings.append("Prompts: none given, so every frame uses Deforum's example "
                               "prompt; add one in Deforum › Prompts")
    frames = sorted(frame for frame, _ in plan.prompts)
    for frame in sorted(set(frames)):
        if frames.count(frame) > 1:
            report.warnings.append(f"Prompts: {frames.count(frame)} prompts at frame {frame}; "
                                   "only one of them is used")
        if frame > plan.frame_end:
            report.warnings.append(f"Prompts: the prompt at frame {frame} is after the last "
                                   f"frame ({plan.frame_end}) and is never used")
        elif frame < plan.frame_start and any(frame < f <= plan.frame_start for f in frames):
            report.warnings.append(f"Prompts: the prompt at frame {frame} is before the first "
                                   f"frame ({plan.frame_start}) and a later prompt replaces "
                                   "it there; it is never used")


def _files(plan: Plan, report: Report) -> None:
    for needed in plan.files:
        if not needed.path and needed.required:
            report.errors.append(f"{needed.setting}: no file is chosen (Deforum › "
                                 f"{needed.label})")
        elif not needed.path:
            report.warnings.append(f"{needed.label} ({needed.setting}) is on but no file is "
                                   "chosen; the run goes on without it")
        elif not Path(needed.path).exists():
            report.errors.append(f"{needed.setting}: {needed.path} does not exist (Deforum › "
                                 f"{needed.label})")


GUIDES = "Deforum › Init & Mask › Guide Images"


def _guides(plan: Plan, report: Report) -> None:
    """Guided images read every listed image before the first frame: each must be a file."""
    if plan.guides is None:
        return
    if not plan.guides:
        report.errors.append(f"init_images: Guided Images is on but no guide image is listed "
                             f"({GUIDES})")
    for frame, path in sorted(plan.guides):
        if not path:
            why = "has no file chosen"
        elif "://" in path:
            why = f"is a URL ({path}); download it and choose the file"
        elif not Path(path).is_file():
            why = f"{path} does not exist"
        else:
            continue
        report.errors.append(f"init_images: frame {frame}'s guide image {why} ({GUIDES})")


def _model(plan: Plan, report: Report) -> None:
    """A mode with no motion to preview cannot run without diffusion."""
    if plan.diffuse or plan.mode in PREVIEW_MODES:
        return
    if not plan.has_model:
        report.errors.append(f"model_path: animation_mode '{plan.mode}' needs a Stable "
                             "Diffusion model (add-on preferences › Model); only 2D, 3D and "
                             "Video Input render a motion preview without one")
    else:
        report.errors.append(f"preview_motion: animation_mode '{plan.mode}' has no motion to "
                             "preview; untick Preview Motion")


def check(plan: Plan) -> Report:
    """Every warning and error of ``plan``, in the order a user would fix them."""
    report = Report()
    _model(plan, report)
    _files(plan, report)
    _guides(plan, report)
    _resolution(plan, report)
    _cpu(plan, report)
    _prompts(plan, report)
    return report
