"""The progress stream: when nobody reads the events any more the run stops as if
cancelled, keeping its frames, with no traceback; a log that cannot be written is
skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_cli import write_settings

ROOT = Path(__file__).resolve().parents[2]
LONG = dict(animation_mode="3D", W=64, H=64, max_frames=400, translation_z="0:(2)",
            batch_name="shot")


def engine(tmp_path: Path, **streams) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "--settings", write_settings(tmp_path, **LONG),
         "--enable_animation_mode", "--preview", "--outdir", str(tmp_path / "out"),
         "--timestring", "TS", "--progress", "jsonl"], env=env, text=True, **streams)


def test_a_reader_that_goes_away_stops_the_run_and_its_frames_are_kept(tmp_path):
    process = engine(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in process.stdout:  # read until the first frame, then stop reading
        if json.loads(line)["event"] == "frame":
            break
    process.stdout.close()
    _, log = process.communicate(timeout=300)
    assert process.returncode == 130
    assert "stopping: the progress stream cannot be written" in log
    assert "Traceback" not in log and "Exception ignored" not in log
    written = sorted((tmp_path / "out" / "shot").glob("TS_*.png"))
    assert 1 <= len(written) < LONG["max_frames"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_event_stream_stops_the_run_without_a_traceback(tmp_path):
    with open("/dev/full", "w") as full:
        process = engine(tmp_path, stdout=full, stderr=subprocess.PIPE)
        _, log = process.communicate(timeout=300)
    assert process.returncode == 130
    assert "stopping: the progress stream cannot be written" in log
    assert "Traceback" not in log and "Exception ignored" not in log


def test_a_run_started_without_a_log_keeps_the_event_stream_clean(tmp_path):
    settings = write_settings(tmp_path, **{**LONG, "max_frames": 3})
    result = subprocess.run(
        [sys.executable, "-m", "engine", "--settings", str(settings), "--enable_animation_mode",
         "--preview", "--outdir", str(tmp_path / "out"), "--progress", "jsonl"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE, preexec_fn=lambda: os.close(2), text=True, timeout=300)
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events][-4:] == ["frame", "frame", "frame", "done"]


def test_a_run_started_without_stdout_stops_and_says_why(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "engine", "--settings",
         str(write_settings(tmp_path, **{**LONG, "max_frames": 3})), "--enable_animation_mode",
         "--preview", "--outdir", str(tmp_path / "out"), "--progress", "jsonl"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1), text=True, timeout=300)
    assert result.returncode == 130
    assert "the progress stream cannot be written (the process has no stdout)" in result.stderr
    assert "Traceback" not in result.stderr
