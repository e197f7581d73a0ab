"""Depth for the 3D warp: estimated by a local transformers model, or supplied with the job.

Model depth is relative, so it is normalised to z ∈ [1, 2] the way the current
webui does (min–max, histogram-equalised, nearer = smaller z).  Scene depth
(e.g. Blender's Z pass) is metric and is passed through unchanged.

torch and transformers are imported inside functions: Blender's Python and the
motion preview import this module without them.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import InputError, ModelError
from .output import FRAME_DIGITS, write_atomic, write_png

EQUALIZE_BINS = 1024
# What Blender writes where a ray hits nothing; stands in for +inf so the warp stays finite.
FAR_AWAY = 1.0e10
SCENE_EXTENSIONS = (".npy", ".exr", ".png")
# model_type in config.json → (transformers class, default processor settings when
# the folder has no preprocessor_config.json; None = the config's image size).
_KINDS = {
    "dpt": ("DPTForDepthEstimation",
            dict(keep_aspect_ratio=False, ensure_multiple_of=1, image_mean=[0.5] * 3,
                 image_std=[0.5] * 3)),
    "depth_anything": ("DepthAnythingForDepthEstimation",
                       dict(keep_aspect_ratio=True, ensure_multiple_of=14,
                            image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])),
}


def normalize_depth(raw: np.ndarray, *, inverse: bool) -> np.ndarray:
    """Relative depth → float32 z ∈ [1, 2], larger = farther.

    Min–max to [0, 1], then histogram equalisation (each value mapped to the
    cumulative share of values in its 1024-bin histogram, interpolated between
    bin edges) so z spreads evenly whatever the model's output scale.  Inverse
    depth (DPT/MiDaS, relative Depth Anything: larger = nearer) becomes
    z = 2 − d, forward depth z = 1 + d.  Maps with NaN/Inf or a single value
    carry no shape: they become flat z = 1.

    The bins are powers-of-two fractions, so a value's bin is its scaled position's
    integer part and the interpolation a table lookup: the numbers of ``np.histogram``
    and ``np.interp`` to the bit, in a few passes instead of a binary search per pixel.
    """
    values = np.asarray(raw)
    if values.size == 0 or not np.isfinite(values).all():
        return np.ones(values.shape, dtype=np.float32)
    lo, hi = float(values.min()), float(values.max())
    if not hi > lo:
        return np.ones(values.shape, dtype=np.float32)
    position = values.astype(np.float64)  # d = (v − lo) / (hi − lo), then d · bins
    position -= lo
    position /= hi - lo
    position *= EQUALIZE_BINS
    k = position.astype(np.intp)
    np.minimum(k, EQUALIZE_BINS - 1, out=k)  # d = 1 belongs to the last bin
    cdf = np.cumsum(np.bincount(k.ravel(), minlength=EQUALIZE_BINS)) / values.size
    # Past the last edge the curve stays at its end: that bin's slope is 0.
    position -= k
    position *= np.diff(cdf, append=cdf[-1]).take(k)
    position += cdf.take(k)
    if inverse:
        np.subtract(2.0, position, out=position)
    else:
        position += 1.0
    return position.astype(np.float32)


def normalize_depth_tensor(raw: Any, *, inverse: bool) -> Any:
    """``normalize_depth`` on a tensor's device, without a host sync: the flat cases are
    chosen per pixel rather than by branching on a value read back."""
    import torch

    exact = torch.float32 if raw.device.type == "mps" else torch.float64
    values = raw.to(exact)
    lo, hi = values.min(), values.max()
    usable = torch.isfinite(values).all() & (hi > lo)
    d = torch.where(usable, (values - lo) / torch.where(usable, hi - lo, 1.0), 0.0)
    d = d.nan_to_num(0.0).clamp_(0.0, 1.0)
    cdf = torch.histc(d, bins=EQUALIZE_BINS, min=0.0, max=1.0).cumsum(0) / d.numel()
    position = d * EQUALIZE_BINS
    k = position.floor().clamp_(0, EQUALIZE_BINS - 1)
    below = cdf[k.long()]
    above = cdf[(k + 1).clamp_(max=EQUALIZE_BINS - 1).long()]
    d = below + (position - k).clamp_(max=1.0) * (above - below)
    z = 2.0 - d if inverse else 1.0 + d
    return torch.where(usable, z, 1.0).float()


class DepthEstimator:
    """A depth model and its image processor, predicting normalised z for RGB frames."""

    def __init__(self, model: Any, processor: Any, *, path: str, kind: str, inverse: bool,
                 device: Any, dtype: Any) -> None:
        self.model = model
        self.processor = processor
        self.path = path
        self.kind = kind
        self.inverse = inverse
        self.device = device
        self.dtype = dtype

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """The model's own output (relative inverse depth for most), float32 at the image's size."""
        import torch
        import torch.nn.functional as F

        if (not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3
                or image.shape[2] != 3):
            raise ValueError("image must be a uint8 RGB array of shape H×W×3")
        height, width = image.shape[:2]
        pixels = self._pixels_host(image)
        if pixels is None:
            pixels = self.processor(images=image, return_tensors="pt",
                                    input_data_format="channels_last")["pixel_values"]
        pixels = pixels.to(self.device, self.dtype)
        with torch.inference_mode():
            predicted = self.model(pixel_values=pixels).predicted_depth
            resized = F.interpolate(predicted[:, None].float(), size=(height, width),
                                    mode="bicubic", align_corners=False)
        return resized[0, 0].cpu().numpy()

    def predict(self, image: np.ndarray) -> np.ndarray:
        """float32 H×W z ∈ [1, 2] for a uint8 H×W×3 RGB image."""
        return normalize_depth(self.predict_raw(image), inverse=self.inverse)

    def predict_tensor(self, image: Any) -> Any:
        """``predict`` of a uint8 H×W×3 tensor (the device-resident loop's picture): the
        processor's steps and the normalisation run on the model's device, in its dtype
        (fp16 on CUDA with half_precision), and z stays there.  A processor other than
        DPT's takes the picture through the host instead."""
        import torch
        import torch.nn.functional as F

        height, width = image.shape[:2]
        pixels = self._pixels_tensor(image)
        if pixels is None:
            z = self.predict(image.cpu().numpy())
            return torch.from_numpy(z).to(image.device)
        with torch.inference_mode():
            predicted = self.model(pixel_values=pixels.to(self.device, self.dtype)).predicted_depth
            resized = F.interpolate(predicted[:, None].float(), size=(height, width),
                                    mode="bicubic", align_corners=False)
        return normalize_depth_tensor(resized[0, 0], inverse=self.inverse).to(image.device)

    def _plain_dpt(self) -> bool:
        """Whether the processor is DPT's (PIL backend) doing only resize, rescale and
        normalise, the steps ``_pixels_host`` and ``_pixels_tensor`` repeat."""
        p = self.processor
        return (type(p).__name__ == "DPTImageProcessorPil" and not p.do_pad
                and not p.do_reduce_labels)

    def _resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) the processor resizes an image of this size to."""
        from transformers.models.dpt.image_processing_pil_dpt import \
            get_resize_output_image_size

        p = self.processor
        size = get_resize_output_image_size(  # reads the (channels-first) shape only
            np.broadcast_to(np.uint8(0), (3, height, width)),
            output_size=(p.size.height, p.size.width),
            keep_aspect_ratio=p.keep_aspect_ratio, multiple=p.ensure_multiple_of)
        return size.height, size.width

    def _pixels_host(self, image: np.ndarray) -> Any:
        """DPT's image processor's numbers to the bit, sooner: the same PIL resize, then
        rescale and normalise as one lookup per channel, since a byte has 256 values and
        those steps map each alone (float64 rescale to float32, then float32 arithmetic,
        as transformers does it).  None where the processor does more, or keeps bytes."""
        import torch
        from PIL import Image

        p = self.processor
        if (not self._plain_dpt() or not (p.do_rescale or p.do_normalize)
                or not isinstance(p.resample, int)):
            return None
        if p.do_resize:
            height, width = self._resized_size(*image.shape[:2])
            image = np.asarray(Image.fromarray(image).resize(
                (width, height), resample=p.resample))
        values = np.arange(256, dtype=np.uint8)
        scaled = ((values.astype(np.float64) * p.rescale_factor).astype(np.float32)
                  if p.do_rescale else values.astype(np.float32))
        pixels = np.empty((1, 3) + image.shape[:2], dtype=np.float32)
        for c in range(3):
            table = scaled
            if p.do_normalize:
                mean, std = (np.broadcast_to(np.asarray(v, dtype=np.float32), (3,))[c]
                             for v in (p.image_mean, p.image_std))
                table = (scaled - mean) / std
            np.take(table, image[..., c], out=pixels[0, c])
        return torch.from_numpy(pixels)

    def _pixels_tensor(self, image: Any) -> Any:
        """DPT's image processor on a tensor: resize (bicubic, antialiased like PIL's, in
        PIL's two byte-rounded passes), rescale, normalise; None for another processor or
        one that pads."""
        import torch
        import torch.nn.functional as F

        p = self.processor
        if not self._plain_dpt():
            return None
        x = image.permute(2, 0, 1)[None].float()
        if p.do_resize:
            height, width = self._resized_size(*x.shape[2:])
            for step in ((x.shape[2], width), (height, width)):
                # PIL's order: width, then height, each pass rounded to bytes
                x = F.interpolate(x, size=step, mode="bicubic", antialias=True,
                                  align_corners=False).round_().clamp_(0, 255)
        if p.do_rescale:
            x = x * p.rescale_factor
        if p.do_normalize:  # per channel with Python numbers: nothing copied to the device
            x = torch.stack([(x[:, c] - float(m)) / float(sd)
                             for c, (m, sd) in enumerate(zip(p.image_mean, p.image_std))], 1)
        return x


def _read_config(folder: Path) -> dict[str, Any]:
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise ModelError(f"depth model {folder}: folder not found")
    if not config_file.is_file():
        raise ModelError(f"depth model {folder}: no config.json (expected a transformers "
                         "model folder, e.g. saved with save_pretrained)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"depth model {folder}: config.json is unreadable ({exc})") from exc
    if not isinstance(config, dict):
        raise ModelError(f"depth model {folder}: config.json is not a JSON object")
    return config


def _model_kind(folder: Path, config: Mapping[str, Any]) -> str:
    """'dpt' or 'depth_anything', refusing other architectures (e.g. a segmentation DPT)."""
    kind = config.get("model_type")
    architectures = config.get("architectures") or []
    if kind not in _KINDS:
        kind = next((k for k, (cls, _) in _KINDS.items() if cls in architectures), None)
    if kind is None:
        raise ModelError(f"depth model {folder}: unsupported architecture "
                         f"(model_type {config.get('model_type')!r}, architectures "
                         f"{architectures}); expected DPT or Depth Anything")
    wanted = _KINDS[kind][0]
    if architectures and wanted not in architectures:
        raise ModelError(f"depth model {folder}: {', '.join(map(str, architectures))} is not "
                         f"a depth estimator (expected {wanted})")
    return kind


def depth_model_kind(path: str | Path) -> str:
    """'dpt' or 'depth_anything' from a depth model folder's config.json (no weights
    loaded), so a set-up check can say whether it will load."""
    folder = Path(path).expanduser()
    return _model_kind(folder, _read_config(folder))


def _processor(folder: Path, kind: str, model_config: Any) -> Any:
    """The folder's image processor, or the architecture's usual one at the model's size."""
    from transformers import AutoImageProcessor, DPTImageProcessorPil

    if (folder / "preprocessor_config.json").is_file():
        try:
            # The PIL backend needs no torchvision and gives the same result everywhere.
            return AutoImageProcessor.from_pretrained(str(folder), local_files_only=True,
                                                      backend="pil")
        except Exception as exc:
            raise ModelError(f"depth model {folder}: preprocessor_config.json could not be "
                             f"loaded ({exc})") from exc
    backbone = getattr(model_config, "backbone_config", None) or model_config
    side = int(getattr(backbone, "image_size", 384))
    return DPTImageProcessorPil(size={"height": side, "width": side}, do_pad=False,
                                resample=3, **_KINDS[kind][1])


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No loading bars or advice from transformers on the user's console; errors still raise."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def load_depth_model(path: str, device: Any = "cpu", half: bool = False) -> DepthEstimator:
    """Load a DPT (MiDaS 3) or Depth Anything model from a local transformers folder.

    Nothing is fetched from a hub.  ``half`` runs the model in fp16, on CUDA only
    (fp16 on CPU is slow and poorly supported).  Any problem with the folder is a
    ModelError naming it.
    """
    import torch
    import transformers

    folder = Path(path).expanduser()
    config = _read_config(folder)
    kind = _model_kind(folder, config)
    model_class = getattr(transformers, _KINDS[kind][0])
    device = torch.device(device)
    dtype = torch.float16 if half and device.type == "cuda" else torch.float32
    with _quiet_transformers():
        try:
            model, info = model_class.from_pretrained(str(folder), local_files_only=True,
                                                      dtype=dtype, output_loading_info=True)
        except Exception as exc:
            raise ModelError(f"depth model {folder}: weights could not be loaded "
                             f"({exc})") from exc
        missing = info.get("missing_keys") or []
        if missing:
            raise ModelError(f"depth model {folder}: {len(missing)} weights missing from the "
                             f"checkpoint (e.g. {sorted(missing)[0]}); is it a depth model?")
        processor = _processor(folder, kind, model.config)
    model.to(device).eval()
    # Depth Anything's metric variants predict forward depth; everything else inverse depth.
    inverse = getattr(model.config, "depth_estimation_type", "relative") != "metric"
    return DepthEstimator(model, processor, path=str(folder), kind=kind, inverse=inverse,
                          device=device, dtype=dtype)


# --- scene depth ---------------------------------------------------------------

def scene_depth_path(folder: str | Path, frame: int) -> Path | None:
    """The first of ``{frame:05d}.npy``, ``.exr``, ``.png`` present in ``folder``, else None."""
    stem = f"{frame:0{FRAME_DIGITS}d}"
    for ext in SCENE_EXTENSIONS:
        candidate = Path(folder) / (stem + ext)
        if candidate.is_file():
            return candidate
    return None


def _scene_error(message: str, path: Path) -> InputError:
    return InputError(f"depth_maps_path: {message}: {path}", key="depth_maps_path",
                      value=str(path))


def _decode(path: Path) -> np.ndarray:
    """An EXR or PNG via OpenCV, read from bytes so non-ASCII paths work on Windows."""
    # OpenCV's EXR codec is off unless this is set before its first EXR use.
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    try:
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise _scene_error(f"OpenCV cannot read this file ({exc.err}); write .npy instead",
                           path) from exc
    if image is None:
        hint = " (OpenCV reads EXR files with R/G/B or Y channels only)" \
            if path.suffix == ".exr" else ""
        raise _scene_error(f"not a readable image{hint}", path)
    if image.ndim == 3:  # OpenCV orders colour channels B, G, R: take R
        image = image[..., 2] if image.shape[2] >= 3 else image[..., 0]
    if path.suffix == ".png" and image.dtype != np.uint16:
        raise _scene_error(f"PNG depth must be 16-bit grey, got {image.dtype}", path)
    return image


def read_scene_depth(folder: str, frame: int, size: tuple[int, int] | None = None, *,
                     scale: float = 1.0) -> np.ndarray:
    """Frame ``frame``'s supplied depth as float32 H×W (stored value × ``scale``).

    Convention: ``{folder}/{frame:05d}`` with the engine's 0-based frame
    number, one of (first found wins) ``.npy`` (float32 or float16 H×W, what
    ``write_scene_depth`` writes; needs only NumPy, so Blender can write it),
    ``.exr`` (float, single Y channel or R of RGB(A), as Blender's File Output
    node writes a Z pass) or ``.png`` (16-bit grey integers).  Values are depth
    along the camera's view axis; ``scale`` converts stored units to metres
    (e.g. 0.001 for millimetre PNGs).  +inf (sky) becomes 1e10.  ``size`` =
    (width, height) resizes with nearest neighbour so depths never blend across
    edges.  Missing or invalid files are InputErrors naming depth_maps_path.
    """
    path = scene_depth_path(folder, frame)
    if path is None:
        stem = Path(folder) / f"{frame:0{FRAME_DIGITS}d}"
        raise InputError(f"depth_maps_path: no depth map for frame {frame}: "
                         f"{stem}{{{','.join(SCENE_EXTENSIONS)}}} not found",
                         key="depth_maps_path", value=str(folder))
    if path.suffix == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise _scene_error(f"unreadable .npy ({exc})", path) from exc
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.number):
            raise _scene_error(f"expected a numeric H×W array, got {depth.dtype} "
                               f"{depth.shape}", path)
    else:
        depth = _decode(path)
    depth = depth.astype(np.float32) * np.float32(scale)
    if np.isnan(depth).any() or (depth < 0).any():
        raise _scene_error("depth contains NaN or negative values", path)
    depth[np.isinf(depth)] = FAR_AWAY
    if size is not None and (depth.shape[1], depth.shape[0]) != tuple(size):
        import cv2

        depth = cv2.resize(depth, tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST)
    return depth


def write_scene_depth(folder: str | Path, frame: int, depth: np.ndarray, *,
                      dtype: type = np.float32) -> Path:
    """Write ``{folder}/{frame:05d}.npy`` (``dtype`` H×W), replacing any earlier one atomically.

    NumPy only, so the Blender add-on can bake a Z pass without OpenCV.
    ``np.float16`` halves the file: its relative error (≤ 2⁻¹¹) moves a warped
    pixel by that fraction of its motion, and depths past 65504 become +inf
    (sky), which ``read_scene_depth`` reads as far away anyway.
    """
    with np.errstate(over="ignore"):
        depth = np.asarray(depth, dtype=np.float32).astype(dtype)
    if depth.ndim != 2:
        raise ValueError(f"depth must be H×W, got shape {depth.shape}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, depth, allow_pickle=False)
    return write_atomic(folder / f"{frame:0{FRAME_DIGITS}d}.npy", buffer.getvalue(), replace=True)


# --- saving --------------------------------------------------------------------

def depth_map_path(folder: str | Path, timestring: str, frame: int) -> Path:
    return Path(folder) / f"{timestring}_depth_{frame:0{FRAME_DIGITS}d}.png"


def save_depth_map(path: Path, z: np.ndarray, lo: float = 1.0, hi: float = 2.0) -> None:
    """8-bit grey PNG of z over one fixed range [lo, hi] (comparable across the run).

    Written atomically; refuses to replace an existing file (FileExistsError).
    """
    scaled = (np.nan_to_num(np.asarray(z, dtype=np.float64), nan=lo) - lo) / (hi - lo)
    write_png(path, np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8))


# --- what the render loop asks ----------------------------------------------------

class DepthSource(Protocol):
    def for_frame(self, frame: int, image: np.ndarray) -> np.ndarray | None:
        """z for warping ``image`` (the picture at frame−1) into ``frame``; None = flat."""


class FlatDepth:
    """No depth: the warp uses z = 1 everywhere."""

    def for_frame(self, frame: int, image: np.ndarray) -> None:
        return None


class ModelDepth:
    """Depth estimated from the picture being warped (on its device when it is a tensor)."""

    def __init__(self, estimator: DepthEstimator) -> None:
        self.estimator = estimator

    def for_frame(self, frame: int, image: Any) -> Any:
        if isinstance(image, np.ndarray):
            return self.estimator.predict(image)
        return self.estimator.predict_tensor(image)


class SceneDepth:
    """Metric depth maps supplied with the job.

    The backward warp needs depth at each *output* pixel, so warping into
    ``frame`` reads frame ``frame``'s own map.
    """

    def __init__(self, folder: str, size: tuple[int, int] | None = None,
                 scale: float = 1.0) -> None:
        self.folder = folder
        self.size = size
        self.scale = scale
        self._recent: dict[int, np.ndarray] = {}

    def depth(self, frame: int) -> np.ndarray:
        """Frame ``frame``'s map; the last few are kept (each is read by several steps)."""
        if frame not in self._recent:
            if len(self._recent) >= 4:
                del self._recent[min(self._recent)]
            self._recent[frame] = read_scene_depth(self.folder, frame, self.size,
                                                   scale=self.scale)
        return self._recent[frame]

    def for_frame(self, frame: int, image: np.ndarray) -> np.ndarray:
        return self.depth(frame)


def make_depth_source(settings: Mapping[str, Any], device: Any = "cpu", half: bool = False,
                      load: Any = None) -> tuple[DepthSource, list[str]]:
    """The depth source the settings ask for, plus notices for the user.

    Flat unless 3D with depth warping on; ``scene`` reads depth_maps_path;
    ``model`` loads depth_model_path (none set: flat, with a notice) with
    ``load`` (default ``load_depth_model``; a warm engine passes a cached one).
    """
    notices: list[str] = []
    source = settings["depth_source"]
    if (settings["animation_mode"] != "3D" or not settings["use_depth_warping"]
            or source == "none"):
        return FlatDepth(), notices
    if source == "scene":
        folder = settings["depth_maps_path"]
        if not folder:
            raise InputError("depth_maps_path: depth_source is 'scene' but no folder of depth "
                             "maps is set", key="depth_maps_path", value=folder)
        if not Path(folder).is_dir():
            raise InputError(f"depth_maps_path: folder not found: {folder}",
                             key="depth_maps_path", value=folder)
        return SceneDepth(folder, (settings["W"], settings["H"])), notices
    path = settings["depth_model_path"]
    if not path:
        notices.append("depth_model_path is not set: 3D warps use flat depth (z = 1); set it "
                       "to a local DPT or Depth Anything folder for depth-aware motion")
        return FlatDepth(), notices
    if settings["midas_weight"] != 1.0:
        notices.append(f"midas_weight {settings['midas_weight']} is ignored: only one depth "
                       "estimator is configured")
    return ModelDepth((load or load_depth_model)(path, device, half)), notices
