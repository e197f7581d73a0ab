"""The VAE's memory and precision: tiles for large frames, float32 where fp16 overflows.

Decoding a frame above about a megapixel in one piece needs several GB on the GPU; in
overlapping tiles (diffusers' ``enable_tiling``) it needs a tile's worth, at the cost of
faint seams.  ``vae_tiling`` ``auto`` tiles only above ``TILING_PIXELS``.  Slicing
(one image of a batch at a time) costs nothing for one image and is always on.

SDXL's VAE overflows in float16 (NaN, then black frames); its config says so with
``force_upcast``.  diffusers' SDXL pipelines cast it to float32 around their own decode;
the engine encodes init images itself, so it does the same around its encode.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

TILING_PIXELS = 1024 * 1024  # W×H above which vae_tiling "auto" tiles
TILING_CHOICES = ("auto", "on", "off")

# diffusers 0.42 logs this on every dtype cast of a model, and deprecates the SDXL
# pipelines' own upcast: both would repeat for every frame of an fp16 SDXL run.
_CAST_NOTICE = "There are modules in AutoencoderKL that should be kept in float32"
_UPCAST_NOTICE = ".*`upcast_vae` is deprecated"


def wants_tiling(choice: str, width: int, height: int) -> bool:
    """Whether a W×H frame is encoded and decoded in tiles under ``vae_tiling`` ``choice``."""
    return choice == "on" or (choice == "auto" and width * height > TILING_PIXELS)


def set_up_vae(pipes: Any, settings: Mapping[str, Any]) -> bool:
    """Set the run's tiling on the VAE its pipelines share (a warm engine's cached model
    keeps the previous run's otherwise); returns whether it tiles."""
    if needs_upcast(pipes):
        _quiet_cast_notices()
    vae = pipes.img2img.vae
    tiled = wants_tiling(settings["vae_tiling"], settings["W"], settings["H"])
    if tiled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    vae.enable_slicing()
    return tiled


def needs_upcast(pipes: Any) -> bool:
    """An fp16 SDXL VAE whose config asks for float32 (the fp16-fix VAEs do not)."""
    import torch

    vae = pipes.img2img.vae
    return (pipes.kind == "sdxl" and vae.dtype == torch.float16
            and bool(getattr(vae.config, "force_upcast", False)))


@contextmanager
def full_precision(pipes: Any) -> Iterator[Any]:
    """The VAE, in float32 inside the block where ``needs_upcast``, as it was after."""
    import torch

    vae = pipes.img2img.vae
    if not needs_upcast(pipes):
        yield vae
        return
    vae.to(dtype=torch.float32)
    try:
        yield vae
    finally:
        vae.to(dtype=torch.float16)


def _quiet_cast_notices() -> None:
    """Drop diffusers' per-cast notices (once per process; other messages still show)."""
    logger = logging.getLogger("diffusers.models.modeling_utils")
    if not any(isinstance(f, _DropCastNotice) for f in logger.filters):
        logger.addFilter(_DropCastNotice())
    warnings.filterwarnings("ignore", message=_UPCAST_NOTICE)


class _DropCastNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_CAST_NOTICE)
