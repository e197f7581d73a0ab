"""Running out of memory ends a run at once with a message naming the setting to lower."""

import json

import pytest
import torch

from engine.cli import main
from engine.errors import EXIT_MODEL, EXIT_SETTINGS, ModelError, OutOfMemory
from engine.memory import frame_error, is_out_of_memory, loading_error
from engine.settings import parse_settings

CUDA_OOM = ("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
            "8.00 GiB of which 1.20 GiB is free.\nOf the allocated memory ...")
MPS_OOM = ("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.00 GB, "
           "max allowed: 18.13 GB). Tried to allocate 1.00 GB on private pool.")
CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
           "memory: you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")


@pytest.mark.parametrize("exc", [torch.cuda.OutOfMemoryError(CUDA_OOM), RuntimeError(MPS_OOM),
                                 RuntimeError(CPU_OOM), MemoryError(),
                                 RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")])
def test_every_device_s_out_of_memory_is_recognised(exc):
    assert is_out_of_memory(exc)


@pytest.mark.parametrize("exc", [RuntimeError("Input type (c10::Half) and bias type (float) "
                                              "should be the same"), ValueError("out of memory"),
                                 ModelError(f"could not load model x: {CUDA_OOM}")])
def test_other_errors_are_not_mistaken_for_out_of_memory(exc):
    assert not is_out_of_memory(exc) and frame_error(exc, parse_settings({})) is None


def test_the_message_names_resolution_tiling_and_frame():
    settings = parse_settings({"W": 2048, "H": 1536, "half_precision": False})
    error = frame_error(torch.cuda.OutOfMemoryError(CUDA_OOM), settings, 7, torch.device("cuda"))
    text = str(error)
    assert isinstance(error, OutOfMemory) and error.exit_code == EXIT_SETTINGS
    assert error.key == "W" and error.value == 2048
    assert "frame 7" in text and "W, H: now 2048×1536" in text and "vae_tiling to on" in text
    assert "half_precision on" in text and "Tried to allocate 20.00 GiB" in text
    assert "\n" not in text and "frames already written are kept" in text
    tiled = str(frame_error(RuntimeError(MPS_OOM), parse_settings({"vae_tiling": "on"}), 0))
    assert "vae_tiling" not in tiled and "half_precision" not in tiled


def test_loading_out_of_memory_names_half_precision_then_device():
    oom = torch.cuda.OutOfMemoryError(CUDA_OOM)
    full = loading_error(oom, "m.safetensors", torch.device("cuda"), half=False)
    half = loading_error(oom, "m.safetensors", torch.device("cuda"), half=True)
    cpu = loading_error(RuntimeError(CPU_OOM), "m.safetensors", torch.device("cpu"), half=False)
    assert (full.key, half.key, cpu.key) == ("half_precision", "device", "model_path")
    assert all(e.exit_code == EXIT_MODEL and "m.safetensors" in str(e) for e in (full, half, cpu))
    assert loading_error(ValueError("bad"), "m", torch.device("cuda"), True) is None


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_out_of_memory_on_frame_2_exits_2_naming_the_settings_and_keeps_frames_0_and_1(
        tmp_path, tiny_model, monkeypatch, capsys):
    """A CUDA out-of-memory inside the UNet on frame 2 (raised here on the CPU)."""
    from diffusers import UNet2DConditionModel

    from engine.diffusion import Diffusion

    current = {}
    begin, forward = Diffusion.begin, UNet2DConditionModel.forward

    def noting_begin(self, frame, *args, **kwargs):
        current["frame"] = frame
        return begin(self, frame, *args, **kwargs)

    def forward_short_of_memory(self, *args, **kwargs):
        if current.get("frame") == 2:
            raise torch.cuda.OutOfMemoryError(CUDA_OOM)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(Diffusion, "begin", noting_begin)
    monkeypatch.setattr(UNet2DConditionModel, "forward", forward_short_of_memory)
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"animation_mode": "2D", "max_frames": 4, "W": 64, "H": 64,
                                    "steps": 4, "seed": 1}))
    code = main(["--settings", str(settings), "--enable_animation_mode", "--outdir",
                 str(tmp_path / "out"), "--model", str(tiny_model), "--progress", "jsonl"])
    out, err = capsys.readouterr()
    assert code == EXIT_SETTINGS
    error = next(e for e in _events(out) if e["event"] == "error")
    assert error["key"] == "W" and error["code"] == EXIT_SETTINGS
    assert "frame 2" in error["message"] and "(W, H: now 64×64)" in error["message"]
    assert "vae_tiling to on" in error["message"]
    assert "Traceback" not in err
    start = next(e for e in _events(out) if e["event"] == "start")
    frames = sorted(p.name for p in (tmp_path / "out").rglob("*.png"))
    assert frames == [f"{start['timestring']}_{i:05d}.png" for i in (0, 1)]


def test_a_model_too_large_to_load_exits_3_naming_the_setting(tmp_path, tiny_model, monkeypatch,
                                                              capsys):
    from engine import models

    def short_of_memory(*args, **kwargs):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(models, "_load", short_of_memory)
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"animation_mode": "2D", "max_frames": 2, "W": 64, "H": 64}))
    code = main(["--settings", str(settings), "--enable_animation_mode", "--outdir",
                 str(tmp_path / "out"), "--model", str(tiny_model), "--progress", "jsonl"])
    out, err = capsys.readouterr()
    error = next(e for e in _events(out) if e["event"] == "error")
    assert code == EXIT_MODEL and error["key"] == "model_path"
    assert "not enough memory on cpu to load model" in error["message"]
    assert "use a smaller model" in error["message"] and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_the_gpu_check_says_plainly_that_it_checked_nothing_without_cuda():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "no CUDA device here" in result.stdout and "nothing was checked" in result.stdout
    assert "Traceback" not in result.stderr
