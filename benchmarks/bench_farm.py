"""Wall time of a render plan on a Ray cluster against its shots one after another.

Four shots (seed variations of one 2D settings file, 8 frames at 64², cadence 2, the
tiny model) run as ``python -m engine.farm local`` (the shots one after another) and as
``python -m engine.farm ray`` on a loopback cluster of one head (no CPUs for tasks) and
two worker nodes of one CPU each, separate node processes.  The sides alternate, each
run with a fresh plan and output folder; the cluster is started once and its start-up
is reported apart.  Every engine runs one torch thread.

    python benchmarks/bench_farm.py [--repeats N]

On a machine with two CPU cores, two engines share the same two cores that the
scheduler, the Ray node processes and each task's engine start-up (importing torch,
loading the model) also need, so the plan gains little.  On a GPU cluster each node
renders a shot with its own GPU: shots are independent, so N GPUs finish a plan of at
least N similar shots close to N times sooner, less each task's start-up (process
start and model load, tens of seconds) — small beside a shot that takes minutes.  A
single 2D/3D shot never gets faster: its frames are made one from another, one task.
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
sys.path.insert(0, str(ROOT))

SHOT = {"batch_name": "Bench", "animation_mode": "2D", "max_frames": 8, "W": 64, "H": 64,
        "seed": 5, "steps": 6, "strength_schedule": "0:(0.5)", "diffusion_cadence": 2,
        "translation_x": "0:(2)", "color_coherence": "Match Frame 0 LAB",
        "animation_prompts": {"0": "a red cube", "4": "a blue ball"}}


def engine(*args: str, cwd: Path) -> float:
    """Run ``python ARGS``; its wall time in seconds (fails loudly)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def plan(folder: Path, name: str, model: Path) -> Path:
    settings = folder / "shot.json"
    settings.write_text(json.dumps(SHOT))
    path = folder / f"{name}.json"
    engine("-m", "engine.plan", str(settings), "-o", str(path), "--outdir",
           str(folder / f"{name}-out"), "--model", str(model), "--seeds", "1,2,3,4",
           "--threads", "1", cwd=folder)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"  # the Ray nodes (and so the engines) inherit it
    from ray.cluster_utils import Cluster

    from engine.tiny_model import write_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="bench-farm-"))
    model = write_tiny_model(folder / "tiny", single_file=True)
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        start_up = time.perf_counter() - started
        rows = []
        for n in range(args.repeats):
            for side in ("one after another", "ray, 2 worker nodes"):
                path = plan(folder, f"{'local' if side[0] == 'o' else 'ray'}{n}", model)
                command = ("local", str(path)) if side[0] == "o" else \
                    ("ray", str(path), "--address", cluster.address)
                rows.append((side, engine("-m", "engine.farm", *command, cwd=folder)))
    finally:
        cluster.shutdown()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"4 shots × 8 frames, 64², tiny model; {cores} CPU cores, 1 torch thread per "
          f"engine; cluster start-up {start_up:.1f} s (not counted)")
    print(f"{'run':>3}  {'side':<22} {'wall s':>7}")
    for n, (side, seconds) in enumerate(rows, 1):
        print(f"{n:>3}  {side:<22} {seconds:>7.1f}")
    medians = {side: statistics.median(s for d, s in rows if d == side)
               for side in dict.fromkeys(d for d, _ in rows)}
    for side, seconds in medians.items():
        print(f"median {side:<22} {seconds:>7.1f}")
    local, ray = medians.values()
    print(f"speed-up {local / ray:.2f}×")


if __name__ == "__main__":
    main()
