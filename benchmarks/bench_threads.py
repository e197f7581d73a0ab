"""The engine on a busy machine: its default thread choice vs one thread vs every core.

Two competing processes keep two cores busy (pure-Python loops, as a second
render or Blender's own work would) while the tiny model renders a 12-frame 2D
run at the default settings (512², 50 steps).  Three sides, alternated rep by
rep in one run (A B C, C B A, …): the engine's default (``engine.threads``:
the cores the machine leaves idle, OpenMP threads sleeping while they wait),
``--threads 1``, and the old default (a thread per core, OpenMP threads
spinning while they wait).  The clock is the render (the ``start`` event to
``done``), not the model loading.

    python benchmarks/bench_threads.py [--reps 2] [--frames 12] [--competitors 2]
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
BUSY = "while True: pass"
SIDES = {
    "default": ([], {}),
    "one thread": (["--threads", "1"], {}),
    "every core, spinning": (["--threads", str(os.cpu_count() or 1)],
                             {"OMP_WAIT_POLICY": "ACTIVE"}),
}


def render_seconds(folder: Path, model: Path, frames: int, extra: list[str],
                   env_extra: dict[str, str]) -> tuple[float, str]:
    """One run's render time and the thread count it reported."""
    settings = folder / "settings.json"
    settings.write_text(json.dumps({"animation_mode": "2D", "max_frames": frames}))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",
                                                            "OMP_WAIT_POLICY")}
    env.update(env_extra, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "engine", "--settings", str(settings),
                           "--enable_animation_mode", "--outdir", str(folder / "out"),
                           "--model", str(model), "--progress", "jsonl", *extra],
                          capture_output=True, text=True, env=env, check=True)
    done = next(line for line in proc.stderr.splitlines() if line.startswith("done: "))
    threads = next((line.split()[0] for line in proc.stderr.splitlines()
                    if line.endswith(("CPU thread", "CPU threads"))), "?")
    return float(done.rsplit(" ", 1)[1].rstrip("s")), threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--competitors", type=int, default=2)
    parser.add_argument("--without-spinning", action="store_true",
                        help="leave out the old default (a thread per core, spinning): it is "
                             "by far the slowest side")
    args = parser.parse_args()
    sides = {k: v for k, v in SIDES.items()
             if not (args.without_spinning and k == "every core, spinning")}
    sys.path.insert(0, str(ROOT))
    from engine.tiny_model import write_tiny_model
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.competitors)]
    results: dict[str, list[float]] = {side: [] for side in sides}
    counts: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            model = write_tiny_model(Path(tmp) / "model")
            time.sleep(2)  # the competitors are running before the first side starts
            for rep in range(args.reps):
                order = list(sides) if rep % 2 == 0 else list(reversed(sides))
                for side in order:
                    seconds, counts[side] = render_seconds(Path(tmp), model, args.frames,
                                                           *SIDES[side])
                    results[side].append(seconds)
                    print(f"rep {rep} {side}: {seconds:.1f} s ({counts[side]} threads)",
                          flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    one = statistics.median(results["one thread"])
    print(f"\n{os.cpu_count()} CPUs, {args.competitors} busy competitors, tiny model, "
          f"{args.frames} frames 2D at 512², render seconds (start to done), "
          f"{args.reps} reps alternated\n")
    print("| side | threads | median s | min–max s | vs one thread |")
    print("|---|---|---|---|---|")
    for side, values in results.items():
        median = statistics.median(values)
        print(f"| {side} | {counts[side]} | {median:.1f} | {min(values):.1f}–{max(values):.1f}"
              f" | {median / one:.2f}× |")


if __name__ == "__main__":
    main()
