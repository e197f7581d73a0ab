"""Per-frame cost of the loop's picture operations on each ``engine.frames`` backend.

Run ``python benchmarks/bench_device_ops.py [--size 512] [--repeats 15] [--threads N]``.
Times, for one frame, the 3D warp (with a depth map), the 2D warp, LAB colour
matching, contrast, a tween and the copy out, on ``NumpyFrames`` (arrays,
OpenCV) and ``TorchFrames`` on CPU tensors, then on CUDA when there is one
("no CUDA" otherwise).  The two sides alternate rep by rep so that a busy
machine slows both alike; each row gives the median and the spread (min–max)
in milliseconds.  CUDA timings synchronise after each operation, so they are
the operation's own time, not the loop's (which queues them without waiting).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.frames import NumpyFrames, TorchFrames  # noqa: E402
from engine.settings import parse_settings  # noqa: E402
from engine.motion import Motion  # noqa: E402

MOTION = {"3D": dict(translation_z="0:(4)", rotation_3d_y="0:(1.5)", translation_x="0:(2)"),
          "2D": dict(angle="0:(2)", zoom="0:(1.03)", translation_x="0:(1.5)")}


def picture(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (size, size),
                        interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(blocks, (0, 0), 1.5)


def operations(frames, size: int) -> dict[str, Callable[[], object]]:
    """Each operation as the loop calls it, on this backend's pictures."""
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
    return {"warp 3D": lambda: frames.warp(motions["3D"], image, 1, depth),
            "warp 2D": lambda: frames.warp(motions["2D"], image, 1, None),
            "colour LAB": lambda: frames.match(image, other, "LAB"),
            "contrast": lambda: frames.contrast(image, 0.97),
            "tween": lambda: frames.tween(other, image, 0.5),
            "copy out": copy_out}


def timed(run: Callable[[], object], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    sync()
    return 1000.0 * (time.perf_counter() - start)


def compare(sides: dict[str, tuple], repeats: int) -> None:
    """Alternate the sides rep by rep; print each operation's median and spread per side."""
    names = list(next(iter(sides.values()))[0])
    times = {side: {n: [] for n in names} for side in sides}
    for ops, sync in sides.values():  # warm-up: lazy imports, colour tables, kernels
        for run in ops.values():
            run()
        sync()
    for _ in range(repeats):
        for side, (ops, sync) in sides.items():
            for name in names:
                times[side][name].append(timed(ops[name], sync))
    print(f"{'operation':12}" + "".join(f"{side:>28}" for side in sides))
    for name in names:
        cells = [f"{statistics.median(t):9.2f} ms ({min(t):.2f}–{max(t):.2f})"
                 for t in (times[side][name] for side in sides)]
        print(f"{name:12}" + "".join(f"{c:>28}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"{args.size}×{args.size} frame, {args.repeats} reps, {args.threads} CPU threads "
          f"(torch and OpenCV), torch {torch.__version__}")
    none = lambda: None  # noqa: E731
    compare({"numpy (CPU)": (operations(NumpyFrames(), args.size), none),
             "torch (CPU)": (operations(TorchFrames("cpu"), args.size), none)}, args.repeats)
    if not torch.cuda.is_available():
        print("no CUDA")
        return
    print(f"\nCUDA: {torch.cuda.get_device_name()}")
    compare({"numpy (CPU)": (operations(NumpyFrames(), args.size), none),
             "torch (CUDA)": (operations(TorchFrames("cuda"), args.size),
                              torch.cuda.synchronize)}, args.repeats)


if __name__ == "__main__":
    main()
