"""The VAE: tiles for large frames, float32 where SDXL's overflows in fp16."""

import json
import logging

import numpy as np
import pytest
import torch

from engine import vae as vae_module
from engine.cli import main
from engine.diffusion import Diffusion
from engine.models import Pipelines, load_pipelines
from engine.modes.common import CancelToken
from engine.settings import parse_settings
from engine.vae import full_precision, needs_upcast, set_up_vae, wants_tiling


@pytest.mark.parametrize("choice, width, height, tiled", [
    ("auto", 1024, 1024, False), ("auto", 1032, 1024, True), ("auto", 2048, 512, False),
    ("auto", 2048, 576, True), ("on", 64, 64, True), ("off", 4096, 4096, False)])
def test_auto_tiles_above_a_megapixel(choice, width, height, tiled):
    assert wants_tiling(choice, width, height) is tiled


def test_each_run_sets_its_own_tiling_on_a_shared_model(pipes):
    """A warm engine keeps the model between runs: a small run after a large one is not tiled."""
    assert set_up_vae(pipes, parse_settings({"W": 2048, "H": 2048}))
    assert pipes.img2img.vae.use_tiling and pipes.txt2img.vae.use_tiling
    assert pipes.img2img.vae.use_slicing
    assert not set_up_vae(pipes, parse_settings({"W": 512, "H": 512}))
    assert not pipes.txt2img.vae.use_tiling


def test_a_run_above_the_threshold_tiles_and_writes_its_frames(tmp_path, tiny_model,
                                                               monkeypatch, capsys):
    """The tiny VAE's tiles are 512 px; the threshold is lowered so that a 576² run tiles."""
    from diffusers import AutoencoderKL

    monkeypatch.setattr(vae_module, "TILING_PIXELS", 512 * 512)
    calls = []
    for name in ("tiled_decode", "_tiled_encode"):
        original = getattr(AutoencoderKL, name)
        monkeypatch.setattr(AutoencoderKL, name, lambda self, *a, _n=name, _f=original, **k:
                            calls.append(_n) or _f(self, *a, **k))
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"animation_mode": "2D", "max_frames": 2, "W": 576,
                                    "H": 576, "steps": 3, "seed": 1}))
    code = main(["--settings", str(settings), "--enable_animation_mode", "--outdir",
                 str(tmp_path / "out"), "--model", str(tiny_model)])
    assert code == 0, capsys.readouterr().err
    assert calls.count("tiled_decode") == 2 and calls.count("_tiled_encode") == 1
    frames = sorted((tmp_path / "out").rglob("*.png"))
    assert len(frames) == 2


@pytest.fixture(scope="module")
def sdxl_fp16(tmp_path_factory):
    """The tiny SDXL model as CUDA would run it: every weight in fp16 (on the CPU here)."""
    from engine.tiny_model import write_tiny_sdxl

    loaded = load_pipelines(str(write_tiny_sdxl(tmp_path_factory.mktemp("xl"))), device="cpu")
    loaded.img2img.to(dtype=torch.float16)
    return Pipelines(loaded.img2img, loaded.txt2img, "sdxl", loaded.device, torch.float16,
                     loaded.path)


class _Notices(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_fp16_sdxl_encodes_and_decodes_in_float32_and_stays_fp16(sdxl_fp16):
    notices = _Notices()
    logging.getLogger("diffusers").addHandler(notices)
    vae = sdxl_fp16.img2img.vae
    assert vae.config.force_upcast and needs_upcast(sdxl_fp16)
    seen = []
    encode, decode = vae.encode, vae.decode
    vae.encode = lambda x, *a, **k: seen.append(("encode", x.dtype, vae.dtype)) or encode(x, *a, **k)
    vae.decode = lambda z, *a, **k: seen.append(("decode", z.dtype, vae.dtype)) or decode(z, *a, **k)
    try:
        diffusion = Diffusion(sdxl_fp16, parse_settings({"W": 64, "H": 64, "steps": 4}),
                              CancelToken())
        init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        out = diffusion(init, strength=0.5, seed=1, noise=0.02, prompt="a cat")
    finally:
        del vae.encode, vae.decode
        logging.getLogger("diffusers").removeHandler(notices)
    assert seen == [("encode", torch.float32, torch.float32),
                    ("decode", torch.float32, torch.float32)]
    assert vae.dtype == torch.float16 and sdxl_fp16.img2img.unet.dtype == torch.float16
    assert out.shape == (64, 64, 3)
    assert not [m for m in notices.messages if "float32" in m]  # no notice per cast


def test_only_an_fp16_sdxl_vae_that_asks_for_it_is_upcast(sdxl_fp16, pipes):
    vae = sdxl_fp16.img2img.vae
    vae.register_to_config(force_upcast=False)  # an fp16-fix VAE
    try:
        assert not needs_upcast(sdxl_fp16)
        with full_precision(sdxl_fp16) as inside:
            assert inside.dtype == torch.float16
    finally:
        vae.register_to_config(force_upcast=True)
    assert not needs_upcast(pipes)  # SD 1.x: diffusers' fp16 VAE is fine
    with full_precision(sdxl_fp16) as inside:
        assert inside.dtype == torch.float32
    assert vae.dtype == torch.float16
