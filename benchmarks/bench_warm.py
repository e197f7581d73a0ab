"""Time from "render" to the first denoising step: one engine process per render vs the
warm engine (``python -m engine.server``) that keeps the model loaded.

Both routes render the same two jobs (2D, 3 frames) with the same model; the
clock runs from sending the job (starting the process, for the one-process
route) to the engine's first ``step`` event, as the add-on sees it.

    python benchmarks/bench_warm.py                       # tiny model, CPU
    python benchmarks/bench_warm.py --real-size --device cuda   # SD 1.5-size random
                                                          # weights saved to disk, fp16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def write_model(folder: Path, real_size: bool, device: str) -> Path:
    """The model both routes load: the tiny one, or SD 1.5-size random weights."""
    if not real_size:
        sys.path.insert(0, str(ROOT))
        from engine.tiny_model import write_tiny_model
        return write_tiny_model(folder)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_frame import real_size_pipelines
    pipes = real_size_pipelines("cpu", half=device != "cpu")
    pipes.txt2img.save_pretrained(folder)
    return folder


def job_args(folder: Path, model: Path, name: str, size: int, device: str) -> list[str]:
    settings = folder / f"{name}.txt"
    settings.write_text(json.dumps({"animation_mode": "2D", "W": size, "H": size, "steps": 10,
                                    "max_frames": 3, "batch_name": name, "device": device}))
    return ["--settings", str(settings), "--enable_animation_mode", "--outdir", str(folder),
            "--model", str(model), "--progress", "jsonl"]


def until_step(stream) -> None:
    for line in stream:
        if line.startswith("{") and json.loads(line).get("event") == "step":
            return
    raise RuntimeError("the engine ended before its first denoising step")


def one_process(folder: Path, model: Path, size: int, device: str) -> list[float]:
    times = []
    for name in ("process-1", "process-2"):
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "engine",
                                 *job_args(folder, model, name, size, device)], cwd=ROOT,
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        until_step(proc.stdout)
        times.append(time.perf_counter() - started)
        proc.stdout.read()
        proc.wait()
    return times


def warm(folder: Path, model: Path, size: int, device: str) -> list[float]:
    server = subprocess.Popen([sys.executable, "-m", "engine.server"], cwd=ROOT, env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, bufsize=1)
    times = []
    try:
        for name in ("warm-1", "warm-2"):
            started = time.perf_counter()
            argv = job_args(folder, model, name, size, device)[:-2]
            server.stdin.write(json.dumps({"id": name, "argv": argv}) + "\n")
            server.stdin.flush()
            until_step(server.stdout)
            times.append(time.perf_counter() - started)
            for line in server.stdout:
                if json.loads(line).get("event") == "finished":
                    break
        server.stdin.close()
        server.wait(timeout=60)
    finally:
        server.kill()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-size", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = write_model(folder / "model", args.real_size, args.device)
        cold = one_process(folder, model, args.size, args.device)
        kept = warm(folder, model, args.size, args.device)
    kind = "SD 1.5-size random weights" if args.real_size else "tiny model"
    print(f"\n{kind}, {args.device}, {args.size}², seconds to the first denoising step\n")
    print("| route | first render | second render | second: ratio to one process |")
    print("|---|---:|---:|---:|")
    print(f"| one process per render (baseline) | {cold[0]:.2f} | {cold[1]:.2f} | 1.0 |")
    print(f"| warm engine | {kept[0]:.2f} | {kept[1]:.2f} | {cold[1] / kept[1]:.0f} |")


if __name__ == "__main__":
    main()
