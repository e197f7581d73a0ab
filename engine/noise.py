"""Frame noise before diffusion: white or Perlin-shaped grain, and the noise multiplier.

``noise_type`` "uniform" is white Gaussian noise (the name is Deforum's; the
values are normal, not uniform).  "perlin" multiplies that white noise by a
smooth envelope around 0.5 (mostly within 0…1): fractal Perlin noise with ``perlin_w`` cells across
the width and ``perlin_h`` down the height, each further octave at twice the
frequency and ``perlin_persistence`` times the amplitude, so the grain comes in
blobs of that size.  The noise multiplier scales the noise that img2img adds to
the init latents at its first step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

NOISE_TYPES = ("uniform", "perlin")


def _fade(t: Any) -> Any:
    """Perlin's quintic 6t⁵ − 15t⁴ + 10t³: smooth in value, slope and curvature."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin(height: int, width: int, cells_x: int, cells_y: int, generator: Any) -> Any:
    """One octave of 2-D gradient noise, roughly in [−1, 1], ``cells_x`` × ``cells_y`` cells.

    Random unit gradients sit on the (cells_y + 1) × (cells_x + 1) lattice
    corners; each pixel blends the dot products of its cell's four corners.
    Cells smaller than a pixel add nothing, so there are at most one per pixel.
    """
    import torch

    cells_x, cells_y = min(cells_x, width), min(cells_y, height)

    angles = 2 * math.pi * torch.rand(cells_y + 1, cells_x + 1, generator=generator)
    gx, gy = torch.cos(angles), torch.sin(angles)
    u = torch.arange(width, dtype=torch.float32) * (cells_x / width)
    v = torch.arange(height, dtype=torch.float32) * (cells_y / height)
    ix, iy = u.floor().long(), v.floor().long()
    fx, fy = (u - ix)[None, :], (v - iy)[:, None]
    rows, cols = iy[:, None], ix[None, :]

    def corner(dy: int, dx: int) -> Any:
        return gx[rows + dy, cols + dx] * (fx - dx) + gy[rows + dy, cols + dx] * (fy - dy)

    sx, sy = _fade(fx), _fade(fy)
    top = torch.lerp(corner(0, 0), corner(0, 1), sx)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), sx)
    return math.sqrt(2) * torch.lerp(top, bottom, sy)


def perlin_octaves(height: int, width: int, cells_x: int, cells_y: int, octaves: int,
                   persistence: float, generator: Any) -> Any:
    """Fractal Perlin noise: octave k has 2ᵏ times the cells and persistenceᵏ the amplitude."""
    import torch

    total = torch.zeros(height, width)
    amplitude = 1.0
    for k in range(octaves):
        total += amplitude * perlin(height, width, cells_x * 2 ** k, cells_y * 2 ** k,
                                    generator)
        amplitude *= persistence
    return total


def noise_field(shape: tuple[int, ...], generator: Any, settings: Mapping[str, Any]) -> Any:
    """Unit noise of ``shape`` (…, H, W) shaped by ``noise_type`` and the perlin settings.

    The white noise is drawn first, so "uniform" gives the same numbers for a
    seed as plain ``torch.randn``.
    """
    import torch

    field = torch.randn(shape, generator=generator)
    if settings["noise_type"] == "perlin":
        height, width = shape[-2:]
        envelope = perlin_octaves(height, width, settings["perlin_w"], settings["perlin_h"],
                                  settings["perlin_octaves"], settings["perlin_persistence"],
                                  generator)
        field = field * (envelope + 1) / 2
    return field


@contextmanager
def initial_noise_scale(scheduler: Any, factor: float) -> Iterator[None]:
    """Within the block, the scheduler's first ``add_noise`` scales its noise by ``factor``.

    img2img noises the init latents with exactly one ``add_noise`` call before
    its first step; later calls (mask re-noising) keep their noise as given.
    """
    if factor == 1.0:
        yield
        return
    original = scheduler.add_noise
    used = False

    def scaled(samples: Any, noise: Any, timesteps: Any) -> Any:
        nonlocal used
        if used:
            return original(samples, noise, timesteps)
        used = True
        return original(samples, noise * factor, timesteps)

    scheduler.add_noise = scaled
    try:
        yield
    finally:
        scheduler.add_noise = original
