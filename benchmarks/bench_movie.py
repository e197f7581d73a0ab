"""How long a run with ``--video`` waits for its movie after the last frame: the movie
encoded while the frames are written (``engine.movie_stream``) vs encoded from the
files after the last frame (the previous way, still the fallback).

Renders the engine's 3D motion preview (no model: frames come fast, so the stream
has the least time to keep up) through ``cli.run`` in this process, the two sides
taking turns run by run after a warm-up of each.  Prints, per side, the seconds
from the last frame's event to the movie being there (the wait a user sees), the
whole run's seconds, and the thread counts.

    python benchmarks/bench_movie.py [--frames 100] [--size 512] [--reps 3]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import paired_ratio, print_table, spread, summary, take_turns  # noqa: E402

from engine import cli  # noqa: E402
from engine.progress import Progress  # noqa: E402

SIDES = {"with the frames (today)": cli.movie_stream,
         "after the last frame (previous)": lambda *args, **kwargs: nullcontext()}


class Clock(Progress):
    """Notes when the last frame was reported."""

    last_frame = 0.0

    def frame(self, *args, **kwargs) -> None:
        super().frame(*args, **kwargs)
        self.last_frame = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-movie-"))
    settings = scratch / "settings.json"
    settings.write_text(json.dumps({
        "animation_mode": "3D", "W": args.size, "H": args.size, "max_frames": args.frames,
        "translation_z": "0:(3)", "rotation_3d_y": "0:(0.5)", "fps": 15}))
    runs = iter(range(1_000_000))

    def side(stream: Callable[..., Any]) -> Callable[[], tuple[float, float]]:
        def run() -> tuple[float, float]:
            cli.movie_stream = stream
            progress = Clock(log=io.StringIO())
            command = cli.build_parser().parse_args([
                "--settings", str(settings), "--outdir", str(scratch / f"run-{next(runs)}"),
                "--enable_animation_mode", "--preview", "--video"])
            started = time.perf_counter()
            assert cli.run(command, progress) == 0
            ended = time.perf_counter()
            return ended - progress.last_frame, ended - started
        return run

    results = take_turns({name: side(stream) for name, stream in SIDES.items()}, args.reps)
    cli.movie_stream = SIDES["with the frames (today)"]
    today, previous = (results[name] for name in SIDES)
    rows = [[name, spread(summary([wait for wait, _ in values])),
             spread(summary([whole for _, whole in values]), scale=1, digits=2)]
            for name, values in results.items()]
    rows.append(["ratio previous / today", spread(paired_ratio(
        [wait for wait, _ in previous], [wait for wait, _ in today]), scale=1),
        spread(paired_ratio([whole for _, whole in previous], [whole for _, whole in today]),
               scale=1)])
    print_table(f"{args.frames} frames of 3D motion preview at {args.size}², --video, "
                f"{args.reps} runs per side taking turns; median (quartiles)",
                ["movie encoded", "wait after the last frame, ms", "whole run, s"], rows)


if __name__ == "__main__":
    main()
