"""compile_unet: compiled once on CUDA, shared by both pipelines; skipped with a warning elsewhere."""

import io
import json
from types import SimpleNamespace

import torch

from engine.diffusion import Diffusion
from engine.modes.common import CancelToken
from engine.progress import Progress
from engine.settings import parse_settings
from engine.unet_compile import compile_unet, is_compiled


def test_on_the_cpu_the_run_warns_and_keeps_the_uncompiled_unet(pipes):
    out = io.StringIO()
    Diffusion(pipes, parse_settings({"W": 64, "H": 64, "compile_unet": True}), CancelToken(),
              Progress(jsonl=True, out=out, log=io.StringIO()))
    warnings = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [w["key"] for w in warnings] == ["compile_unet"]
    assert "skipped on cpu" in warnings[0]["message"]
    assert not is_compiled(pipes.img2img.unet)


def test_off_by_default_and_silent(pipes):
    out = io.StringIO()
    Diffusion(pipes, parse_settings({"W": 64, "H": 64}), CancelToken(),
              Progress(jsonl=True, out=out, log=io.StringIO()))
    assert out.getvalue() == ""


def test_on_cuda_the_shared_unet_is_compiled_in_place_once(monkeypatch):
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)
    unet = torch.nn.Linear(2, 2)
    compiles = []
    original = unet.compile
    unet.compile = lambda *a, **k: compiles.append(1) or original(*a, **k)
    pipes = SimpleNamespace(device=torch.device("cuda"), img2img=SimpleNamespace(unet=unet),
                            txt2img=SimpleNamespace(unet=unet))
    assert compile_unet(pipes) is None and compile_unet(pipes) is None
    assert len(compiles) == 1 and is_compiled(pipes.txt2img.unet)
    assert torch._dynamo.config.suppress_errors  # a failed compile falls back, not fails
