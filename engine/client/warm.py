"""The warm engine seen from Blender: one ``python -m engine.server`` per session.

Models stay loaded between renders. A ``ServerJob`` has the same interface as
the one-process ``EngineJob``: the server's reader thread routes each event by
its job id to that job's queue, and the server's log lines go to the log of
the job it is running. No bpy, no torch.
"""

from __future__ import annotations

import atexit
import itertools
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import EXIT_CANCELLED
from .job import FAILED, EngineJob, start_engine


def split_event(line: str) -> tuple[str, dict[str, Any] | None]:
    """(log text, event) of one output line of the server (stdout and stderr share a pipe).

    A library's progress bar may leave text before a JSON event on the same line.
    """
    line = line.strip()
    at = line.find('{"event"')
    if at < 0:
        return line, None
    try:
        event = json.loads(line[at:])
    except ValueError:
        return line, None
    if not isinstance(event, dict):
        return line, None
    return line[:at].strip(), event


def server_key(python: str, env: dict[str, str] | None) -> tuple[str, str]:
    """What a running server must match to take a job: the interpreter and PYTHONPATH."""
    return str(python), (env or {}).get("PYTHONPATH", "")


class EngineServer:
    """One ``python -m engine.server`` process; jobs run one after another."""

    def __init__(self, python: str, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.python, self.env, self.cwd = str(python), env, cwd
        self.key = server_key(python, env)
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._jobs: dict[str, ServerJob] = {}
        self._lock = threading.Lock()  # _jobs and the log of the job now running
        self._job_log: Any = None
        self._unlogged: list[str] = []  # lines from before the first job's log (start-up)
        self.ready = False  # it printed {"event": "ready"}: the engine imports worked
        self._ended = False  # its output ended: jobs can only be reported lost

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "EngineServer":
        """Start the process (OSError if it cannot start)."""
        self._proc = start_engine([self.python, "-m", "engine.server"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                  errors="replace", bufsize=1, env=self.env, cwd=self.cwd)
        self._thread = threading.Thread(target=self._read, name="deforum-engine-server",
                                        daemon=True)
        self._thread.start()
        return self

    def _send(self, command: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()

    def submit(self, job: "ServerJob") -> None:
        """Queue a job; from now on the server's log lines go to its log.

        If the server is gone the job gets the ``lost`` event its reader sends.
        """
        log = open(job.log_path, "a", encoding="utf-8")
        log.write(f"$ {self.python} -m engine.server (warm engine, pid {self.pid}) "
                  f"job {job.job_id}: {' '.join(job.argv)}\n")
        log.flush()
        with self._lock:
            if self._job_log is not None:
                self._job_log.close()
            self._job_log = log
            log.writelines(line + "\n" for line in self._unlogged)
            log.flush()
            self._unlogged.clear()
            ended = self._ended
            if ended:
                log.close()
                self._job_log = None
            else:
                self._jobs[job.job_id] = job
        if ended:
            job._queue.put(self._lost())
            return
        try:
            self._send({"id": job.job_id, "argv": job.argv})
        except (OSError, ValueError):
            pass  # it just ended: its reader reports the job as lost

    def cancel(self, job_id: str) -> None:
        try:
            self._send({"cancel": job_id})
        except (OSError, ValueError):
            pass  # already gone: its reader reports the job as ended

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            text, event = split_event(line)
            job = None
            if event is not None and "job" in event:
                with self._lock:
                    job = self._jobs.get(str(event["job"]))
                    if job is not None and event.get("event") == "finished":
                        del self._jobs[job.job_id]
            if job is not None:
                job._queue.put(event)
            elif event is not None and event.get("event") == "ready":
                self.ready = True
            elif event is not None:
                text = (text + " " + line.strip()).strip()  # an event of no job: log it
            if text:
                with self._lock:
                    if self._job_log is not None:
                        self._job_log.write(text + "\n")
                        self._job_log.flush()
                    elif len(self._unlogged) < 1000:
                        self._unlogged.append(text)
        code = proc.wait()
        with self._lock:
            self._ended = True
            orphans = list(self._jobs.values())
            self._jobs.clear()
            if self._job_log is not None:
                self._job_log.write(f"warm engine (pid {proc.pid}) exited with code {code}\n")
                self._job_log.close()
                self._job_log = None
        for job in orphans:
            job._queue.put(self._lost())

    def _lost(self) -> dict[str, Any]:
        assert self._proc is not None
        return {"event": "lost", "code": self._proc.returncode, "ready": self.ready}

    def stop(self, grace: float = 5.0) -> None:
        """Cancel its jobs (frames kept), ask it to quit, kill it after ``grace`` seconds."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.request_cancel()
        if self._proc is None:
            return
        try:
            self._send({"quit": True})
            self._proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self._proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)


_SERVER: EngineServer | None = None
_SERVER_LOCK = threading.Lock()
_JOB_IDS = itertools.count(1)


def warm_server(python: str, env: dict[str, str] | None, cwd: str | None = None) -> EngineServer:
    """The session's warm engine for this interpreter and PYTHONPATH, started if needed.

    A dead server, or one with another Python or PYTHONPATH (changed in the
    preferences), is replaced by a new one. OSError if it cannot start.
    """
    global _SERVER
    with _SERVER_LOCK:
        old = _SERVER
        if old is not None and old.alive and old.key == server_key(python, env):
            return old
        _SERVER = None
    if old is not None:
        old.stop()
    server = EngineServer(python, env, cwd).start()
    with _SERVER_LOCK:
        _SERVER = server
    return server


def server_pid() -> int | None:
    """The running warm engine's process id, None when there is none."""
    server = _SERVER
    return server.pid if server is not None and server.alive else None


def stop_server(grace: float = 5.0) -> bool:
    """Stop the warm engine (add-on disable, Blender exit, Release Engine): frees its memory.

    A job it is running is cancelled, its frames kept. True if one was running.
    """
    global _SERVER
    with _SERVER_LOCK:
        server, _SERVER = _SERVER, None
    if server is None:
        return False
    was_alive = server.alive
    server.stop(grace)
    return was_alive


# Blender disables add-ons when it quits (unregister stops the server); this also
# covers an exit that skips that; after a crash the server sees its stdin close, stops
# its job and exits, so no engine process outlives Blender.
atexit.register(stop_server)


@dataclass(eq=False)
class ServerJob(EngineJob):
    """A render job run by the warm engine; the same interface as ``EngineJob``.

    ``command`` is the one-process command (``python -m engine ARGS``); the
    server gets ARGS. If the server dies mid-job the job fails with a message
    saying so, and the next render starts a new server.
    """

    job_id: str = field(default_factory=lambda: f"job-{next(_JOB_IDS)}")
    _server: EngineServer | None = field(default=None, repr=False)

    @property
    def argv(self) -> list[str]:
        return list(self.command[3:])

    @property
    def pid(self) -> int | None:
        return self._server.pid if self._server else None

    @property
    def process_alive(self) -> bool:
        return self._server is not None and self._server.alive and not self.finished

    def start(self) -> "ServerJob":
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = warm_server(self.command[0], self.env, self.cwd)
            self._server.submit(self)
        except OSError as exc:
            self.state, self.error = FAILED, f"could not start the warm engine: {exc}"
            return self
        self._track()
        return self

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "finished":
            self._finish(int(event.get("code", 1)))
        elif kind == "lost":
            code = int(event["code"])
            if self._cancel_sent:
                self._finish(EXIT_CANCELLED)
                return
            how = f"was killed (signal {-code})" if code < 0 else \
                f"stopped unexpectedly (exit code {code})"
            if event.get("ready", True):
                self.error = (f"the warm engine process (pid {self.pid}) {how} during this "
                              f"render after {len(self.frames)} frames; the frames written "
                              "so far are kept and the next render starts a new engine")
            else:
                self.error = (f"the warm engine process (pid {self.pid}) {how} before it "
                              f"was ready: check engine_python {self.command[0]}")
            self._finish(code or 1)
        else:
            super()._apply(event)

    def request_cancel(self) -> None:
        """Ask the server to stop this job after its current step; returns at once."""
        if self._cancel_sent or self.finished or self._server is None:
            return
        self._cancel_sent = True
        self._touch_cancel_file()
        self._server.cancel(self.job_id)

    def cancel(self, grace: float = 10.0) -> str:
        """Stop this job (the server stays); kill the server if it does not stop in time."""
        self.request_cancel()
        deadline = time.monotonic() + grace
        while not self.finished and self._server is not None and time.monotonic() < deadline:
            self.wait_events(0.1)
        if not self.finished and self._server is not None:
            self._server.kill()
            deadline = time.monotonic() + 5
            while not self.finished and time.monotonic() < deadline:
                self.wait_events(0.1)
        if not self.finished:
            self._finish(EXIT_CANCELLED)
        return self.state
