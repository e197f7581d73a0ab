"""The warm engine keeps models loaded: the second render starts diffusing at once."""

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from engine.tiny_model import write_tiny_model
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def event(line):
    """One stdout line as an event; anything but JSON fails the test, showing the line."""
    try:
        return json.loads(line)
    except ValueError:
        pytest.fail(f"stdout line is not a JSON event: {line[:300]!r}")


class Server:
    """The warm engine in its own session (process group), talked to in bytes."""

    def __init__(self, log=None):
        """``log``: a file for the server's human log (stderr)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        stderr = open(log, "wb") if log else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, "-m", "engine.server"], cwd=ROOT,
                                        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, start_new_session=True)
        if log:
            stderr.close()

    def send(self, command):
        self.send_bytes((json.dumps(command) + "\n").encode())

    def send_bytes(self, raw):
        self.process.stdin.write(raw)
        self.process.stdin.flush()

    def until(self, predicate):
        seen = []
        for line in self.process.stdout:
            seen.append(event(line))
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


def test_second_render_reuses_the_loaded_model(tmp_path, tiny_model):
    """The warm engine's promise: the second render loads nothing (its time to the first
    step is measured in benchmarks/bench_warm.py)."""
    log = tmp_path / "server.log"
    server = Server(log)
    try:
        server.until(lambda e: e["event"] == "ready")
        for name in ("cold", "warm"):
            server.send({"id": name, "argv": job_argv(tmp_path, tiny_model, 3, name)})
            events = server.until(lambda e: e["event"] == "finished")
            assert events[-1] == {"event": "finished", "job": name, "code": 0}
            assert all(e["job"] == name for e in events)
            assert any(e["event"] == "step" for e in events)
            assert len(list((tmp_path / name).glob("*_0000[0-2].png"))) == 3
        text = log.read_text()
        assert text.count(f"loading model {tiny_model}") == 1, text
        assert text.count(f"model {tiny_model} already loaded") == 1, text

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


def serve_lines(*lines):
    """Events the server writes for these input lines (in this process, no model)."""
    from engine.server import serve
    out = io.StringIO()
    assert serve(io.BytesIO(b"".join(lines)), out) == 0
    events = [event(line) for line in out.getvalue().splitlines()]
    assert events[0] == {"event": "ready"}
    return events[1:]


JOB = b'{"id": "j", "argv": ["--settings", "s.txt"'


@pytest.mark.parametrize("line, job, message", [
    (b"[" * 100000 + b"\n", None, "nested too deeply"),
    (JOB + b", " + b"[" * 100000 + b"\n", "j", "nested too deeply"),
    (JOB + b', "caf\xe9"]}\n', "j", "not UTF-8"),
    (b"\xff\xfe\x00garbage\n", None, "not UTF-8"),
    (b"{not json}\n", None, "not a JSON command"),
    (b'"a string"\n', None, "expected a JSON object"),
], ids=["nested", "nested-job", "latin-1-job", "binary", "not-json", "not-object"])
def test_a_line_that_is_no_command_gets_an_error_event(line, job, message):
    events = serve_lines(line)
    assert events[0]["event"] == "error" and events[0]["code"] == 2
    assert message in events[0]["message"]
    assert events[0].get("job") == job
    # A line naming its job also finishes that job, so a client waiting on it hears back.
    assert events[1:] == ([{"event": "finished", "job": job, "code": 2}] if job else [])


@pytest.mark.parametrize("argv, message", [
    (["--help"], "--help and --version"),
    (["-h"], "--help and --version"),
    (["--settings", "s.txt", "--version"], "--help and --version"),
    (["--settings", "s.txt", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ([], "required: --settings"),
    (["--settings", "s.txt", "--max-frames", "many"], "--max-frames: invalid int value"),
])
def test_argv_that_would_print_and_exit_is_the_jobs_error(argv, message, capsys):
    """argparse text must not reach stdout (the event channel) nor end the server."""
    line = json.dumps({"id": "a", "argv": argv}).encode() + b"\n"
    events = serve_lines(line, line)
    expected_error = {"event": "error", "job": "a", "key": "argv", "code": 2}
    for error, finished in (events[0:2], events[2:4]):
        assert {k: v for k, v in error.items() if k != "message"} == expected_error
        assert message in error["message"]
        assert finished == {"event": "finished", "job": "a", "code": 2}
    assert len(events) == 4
    assert capsys.readouterr().out == ""


class ChunkCounter(io.BytesIO):
    """Input that remembers the longest piece one read returned."""

    longest = 0

    def readline(self, size=-1):
        line = super().readline(size)
        self.longest = max(self.longest, len(line))
        return line


def test_an_over_long_line_is_refused_and_skipped_in_bounded_reads():
    from engine.server import LINE_LIMIT, serve
    huge = b'{"id": "big", "argv": ["' + b"x" * 10_000_000 + b'"]}\n'
    stdin = ChunkCounter(huge + b'{"id": "next", "argv": "not a list"}\n')
    out = io.StringIO()
    assert serve(stdin, out) == 0
    events = [event(line) for line in out.getvalue().splitlines()][1:]
    assert events[0]["event"] == "error" and events[0]["job"] == "big"
    assert "longer than" in events[0]["message"] and events[0]["code"] == 2
    assert events[1] == {"event": "finished", "job": "big", "code": 2}
    # The rest of the long line was skipped: the next line is read as the next command.
    assert events[2]["job"] == "next" and "argv" in events[2]["message"]
    assert events[3] == {"event": "finished", "job": "next", "code": 2}
    assert stdin.longest <= LINE_LIMIT + 1


def test_bad_lines_leave_the_server_working_and_it_exits_when_input_ends(tmp_path):
    """Each kind of bad line gets its error; a good job after them still renders."""
    settings = tmp_path / "preview.txt"
    settings.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 64,
                                    "max_frames": 2, "batch_name": "preview"}))
    server = Server()
    hung = threading.Timer(120, server.process.kill)  # a hung server fails, not blocks, the test
    hung.start()
    try:
        server.send_bytes(b"[" * 100000 + b"\n")
        server.send_bytes(b'{"id": "latin", "argv": ["--settings", "caf\xe9.txt"]}\n')
        server.send({"id": "help", "argv": ["--help"]})
        server.send_bytes(b'{"id": "big", "argv": ["' + b"x" * 10_000_000 + b'"]}\n')
        server.send({"id": "preview", "argv": ["--settings", str(settings),
                                               "--enable_animation_mode", "--outdir",
                                               str(tmp_path), "--preview", "--max-frames", "2"]})
        events = server.until(lambda e: e["event"] == "finished" and e["job"] == "preview")
        errors = [(e.get("job"), e["code"]) for e in events if e["event"] == "error"]
        assert errors == [(None, 2), ("latin", 2), ("help", 2), ("big", 2)]
        finished = [(e["job"], e["code"]) for e in events if e["event"] == "finished"]
        assert finished == [("latin", 2), ("help", 2), ("big", 2), ("preview", 0)]
        assert any(e["event"] == "done" and e["job"] == "preview" for e in events)
        assert len(list((tmp_path / "preview").glob("*.png"))) == 2

        server.process.stdin.close()
        assert server.process.wait(timeout=5) == 0
        rest = [event(line) for line in server.process.stdout]
        assert all(e["event"] != "error" for e in rest)
        with pytest.raises(ProcessLookupError):
            os.killpg(server.process.pid, 0)  # no process left in the server's group
    finally:
        hung.cancel()
        server.process.kill()


def test_stray_prints_go_to_stderr_not_the_event_channel():
    """A print from the engine or a library (Python or native) must not corrupt the events."""
    script = ("import os\n"
              "from engine.server import _event_channel\n"
              "events = _event_channel()\n"
              "print('a stray print')\n"
              "os.write(1, b'a native write\\n')\n"
              "events.write('{\"event\": \"ready\"}\\n')\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [event(line) for line in result.stdout.splitlines()] == [{"event": "ready"}]
    assert b"a stray print" in result.stderr and b"a native write" in result.stderr


@pytest.mark.parametrize("line, message", [
    (b'{"cancel": null}\n', "cancel: expected a job id, got None"),
    (b'{"cancel": ["x"]}\n', "cancel: expected a job id, got ['x']"),
    (b'{"quit": "maybe"}\n', "quit: expected true, got 'maybe'"),
    (b'{"quit": false}\n', "quit: expected true, got False"),
])
def test_a_malformed_cancel_or_quit_gets_an_error_and_the_server_goes_on(line, message):
    events = serve_lines(line, b'{"cancel": "nobody"}\n', b"{not json}\n")
    assert [(e["event"], e["message"]) for e in events] == [
        ("error", message), ("error", events[1]["message"])]
    assert "not a JSON command" in events[1]["message"]


def test_a_job_cancelled_while_it_waits_never_starts(tmp_path):
    settings = tmp_path / "preview.txt"
    settings.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 64,
                                    "max_frames": 6, "batch_name": "preview"}))

    def job(name: str) -> bytes:
        argv = ["--settings", str(settings), "--enable_animation_mode", "--outdir",
                str(tmp_path / name), "--preview"]
        return json.dumps({"id": name, "argv": argv}).encode() + b"\n"
    events = serve_lines(job("first"), job("second"), b'{"cancel": "second"}\n',
                         b'{"quit": true}\n')
    finished = [(e["job"], e["code"]) for e in events if e["event"] == "finished"]
    assert finished == [("first", 0), ("second", 130)]
    assert {"event": "cancelled", "job": "second", "frames": 0} in events
    assert len(list((tmp_path / "first" / "preview").glob("*.png"))) == 6
    assert not (tmp_path / "second").exists()
