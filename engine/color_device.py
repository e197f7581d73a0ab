"""Colour coherence on torch tensors, for frames that stay on the GPU.

The same steps as ``engine.color`` (OpenCV's 8-bit colour conversion,
per-channel histogram matching with skimage's quantile interpolation,
conversion back) on uint8 H×W×3 RGB tensors, without a copy to the host or a
device sync.  A float LAB formula misses OpenCV's fixed-point bytes by one on
a tenth of the colours, and histogram matching turns that into tens of grey
levels where the reference's histogram is steep; so the conversions are
OpenCV's own, tabulated once for every RGB triple and looked up on the
device.  The histograms are 256-bin counts and the quantile curve is read
with ``searchsorted``: the result is the NumPy path's, byte for byte, up to
float rounding in the interpolation (float32 on MPS).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .color import _space

_GREY = (9798, 19235, 3735)  # OpenCV's RGB → grey weights, in 1/2¹⁵
_COLOURS = 1 << 24  # every 8-bit RGB triple


@lru_cache(maxsize=8)
def _conversion(code: int, device: str) -> Any:
    """OpenCV's 8-bit conversion ``code`` of all 2²⁴ byte triples, as a 2²⁴×3 uint8 table on
    ``device`` (48 MiB, built once per process): a lookup gives OpenCV's bytes exactly."""
    import cv2
    import numpy as np
    import torch

    index = np.arange(_COLOURS, dtype=np.uint32)
    triples = np.stack([(index >> 16) & 255, (index >> 8) & 255, index & 255], -1)
    # Rows as wide as pictures: OpenCV's vector code converts them, as it does a frame
    # (its scalar code, used for a row's last few pixels, can round differently).
    table = cv2.cvtColor(triples.astype(np.uint8).reshape(4096, 4096, 3), code).reshape(-1, 3)
    return torch.from_numpy(table).to(device)


def _convert(image: Any, code: int) -> Any:
    """uint8 H×W×3 ``image`` through OpenCV's conversion ``code``, on its device."""
    triple = image.int()
    index = (triple[..., 0] << 16) | (triple[..., 1] << 8) | triple[..., 2]
    return _conversion(code, str(image.device))[index.long()]


def _matching_table(source: Any, reference: Any) -> Any:
    """256-entry table histogram-matching one uint8 channel to another (as ``engine.color``:
    each source value's cumulative quantile, interpolated on the reference's quantile →
    value curve, rounded), with no host sync: over all 256 bins, the first bin reaching a
    quantile is a present value and the flat run before it ends at the previous one."""
    import torch

    exact = torch.float32 if source.device.type == "mps" else torch.float64
    values = torch.arange(256, device=source.device)
    src = torch.bincount(source.reshape(-1).long(), minlength=256).cumsum(0).to(exact) \
        / source.numel()
    ref_counts = torch.bincount(reference.reshape(-1).long(), minlength=256)
    ref = ref_counts.cumsum(0).to(exact) / reference.numel()
    present = torch.where(ref_counts > 0, values, -1).cummax(0).values
    high = torch.searchsorted(ref, src).clamp_(max=255)
    low = (high - 1).clamp_(min=0)
    low_value = torch.where(high > 0, present[low], -1)
    low_quantile = torch.where(high > 0, ref[low], 0)
    span = (ref[high] - low_quantile).clamp_min(torch.finfo(exact).tiny)
    slope = (high - low_value).to(exact) / span
    table = torch.where(low_value < 0, high.to(exact),
                        slope * (src - low_quantile) + low_value.to(exact))
    return table.round_().clamp_(0, 255).to(torch.uint8)


def match_colors_tensor(image: Any, reference: Any, mode: str) -> Any:
    """``color.match_colors`` for uint8 H×W×3 RGB tensors on one device."""
    import torch

    space = _space(mode)
    if space is None:
        return image
    import cv2

    forward, back = {"lab": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
                     "hsv": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB),
                     "rgb": (None, None)}[space]
    source = image if forward is None else _convert(image, forward)
    target = reference if forward is None else _convert(reference, forward)
    matched = torch.stack([_matching_table(source[..., c], target[..., c])[source[..., c].long()]
                           for c in range(3)], -1)
    return matched if back is None else _convert(matched, back)


def grayscale_tensor(image: Any) -> Any:
    """``color.grayscale`` of a uint8 RGB tensor: OpenCV's fixed-point luma in all channels."""
    import torch

    r, g, b = image.int().unbind(-1)
    grey = (r * _GREY[0] + g * _GREY[1] + b * _GREY[2] + (1 << 14)) >> 15
    return grey.to(torch.uint8)[..., None].expand(*grey.shape, 3).contiguous()
