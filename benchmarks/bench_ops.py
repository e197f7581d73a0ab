"""Per-frame cost of the engine's image operations next to Deforum's own way of computing them.

    python benchmarks/bench_ops.py [--threads 1] [--reps 25] [--processes 4] [--clock cpu|wall]

Needs scikit-image for the colour baseline, a benchmark-only dependency:
``.venv/bin/pip install -r benchmarks/requirements.txt``.

Every row's engine call ("ours") and baseline take turns rep by rep, all rows
in one alternated sequence (after a warm-up of each), in several fresh
processes one after another whose samples are pooled; torch and OpenCV are
pinned to ``--threads`` threads (default 1) on both sides so runs on any
machine compare.  The clock is the process's CPU time by default (all its
threads summed): with one thread that is the elapsed time of an otherwise idle
machine, and time other processes hold the core does not count; ``--clock
wall`` reads elapsed time.  It prints the median ms per 512×512 frame (per
10 000-frame camera bake) with the interquartile range, and the median of the
per-rep ratios baseline / ours: above 1 means the engine is faster.

The baselines are Deforum's (sd-webui-deforum's) computations re-implemented
in ``webui_ops.py``; the pinhole warp, which Deforum lacks, is timed against
Deforum's 3D warp and checked against a plain pinhole reprojection; the
bake's baseline is a plain per-frame loop (Deforum has no camera bake).  Each
row says how far the two results agree.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import webui_ops  # noqa: E402
from timing import (alternate, in_fresh_processes, paired_ratio,  # noqa: E402
                    print_table, spread, summary)

from engine.color import match_colors  # noqa: E402
from engine.threads import use_threads  # noqa: E402
from engine.warp import warp_2d, warp_3d  # noqa: E402

SIZE = 512
MOTION_2D = dict(angle=2.0, zoom=1.04, translation_x=3.0, translation_y=-2.0)
MOTION_3D = dict(translation=(6.0, -3.0, 10.0), rotation=(1.5, -2.0, 3.0), fov=40.0)
BAKE_FRAMES = 10_000
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


@dataclass(frozen=True)
class Case:
    """One operation: the engine's call, the baseline's call, how far their results agree."""

    name: str
    ours: Callable[[], object]
    baseline: Callable[[], object]
    note: str


Samples = dict[str, dict[str, list[float]]]  # case → side ("ours", "baseline") → seconds


def measure(cases: list[Case], reps: int, clock: Callable[[], float]) -> Samples:
    """Time every case's two sides in one alternated sequence.

    One sequence (A₁ B₁ A₂ B₂ …, then back) rather than case after case: each
    case's samples then spread over the whole run, so a neighbour's load that
    comes and goes weighs on every row alike, and each pair stays adjacent.
    """
    sides = {(case.name, side): run for case in cases
             for side, run in (("ours", case.ours), ("baseline", case.baseline))}
    samples = alternate(sides, reps, warmup=2, clock=clock)
    return {case.name: {side: samples[case.name, side] for side in ("ours", "baseline")}
            for case in cases}


def table_rows(notes: dict[str, str], samples: Samples) -> list[list[str]]:
    """One table row per case: both sides' ms, the per-rep ratio, the agreement."""
    rows = []
    for name, note in notes.items():
        ours, baseline = samples[name]["ours"], samples[name]["baseline"]
        rows.append([name, spread(summary(ours)), spread(summary(baseline)),
                     spread(paired_ratio(baseline, ours), 1.0), note])
    return rows


def test_frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    blocks = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (SIZE, SIZE),
                        interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(blocks, (0, 0), 1.5)


def depth_map() -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return (1.0 + 2.0 * (0.5 + 0.5 * np.sin(6 * x) * np.cos(4 * y))).astype(np.float32)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def within_one(a: np.ndarray, b: np.ndarray) -> float:
    """Percentage of values that differ by at most one level."""
    return 100.0 * float(np.mean(np.abs(a.astype(int) - b.astype(int)) <= 1))


def over_one(a: np.ndarray, b: np.ndarray) -> int:
    """How many values differ by more than one level."""
    return int(np.count_nonzero(np.abs(a.astype(int) - b.astype(int)) > 1))


def rounded_match(image: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
    """Deforum's colour match with scikit-image's values rounded instead of truncated."""
    from skimage.exposure import match_histograms

    codes = {"LAB": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
             "HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)}.get(mode)
    src = image if codes is None else cv2.cvtColor(image, codes[0])
    ref = reference if codes is None else cv2.cvtColor(reference, codes[0])
    out = np.stack([np.rint(match_histograms(src[..., c], ref[..., c])) for c in range(3)],
                   axis=-1).astype(np.uint8)
    return out if codes is None else cv2.cvtColor(out, codes[1])


# ------------------------------------------------------------- pinhole reference

def reference_pinhole(image: np.ndarray, depth: np.ndarray, sampling: str) -> np.ndarray:
    """Plain pinhole reprojection (unproject, move into the old camera, project),
    for checking the engine's pinhole warp: Deforum has no pinhole model."""
    h, w = image.shape[:2]
    k11 = 1.0 / math.tan(math.radians(MOTION_3D["fov"]) / 2.0)
    k00 = k11 / (w / h)
    tx, ty, tz = (v / 200.0 for v in MOTION_3D["translation"])
    rot = webui_ops._euler_xyz([math.radians(v) for v in MOTION_3D["rotation"]])
    z = torch.from_numpy(depth).reshape(-1)
    centres = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)
    centres = centres.reshape(-1, 2)
    points = torch.stack([centres[:, 0] * z / k00, centres[:, 1] * z / k11, z], dim=1)
    old = (points + torch.tensor([tx, -ty, tz])) @ rot.T
    grid = torch.stack([k00 * old[:, 0] / old[:, 2], k11 * old[:, 1] / old[:, 2]], 1)
    source = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.grid_sample(source, grid.reshape(1, h, w, 2), mode=sampling, padding_mode="border",
                        align_corners=False)
    return out[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


# ----------------------------------------------------------------- camera bake

def camera_path(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Blender camera-to-world matrices of a slow orbit with bobbing and roll."""
    t = np.linspace(0.0, 8.0 * math.pi, frames)
    yaw, pitch, roll = t, 0.3 * np.sin(0.7 * t), 0.1 * np.sin(1.3 * t)
    matrices = np.tile(np.eye(4), (frames, 1, 1))
    for i in range(frames):
        cz, sz, cx, sx = math.cos(yaw[i]), math.sin(yaw[i]), math.cos(pitch[i] + 1.4), \
            math.sin(pitch[i] + 1.4)
        cr, sr = math.cos(roll[i]), math.sin(roll[i])
        turn = (np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
                @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
                @ np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]))
        matrices[i, :3, :3] = turn
        matrices[i, :3, 3] = (6 * math.cos(t[i]), 6 * math.sin(t[i]), 1.5 + 0.2 * t[i])
    return matrices, 40.0 + 10.0 * np.sin(0.5 * t)


def baseline_bake(matrices: np.ndarray, fovs: np.ndarray) -> dict[str, str]:
    """Frame-by-frame loop: relative pose, XYZ angles, schedule text."""
    def number(v: float) -> str:
        text = f"{v:.10f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text

    columns: dict[str, list[str]] = {k: ["0:(0)"] for k in (
        "translation_x", "translation_y", "translation_z",
        "rotation_3d_x", "rotation_3d_y", "rotation_3d_z")}
    columns["fov"] = [f"0:({number(fovs[0])})"]
    for k in range(1, len(matrices)):
        prev = matrices[k - 1, :3, :3] / np.linalg.norm(matrices[k - 1, :3, :3], axis=0)
        cur = matrices[k, :3, :3] / np.linalg.norm(matrices[k, :3, :3], axis=0)
        moved = cur.T @ (matrices[k, :3, 3] - matrices[k - 1, :3, 3])
        q = prev.T @ cur
        a = math.atan2(-q[1, 2], q[2, 2])
        b = math.atan2(q[0, 2], math.hypot(q[1, 2], q[2, 2]))
        c = math.atan2(math.cos(a) * q[1, 0] + math.sin(a) * q[2, 0],
                       math.cos(a) * q[1, 1] + math.sin(a) * q[2, 1])
        values = (200 * moved[0], 200 * moved[1], -200 * moved[2],
                  math.degrees(a), -math.degrees(b), -math.degrees(c), fovs[k])
        for column, value in zip(columns.values(), values):
            column.append(f"{k}:({number(value)})")
    return {key: ", ".join(parts) for key, parts in columns.items()}


def same_schedules(ours: dict[str, str], theirs: dict[str, str]) -> bool:
    def numbers(text: str) -> np.ndarray:
        return np.array([float(part.split(":(")[1].rstrip(")")) for part in text.split(", ")])

    return ours.keys() == theirs.keys() and all(
        np.allclose(numbers(ours[k]), numbers(theirs[k]), atol=1e-7) for k in ours)


# ------------------------------------------------------------------------ rows

def warp_cases(image: np.ndarray, depth: np.ndarray) -> list[Case]:
    diff = max_diff(warp_2d(image, **MOTION_2D), webui_ops.warp_2d(image, **MOTION_2D))
    cases = [Case("warp_2d", lambda: warp_2d(image, **MOTION_2D),
                  lambda: webui_ops.warp_2d(image, **MOTION_2D),
                  f"Deforum's matrix + cv2.warpPerspective; max diff {diff}")]
    for model in ("deforum", "pinhole"):
        for sampling in ("bicubic", "bilinear", "nearest"):
            def ours(model: str = model, sampling: str = sampling) -> np.ndarray:
                return warp_3d(image, depth, sampling_mode=sampling, warp_model=model,
                               **MOTION_3D)

            def theirs(sampling: str = sampling) -> np.ndarray:
                return webui_ops.warp_3d(image, depth, sampling_mode=sampling, **MOTION_3D)

            if model == "deforum":
                mine, check = ours(), theirs()
                note = (f"Deforum's cameras + grid_sample; max diff {max_diff(mine, check)}, "
                        f"{over_one(mine, check)} values over 1 (it truncates, we round"
                        + ("; nearest: the other neighbour where a sample lands on a pixel "
                           "boundary)" if sampling == "nearest" else ")"))
            else:
                check = reference_pinhole(image, depth, sampling)
                note = ("Deforum's 3D warp (it has no pinhole model); vs plain pinhole "
                        f"reprojection {within_one(ours(), check):.2f}% within 1")
            cases.append(Case(f"warp_3d {model} {sampling}", ours, theirs, note))
    return cases


def colour_cases(image: np.ndarray, reference: np.ndarray) -> list[Case]:
    cases = []
    for mode in ("LAB", "HSV", "RGB"):
        ours = match_colors(image, reference, mode)
        same = np.array_equal(ours, rounded_match(image, reference, mode))
        diff = max_diff(ours, webui_ops.match_colors(image, reference, mode))
        cases.append(Case(f"match_colors {mode}",
                          lambda mode=mode: match_colors(image, reference, mode),
                          lambda mode=mode: webui_ops.match_colors(image, reference, mode),
                          "cv2 + skimage match_histograms; "
                          + ("identical" if same else "DIFFERENT")
                          + f" to its values rounded (it truncates: max diff {diff})"))
    return cases


def bake_case() -> Case:
    from engine.camera import matrices_to_schedules

    matrices, fovs = camera_path(BAKE_FRAMES)
    same = same_schedules(matrices_to_schedules(matrices, fovs), baseline_bake(matrices, fovs))
    return Case("bake 10 000 camera frames", lambda: matrices_to_schedules(matrices, fovs),
                lambda: baseline_bake(matrices, fovs),
                "per-frame loop (not Deforum's: it has no bake); "
                + ("same values" if same else "DIFFERENT values"))


# ------------------------------------------------------------------------ main

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and OpenCV threads on both sides (default 1)")
    parser.add_argument("--reps", type=int, default=25,
                        help="alternated reps of every row in each process (default 25)")
    parser.add_argument("--processes", type=int, default=4,
                        help="fresh processes measured one after another (default 4)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default; other processes "
                             "taking the core do not count), wall: elapsed time")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def worker(args: argparse.Namespace) -> None:
    """Measure every case in this process; print the agreement notes and samples as JSON."""
    image, depth = test_frame(), depth_map()
    reference = cv2.convertScaleAbs(test_frame()[::-1], alpha=1.2, beta=-15)
    cases = [*warp_cases(image, depth), *colour_cases(image, reference), bake_case()]
    samples = measure(cases, args.reps, CLOCKS[args.clock])
    print(json.dumps({"notes": {case.name: case.note for case in cases}, "samples": samples}))


def main() -> None:
    args = parse_args()
    use_threads(args.threads)  # one count, so runs on any machine compare
    if args.worker:
        worker(args)
        return
    results = in_fresh_processes(__file__, ["--worker", "--threads", str(args.threads),
                                            "--reps", str(args.reps), "--clock", args.clock],
                                 args.processes)
    pooled = {name: {side: [t for result in results for t in result["samples"][name][side]]
                     for side in ("ours", "baseline")} for name in results[0]["notes"]}
    print_table(f"{SIZE}×{SIZE} frames, {args.clock} ms per call: median (interquartile "
                f"range) of {args.processes} processes × {args.reps} reps, all rows "
                "alternated in one sequence; ratio: median of the per-rep baseline / ours",
                ["operation", "ours ms", "baseline ms", "ratio", "baseline; agreement"],
                table_rows(results[0]["notes"], pooled))


if __name__ == "__main__":
    main()
