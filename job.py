"""The engine process seen from Blender: command, reader thread, events, cancel.

No bpy here (tested without Blender). The engine runs as
``python -m engine --settings FILE --enable_animation_mode --progress jsonl``
in its own process; a daemon thread reads its JSON-lines stdout into a queue
and the Blender side drains the queue without ever blocking on a pipe: from a
modal timer (``poll``) or in a blocking loop (``wait_events``) for
``execute()``. The human log (stderr) goes to a log file that error reports
name. Cancel touches the engine's cancel file and sends SIGTERM, both of which
make the engine stop after the current step and keep the written frames.

With the warm engine (``python -m engine.server``, one per Blender session,
models kept loaded) a ``ServerJob`` has the same interface: the server's
reader thread routes each event by its job id to that job's queue, and the
server's log lines go to the log of the job it is running.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Engine exit codes (engine/cli.py)
EXIT_DONE, EXIT_SETTINGS, EXIT_MODEL, EXIT_CANCELLED = 0, 2, 3, 130

RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"

_ACTIVE: set["EngineJob"] = set()  # every job whose process may still run
_ACTIVE_LOCK = threading.Lock()


def engine_root() -> Path:
    """The folder that contains ``engine/`` (the add-on's own folder)."""
    return Path(__file__).resolve().parent


def engine_env(root: Path | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of an engine process: PYTHONPATH = the folder holding ``engine/``.

    Blender's own PYTHONHOME/PYTHONPATH must not leak into the engine's Python.
    """
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONHOME", None)
    env["PYTHONPATH"] = str(root or engine_root())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def engine_command(python: str, settings_path: str | Path, outdir: str | Path, *,
                   preview: bool = False, model: str = "", device: str = "",
                   video: bool = False, cancel_file: str | Path | None = None) -> list[str]:
    """The engine's command line for one render job."""
    cmd = [str(python), "-m", "engine", "--settings", str(settings_path),
           "--enable_animation_mode", "--outdir", str(outdir), "--progress", "jsonl"]
    if preview:
        cmd.append("--preview")
    if model:
        cmd += ["--model", str(model)]
    if device:
        cmd += ["--device", device]
    if video:
        cmd.append("--video")
    if cancel_file:
        cmd += ["--cancel-file", str(cancel_file)]
    return cmd


SELF_CHECK = (
    "import json, sys, engine\n"
    "info = {'python': sys.version.split()[0], 'engine': engine.__version__}\n"
    "try:\n"
    "    import torch, diffusers\n"
    "    info.update(torch=torch.__version__, diffusers=diffusers.__version__,\n"
    "                cuda=torch.cuda.is_available(),\n"
    "                mps=bool(getattr(torch.backends, 'mps', None) and "
    "torch.backends.mps.is_available()))\n"
    "except Exception as exc:\n"
    "    info['missing'] = f'{type(exc).__name__}: {exc}'\n"
    "print(json.dumps(info))\n"
)


def self_check_command(python: str) -> list[str]:
    return [str(python), "-c", SELF_CHECK]


def run_self_check(python: str, timeout: float = 180.0) -> tuple[bool, str]:
    """Run the engine self-check; (ok, one-line summary for the preferences)."""
    if not python or not Path(python).is_file():
        return False, f"engine Python not found: {python or '(not set)'}"
    try:
        proc = subprocess.run(self_check_command(python), env=engine_env(),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"engine check failed: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"engine check failed (exit {proc.returncode}): {tail}"
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"engine check printed no result: {proc.stdout[-200:]!r}"
    if "missing" in info:
        return False, (f"engine {info['engine']} on Python {info['python']}: preview only, "
                       f"diffusion needs torch/diffusers ({info['missing']})")
    devices = ", ".join(d for d in ("cuda", "mps") if info.get(d)) or "cpu only"
    return True, (f"engine {info['engine']}, Python {info['python']}, torch {info['torch']}, "
                  f"diffusers {info['diffusers']}, {devices}")


def venv_python(venv: str | Path) -> Path:
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_commands(base_python: str, venv: str | Path,
                     requirements: str | Path) -> list[list[str]]:
    """Commands that create the engine venv and install its pinned requirements.

    torch goes first with its exact pin (from the requirements file) so pip
    takes the platform's default wheel instead of resolving another build.
    """
    requirements = Path(requirements)
    py = str(venv_python(venv))
    cmds = [[str(base_python), "-m", "venv", str(venv)],
            [py, "-m", "pip", "install", "--upgrade", "pip"]]
    torch_pin = next((line.strip() for line in requirements.read_text().splitlines()
                      if line.strip().startswith("torch==")), None)
    if torch_pin:
        cmds.append([py, "-m", "pip", "install", torch_pin])
    cmds.append([py, "-m", "pip", "install", "-r", str(requirements)])
    return cmds


@dataclass
class Frame:
    index: int
    path: str


@dataclass
class EngineJob:
    """One engine run: start it, drain its events, cancel it, know how it ended."""

    command: list[str]
    log_path: Path
    cancel_file: Path | None = None
    env: dict[str, str] | None = None
    cwd: str | None = None

    state: str = RUNNING
    total: int = 0
    done: int = 0
    eta: float | None = None
    timestring: str = ""
    batch_folder: str = ""
    frames: list[Frame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    error_key: str | None = None
    exit_code: int | None = None
    video: str = ""
    started_at: float = 0.0

    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _queue: "queue.Queue[dict[str, Any]]" = field(default_factory=queue.Queue, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _log: Any = field(default=None, repr=False)
    _cancel_sent: bool = field(default=False, repr=False)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    # ------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    @property
    def process_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "EngineJob":
        self.started_at = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._log.write("$ " + " ".join(self.command) + "\n")
        self._log.flush()
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # Ctrl+C in Blender's terminal is not ours
        try:
            self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                          stderr=self._log, stdin=subprocess.DEVNULL,
                                          text=True, encoding="utf-8", errors="replace",
                                          bufsize=1, env=self.env, cwd=self.cwd, **kwargs)
        except OSError as exc:
            self._log.close()
            self.state, self.error = FAILED, f"could not start the engine: {exc}"
            return self
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        self._thread = threading.Thread(target=self._read, name="deforum-engine-reader",
                                        daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError
            except ValueError:
                event = {"event": "log", "message": line}
            self._queue.put(event)
        code = proc.wait()
        self._queue.put({"event": "exit", "code": code})

    # ------------------------------------------------------------ events
    def poll(self) -> list[dict[str, Any]]:
        """Apply and return every event that has arrived; never blocks."""
        events = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return events
            self._apply(event)
            events.append(event)

    def wait_events(self, timeout: float = 0.25) -> list[dict[str, Any]]:
        """Block up to ``timeout`` for the next event, then drain (execute() path)."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        self._apply(first)
        return [first] + self.poll()

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "start":
            self.timestring = str(event.get("timestring", ""))
            self.batch_folder = str(event.get("outdir", ""))
            self.total = int(event.get("total") or 0)
        elif kind == "frame":
            self.frames.append(Frame(int(event["index"]), str(event["path"])))
            self.done = int(event.get("done", len(self.frames)))
            self.total = int(event.get("total") or self.total)
            self.eta = event.get("eta")
        elif kind == "warning":
            self.warnings.append(str(event.get("message", "")))
        elif kind == "error":
            self.error = str(event.get("message", "engine error"))
            self.error_key = event.get("key")
        elif kind == "done":
            self.video = str(event.get("video", "") or "")
        elif kind == "exit":
            self._finish(int(event["code"]))

    def _finish(self, code: int) -> None:
        self.exit_code = code
        if self._log is not None and not self._log.closed:
            self._log.close()
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        if code == EXIT_DONE:
            self.state = DONE
        elif code == EXIT_CANCELLED or (self._cancel_sent and code in (-signal.SIGTERM, -9)):
            self.state = CANCELLED
        else:
            self.state = FAILED
            if not self.error:
                self.error = ("the engine stopped unexpectedly (exit code "
                              f"{code})" if code >= 0 else
                              f"the engine was killed (signal {-code})")

    def run_blocking(self, on_events=None, poll_interval: float = 0.25) -> str:
        """Start if needed and wait for the end; ``on_events(job, events)`` per batch."""
        if not self.started_at and self.state == RUNNING:
            self.start()
        while not self.finished:
            events = self.wait_events(poll_interval)
            if events and on_events is not None:
                on_events(self, events)
        return self.state

    # ------------------------------------------------------------ cancel
    def request_cancel(self) -> None:
        """Ask the engine to stop after its current step; returns at once."""
        if self._cancel_sent or not self.process_alive:
            return
        self._cancel_sent = True
        self._touch_cancel_file()
        try:
            self._proc.terminate()  # SIGTERM: the engine's cancel token, frames kept
        except OSError:
            pass

    def _touch_cancel_file(self) -> None:
        if self.cancel_file is not None:
            try:
                self.cancel_file.parent.mkdir(parents=True, exist_ok=True)
                self.cancel_file.touch()
            except OSError:
                pass

    def cancel(self, grace: float = 10.0) -> str:
        """Stop the engine, wait up to ``grace`` seconds, then kill it. Frames are kept."""
        self.request_cancel()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()
        if not self.finished:  # the reader thread could not report the exit
            self._finish(self._proc.returncode if self._proc else EXIT_CANCELLED)
        return self.state

    # ------------------------------------------------------------ text
    def progress_text(self) -> str:
        if self.total:
            text = f"Frame {self.done}/{self.total}"
            if self.eta is not None and not self.finished:
                text += f", ETA {format_seconds(self.eta)}"
            return text
        return "Starting engine…"

    def failure_text(self) -> str:
        return f"{self.error} (engine log: {self.log_path})"


def format_seconds(seconds: float) -> str:
    seconds = int(round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# ---------------------------------------------------------------- the warm engine

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
        kwargs: dict[str, Any] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True
        self._proc = subprocess.Popen([self.python, "-m", "engine.server"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                      errors="replace", bufsize=1, env=self.env, cwd=self.cwd,
                                      **kwargs)
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
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
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


def active_jobs() -> list[EngineJob]:
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def cancel_all(grace: float = 5.0) -> int:
    """Stop every engine process this Blender started (file load, add-on disable)."""
    jobs = active_jobs()
    for job in jobs:
        job.request_cancel()
    for job in jobs:
        job.cancel(grace)
    return len(jobs)


def default_engine_python(root: Path | None = None,
                          extra: list[Path] | tuple[Path, ...] = ()) -> str:
    """A configured engine interpreter, if one can be found; else ''.

    Looked for: $DEFORUM_ENGINE_PYTHON, the ``.venv`` of a development
    checkout (the add-on folder is the repository), then ``extra`` (the venv
    that "Install engine" creates).
    """
    env = os.environ.get("DEFORUM_ENGINE_PYTHON")
    if env and Path(env).is_file():
        return env
    root = root or engine_root()
    for candidate in (venv_python(root / ".venv"), *(venv_python(p) for p in extra)):
        if candidate.is_file():
            return str(candidate)
    return ""


if __name__ == "__main__":  # pragma: no cover - manual check: python job.py PYTHON
    print(run_self_check(sys.argv[1] if len(sys.argv) > 1 else sys.executable))
