"""A warm engine: ``python -m engine.server`` keeps models loaded between jobs.

Blender starts it once and sends one JSON object per line on stdin:

    {"id": "job-1", "argv": ["--settings", "F", "--enable_animation_mode", ...]}
    {"cancel": "job-1"}          stop that job within one denoising step
    {"quit": true}               exit after the current job
    end of input                 the client is gone: stop the current job, then exit

Each job runs exactly like ``python -m engine ARGV --progress jsonl``; its events
carry ``"job": id`` and end with ``done``, ``error`` or ``cancelled``, followed
by ``{"event": "finished", "job": id, "code": exit code}``.  Models (pipelines
and depth estimators) stay loaded, keyed by what identifies them, so a second
render of the same model starts diffusing without loading anything.

No line can stop the server.  A line that is no command (not UTF-8, not JSON,
nested too deeply, not an object, or over ``LINE_LIMIT`` bytes, whose rest is
skipped unread) gets an ``error`` event with code 2, tagged with its job id and
followed by ``finished`` when the line starts with one; blank lines are ignored.
Bad argv is the job's ``error`` (code 2); ``--help`` and ``--version`` are
refused the same way, as they render nothing.  stdout carries only the JSON
events: whatever else prints goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import queue
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple, TextIO

from .cli import Loaders, build_parser, run
from .errors import Cancelled, ModelError, SettingsError, shown
from .modes.common import CancelToken
from .progress import Progress
from .threads import choose_threads, quiet_openmp

LINE_LIMIT = 1 << 20  # bytes in one command line; job lines are a few hundred


class CachedLoaders(Loaders):
    """Loaders that keep what they loaded for later jobs."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Any] = {}

    def _get(self, key: tuple, load) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def has_pipelines(self, path: str, config: str | None, device: str, half: bool) -> bool:
        return ("sd", path, config, device, half) in self._cache

    def pipelines(self, path: str, config: str | None, device: str, half: bool):
        return self._get(("sd", path, config, device, half),
                         lambda: super(CachedLoaders, self).pipelines(path, config, device, half))

    def depth_model(self, path: str, device: Any, half: bool):
        return self._get(("depth", path, str(device), half),
                         lambda: super(CachedLoaders, self).depth_model(path, device, half))


class Rejected(NamedTuple):
    """A line that is no command: it gets an error event (and ``finished`` when it names a job)."""

    message: str
    job: str | None


def _lines(stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Lines of input, each with whether it is whole: of one over ``LINE_LIMIT`` bytes
    only the head comes, the rest is skipped.

    Reading at most ``LINE_LIMIT`` bytes at a time keeps a runaway client from
    filling the server's memory with one line.
    """
    while True:
        line = stream.readline(LINE_LIMIT + 1)
        if not line:
            return
        if len(line) <= LINE_LIMIT or line.endswith(b"\n"):
            yield line, True
            continue
        yield line, False
        while line and not line.endswith(b"\n"):
            line = stream.readline(LINE_LIMIT)


_LEADING_ID = re.compile(r'\s*\{\s*"id"\s*:\s*')


def _leading_id(text: str) -> str | None:
    """The job id of a line that cannot be read whole, when the line starts with it.

    The client writes ``{"id": ..., "argv": ...}``, so a broken job line still
    names its job and the client hears that this job finished.
    """
    match = _LEADING_ID.match(text)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, match.end())
    except (ValueError, RecursionError):
        return None
    return str(value) if isinstance(value, (str, int)) else None


def _command(line: bytes) -> dict | Rejected:
    """One input line as a command object, or why it is none."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                        _leading_id(line.decode("utf-8", errors="replace")))
    try:
        command = json.loads(text)
    except RecursionError:
        return Rejected("not a JSON command: nested too deeply", _leading_id(text))
    except ValueError as exc:
        return Rejected(f"not a JSON command: {exc}", _leading_id(text))
    if not isinstance(command, dict):
        return Rejected(f"not a command: expected a JSON object, got {type(command).__name__}",
                        None)
    return command


def _checked(command: dict) -> dict | Rejected:
    """A cancel names a job (text or a number) and a quit is ``true``; else rejected."""
    if "cancel" in command and (isinstance(command["cancel"], bool)
                                or not isinstance(command["cancel"], (str, int))):
        return Rejected(f"cancel: expected a job id, got {shown(command['cancel'])}", None)
    if "quit" in command and command["quit"] is not True:
        return Rejected(f"quit: expected true, got {shown(command['quit'])}", None)
    return command


def _reader(stream: BinaryIO, jobs: queue.Queue, cancels: dict[str, CancelToken],
            waiting: dict[str, CancelToken], lock: threading.Lock) -> None:
    """Read commands; cancels act at once (on the running job's token in ``cancels``, or
    on a queued job's in ``waiting``), jobs and rejected lines queue up."""
    try:
        for line, whole in _lines(stream):
            if not whole:
                jobs.put(Rejected(f"line longer than {LINE_LIMIT} bytes: not read",
                                  _leading_id(line.decode("utf-8", errors="replace"))))
                continue
            if not line.strip():
                continue
            try:
                command = _command(line)
            except Exception as exc:  # noqa: BLE001 - no line may end the reader
                command = Rejected(f"could not read the command: {type(exc).__name__}: {exc}",
                                   None)
            if isinstance(command, dict):
                command = _checked(command)
            if isinstance(command, dict) and "cancel" in command:
                job = str(command["cancel"])
                with lock:  # a job still waiting is cancelled before it starts
                    token = cancels.get(job) or waiting.get(job)
                if token is not None:  # an unknown id: a job that has just finished
                    token.request()
                continue
            if isinstance(command, dict) and "quit" not in command:
                with lock:
                    waiting[str(command.get("id", ""))] = CancelToken()
            jobs.put(command)
            if isinstance(command, dict) and command.get("quit") is True:
                return
    except (OSError, ValueError):
        pass  # stdin broke or was closed under us: the client is gone, as at end of input
    # End of input without "quit": the client (Blender) is gone and nobody reads the
    # events, so the running job stops too (its frames are kept).
    with lock:
        for token in cancels.values():
            token.request()
    jobs.put({"quit": True})


def _parse(parser: argparse.ArgumentParser, argv: Any) -> argparse.Namespace:
    """A job's arguments; SettingsError where the command line would print and exit.

    argparse writes usage, help and version text to stdout/stderr and exits; in
    the server stdout is the event channel and an exit would end every later job,
    so that text is caught here and bad argv becomes the job's error event.
    ``--help`` and ``--version`` render nothing and are refused the same way.
    """
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise SettingsError("argv: expected a list of command-line arguments",
                            key="argv", value=argv)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            return parser.parse_args(argv + ["--progress", "jsonl"])
    except SystemExit as exc:
        if exc.code == 0:
            raise SettingsError("argv: --help and --version print text, not a render; "
                                "run python -m engine --help in a terminal",
                                key="argv", value=argv) from None
        reason = printed.getvalue().rpartition(": error: ")[2].strip()
        raise SettingsError(f"argv: {reason or 'not valid engine arguments'}", key="argv",
                            value=argv) from None


def serve(stdin: BinaryIO | None = None, stdout: TextIO | None = None) -> int:
    """Run jobs from ``stdin`` (bytes) until quit or end of input; events go to ``stdout``."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    loaders = CachedLoaders()
    jobs: queue.Queue = queue.Queue()
    cancels: dict[str, CancelToken] = {}  # the running job's
    waiting: dict[str, CancelToken] = {}  # queued jobs', so that a cancel reaches them too
    lock = threading.Lock()
    threading.Thread(target=_reader, args=(stdin, jobs, cancels, waiting, lock),
                     daemon=True).start()
    parser = build_parser()
    threads = choose_threads()  # now, before its own jobs load the machine
    Progress(jsonl=True, out=stdout).emit("ready")
    while True:
        command = jobs.get()
        if isinstance(command, Rejected):
            tag = {"job": command.job} if command.job is not None else None
            progress = Progress(jsonl=True, out=stdout, tag=tag)
            progress.error(command.message, code=2)
            if command.job is not None:
                progress.emit("finished", code=2)
            continue
        if command.get("quit") is True:
            return 0
        job = str(command.get("id", ""))
        progress = Progress(jsonl=True, out=stdout, tag={"job": job})
        with lock:
            token = cancels[job] = waiting.pop(job, None) or CancelToken()
        try:
            token.check()  # cancelled while it waited: it never starts
            args = _parse(parser, command.get("argv"))
            args.threads = args.threads or threads
            token.cancel_file = CancelToken(args.cancel_file).cancel_file
            code = run(args, progress, loaders=loaders, cancel=token)
        except (SettingsError, ModelError) as exc:
            progress.error(str(exc), key=getattr(exc, "key", None), code=exc.exit_code)
            code = exc.exit_code
        except Cancelled:
            progress.cancelled()
            code = Cancelled.exit_code
        except Exception as exc:  # noqa: BLE001 - a failed job must not end the server
            traceback.print_exc()
            progress.error(f"{type(exc).__name__}: {exc}", code=1)
            code = 1
        finally:
            with lock:
                cancels.pop(job, None)
        progress.emit("finished", code=code)


def _event_channel() -> TextIO:
    """stdout for the events alone: whatever else prints, from Python or native code, goes
    to stderr (the log), so a stray print cannot corrupt the event channel."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return events


if __name__ == "__main__":
    quiet_openmp()
    sys.exit(serve(stdout=_event_channel()))
