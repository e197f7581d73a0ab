"""Per-frame cost of the engine's image operations next to straightforward baselines.

Run ``python benchmarks/bench_ops.py``.  Prints median milliseconds per
512×512 frame (and per 10 000-frame camera bake), each beside a plain
implementation of the same result measured in the same run; ratio =
baseline / ours, so above 1 means the engine is faster.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine.color import match_colors  # noqa: E402
from engine.warp import matrix_2d, warp_2d, warp_3d  # noqa: E402

SIZE = 512
MOTION_3D = dict(translation=(6.0, -3.0, 10.0), rotation=(1.5, -2.0, 3.0), fov=40.0)


def median_ms(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: lazy imports, caches, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def test_frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    blocks = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (SIZE, SIZE),
                        interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(blocks, (0, 0), 1.5)


def depth_map() -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return (1.0 + 2.0 * (0.5 + 0.5 * np.sin(6 * x) * np.cos(4 * y))).astype(np.float32)


# ------------------------------------------------------------------ baselines

def rotation_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    a, b, c = map(math.radians, (rx, ry, rz))
    rot_x = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rot_y = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rot_z = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rot_x @ rot_y @ rot_z


def baseline_warp_3d(image, depth, translation, rotation, fov, sampling, model):
    """Deforum's formula (or the pinhole one) the way the reference code writes it."""
    h, w = image.shape[:2]
    k11 = 1.0 / math.tan(math.radians(fov) / 2.0)
    k00 = k11 / (w / h)
    tx, ty, tz = (v / 200.0 for v in translation)
    rot = torch.tensor(rotation_xyz(*rotation), dtype=torch.float32)
    z = torch.from_numpy(depth).reshape(-1)
    base = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)
    if model == "deforum":
        y, x = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        points = torch.stack([x.reshape(-1), y.reshape(-1), z], dim=1)
        moved = points @ rot + torch.tensor([-tx, ty, -tz])
        old = torch.stack([k00 * points[:, 0] / z, k11 * points[:, 1] / z], dim=1)
        new = torch.stack([k00 * moved[:, 0] / moved[:, 2], k11 * moved[:, 1] / moved[:, 2]], 1)
        grid = base - (new - old).reshape(1, h, w, 2)
    else:
        centres = base.reshape(-1, 2)
        points = torch.stack([centres[:, 0] * z / k00, centres[:, 1] * z / k11, z], dim=1)
        old = (points + torch.tensor([tx, -ty, tz])) @ rot.T
        grid = torch.stack([k00 * old[:, 0] / old[:, 2], k11 * old[:, 1] / old[:, 2]], 1)
        grid = grid.reshape(1, h, w, 2)
    source = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    out = F.grid_sample(source, grid, mode=sampling, padding_mode="border", align_corners=False)
    return out[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def baseline_warp_2d(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Per-pixel inverse map in NumPy, then cv2.remap."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    src = np.linalg.inv(matrix) @ np.stack([x.ravel(), y.ravel(), np.ones(h * w)])
    map_x = (src[0] / src[2]).reshape(h, w).astype(np.float32)
    map_y = (src[1] / src[2]).reshape(h, w).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def baseline_match_colors(image: np.ndarray, reference: np.ndarray, space: str) -> np.ndarray:
    """skimage.exposure.match_histograms' unique-based algorithm, per channel."""
    codes = {"LAB": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB),
             "HSV": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)}.get(space)
    src = image if codes is None else cv2.cvtColor(image, codes[0])
    ref = reference if codes is None else cv2.cvtColor(reference, codes[0])
    out = np.empty_like(src)
    for c in range(3):
        values, inverse, counts = np.unique(src[..., c].ravel(), return_inverse=True,
                                            return_counts=True)
        ref_values, ref_counts = np.unique(ref[..., c].ravel(), return_counts=True)
        mapped = np.interp(np.cumsum(counts) / src[..., c].size,
                           np.cumsum(ref_counts) / ref[..., c].size, ref_values)
        out[..., c] = np.rint(mapped[inverse]).reshape(src.shape[:2])
    return out if codes is None else cv2.cvtColor(out, codes[1])


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


# ---------------------------------------------------------------------- main

def main() -> None:
    image, depth = test_frame(), depth_map()
    reference = cv2.convertScaleAbs(test_frame()[::-1], alpha=1.2, beta=-15)
    rows: list[tuple[str, float, float, str]] = []

    m2 = dict(angle=2.0, zoom=1.04, translation_x=3.0, translation_y=-2.0)
    matrix = matrix_2d(SIZE, SIZE, **m2)
    agree = np.abs(warp_2d(image, **m2).astype(int) - baseline_warp_2d(image, matrix)).max()
    rows.append(("warp_2d", median_ms(lambda: warp_2d(image, **m2), 30),
                 median_ms(lambda: baseline_warp_2d(image, matrix), 10),
                 f"numpy map + cv2.remap; max diff {agree}"))

    for model in ("deforum", "pinhole"):
        for sampling in ("bicubic", "bilinear", "nearest"):
            def ours() -> np.ndarray:
                return warp_3d(image, depth, sampling_mode=sampling, warp_model=model,
                               **MOTION_3D)

            def base() -> np.ndarray:
                return baseline_warp_3d(image, depth, MOTION_3D["translation"],
                                        MOTION_3D["rotation"], MOTION_3D["fov"], sampling,
                                        model)

            within = np.mean(np.abs(ours().astype(int) - base()) <= 1)
            rows.append((f"warp_3d {model} {sampling}", median_ms(ours, 15),
                         median_ms(base, 10),
                         f"torch grid_sample; {100 * within:.2f}% within 1"))

    for mode in ("LAB", "HSV", "RGB"):
        same = np.array_equal(match_colors(image, reference, mode),
                              baseline_match_colors(image, reference, mode))
        rows.append((f"match_colors {mode}",
                     median_ms(lambda: match_colors(image, reference, mode), 20),
                     median_ms(lambda: baseline_match_colors(image, reference, mode), 10),
                     "np.unique matching; " + ("identical" if same else "DIFFERENT")))

    try:
        from engine.camera import matrices_to_schedules
    except ImportError as error:
        print(f"(bake row skipped: engine.camera.matrices_to_schedules unavailable: {error})")
    else:
        matrices, fovs = camera_path(10_000)
        same = same_schedules(matrices_to_schedules(matrices, fovs),
                              baseline_bake(matrices, fovs))
        rows.append(("bake 10 000 camera frames",
                     median_ms(lambda: matrices_to_schedules(matrices, fovs), 5),
                     median_ms(lambda: baseline_bake(matrices, fovs), 3),
                     "per-frame loop; " + ("same values" if same else "DIFFERENT values")))

    print(f"{SIZE}×{SIZE} frames, {os.cpu_count()} CPUs, torch threads "
          f"{torch.get_num_threads()}, median ms")
    print(f"{'operation':<28}{'ours':>9}{'baseline':>10}{'ratio':>8}  baseline / check")
    for name, ours_ms, base_ms, note in rows:
        print(f"{name:<28}{ours_ms:>9.2f}{base_ms:>10.2f}{base_ms / ours_ms:>8.2f}  {note}")


if __name__ == "__main__":
    main()
