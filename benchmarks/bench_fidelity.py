"""Scene-depth fidelity table: PSNR of frame i warped into i+1 against Blender's frame i+1.

Per camera move, on the pixels both frames see: the pinhole warp with frame
i+1's scene depth (what the engine does with depth_source = scene), the
pinhole warp with frame i's depth, and Deforum's formula. Needs the bpy
module (the same venv as the add-on tests).

    .venv/bin/python benchmarks/bench_fidelity.py [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.blender.helpers import Addon  # noqa: E402  (before bpy: hermetic environment)
from tests.blender.fidelity_scene import SAMPLES, SIZE, build_scene, measure, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="keep the rendered frames and depth here")
    args = parser.parse_args()
    addon = Addon()
    try:
        build_scene()
        started = time.perf_counter()
        rows = measure(args.keep)
        seconds = time.perf_counter() - started
    finally:
        addon.close()
    print(f"{SIZE[0]}×{SIZE[1]}, Cycles {SAMPLES} samples (colour) / 1 centre ray (depth), "
          f"{len(rows)} moves in {seconds:.1f} s\n")
    print(table(rows))


if __name__ == "__main__":
    main()
