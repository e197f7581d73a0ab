"""Scene depth for the engine: the add-on's Cycles route against Python ray casting.

The route ``scene_passes.depth.render_depth_frame`` takes (Cycles, 1 centre ray per
pixel, a material override emitting View Z Depth, EXR read back, .npy written)
beside the obvious alternative, ``scene.ray_cast`` per pixel centre from
Python, on the fidelity test's scene. Both give depth along the view axis;
the table shows ms per frame, the ratio and how far the two maps differ where
both hit something. Needs the bpy module (the add-on test venv).

    .venv/bin/python benchmarks/bench_scene_depth.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.blender.helpers import ADDON, Addon  # noqa: E402  (before bpy: hermetic)
from tests.blender.fidelity_scene import build_scene  # noqa: E402

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402

SIZES = ((128, 96), (512, 384))
FRAMES = 4


def ray_cast_depth(scene, width: int, height: int) -> np.ndarray:
    """View-axis depth per pixel centre by ``scene.ray_cast`` (inf where nothing is hit)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    cam = scene.camera.evaluated_get(depsgraph)
    world = cam.matrix_world
    origin = world.translation
    forward = (world.to_3x3() @ Vector((0.0, 0.0, -1.0))).normalized()
    # view_frame: the corners of the image plane in camera space (top-right,
    # bottom-right, bottom-left, top-left), all at one depth z < 0.
    top_right, _, bottom_left, _ = cam.data.view_frame(scene=scene)
    plane = top_right.z
    depth = np.full((height, width), np.inf, dtype=np.float32)
    rotation = world.to_3x3()
    for row in range(height):
        y = top_right.y + (bottom_left.y - top_right.y) * (row + 0.5) / height
        for col in range(width):
            x = bottom_left.x + (top_right.x - bottom_left.x) * (col + 0.5) / width
            direction = (rotation @ Vector((x, y, plane))).normalized()
            hit, location, *_ = scene.ray_cast(depsgraph, origin, direction)
            if hit:
                depth[row, col] = (location - origin).dot(forward)
    return depth


def main() -> None:
    addon = Addon()
    rows = []
    try:
        scene, _cam = build_scene()
        render_depth_frame = sys.modules[f"{ADDON}.addon.scene_passes.depth"].render_depth_frame
        with tempfile.TemporaryDirectory() as tmp:
            for width, height in SIZES:
                scene.render.resolution_x, scene.render.resolution_y = width, height
                ours, ours_maps = [], []
                for k in range(FRAMES):
                    started = time.perf_counter()
                    path = render_depth_frame(scene, scene.frame_start + k, k, tmp)
                    ours.append(time.perf_counter() - started)
                    ours_maps.append(np.load(path))
                scene.frame_set(scene.frame_start)
                started = time.perf_counter()
                cast = ray_cast_depth(scene, width, height)
                baseline = time.perf_counter() - started
                both = np.isfinite(cast) & np.isfinite(ours_maps[0])
                agree = np.abs(ours_maps[0][both] - cast[both])
                rows.append((f"{width}×{height}", statistics.median(ours) * 1e3,
                             baseline * 1e3, float(np.median(agree)), float(agree.max()),
                             float((np.isfinite(cast) == np.isfinite(ours_maps[0])).mean())))
    finally:
        addon.close()
    print(f"\nms per frame, median of {FRAMES} frames for ours, 1 frame for the baseline\n")
    print("| size | Cycles route (ours) | ray_cast per pixel (baseline) | ratio | "
          "median / max |difference| (m) | same hit/sky |")
    print("|---|---:|---:|---:|---:|---:|")
    for size, ours_ms, base_ms, median, worst, same in rows:
        print(f"| {size} | {ours_ms:.0f} | {base_ms:.0f} | {base_ms / ours_ms:.1f} | "
              f"{median:.1e} / {worst:.1e} | {same:.2%} |")


if __name__ == "__main__":
    main()
