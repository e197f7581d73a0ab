"""ControlNet: the webui's five units (``cn_1_*`` … ``cn_5_*``) steering each frame's diffusion.

Each enabled unit loads one ControlNet strictly offline (a diffusers folder or a single
file read against a config derived from the run's UNet).  The ControlNet pipelines of
diffusers are made from the loaded model's own pipelines (``from_pipe``: nothing is
loaded twice), with all units behind one ``MultiControlNetModel`` that applies each
unit's control mode and mask:

* Balanced: the unit's residuals, times its weight, go to both halves of guidance.
* My prompt is more important: the residuals fade toward the UNet's deep layers
  (diffusers' ``guess_mode`` scales 10^(−1 … 0), the webui's ControlNet 0.825^(12 … 0):
  the same ramp within 0.6 %), still on both halves.
* ControlNet is more important: those faded residuals on the prompt's half only, so
  the negative prompt's prediction is uncontrolled and guidance pushes toward the control.

A frame where no unit acts (every weight 0, no control picture, or no steps in its
guidance range) runs the plain pipelines, so it is exactly the frame of a run without
ControlNet.  Guidance start/end are shares of the steps the frame actually runs.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .control_images import ControlFrames, check_module, control_image, read_rgb
from .errors import ModelError, SettingsError, shown
from .paths import local_path
from .settings_table import CN_UNITS, CONTROL_MODES

BALANCED, PROMPT_MORE, CONTROL_MORE = CONTROL_MODES
SINGLE_FILE_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
_CONTROLNET_KEYS = ("control_model.", "controlnet_", "input_hint_block.")  # original, diffusers
_WEBUI_HASH = re.compile(r"\s*\[[0-9a-fA-F]{6,}\]\s*$")  # "control_v11p_sd15_canny [d14c016b]"


@dataclass
class Unit:
    """One enabled unit's settings, with its schedules evaluated for every frame."""

    number: int
    model: Path
    module: str
    weight: np.ndarray
    start: np.ndarray
    end: np.ndarray
    frames: ControlFrames | None  # None: loopback (each frame's init picture)
    masks: ControlFrames | None
    mode: str
    resize: str
    resolution: int  # 0: pixel perfect
    a: float
    b: float
    low_vram: bool
    net: Any = field(default=None, repr=False)

    def key(self, suffix: str) -> str:
        return f"cn_{self.number}_{suffix}"


def model_file(name: str, key: str, model_path: str) -> Path:
    """The local ControlNet a ``cn_N_model`` names: the path as given, else (a webui model
    name, its ``[hash]`` dropped) a folder or weights file of that name beside ``model_path``."""
    given = local_path(name, key).expanduser()
    if given.exists():
        return given
    stem = _WEBUI_HASH.sub("", name)
    looked = [given]
    if model_path:
        beside = Path(model_path).expanduser().parent
        looked += [beside / stem] + [beside / (stem + s) for s in SINGLE_FILE_SUFFIXES]
    for path in looked:
        if path.exists():
            return path
    raise ModelError(f"{key}: ControlNet {shown(name)} not found (looked for "
                     + ", ".join(shown(str(p)) for p in looked) + ")", key=key, value=name)


def _schedule(settings: Mapping[str, Any], key: str, frames: int, low: float,
              high: float | None) -> np.ndarray:
    """A unit's schedule per frame, every value checked against its range."""
    values = np.asarray(settings.schedule(key).values(frames), dtype=np.float64)
    bad = (values < low) | (values > high if high is not None else False)
    if np.any(bad):
        frame = int(np.argmax(bad))
        span = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise SettingsError(f"{key}: {values[frame]:g} at frame {frame} is not valid; expected "
                            f"{span}", key=key, value=settings[key])
    return values


def _frames(settings: Mapping[str, Any], key: str, folder: Path, overwrite: bool,
            name: str) -> ControlFrames:
    """A unit's pictures; in Video Input mode taken with the clip's nth/from/to, so that
    frame k of the control video goes with frame k of the clip."""
    span: dict[str, Any] = {"method": settings["video_decoder"]}
    if settings["animation_mode"] == "Video Input":
        span.update(nth=settings["extract_nth_frame"], first=settings["extract_from_frame"],
                    last=settings["extract_to_frame"])
    elif settings["max_frames"] > 1:  # frames past the run's are not extracted
        span.update(last=int(settings["max_frames"]) - 1)
    return ControlFrames(settings[key], key, folder / name, overwrite=overwrite, **span)


def enabled_units(settings: Mapping[str, Any], folder: Path, warn: Any = None) -> list[Unit]:
    """The enabled units that have a model, checked (settings, paths, preprocessor) before
    anything loads; an enabled unit without a model is skipped with a warning, as the
    webui does."""
    units, frames = [], max(1, int(settings["max_frames"]))
    for n in CN_UNITS:
        k = f"cn_{n}_"
        if not settings[k + "enabled"]:
            continue
        if settings[k + "model"].strip().lower() in ("", "none"):
            if warn is not None:
                warn(f"{k}model: unit {n} is enabled but has no ControlNet model; it is skipped",
                     key=k + "model")
            continue
        module = check_module(settings[k + "module"], k + "module", settings["depth_model_path"])
        loopback = settings[k + "loopback_mode"]
        if not loopback and not settings[k + "vid_path"]:
            raise SettingsError(f"{k}vid_path: unit {n} needs control frames (an image, video or "
                                f"folder) or {k}loopback_mode", key=k + "vid_path", value="")
        overwrite = settings[k + "overwrite_frames"]
        units.append(Unit(
            number=n, model=model_file(settings[k + "model"], k + "model", settings["model_path"]),
            module=module, weight=_schedule(settings, k + "weight", frames, 0.0, None),
            start=_schedule(settings, k + "guidance_start", frames, 0.0, 1.0),
            end=_schedule(settings, k + "guidance_end", frames, 0.0, 1.0),
            frames=None if loopback else _frames(settings, k + "vid_path", folder, overwrite,
                                                 f"controlnet_{n}_inputframes"),
            masks=_frames(settings, k + "mask_vid_path", folder, overwrite,
                          f"controlnet_{n}_maskframes") if settings[k + "mask_vid_path"] else None,
            mode=settings[k + "control_mode"], resize=settings[k + "resize_mode"],
            resolution=0 if settings[k + "pixel_perfect"] else settings[k + "processor_res"],
            a=settings[k + "threshold_a"], b=settings[k + "threshold_b"],
            low_vram=settings[k + "low_vram"]))
    return units


def load_controlnet(unit: Unit, unet: Any, device: Any, dtype: Any) -> Any:
    """The unit's ControlNetModel from a diffusers folder or a single weights file (read
    against a config derived from ``unet``: the family it must fit), strictly offline;
    any failure is a ModelError naming ``cn_N_model``."""
    from diffusers import ControlNetModel

    from .models import _quiet_loading, _reason

    key, path = unit.key("model"), unit.model
    try:
        with _quiet_loading():
            if path.is_dir():
                if not (path / "config.json").is_file():
                    raise ModelError(f"{key}: {path} is not a ControlNet folder: config.json is "
                                     "missing", key=key, value=str(path))
                net = ControlNetModel.from_pretrained(str(path), torch_dtype=dtype,
                                                      local_files_only=True)
            elif path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
                raise ModelError(f"{key}: {path} is not a ControlNet folder or weights file "
                                 f"({', '.join(SINGLE_FILE_SUFFIXES)})", key=key, value=str(path))
            else:
                net = _single_file(path, unet, dtype)
    except ModelError as exc:
        if exc.key is None:
            raise ModelError(f"{key}: {exc}", key=key, value=str(path)) from exc
        raise
    except Exception as exc:  # any loader failure is reported, not dumped as a traceback
        raise ModelError(f"{key}: could not load ControlNet {path}: {_reason(exc)}", key=key,
                         value=str(path)) from exc
    check_fits(net, unet, unit)
    net.requires_grad_(False)
    return net.to("cpu" if unit.low_vram else device)


def _single_file(path: Path, unet: Any, dtype: Any) -> Any:
    """A single-file ControlNet (original or diffusers layout), its config taken from the
    model's UNet."""
    import inspect

    from diffusers import ControlNetModel

    from .models import _checkpoint_shapes

    names = _checkpoint_shapes(path)[0]
    if not any(k.startswith(_CONTROLNET_KEYS) or ".input_hint_block." in k for k in names):
        raise ModelError(f"{path} holds no ControlNet weights (no control_model.*, "
                         "input_hint_block or controlnet_* tensors; a Stable Diffusion "
                         "checkpoint goes in model_path)")
    accepted = inspect.signature(ControlNetModel.__init__).parameters
    config = {k: v for k, v in unet.config.items() if k in accepted}
    with tempfile.TemporaryDirectory(prefix="deforum-controlnet-") as folder:
        Path(folder, "config.json").write_text(
            json.dumps({"_class_name": "ControlNetModel", **config}, default=list))
        net = ControlNetModel.from_single_file(str(path), config=folder, torch_dtype=dtype,
                                               local_files_only=True)
    missing = [k for k, v in net.state_dict().items() if v.is_meta]
    if missing:  # diffusers leaves weights a file lacks as empty meta tensors
        raise ValueError(f"not a ControlNet for this model: {len(missing)} weights missing "
                         f"({', '.join(missing[:3])}, ...)")
    return net


def check_fits(net: Any, unet: Any, unit: Unit) -> None:
    """A ControlNet must be made for the model's family (its residuals are added to the UNet's)."""
    for name in ("cross_attention_dim", "block_out_channels", "addition_embed_type"):
        ours, theirs = net.config.get(name), unet.config.get(name)
        if list(np.atleast_1d(ours)) != list(np.atleast_1d(theirs)):
            raise ModelError(f"{unit.key('model')}: {unit.model} is a ControlNet for another kind "
                             f"of model ({name} {ours}, the model's UNet has {theirs})",
                             key=unit.key("model"), value=str(unit.model))


@functools.cache
def multi_class() -> type:
    """diffusers' MultiControlNetModel with each unit's control mode and mask applied to
    its residuals (made on first use: diffusers loads only with a model)."""
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    class Units(MultiControlNetModel):
        """The acting units of a frame; ``setups`` holds (soft, prompt_only, mask) per net."""

        setups: list[tuple[bool, bool, Any]] = []

        def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any,
                    controlnet_cond: list, conditioning_scale: list, guess_mode: bool = False,
                    return_dict: bool = True, **kwargs: Any) -> tuple[list[Any], Any]:
            """The acting units' summed residuals (always a tuple; units outside their
            guidance range at this step are not run)."""
            both_halves = sample.shape[0] == 2 and not guess_mode  # [negative, prompt]
            todo = [i for i, s in enumerate(conditioning_scale) if s != 0] or [0]
            down = mid = None
            for i in todo:
                soft, prompt_only, mask = self.setups[i]
                d, m = self.nets[i](sample, timestep, encoder_hidden_states=encoder_hidden_states,
                                    controlnet_cond=controlnet_cond[i],
                                    conditioning_scale=conditioning_scale[i], guess_mode=soft,
                                    return_dict=False, **kwargs)
                shaped = [_shape(r, prompt_only and both_halves, mask) for r in [*d, m]]
                down = shaped[:-1] if down is None else [a + b for a, b in zip(down, shaped)]
                mid = shaped[-1] if mid is None else mid + shaped[-1]
            return down, mid

    return Units


def _shape(residual: Any, prompt_only: bool, mask: Any) -> Any:
    """A residual kept on the prompt's half of guidance only, and within the unit's mask."""
    import torch.nn.functional as F

    if prompt_only:
        residual = residual * residual.new_tensor([0.0, 1.0]).view(2, 1, 1, 1)
    if mask is not None:
        small = F.interpolate(mask, size=residual.shape[-2:], mode="area")
        residual = residual * small.to(residual.dtype)
    return residual


@dataclass
class Control:
    """One frame's ControlNet: what each unit used, and when any acts, the ControlNet
    pipelines and their arguments."""

    used: list[dict[str, Any]]
    img2img: Any = None
    txt2img: Any = None
    images: list[Any] = field(default_factory=list)
    arguments: dict[str, Any] = field(default_factory=dict)
    low_vram: list[Any] = field(default_factory=list)
    device: Any = None

    @property
    def acting(self) -> bool:
        return self.img2img is not None

    def pipe_arguments(self, kind: str) -> dict[str, Any]:
        """The pipeline's keyword arguments: img2img takes ``control_image``, txt2img ``image``."""
        return {"control_image" if kind == "img2img" else "image": self.images,
                **self.arguments}

    @contextmanager
    def ready(self) -> Iterator[None]:
        """Low-VRAM units' ControlNets on the device only while the frame diffuses."""
        for net in self.low_vram:
            net.to(self.device)
        try:
            yield
        finally:
            for net in self.low_vram:
                net.to("cpu")


class ControlNets:
    """The run's enabled units: loaded once, their pipelines made per model."""

    def __init__(self, settings: Mapping[str, Any], pipes: Any, folder: Path,
                 warn: Any = None) -> None:
        self.settings, self.size = settings, (int(settings["W"]), int(settings["H"]))
        self.frames = max(1, int(settings["max_frames"]))
        self.units = enabled_units(settings, folder, warn)
        for unit in self.units:
            unit.net = load_controlnet(unit, pipes.img2img.unet, pipes.device, pipes.dtype)
        self._depth: Any = None
        self._built: tuple[Any, Any, Any, Any] | None = None  # pipes, img2img, txt2img, multi

    def _pipelines(self, pipes: Any) -> tuple[Any, Any, Any]:
        """The ControlNet pipelines sharing ``pipes``' modules (remade when the checkpoint
        schedule switches model; only the latest are kept)."""
        if self._built is None or self._built[0] is not pipes:
            import diffusers

            for unit in self.units:
                check_fits(unit.net, pipes.img2img.unet, unit)
            multi = multi_class()([u.net for u in self.units])
            from .models import _quiet_loading

            prefix = "StableDiffusionXL" if pipes.kind == "sdxl" else "StableDiffusion"
            with _quiet_loading():
                img2img, txt2img = (getattr(diffusers, prefix + name).from_pipe(
                    pipes.img2img, controlnet=multi, dtype=pipes.dtype)
                    for name in ("ControlNetImg2ImgPipeline", "ControlNetPipeline"))
            for pipe in (img2img, txt2img):
                pipe.set_progress_bar_config(disable=True)
            self._built = (pipes, img2img, txt2img, multi)
        return self._built[1:]

    def at(self, frame: int, init: Any, pipes: Any, scheduler: Any) -> Control:
        """Frame ``frame``'s control; ``init`` is its init picture (uint8 H×W×3 array or
        tensor; None for txt2img): the loopback units' control image."""
        f = min(max(frame, 0), self.frames - 1)
        used, acting = [], []
        for unit in self.units:
            image, source = self._picture(unit, frame, init, pipes.device)
            weight, start, end = float(unit.weight[f]), float(unit.start[f]), float(unit.end[f])
            used.append({"unit": unit.number, "model": unit.model.name, "module": unit.module,
                         "weight": weight, "guidance_start": start, "guidance_end": end,
                         "control_mode": unit.mode, "image": source})
            if image is not None and weight > 0 and end > start:
                acting.append((unit, image, weight, start, end))
        if not acting:
            return Control(used)
        img2img, txt2img, multi = self._pipelines(pipes)
        multi.nets = type(multi.nets)([u.net for u, *_ in acting])
        multi.setups = [(u.mode != BALANCED, u.mode == CONTROL_MORE,
                         self._mask(u, frame, pipes.device)) for u, *_ in acting]
        for pipe in (img2img, txt2img):
            pipe.scheduler = scheduler
        arguments = dict(controlnet_conditioning_scale=[a[2] for a in acting],
                         control_guidance_start=[a[3] for a in acting],
                         control_guidance_end=[a[4] for a in acting], guess_mode=False)
        return Control(used, img2img, txt2img, [a[1] for a in acting], arguments,
                       [u.net for u, *_ in acting if u.low_vram], pipes.device)

    def _picture(self, unit: Unit, frame: int, init: Any, device: Any) -> tuple[Any, str | None]:
        """The unit's control image for ``frame`` as a 1×3×H×W float tensor in [0, 1] on
        ``device``, and where it came from.  A unit whose video or folder has no picture for
        the frame takes the init picture, as the webui's ControlNet does in img2img; with
        no init (txt2img) such a unit, and a loopback unit, sits the frame out."""
        import torch

        path = unit.frames.path(frame) if unit.frames is not None else None
        if path is not None:
            picture, source = read_rgb(path, unit.key("vid_path")), "frames"
        elif init is None:
            return None, None
        else:
            picture, source = init, "loopback" if unit.frames is None else "init"
        size_ok = tuple(picture.shape[1::-1]) == self.size
        if not (unit.module == "none" and size_ok and isinstance(picture, torch.Tensor)):
            if isinstance(picture, torch.Tensor):
                picture = picture.cpu().numpy()
            picture = torch.from_numpy(control_image(
                picture, unit.module, unit.resolution, unit.a, unit.b, self.size, unit.resize,
                self._depth_model(unit, device)))
        tensor = picture.to(device).permute(2, 0, 1)[None].float() / 255.0
        return tensor, source

    def _mask(self, unit: Unit, frame: int, device: Any) -> Any:
        """Where the unit acts (1×1×H×W in [0, 1], white = acts), or None: everywhere."""
        import torch

        path = unit.masks.path(frame) if unit.masks is not None else None
        if path is None:
            return None
        grey = control_image(read_rgb(path, unit.key("mask_vid_path")), "none", 0, 0.0, 0.0,
                             self.size, unit.resize).mean(axis=2, dtype=np.float32) / 255.0
        return torch.from_numpy(grey)[None, None].to(device)

    def _depth_model(self, unit: Unit, device: Any) -> Any:
        """The depth estimator of depth… preprocessors (depth_model_path), loaded once."""
        if not unit.module.startswith("depth"):
            return None
        if self._depth is None:
            from .depth import load_depth_model

            self._depth = load_depth_model(self.settings["depth_model_path"], device,
                                           self.settings["half_precision"])
        return self._depth


def make_controlnets(settings: Mapping[str, Any], pipes: Any, folder: Path | None,
                     progress: Any = None) -> ControlNets | None:
    """The run's ControlNet units, or None when no unit is enabled (nothing is imported)."""
    if not any(settings[f"cn_{n}_enabled"] for n in CN_UNITS):
        return None
    warn = progress.warning if progress is not None else None
    return ControlNets(settings, pipes, folder or Path(tempfile.gettempdir()), warn)
