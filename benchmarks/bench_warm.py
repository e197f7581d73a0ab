"""Time from "render" to the first denoising step: one engine process per render vs the
warm engine (``python -m engine.server``) that keeps the model loaded.

Both routes render the same job (2D, 3 frames) with the same model, taking
turns render by render (one process, warm, warm, one process, …) so a
neighbour's load falls on both; the warm engine's first render loads the
model and is shown apart.  The clock (elapsed time) runs from sending the job
(starting the process, for the one-process route) to the engine's first
``step`` event, as the add-on sees it.  The engines choose their own threads.

    python benchmarks/bench_warm.py [--reps 4]            # tiny model, CPU
    python benchmarks/bench_warm.py --real-size --device cuda   # SD 1.5-size random
                                                          # weights saved to disk, fp16
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import paired_ratio, print_table, spread, summary, take_turns  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def write_model(folder: Path, real_size: bool, device: str) -> Path:
    """The model both routes load: the tiny one, or SD 1.5-size random weights."""
    if not real_size:
        sys.path.insert(0, str(ROOT))
        from engine.tiny_model import write_tiny_model
        return write_tiny_model(folder)
    from bench_frame import random_model
    return random_model("sd15", folder, device)


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


def one_process(folder: Path, model: Path, name: str, size: int, device: str) -> float:
    """Seconds from starting an engine process for one job to its first step."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine",
                             *job_args(folder, model, name, size, device)], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    until_step(proc.stdout)
    seconds = time.perf_counter() - started
    proc.stdout.read()
    proc.wait()
    return seconds


def warm(server: subprocess.Popen, folder: Path, model: Path, name: str, size: int,
         device: str) -> float:
    """Seconds from sending one job to the warm engine to its first step."""
    started = time.perf_counter()
    argv = job_args(folder, model, name, size, device)[:-2]
    server.stdin.write(json.dumps({"id": name, "argv": argv}) + "\n")
    server.stdin.flush()
    until_step(server.stdout)
    seconds = time.perf_counter() - started
    for line in server.stdout:
        if json.loads(line).get("event") == "finished":
            break
    return seconds


def measure(folder: Path, model: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Per-render seconds of both routes, alternated, ``args.reps`` renders each."""
    server = subprocess.Popen([sys.executable, "-m", "engine.server"], cwd=ROOT, env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, bufsize=1)
    jobs = itertools.count()
    try:
        samples = take_turns({
            "process": lambda: one_process(folder, model, f"process-{next(jobs)}", args.size,
                                           args.device),
            "warm": lambda: warm(server, folder, model, f"warm-{next(jobs)}", args.size,
                                 args.device),
        }, args.reps, warmup=0)
        server.stdin.close()
        server.wait(timeout=60)
    finally:
        server.kill()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-size", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--reps", type=int, default=4, help="renders per route (default 4)")
    args = parser.parse_args()
    if args.reps < 2:
        parser.error("--reps must be at least 2: the first render of each route is shown apart")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = write_model(folder / "model", args.real_size, args.device)
        samples = measure(folder, model, args)
    cold, kept = samples["process"], samples["warm"]
    kind = "SD 1.5-size random weights" if args.real_size else "tiny model"
    print_table(f"{kind}, {args.device}, {args.size}², seconds to the first denoising step "
                f"(elapsed), {args.reps} renders per route alternated; later renders: "
                "median (interquartile range)",
                ["route", "first render", "later renders", "later: ratio to one process"],
                [["one process per render (baseline)", f"{cold[0]:.2f}",
                  spread(summary(cold[1:]), 1.0), "1.0"],
                 ["warm engine", f"{kept[0]:.2f}", spread(summary(kept[1:]), 1.0),
                  spread(paired_ratio(cold[1:], kept[1:]), 1.0, 0)]],
                threads=f"{os.cpu_count()} CPUs, engines at their default thread count")


if __name__ == "__main__":
    main()
