"""Per-frame cost of the loop's picture operations on each ``engine.frames`` backend.

Run ``python benchmarks/bench_device_ops.py [--size 512] [--reps 15] [--threads 1]``.
Times, for one frame, the 3D warp (with a depth map), the 2D warp, LAB colour
matching, contrast, a tween and the copy out, on ``NumpyFrames`` (arrays,
OpenCV) and ``TorchFrames`` on CPU tensors, then against CUDA when there is
one ("no CUDA" otherwise).  The sides take turns rep by rep (``timing``); the
table gives each side's median ms with its interquartile range and the
median per-rep ratio numpy / torch (above 1: the torch backend is faster).
CUDA timings synchronise after each operation, so they are the operation's
own time, not the loop's (which queues them without waiting).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import (alternate, paired_ratio, print_table,  # noqa: E402
                    spread, summary)

from engine.frames import NumpyFrames, TorchFrames  # noqa: E402
from engine.motion import Motion  # noqa: E402
from engine.settings import parse_settings  # noqa: E402
from engine.threads import use_threads  # noqa: E402

MOTION = {"3D": dict(translation_z="0:(4)", rotation_3d_y="0:(1.5)", translation_x="0:(2)"),
          "2D": dict(angle="0:(2)", zoom="0:(1.03)", translation_x="0:(1.5)")}


def picture(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (size, size),
                        interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(blocks, (0, 0), 1.5)


def operations(frames, size: int, sync: Callable[[], None]) -> dict[str, Callable[[], object]]:
    """Each operation as the loop calls it on this backend's pictures, then ``sync``."""
    motions = {mode: Motion(parse_settings({"animation_mode": mode, "W": size, "H": size,
                                            "max_frames": 3, **MOTION[mode]}), 3)
               for mode in MOTION}
    image, other = frames.upload(picture(size, 0)), frames.upload(picture(size, 1))
    y, x = np.mgrid[0:size, 0:size] / size
    depth = (1.0 + 0.5 * np.sin(6 * x) * np.cos(4 * y)).astype(np.float32)
    if isinstance(frames, TorchFrames):
        depth = torch.from_numpy(depth).to(frames.device)

    def copy_out() -> object:
        out = frames.to_host(image)
        return out() if callable(out) else out
    ops = {"warp 3D": lambda: frames.warp(motions["3D"], image, 1, depth),
           "warp 2D": lambda: frames.warp(motions["2D"], image, 1, None),
           "colour LAB": lambda: frames.match(image, other, "LAB"),
           "contrast": lambda: frames.contrast(image, 0.97),
           "tween": lambda: frames.tween(other, image, 0.5),
           "copy out": copy_out}
    return {name: (lambda run=run: (run(), sync())) for name, run in ops.items()}


def compare(title: str, sides: dict[str, dict[str, Callable[[], object]]], reps: int) -> None:
    """One table row per operation: each side's median (IQR) ms and the per-rep ratio."""
    (first, a), (second, b) = sides.items()
    rows = []
    for name in a:
        times = alternate({first: a[name], second: b[name]}, reps, warmup=2)
        rows.append([name, spread(summary(times[first])), spread(summary(times[second])),
                     f"{paired_ratio(times[first], times[second]).median:.2f}"])
    print_table(title, ["operation", f"{first} ms", f"{second} ms", f"{first} / {second}"],
                rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    use_threads(args.threads)  # one count, so runs on any machine compare
    none = lambda: None  # noqa: E731
    title = f"{args.size}×{args.size} frame, wall ms per call: median (interquartile range)"
    compare(title, {"numpy": operations(NumpyFrames(), args.size, none),
                    "torch CPU": operations(TorchFrames("cpu"), args.size, none)}, args.reps)
    if not torch.cuda.is_available():
        print("\nno CUDA")
        return
    compare(f"{title}, CUDA {torch.cuda.get_device_name()}",
            {"numpy": operations(NumpyFrames(), args.size, none),
             "torch CUDA": operations(TorchFrames("cuda"), args.size, torch.cuda.synchronize)},
            args.reps)


if __name__ == "__main__":
    main()
