"""Start the real engine, SIGKILL it at a chosen moment, resume it and compare frames.

Shared by ``tests/engine/test_kill_resume.py`` and ``benchmarks/bench_reliability.py``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.output import PAUSE_VARIABLE, TEMP_MARK, frame_path

ROOT = Path(__file__).resolve().parents[2]
# 2D with cadence 2 and colour coherence: a resume needs the carried keyframe and the
# colour reference from disk.  Tiny frames and few steps keep a run to seconds.
KILL_SETTINGS = dict(W=64, H=64, steps=4, scale=5, seed=7, sampler="euler", strength=0.6,
                     animation_mode="2D", max_frames=10, diffusion_cadence=2,
                     color_coherence="Match Frame 0 LAB", translation_x="0:(2)",
                     zoom="0:(1.02)", strength_schedule="0:(0.55)",
                     noise_schedule="0:(0.02)",
                     animation_prompts={"0": "a red house", "5": "a blue lake --neg fog"})
TIMEOUT = 300.0


@dataclass(frozen=True)
class Moment:
    """When to kill: after ``frames`` frame events (plus ``delay`` seconds), or halfway
    through writing frame ``in_write`` (the engine's test-only pause)."""

    frames: int = 0
    delay: float = 0.0
    in_write: int | None = None

    def __str__(self) -> str:
        if self.in_write is not None:
            return f"mid-write-{self.in_write}"
        return f"after-{self.frames}" + (f"+{self.delay:.2f}s" if self.delay else "")


def write_settings(path: Path, **values: object) -> Path:
    path.write_text(json.dumps({**KILL_SETTINGS, **values}))
    return path


def engine_env(pause_in_write: int | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("DEFORUM_MODEL", None)
    env.pop(PAUSE_VARIABLE, None)
    if pause_in_write is not None:
        env[PAUSE_VARIABLE] = str(pause_in_write)
    return env


def engine_command(settings: Path, outdir: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "engine", "--settings", str(settings),
            "--enable_animation_mode", "--outdir", str(outdir), "--model", str(model),
            "--progress", "jsonl", *extra]


def run_engine(settings: Path, outdir: Path, model: Path,
               *extra: str) -> subprocess.CompletedProcess:
    """One uninterrupted engine run."""
    return subprocess.run(engine_command(settings, outdir, model, *extra), cwd=ROOT,
                          env=engine_env(), capture_output=True, text=True, timeout=TIMEOUT)


def events(result: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


class Engine:
    """A running engine whose JSON events are read on a thread (its pipe never fills)."""

    def __init__(self, settings: Path, outdir: Path, model: Path,
                 pause_in_write: int | None = None) -> None:
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(engine_command(settings, outdir, model), cwd=ROOT,
                                        env=engine_env(pause_in_write), stdout=subprocess.PIPE,
                                        stderr=self.log)
        self.events: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip():
                self.events.put(json.loads(line))
        self.events.put(None)

    def next_event(self, kind: str) -> dict | None:
        """The next event of ``kind``; None when the engine ended first."""
        deadline = time.monotonic() + TIMEOUT
        while (event := self.events.get(timeout=max(0.0, deadline - time.monotonic()))):
            if event["event"] == kind:
                return event
        return None

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> bool:
        """SIGKILL; False when the engine had already ended."""
        if self.process.poll() is not None:
            return False
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT)
        return True


def kill_at(moment: Moment, settings: Path, outdir: Path, model: Path) -> tuple[str, bool]:
    """Run the engine and SIGKILL it at ``moment``; returns (timestring, whether killed).

    Mid-write, the kill comes once half of frame ``in_write`` is in its temporary file.
    """
    engine = Engine(settings, outdir, model, pause_in_write=moment.in_write)
    try:
        start = engine.next_event("start")
        assert start is not None, engine.stderr()
        if moment.in_write is not None:
            frame = frame_path(Path(start["outdir"]), start["timestring"], moment.in_write)
            _wait_for_bytes(frame.with_name(f".{frame.name}{TEMP_MARK}{engine.process.pid}"),
                            engine)
        else:
            for _ in range(moment.frames):
                assert engine.next_event("frame") is not None, engine.stderr()
            time.sleep(moment.delay)
        return start["timestring"], engine.kill()
    finally:
        engine.kill()


def _wait_for_bytes(path: Path, engine: Engine) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (path.is_file() and path.stat().st_size > 0):
        assert engine.process.poll() is None, f"engine ended first: {engine.stderr()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def resume(settings: Path, outdir: Path, model: Path, timestring: str,
           *extra: str) -> subprocess.CompletedProcess:
    """Continue the frames of ``timestring`` that ``settings`` began, as a user would."""
    values = json.loads(settings.read_text())
    again = write_settings(settings.with_name(f"{settings.stem}-resume.txt"), **values,
                           resume_from_timestring=True, resume_timestring=timestring)
    return run_engine(again, outdir, model, *extra)


def frame_damage(folder: Path, timestring: str, reference: list[bytes]) -> tuple[int, int]:
    """(frames missing or not decodable, frames decodable but not byte-identical)."""
    import cv2

    lost = mismatched = 0
    for index, expected in enumerate(reference):
        path = frame_path(folder, timestring, index)
        data = path.read_bytes() if path.is_file() else b""
        if not data or cv2.imread(str(path)) is None:
            lost += 1
        elif data != expected:
            mismatched += 1
    return lost, mismatched
