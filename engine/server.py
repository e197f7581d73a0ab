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
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import traceback
from typing import Any, TextIO

from .cli import Loaders, build_parser, run
from .errors import Cancelled, ModelError, SettingsError
from .progress import Progress
from .modes.common import CancelToken


class CachedLoaders(Loaders):
    """Loaders that keep what they loaded for later jobs."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Any] = {}

    def _get(self, key: tuple, load) -> Any:
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def pipelines(self, path: str, config: str | None, device: str, half: bool):
        return self._get(("sd", path, config, device, half),
                         lambda: super(CachedLoaders, self).pipelines(path, config, device, half))

    def depth_model(self, path: str, device: Any, half: bool):
        return self._get(("depth", path, str(device), half),
                         lambda: super(CachedLoaders, self).depth_model(path, device, half))


def _reader(stream: TextIO, jobs: queue.Queue, cancels: dict[str, CancelToken],
            lock: threading.Lock) -> None:
    """Read commands; cancels act at once, jobs queue up."""
    for line in stream:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
        except ValueError:
            jobs.put({"invalid": line.strip()[:200]})
            continue
        if isinstance(command, dict) and "cancel" in command:
            with lock:
                token = cancels.get(str(command["cancel"]))
            if token is not None:
                token.request()
            continue
        jobs.put(command)
        if isinstance(command, dict) and command.get("quit"):
            return
    # End of input without "quit": the client (Blender) is gone and nobody reads the
    # events, so the running job stops too (its frames are kept).
    with lock:
        for token in cancels.values():
            token.request()
    jobs.put({"quit": True})


def serve(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    loaders = CachedLoaders()
    jobs: queue.Queue = queue.Queue()
    cancels: dict[str, CancelToken] = {}
    lock = threading.Lock()
    threading.Thread(target=_reader, args=(stdin, jobs, cancels, lock), daemon=True).start()
    parser = build_parser()
    Progress(jsonl=True, out=stdout).emit("ready")
    while True:
        command = jobs.get()
        if not isinstance(command, dict) or "invalid" in command:
            Progress(jsonl=True, out=stdout).error(f"not a JSON command: {command!r}", code=2)
            continue
        if command.get("quit"):
            return 0
        job = str(command.get("id", ""))
        progress = Progress(jsonl=True, out=stdout, tag={"job": job})
        token = CancelToken()
        with lock:
            cancels[job] = token
        try:
            argv = command.get("argv")
            if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
                raise SettingsError("argv: expected a list of command-line arguments",
                                    key="argv", value=argv)
            try:
                args = parser.parse_args(argv + ["--progress", "jsonl"])
            except SystemExit:
                raise SettingsError(f"argv: not valid engine arguments: {argv}", key="argv",
                                    value=argv) from None
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


if __name__ == "__main__":
    sys.exit(serve())
