"""Frame noise: Perlin grain comes in blobs of perlin_w × perlin_h cells, uniform grain is
white with unit variance, and the noise multiplier scales img2img's initial noise."""

import numpy as np
import pytest
import torch

from engine.noise import initial_noise_scale, noise_field, perlin_octaves
from engine.settings import parse_settings


def mean_frequency(image: np.ndarray, axis: int) -> float:
    """Power-weighted mean spatial frequency (cycles per image) along ``axis``."""
    centred = image - image.mean()
    power = np.abs(np.fft.rfft(centred, axis=axis)) ** 2
    power = power.sum(axis=1 - axis)
    freqs = np.arange(power.size)
    return float((freqs * power).sum() / power.sum())


def gen(seed=0):
    return torch.Generator("cpu").manual_seed(seed)


def test_perlin_frequency_follows_perlin_w_and_h():
    wide = perlin_octaves(128, 128, 4, 16, 1, 0.5, gen()).numpy()
    fx, fy = mean_frequency(wide, axis=1), mean_frequency(wide, axis=0)
    assert 3.0 < fy / fx < 5.5  # 16 cells down, 4 across
    finer = perlin_octaves(128, 128, 8, 16, 1, 0.5, gen()).numpy()
    assert 1.6 < mean_frequency(finer, axis=1) / fx < 2.5  # perlin_w doubled


def test_octaves_add_finer_detail_and_persistence_weighs_it():
    one = perlin_octaves(128, 128, 4, 4, 1, 0.5, gen()).numpy()
    four = perlin_octaves(128, 128, 4, 4, 4, 0.5, gen()).numpy()
    heavy = perlin_octaves(128, 128, 4, 4, 4, 1.0, gen()).numpy()
    f1, f4, fh = (mean_frequency(x, axis=1) for x in (one, four, heavy))
    assert f1 < f4 < fh


def settings(**values):
    return parse_settings({"W": 128, "H": 128, **values})


def grain_frequency(noise_type: str, cells: int) -> float:
    """How fast the local strength of the grain varies across the picture."""
    import cv2

    s = settings(noise_type=noise_type, perlin_w=cells, perlin_h=cells, perlin_octaves=1)
    field = noise_field((1, 3, 128, 128), gen(3), s)[0].numpy()
    energy = cv2.GaussianBlur((field ** 2).mean(axis=0), (0, 0), 2.0)
    return mean_frequency(energy, axis=1)


def test_perlin_grain_comes_in_blobs_of_the_cell_size():
    assert grain_frequency("perlin", 2) < grain_frequency("perlin", 8) \
        < grain_frequency("uniform", 8)


def test_uniform_noise_is_white_gaussian_with_unit_variance():
    field = noise_field((1, 3, 128, 128), gen(5), settings(noise_type="uniform"))
    assert torch.equal(field, torch.randn((1, 3, 128, 128), generator=gen(5)))
    values = field.numpy()
    assert abs(values.mean()) < 0.02 and abs(values.std() - 1.0) < 0.02
    neighbours = np.corrcoef(values[0, 0, :, :-1].ravel(), values[0, 0, :, 1:].ravel())[0, 1]
    assert abs(neighbours) < 0.05


def test_perlin_noise_is_white_noise_at_about_half_strength():
    white = noise_field((1, 3, 64, 64), gen(1), settings(noise_type="uniform"))
    shaped = noise_field((1, 3, 64, 64), gen(1), settings(noise_type="perlin"))
    envelope = (shaped / white).numpy()
    assert np.allclose(envelope[0, 0], envelope[0, 1], atol=1e-4)  # one envelope, all channels
    assert 0.4 < envelope.mean() < 0.6 and 0.2 < shaped.std() < white.std()


class AddsNoise:
    def add_noise(self, samples, noise, timesteps):
        return samples + noise


@pytest.mark.parametrize("factor", [1.0, 1.05, 0.5])
def test_noise_multiplier_scales_the_first_add_noise_only(factor):
    scheduler = AddsNoise()
    zero, one = torch.zeros(3), torch.ones(3)
    with initial_noise_scale(scheduler, factor):
        first = scheduler.add_noise(zero, one, None)
        later = scheduler.add_noise(zero, one, None)
    assert torch.allclose(first, one * factor) and torch.equal(later, one)
    assert torch.equal(scheduler.add_noise(zero, one, None), one)


def test_noise_multiplier_changes_img2img_and_one_changes_nothing(pipes):
    from engine.diffusion import Diffusion
    from engine.modes.common import CancelToken

    diffusion = Diffusion(pipes, parse_settings({"W": 64, "H": 64, "steps": 6}), CancelToken())
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)

    def run(factor):
        return diffusion(init, strength=0.5, seed=4, noise=0.02, prompt="a cat",
                         noise_multiplier=factor).astype(int)
    plain = run(1.0)
    assert np.array_equal(plain, run(1.0))
    assert np.abs(run(1.5) - plain).mean() > 0.5
