"""What the farm tests share: a plan of small shots with the tiny model, runs of the
plan's command lines, and frame comparisons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMESTRING = "20260101000000"

SHOT_2D = {"batch_name": "Farm", "animation_mode": "2D", "max_frames": 8, "W": 64, "H": 64,
           "seed": 5, "steps": 6, "strength_schedule": "0:(0.5)", "diffusion_cadence": 2,
           "translation_x": "0:(2)", "angle": "0:(1)", "color_coherence": "Match Frame 0 LAB",
           "animation_prompts": {"0": "a red cube", "4": "a blue ball"}}
SHOT_INTERPOLATION = {"batch_name": "Morph", "animation_mode": "Interpolation", "W": 64,
                      "H": 64, "seed": 5, "steps": 4, "seed_behavior": "fixed",
                      "interpolate_key_frames": True,
                      "animation_prompts": {"0": "a red cube", "5": "a blue ball"}}


def engine_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **extra}


def python(*args: str, cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``python ARGS`` with the engine importable; output captured as text."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=engine_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def write_settings(folder: Path, name: str, data: dict) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def make_plan(folder: Path, settings: list[Path], name: str, *options: str) -> Path:
    """``python -m engine.plan`` into ``folder/name.json``, output in ``folder/name-out``."""
    plan = folder / f"{name}.json"
    done = python("-m", "engine.plan", *map(str, settings), "-o", str(plan), "--outdir",
                  str(folder / f"{name}-out"), "--timestring", TIMESTRING, "--threads", "1",
                  *options, cwd=folder)
    assert done.returncode == 0, done.stderr
    return plan


def frames(outdir: Path) -> dict[str, bytes]:
    """Every frame under ``outdir`` by its path relative to it."""
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*.png"))}
