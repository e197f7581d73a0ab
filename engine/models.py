"""Load Stable Diffusion 1.x / 2.x / XL pipelines strictly offline: a diffusers folder or one checkpoint file.

Single files (original LDM layout) are always loaded against a local diffusers-format config folder:
without one, diffusers would fetch configs from the hub. The matching folder is detected from the
checkpoint's keys unless the caller names one. Every failure becomes a `ModelError` naming the path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ModelError
from engine.memory import loading_error
from engine.pipeline_device import remember_device

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CONFIGS = Path(__file__).parent / "model_configs"
SHIPPED_CONFIGS = ("sd15", "sd2", "sd2_base", "sdxl")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")

_UNET = "model.diffusion_model."
_FIRST_CROSS_ATTENTION = _UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
_SDXL_ADD_EMBEDDING = _UNET + "label_emb.0.0.weight"  # (1280, 2816) in SDXL base; the refiner has 2560
_SD2_BASE_STEP = 875000  # global_step of the SD 2.0 512-base release (epsilon prediction)


@dataclass
class Pipelines:
    """The img2img and txt2img pipelines of one model; txt2img shares img2img's modules (no copy)."""

    img2img: Any
    txt2img: Any
    kind: str  # "sd1" | "sd2" | "sdxl"
    device: "torch.device"
    dtype: "torch.dtype"
    path: str


def resolve_device(name: str = "auto") -> "torch.device":
    """`auto` picks CUDA, then Apple MPS, then CPU; a named device must exist here."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps",
                         key="device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {name!r} requested but CUDA is not available in this Python "
                             f"(torch {torch.__version__})", key="device")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s) found",
                             key="device")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ModelError(f"device {name!r} requested but Apple MPS is not available",
                             key="device")
    elif device.type != "cpu":
        raise ModelError(f"unsupported device {name!r}: use auto, cpu, cuda, cuda:N or mps",
                         key="device")
    return device


def shipped_config(name: str) -> Path:
    """The folder of a config shipped with the engine (`sd15`, `sd2`, `sd2_base`, `sdxl`)."""
    return CONFIGS / name


def load_pipelines(path: str, *, config: str | None = None, device: str = "auto",
                   half: bool | None = None) -> Pipelines:
    """Load img2img + txt2img pipelines from a diffusers folder or a `.safetensors`/`.ckpt` file.

    `config` (single files only) is a diffusers-format folder, or the name of a shipped one; by
    default it is detected from the checkpoint. `half` defaults to fp16 on CUDA and fp32 elsewhere.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    target = Path(path).expanduser()
    if not target.exists():
        raise ModelError(f"model not found: {target}")
    dev = resolve_device(device)
    if half is None:
        half = dev.type == "cuda"
    if half and dev.type == "cpu":
        log.warning("half precision is not supported on the CPU; loading %s in float32", target)
        half = False
    if target.is_dir():
        folder, single_file = target, None
        _require_pipeline_folder(folder)
    else:
        single_file = target
        shapes, step = _checkpoint_shapes(target)
        if config:
            folder = _config_folder(config, target)
            if not any(k.startswith(_UNET) for k in shapes):
                raise ModelError(f"unsupported model {target}: no Stable Diffusion UNet weights ({_UNET}*) "
                                 f"in it; detected type {_diffusers_type(shapes)!r}")
        else:
            folder = shipped_config(_detect(target, shapes, step))
    kind = _folder_kind(folder)
    try:
        with _quiet_loading():
            return _load(folder, single_file, kind, dev, half, str(target))
    except ModelError:
        raise
    except Exception as exc:  # any loader failure is reported, not dumped as a traceback
        short_of_memory = loading_error(exc, str(target), dev, half)
        if short_of_memory is not None:
            raise short_of_memory from None
        hint = " (the checkpoint lacks weights its config expects)" if "meta tensor" in str(exc) else ""
        using = f" with config {folder}" if single_file else ""
        raise ModelError(f"could not load model {target}{using}: {_reason(exc)}{hint}") from exc


def model_kind(path: str | Path) -> str:
    """sd1 / sd2 / sdxl of a model file or diffusers folder from its configs or tensor
    names only (no weights loaded), so a set-up check can say whether it will load."""
    path = Path(path).expanduser()
    if path.is_dir():
        _require_pipeline_folder(path)
        return _folder_kind(path)
    if not path.is_file():
        raise ModelError(f"model not found: {path}")
    return {"sd15": "sd1", "sdxl": "sdxl"}.get(detect_checkpoint(path), "sd2")


def detect_checkpoint(path: str | Path) -> str:
    """The shipped config name for an LDM checkpoint, from its keys (and file name for SD 2 base vs 768-v)."""
    path = Path(path)
    return _detect(path, *_checkpoint_shapes(path))


def _detect(path: Path, shapes: dict[str, tuple[int, ...]], global_step: int | None) -> str:
    """Decide from the UNet alone; missing text encoder or VAE weights are reported by the loader."""
    in_conv = shapes.get(_UNET + "input_blocks.0.0.weight")
    cross = shapes.get(_FIRST_CROSS_ATTENTION, (0,))[-1]
    if in_conv is not None and in_conv[1] == 4:
        if shapes.get(_SDXL_ADD_EMBEDDING, (0, 0))[1] == 2816 and "edm_mean" not in shapes:
            return "sdxl"
        if cross == 768:
            return "sd15"
        if cross == 1024:
            base = global_step == _SD2_BASE_STEP or re.search(r"512|base", path.name, re.I)
            return "sd2_base" if base else "sd2"
    raise ModelError(f"unsupported model {path}: detected type {_diffusers_type(shapes)!r}; "
                     "supported are Stable Diffusion 1.x, 2.x and SDXL base checkpoints "
                     "(name a diffusers config folder to load it anyway)")


def _checkpoint_shapes(path: Path) -> tuple[dict[str, tuple[int, ...]], int | None]:
    """Tensor names and shapes of a checkpoint (safetensors: header only), plus its global_step if any."""
    suffix = path.suffix.lower()
    if suffix not in SINGLE_FILE_SUFFIXES:
        raise ModelError(f"not a model file or diffusers folder: {path} "
                         f"(expected one of {', '.join(SINGLE_FILE_SUFFIXES)} or a folder with model_index.json)")
    if path.stat().st_size == 0:
        raise ModelError(f"model file is empty: {path}")
    if suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}, None
        except Exception as exc:
            raise ModelError(f"corrupt or unreadable safetensors file {path}: {_reason(exc)}") from exc
    import torch

    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:
        raise ModelError(f"unreadable checkpoint {path}: {_pickle_reason(exc)}") from exc
    step = data.get("global_step") if isinstance(data, dict) else None
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelError(f"checkpoint {path} does not hold a state dict (found {type(data).__name__})")
    shapes = {k: tuple(v.shape) for k, v in data.items() if isinstance(v, torch.Tensor)}
    return shapes, step if isinstance(step, int) else None


def _diffusers_type(shapes: dict[str, tuple[int, ...]]) -> str:
    """diffusers' name for an unsupported checkpoint type (shapes stand in as meta tensors)."""
    if not shapes:
        return "empty (no tensors)"
    import torch
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    meta = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    try:
        name = infer_diffusers_model_type(meta)
    except Exception:
        return "unknown"
    # diffusers falls back to "v1" for anything it does not recognise
    return "unknown" if name == "v1" else name


def _config_folder(config: str, checkpoint: Path) -> Path:
    """A caller-given config: a shipped name or a diffusers-format folder."""
    folder = shipped_config(config) if config in SHIPPED_CONFIGS else Path(config).expanduser()
    if not folder.is_dir():
        raise ModelError(f"model config folder not found: {folder} (for {checkpoint}; "
                         f"give a diffusers-format folder or one of {', '.join(SHIPPED_CONFIGS)})",
                         key="model_config")
    _require_pipeline_folder(folder)
    return folder


def _require_pipeline_folder(folder: Path) -> None:
    if not (folder / "model_index.json").is_file():
        raise ModelError(f"{folder} is not a diffusers pipeline folder: model_index.json is missing")


def _read_json(file: Path) -> dict[str, Any]:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable config {file}: {_reason(exc)}") from exc


def _folder_kind(folder: Path) -> str:
    """sd1 / sd2 / sdxl from a diffusers folder's configs; anything else is refused."""
    index = _read_json(folder / "model_index.json")
    has = {name for name, value in index.items() if isinstance(value, list) and value and value[0]}
    if not {"unet", "vae", "tokenizer", "text_encoder"} <= has or index.get("unet", [None, None])[1] != \
            "UNet2DConditionModel":
        raise ModelError(f"unsupported model {folder}: {index.get('_class_name', 'an unknown pipeline')} "
                         "(needs a UNet2DConditionModel, VAE, tokenizer and text encoder: Stable Diffusion "
                         "1.x/2.x/XL base)")
    unet = _read_json(folder / "unet" / "config.json")
    if unet.get("in_channels", 4) != 4:
        raise ModelError(f"unsupported model {folder}: its UNet takes {unet['in_channels']} input channels "
                         "(inpainting / pix2pix models are not supported)")
    if "text_encoder_2" in has:
        return "sdxl"
    return "sd2" if unet.get("cross_attention_dim") == 1024 else "sd1"


def _fp16_variant(folder: Path) -> str | None:
    """"fp16" when the folder only has fp16-variant UNet weights (a common partial download)."""
    names = [p.name for p in (folder / "unet").glob("diffusion_pytorch_model*")]
    plain = any(".fp16." not in n for n in names)
    return "fp16" if names and not plain else None


def _load(folder: Path, single_file: Path | None, kind: str, dev: "torch.device", half: bool,
          path: str) -> Pipelines:
    import torch
    from diffusers import (StableDiffusionImg2ImgPipeline, StableDiffusionPipeline,
                           StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline)

    dtype = torch.float16 if half else torch.float32
    if kind == "sdxl":
        img2img_cls, txt2img_cls = StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
        extra: dict[str, Any] = {}
    else:
        img2img_cls, txt2img_cls = StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
        extra = {"safety_checker": None, "requires_safety_checker": False}
    common = {"dtype": dtype, "local_files_only": True, "feature_extractor": None,
              "image_encoder": None, **extra}
    if single_file is None:
        img2img = img2img_cls.from_pretrained(str(folder), variant=_fp16_variant(folder), **common)
    else:
        img2img = img2img_cls.from_single_file(str(single_file), config=str(folder), **common)
        _require_all_weights(img2img, single_file)
    if dev.type != "cpu":
        img2img.to(dev)
    if dev.type == "cuda":
        img2img.unet.to(memory_format=torch.channels_last)
        img2img.vae.to(memory_format=torch.channels_last)
    # from_pipe casts the components it shares to float32 unless told the dtype: without it,
    # CUDA's float16 latents would meet float32 weights.
    txt2img = txt2img_cls.from_pipe(img2img, dtype=dtype)
    for pipe in (img2img, txt2img):
        pipe.set_progress_bar_config(disable=True)
        remember_device(pipe)
    return Pipelines(img2img=img2img, txt2img=txt2img, kind=kind, device=dev, dtype=dtype, path=path)


def _require_all_weights(pipe: Any, path: Path) -> None:
    """diffusers leaves weights missing from a single file as empty meta tensors; refuse such a model."""
    for name, module in pipe.components.items():
        if hasattr(module, "state_dict"):
            missing = [k for k, v in module.state_dict().items() if v.is_meta]
            if missing:
                raise ModelError(f"incomplete checkpoint {path}: {name} weights missing "
                                 f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence diffusers/transformers loading bars and advice while loading; errors still raise."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled())
             for lib in (diffusers_logging, transformers_logging)]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def _pickle_reason(exc: Exception) -> str:
    """Why torch.load refused a .ckpt, without torch's advice to disable its safety check."""
    forbidden = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if forbidden:
        return (f"it contains pickled Python objects ({forbidden[1]}), not just tensors; such code is never "
                "run here (convert the checkpoint to .safetensors with a tool you trust)")
    if "WeightsUnpickler" in str(exc) or "Weights only load failed" in str(exc):
        return "not a PyTorch checkpoint, or corrupt (its pickle holds something other than tensors)"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    """A one-line, bounded description of an exception for user-facing messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
