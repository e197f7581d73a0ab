"""Scene flow against estimated flow, on the Cycles fidelity scene with a moving ball.

The camera trucks, rises and pans while the ball moves on its own (frames 1…3,
linear keys, so frame 2 is the true in-between). For the flow frame 1 → 2: the
mean end-point error against Blender's Vector pass (on every surface pixel whose
point stays in the picture; the pass has no motion for sky) of OpenCV's DIS
Medium, DIS Fine and Farneback and of the add-on's scene flow, and the time each
takes. Then the cadence tween: frames 1 and 3 moved half-way along the flow
between them (estimated from the two pictures, or the scene's two steps chained)
and blended, against the rendered frame 2 (PSNR over the whole picture, and away
from silhouettes and the border), beside plain blending. The scene flow is tweened
twice: along its forward flow alone (``scene_flow.meet``), and occlusion-aware with
the backward flow and the depth (``scene_tween``), which is what the engine does
with the add-on's files. Needs the bpy module (the same venv as the add-on tests).

Measured (160×120, bpy 5.0.1, shared 2-CPU machine):

| flow | mean EPE (px) | tween PSNR (dB) | PSNR away from silhouettes and borders (dB) |
|---|---:|---:|---:|
| DIS Medium | 0.796 | 47.26 | 57.77 |
| DIS Fine | 0.830 | 47.14 | 58.24 |
| Farneback | 1.639 | 46.61 | 52.19 |
| scene flow, forward only | 0.000 | 41.80 | 54.01 |
| scene flow, occlusion-aware | 0.000 | 47.54 | 58.00 |
| plain blending | — | 33.52 | 39.20 |

    .venv/bin/python benchmarks/bench_scene_flow.py
"""

from __future__ import annotations

import importlib
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.blender.helpers import ADDON, Addon  # noqa: E402  (before bpy: hermetic environment)
from tests.blender.fidelity_scene import SAMPLES, SIZE, build_flow_scene  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine.flow import estimate, warp  # noqa: E402
from engine.scene_flow import chain, meet  # noqa: E402
from engine.scene_tween import occlusion_tween  # noqa: E402

METHODS = ("DIS Medium", "DIS Fine", "Farneback")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def blend(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.rint(0.5 * a.astype(np.float32) + 0.5 * b.astype(np.float32)).astype(np.uint8)


def render(folder: Path):
    """The three colour frames and the add-on's flows of frames 1, 2, 3, with seconds."""
    passes = f"{ADDON}.addon.scene_passes"
    colour = importlib.import_module(f"{passes}.colour")
    flow = importlib.import_module(f"{passes}.flow")
    scene, _cam, _ball = build_flow_scene(SIZE, SAMPLES)
    colour_pass = colour.colour_pass(scene, folder / "colour")
    colour_pass.run()
    if colour_pass.error:
        raise RuntimeError(colour_pass.error)
    images = [cv2.imread(str(folder / "colour" / f"{k:05d}.png"))[..., ::-1] for k in range(3)]
    started = time.perf_counter()
    steps = [flow.flow_frame(scene, 1 + k, k, folder / "flow") for k in range(3)]
    return images, steps, (time.perf_counter() - started) / 3


def _away_from_edges(depth: np.ndarray, reach: int = 3) -> np.ndarray:
    """Pixels over ``reach`` px from a depth jump (where one surface hides another) and
    from the picture's border (where new scene comes in)."""
    near = np.log(np.minimum(depth, 1e6))
    jumps = (np.abs(cv2.Sobel(near, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(near, cv2.CV_32F, 0, 1))
             > 0.2).astype(np.uint8)
    clear = cv2.dilate(jumps, np.ones((2 * reach + 1,) * 2, np.uint8)) == 0
    clear[:2 * reach], clear[-2 * reach:], clear[:, :2 * reach], clear[:, -2 * reach:] = (False,) * 4
    return clear


def measure(folder: Path) -> list[tuple[str, float, float, float, float]]:
    """(flow, mean EPE px, tween PSNR dB, the same away from silhouettes and borders,
    seconds per flow) rows; plain blending last."""
    images, steps, scene_seconds = render(folder)
    truth = steps[0].ahead.vectors
    height, width = truth.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    lands = ((x + truth[..., 0] >= 0) & (x + truth[..., 0] <= width - 1)
             & (y + truth[..., 1] >= 0) & (y + truth[..., 1] <= height - 1))
    judged = lands & np.isfinite(steps[0].depth)
    clear = _away_from_edges(steps[0].depth)

    def row(name, step, whole, seconds, tween=None):
        epe = float(np.hypot(*(step - truth)[judged].T).mean())
        tween = blend(*(tween or (warp(images[0], whole, 0.5), warp(images[2], whole, -0.5))))
        return name, epe, psnr(tween, images[1]), psnr(tween[clear], images[1][clear]), seconds

    rows = []
    for method in METHODS:
        started = time.perf_counter()
        step = estimate(images[0], images[1], method)
        seconds = time.perf_counter() - started
        rows.append(row(method, step, estimate(images[0], images[2], method), seconds))
    whole = chain([s.ahead.flow for s in steps[:2]])
    ahead = chain([s.ahead.flow for s in steps[:2]], depths=[s.depth for s in steps[:2]])
    back = chain([steps[2].back.flow, steps[1].back.flow],
                 depths=[steps[2].depth, steps[1].depth])
    forward_only = meet(images[0], images[2], whole, 0.5, 1.0)
    rows.append(row("scene flow, forward only", steps[0].ahead.flow, whole, scene_seconds,
                    forward_only))
    aware = occlusion_tween(images[0], images[2], ahead, back, (steps[0].depth, steps[2].depth),
                            0.5, 1.0, forward_only)
    rows.append(row("scene flow, occlusion-aware", steps[0].ahead.flow, whole, scene_seconds,
                    aware))
    plain = blend(images[0], images[2])
    rows.append(("plain blending", math.nan, psnr(plain, images[1]),
                 psnr(plain[clear], images[1][clear]), 0.0))
    return rows


def table(rows) -> str:
    lines = ["| flow | mean EPE vs Vector pass (px) | cadence tween PSNR (dB) | tween PSNR "
             "away from silhouettes and borders (dB) | s per flow |", "|---|---:|---:|---:|---:|"]
    for name, epe, tween, clear, seconds in rows:
        error = "—" if math.isnan(epe) else f"{epe:.3f}"
        lines.append(f"| {name} | {error} | {tween:.2f} | {clear:.2f} | {seconds:.3f} |")
    return "\n".join(lines)


def main() -> None:
    addon = Addon()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            rows = measure(Path(tmp))
            seconds = time.perf_counter() - started
    finally:
        addon.close()
    print(f"{SIZE[0]}×{SIZE[1]}, Cycles {SAMPLES} samples (colour) / 1 centre ray (flow), "
          f"{seconds:.1f} s in all\n")
    print(table(rows))


if __name__ == "__main__":
    main()
