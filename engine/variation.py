"""Variation seeds (webui ``subseed``): a frame's starting noise moved toward another seed's.

As in A1111, the noise of the seed and the noise of the subseed (same shape,
C × H/8 × W/8 per image) are joined by spherical interpolation at the subseed
strength, each column of each channel (the vectors along the height) on its own
great circle; 0 keeps the seed's noise and 1 gives the subseed's.  "The seed's
noise" is exactly what the diffusers pipeline would have drawn from the frame's
generator, so a strength of 0 renders the frame as without a subseed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def variation_slerp(strength: float, noise: Any, subnoise: Any) -> Any:
    """A1111's blend of one image's noise (C×H×W) with the subseed's at ``strength``."""
    import torch

    low, high = noise.float(), subnoise.float()
    low_unit = low / torch.norm(low, dim=1, keepdim=True)
    high_unit = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_unit * high_unit).sum(1)
    if dot.mean() > 0.9995:  # nearly the same noise: a straight blend is as good
        return (low * (1 - strength) + high * strength).to(noise.dtype)
    omega = torch.acos(dot)
    sin = torch.sin(omega)
    mixed = (torch.sin((1.0 - strength) * omega) / sin).unsqueeze(1) * low + \
        (torch.sin(strength * omega) / sin).unsqueeze(1) * high
    return mixed.to(noise.dtype)


def blend(noise: Any, subseed: int, strength: float) -> Any:
    """``noise`` (B×C×H×W, drawn from the frame's seed) moved toward ``subseed``'s noise."""
    import torch
    from diffusers.utils.torch_utils import randn_tensor

    if strength <= 0.0:
        return noise
    generator = torch.Generator("cpu").manual_seed(int(subseed))
    subnoise = randn_tensor(tuple(noise.shape), generator=generator, device=noise.device,
                            dtype=noise.dtype)
    if strength >= 1.0:
        return subnoise
    return torch.stack([variation_slerp(strength, n, s) for n, s in zip(noise, subnoise)])


def initial_noise(shape: tuple[int, ...], generator: Any, device: Any, dtype: Any,
                  subseed: int, strength: float) -> Any:
    """txt2img's starting latents: the draw the pipeline would make, then the blend."""
    from diffusers.utils.torch_utils import randn_tensor

    noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    return blend(noise, subseed, strength)


@contextmanager
def blended_img2img_noise(scheduler: Any, subseed: int | None,
                          strength: float) -> Iterator[None]:
    """img2img noises its init latents once, through ``scheduler.add_noise``: that first
    call gets the blended noise; later calls (mask steps) and other runs are untouched."""
    if subseed is None or strength <= 0.0:
        yield
        return
    original = scheduler.add_noise

    def add_noise(latents: Any, noise: Any, timesteps: Any) -> Any:
        vars(scheduler).pop("add_noise", None)
        return original(latents, blend(noise, subseed, strength), timesteps)

    scheduler.add_noise = add_noise
    try:
        yield
    finally:
        vars(scheduler).pop("add_noise", None)
