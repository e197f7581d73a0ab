"""compile_unet: what torch.compile of the UNet costs before the first frame and gains per frame.

Two sides, alternated rep by rep (eager, compiled; compiled, eager; …), each rep in a
fresh process with an empty Inductor cache, so every compiled rep pays the cold compile
a user's first run pays.  A side diffuses ``--frames`` img2img frames through the
engine's ``Diffusion`` (the frame the render loop runs); the first frame (it holds the
compile) is reported apart from the rest.  Prints medians with quartiles over the reps,
the compile's cost (first frame, compiled − eager), the gain per later frame and the
frames it takes to pay off.

    python benchmarks/bench_compile.py [--reps 3] [--frames 6] [--size 512] [--threads 2]
    python benchmarks/bench_compile.py --real-size --device cuda    # SD 1.5-size, fp16

On the CPU the engine does not compile (``compile_unet`` warns and skips); this bench
compiles there anyway, to measure whether it should.  Sides take turns through
``benchmarks/timing.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("eager", "compiled")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--frames", type=int, default=6, help="img2img frames per side and rep")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--real-size", action="store_true",
                        help="SD 1.5-size random-weight UNet/VAE (fp16 on CUDA)")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args: argparse.Namespace) -> None:
    """One side, one rep: print the seconds of each frame as one JSON line."""
    import numpy as np
    import torch

    from engine.diffusion import Diffusion
    from engine.models import load_pipelines
    from engine.modes.common import CancelToken
    from engine.settings import parse_settings

    torch.set_num_threads(args.threads)
    pipes = load_pipelines(args.model, device=args.device)
    if args.worker == "compiled":
        pipes.img2img.unet.compile()  # directly: the engine itself compiles on CUDA only
    settings = parse_settings({"W": args.size, "H": args.size, "steps": args.steps,
                               "sampler": "euler", "seed": 1})
    diffusion = Diffusion(pipes, settings, CancelToken())
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    seconds = []
    for frame in range(args.frames):
        started = time.perf_counter()
        image = diffusion(image, strength=args.strength, seed=1 + frame, noise=0.02,
                          prompt="a lighthouse on a cliff", frame=frame)
        seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(),
                      "device": str(pipes.device)}))


def run_side(args: argparse.Namespace, side: str, model: Path) -> dict:
    """One side in a process of its own with an empty Inductor cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
               "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": str(args.threads)}
        argv = [sys.executable, __file__, "--worker", side, "--model", str(model),
                "--frames", str(args.frames), "--size", str(args.size), "--steps",
                str(args.steps), "--strength", str(args.strength), "--threads",
                str(args.threads), "--device", args.device]
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, firsts: dict, laters: dict, info: dict) -> None:
    from timing import paired_ratio, print_table, spread, summary

    steps = int(round((1 - args.strength) * args.steps, 6))
    model = "SD 1.5-size random weights" if args.real_size else "tiny SD-1.x model"
    title = (f"{model}, {args.size}², {steps} UNet steps per frame (euler, CFG), device "
             f"{info['device']}, {args.reps} reps alternated, cold Inductor cache; seconds, "
             "median (IQR)")
    print_table(title, ("side", "first frame s", "later frames s/frame"),
                [(side, spread(summary(firsts[side]), 1), spread(summary(laters[side]), 1, 3))
                 for side in SIDES],
                threads=f"{os.cpu_count()} CPUs, torch threads {info['threads']}")
    cost = summary(firsts["compiled"]).median - summary(firsts["eager"]).median
    ratio = paired_ratio(laters["compiled"], laters["eager"])
    gain = summary(laters["eager"]).median - summary(laters["compiled"]).median
    payoff = f"{cost / gain:.0f} frames" if gain > 0 else "never (no gain per frame)"
    print(f"\ncompile cost {cost:.1f} s; later frames compiled/eager per rep "
          f"{spread(ratio, 1, 2)}; gain {gain:.3f} s per frame; pays off after {payoff}")


def main() -> None:
    args = parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from timing import take_turns

    from bench_frame import random_model

    from engine.tiny_model import write_tiny_model

    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        model = random_model("sd15", Path(tmp), args.device) if args.real_size \
            else write_tiny_model(Path(tmp) / "model")

        def side(name: str):
            def run() -> float:
                runs[name].append(run_side(args, name, model))
                seconds = runs[name][-1]["seconds"]
                print(f"{name}: first {seconds[0]:.2f} s, then "
                      f"{statistics.median(seconds[1:]):.3f} s/frame", flush=True)
                return seconds[0]
            return run

        # No warm-up: each call is a fresh process, and the compile it pays is measured.
        take_turns({name: side(name) for name in SIDES}, args.reps, warmup=0)
    firsts = {name: [r["seconds"][0] for r in runs[name]] for name in SIDES}
    laters = {name: [statistics.median(r["seconds"][1:]) for r in runs[name]] for name in SIDES}
    report(args, firsts, laters, runs["eager"][-1])


if __name__ == "__main__":
    main()
