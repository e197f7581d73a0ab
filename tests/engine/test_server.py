"""The warm engine keeps models loaded: the second render starts diffusing at once."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from engine.tiny_model import write_tiny_model
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


class Server:
    def __init__(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "engine.server"], cwd=ROOT,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def send(self, command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def until(self, predicate):
        seen = []
        for line in self.process.stdout:
            seen.append(json.loads(line))
            if predicate(seen[-1]):
                return seen
        raise AssertionError(f"server ended: {seen}")


def job_argv(tmp_path, tiny_model, frames, name):
    settings = tmp_path / f"{name}.txt"
    settings.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 64, "steps": 20,
                                    "max_frames": frames, "batch_name": name,
                                    "strength_schedule": "0:(0.3)"}))
    return ["--settings", str(settings), "--enable_animation_mode", "--outdir",
            str(tmp_path), "--model", str(tiny_model)]


def test_second_render_starts_diffusing_within_two_seconds(tmp_path, tiny_model):
    server = Server()
    try:
        server.until(lambda e: e["event"] == "ready")
        timings = []
        for name in ("cold", "warm"):
            sent = time.monotonic()
            server.send({"id": name, "argv": job_argv(tmp_path, tiny_model, 3, name)})
            server.until(lambda e: e["event"] == "step")
            timings.append(time.monotonic() - sent)
            events = server.until(lambda e: e["event"] == "finished")
            assert events[-1] == {"event": "finished", "job": name, "code": 0}
            assert all(e["job"] == name for e in events)
            assert len(list((tmp_path / name).glob("*_0000[0-2].png"))) == 3
        print(f"first denoising step: cold {timings[0]:.2f}s, warm {timings[1]:.2f}s")
        assert timings[1] < 2.0

        # Cancel a running job: frames so far are kept, the server stays up.
        server.send({"id": "long", "argv": job_argv(tmp_path, tiny_model, 500, "long")})
        server.until(lambda e: e["event"] == "frame" and e["index"] == 1)
        server.send({"cancel": "long"})
        events = server.until(lambda e: e["event"] == "finished")
        assert events[-2]["event"] == "cancelled" and events[-1]["code"] == 130
        server.send({"id": "bad", "argv": ["--settings", str(tmp_path / "missing.txt")]})
        events = server.until(lambda e: e["event"] == "finished")
        assert events[-1]["code"] == 2 and "settings file not found" in events[-2]["message"]
        server.send({"quit": True})
        assert server.process.wait(timeout=30) == 0
    finally:
        server.process.kill()


def test_end_of_input_stops_the_running_job_and_exits(tmp_path, tiny_model):
    """Blender died: the server must not keep diffusing a long job nobody reads."""
    server = Server()
    try:
        server.send({"id": "long", "argv": job_argv(tmp_path, tiny_model, 500, "orphan")})
        server.until(lambda e: e["event"] == "frame" and e["index"] == 1)
        server.process.stdin.close()
        events = server.until(lambda e: e["event"] == "finished")
        assert events[-2]["event"] == "cancelled" and events[-1]["code"] == 130
        assert server.process.wait(timeout=30) == 0
        assert len(list((tmp_path / "orphan").glob("*.png"))) < 500
    finally:
        server.process.kill()
