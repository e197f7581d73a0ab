"""Scene depth for the engine: the add-on's Cycles route against Python ray casting.

The route ``scene_passes.depth.render_depth_frame`` takes (Cycles, 1 centre ray per
pixel, a material override emitting View Z Depth, EXR read back, .npy written)
beside the obvious alternative, ``scene.ray_cast`` per pixel centre from
Python, on the fidelity test's scene. Both give depth along the view axis.
The two take turns frame by frame (after a warm-up frame each) over the same
frames; the table shows ms per frame (median and interquartile range), the
median per-frame ratio and how far the two maps differ where both hit
something. Needs the bpy module (the add-on test venv).

    .venv/bin/python benchmarks/bench_scene_depth.py
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from timing import paired_ratio, print_table, spread, summary, take_turns  # noqa: E402

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


def sides(scene, folder: str, width: int, height: int,
          maps: dict[str, list[np.ndarray]]) -> dict[str, Callable[[], float]]:
    """Each route's call for its next frame (cycling through ``FRAMES``), timing itself.

    The baseline's frame change is outside its clock, as the Cycles route
    changes frames inside its own.
    """
    render_depth_frame = sys.modules[f"{ADDON}.addon.scene_passes.depth"].render_depth_frame
    frames = {"ours": itertools.count(), "baseline": itertools.count()}

    def ours() -> float:
        k = next(frames["ours"])
        started = time.perf_counter()
        path = render_depth_frame(scene, scene.frame_start + k % FRAMES, k, folder)
        seconds = time.perf_counter() - started
        maps["ours"].append(np.load(path))
        return seconds

    def baseline() -> float:
        scene.frame_set(scene.frame_start + next(frames["baseline"]) % FRAMES)
        started = time.perf_counter()
        maps["baseline"].append(ray_cast_depth(scene, width, height))
        return time.perf_counter() - started

    return {"ours": ours, "baseline": baseline}


def row(size: str, times: dict[str, list[float]],
        maps: dict[str, list[np.ndarray]]) -> list[str]:
    """Table cells: both routes' ms, the ratio, and the first frame's agreement."""
    ours, cast = maps["ours"][0], maps["baseline"][0]
    both = np.isfinite(cast) & np.isfinite(ours)
    agree = np.abs(ours[both] - cast[both])
    same = float((np.isfinite(cast) == np.isfinite(ours)).mean())
    return [size, spread(summary(times["ours"]), 1e3, 0),
            spread(summary(times["baseline"]), 1e3, 0),
            spread(paired_ratio(times["baseline"], times["ours"]), 1.0, 1),
            f"{float(np.median(agree)):.1e} / {float(agree.max()):.1e}", f"{same:.2%}"]


def main() -> None:
    addon = Addon()
    rows = []
    try:
        scene, _cam = build_scene()
        threads = (f"{os.cpu_count()} CPUs, Cycles {scene.render.threads} threads, "
                   "ray casts on one Python thread")
        with tempfile.TemporaryDirectory() as tmp:
            for width, height in SIZES:
                scene.render.resolution_x, scene.render.resolution_y = width, height
                maps: dict[str, list[np.ndarray]] = {"ours": [], "baseline": []}
                times = take_turns(sides(scene, tmp, width, height, maps), FRAMES)
                rows.append(row(f"{width}×{height}", times, maps))
    finally:
        addon.close()
    print_table(f"ms per frame, median (interquartile range) of {FRAMES} frames per route, "
                "taking turns after a warm-up frame each",
                ["size", "Cycles route (ours)", "ray_cast per pixel (baseline)", "ratio",
                 "median / max |difference| (m)", "same hit/sky"], rows, threads=threads)


if __name__ == "__main__":
    main()
