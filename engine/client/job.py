"""One render job as its own engine process, seen from Blender (no bpy, no torch).

The engine runs as ``python -m engine --settings FILE --enable_animation_mode
--progress jsonl``; a daemon thread reads its JSON-lines stdout into a queue
and the Blender side drains the queue without ever blocking on a pipe: from a
modal timer (``poll``) or in a blocking loop (``wait_events``) for
``execute()``. The human log (stderr) goes to a log file that error reports
name. Cancel touches the engine's cancel file and sends SIGTERM, both of which
make the engine stop after the current step and keep the written frames.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EXIT_CANCELLED, EXIT_DONE

ENGINE_NICENESS = 5  # how far below Blender's priority the engine runs: the UI comes first

RUNNING, DONE, FAILED, CANCELLED = "RUNNING", "DONE", "FAILED", "CANCELLED"

_ACTIVE: set["EngineJob"] = set()  # every job whose process may still run
_ACTIVE_LOCK = threading.Lock()


def engine_root() -> Path:
    """The folder that contains ``engine/`` (the add-on's own folder)."""
    return Path(__file__).resolve().parents[2]


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
                   video: bool = False, cancel_file: str | Path | None = None,
                   threads: int = 0) -> list[str]:
    """The engine's command line for one render job (``threads`` 0: the engine's choice)."""
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
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def start_engine(command: list[str], **popen: Any) -> subprocess.Popen:
    """Start an engine process in its own process group (Ctrl+C in Blender's terminal
    is not its), at a lower priority than Blender so that its threads never take the
    cores Blender's UI needs."""
    if os.name == "nt":
        popen["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                  | subprocess.BELOW_NORMAL_PRIORITY_CLASS)
        return subprocess.Popen(command, **popen)
    proc = subprocess.Popen(command, start_new_session=True, **popen)
    with suppress(OSError):  # before its threads start: they inherit the priority
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, proc.pid, min(mine + ENGINE_NICENESS, 19))
    return proc


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
    _reported_done: bool = field(default=False, repr=False)  # its last event, "done", came

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
        try:
            self._proc = start_engine(self.command, stdout=subprocess.PIPE, stderr=self._log,
                                      stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
                                      errors="replace", bufsize=1, env=self.env, cwd=self.cwd)
        except OSError as exc:
            self._log.close()
            self.state, self.error = FAILED, f"could not start the engine: {exc}"
            return self
        self._track()
        self._thread = threading.Thread(target=self._read, name="deforum-engine-reader",
                                        daemon=True)
        self._thread.start()
        return self

    def _track(self) -> None:
        """Count this job among those ``cancel_all`` stops until it finishes."""
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)

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
            self._reported_done = True
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
        elif self._reported_done and not self.error and not self._cancel_sent:
            # Every frame (and the movie) was written before "done": a native library's
            # crash while the process shuts down loses nothing, so the job is done.
            self.state = DONE
            self.warnings.append(f"the engine finished its {self.done} frames, then stopped "
                                 f"abnormally while shutting down (exit code {code}); "
                                 "nothing was lost")
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
