"""The engine's one progress stream: JSON lines on stdout, human lines on stderr.

The events are the run's only way to tell its reader what it made: when their
stream is closed (the reader went away, ``| head``) or full, the run stops as
if cancelled, keeping every frame written, rather than going on unheard or
ending in a traceback.  The human lines are a courtesy: a log that cannot be
written is skipped.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .errors import Cancelled


class Progress:
    """Reports run events; ``jsonl`` adds machine-readable lines on stdout."""

    def __init__(self, jsonl: bool = False, out: TextIO | None = None,
                 log: TextIO | None = None, tag: dict[str, Any] | None = None) -> None:
        self.jsonl = jsonl
        self.tag = tag or {}  # added to every event (a warm engine's job id)
        self.out = out or sys.stdout  # either is None where the process started without it
        self.log = log or sys.stderr
        self.lost = False  # the events' stream could not be written: nobody reads them
        self._started = time.monotonic()
        self._total = 0
        self._done = 0
        self._lock = threading.Lock()
        # Called with (index, path) after each frame's event, on the thread that wrote it.
        self.frame_listeners: list[Callable[[int, str], None]] = []

    @property
    def frames(self) -> int:
        """Frames reported since ``start``: whether a failed run left any on disk."""
        return self._done

    def emit(self, event: str, **fields: Any) -> None:
        """One JSON line; raises ``Cancelled`` once when the stream cannot take it."""
        if self.jsonl and not self.lost:
            line = json.dumps({"event": event, **self.tag, **fields}) + "\n"
            with self._lock:  # frames are reported from the writer's thread
                try:
                    self.out.write(line)
                    self.out.flush()
                    return
                # ValueError: the stream was closed; AttributeError: started without one
                except (OSError, ValueError, AttributeError) as exc:
                    self._lose()
                    cause = "the process has no stdout" if self.out is None else exc
                    why = f"the progress stream cannot be written ({cause})"
            self.info(f"stopping: {why}; nobody reads this run's events")
            raise Cancelled(why)

    def _lose(self) -> None:
        """Stop writing events; what is still buffered goes nowhere (not to a traceback
        when Python flushes the stream at exit)."""
        self.lost = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.out.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError):
            pass

    def info(self, message: str) -> None:
        if self.log is None:
            return
        with self._lock:
            try:
                print(message, file=self.log, flush=True)
            except (OSError, ValueError):
                pass  # a log that cannot be written is skipped; the run goes on

    def warning(self, message: str, key: str | None = None) -> None:
        self.info(f"warning: {message}")
        self.emit("warning", message=message, **({"key": key} if key else {}))

    def error(self, message: str, key: str | None = None, code: int = 1) -> None:
        self.info(f"error: {message}")
        self.emit("error", message=message, key=key, code=code)

    def start(self, timestring: str, outdir: str, total: int, **extra: Any) -> None:
        self._started = time.monotonic()
        self._total, self._done = total, 0
        self.info(f"rendering {total} frames into {outdir} (timestring {timestring})")
        self.emit("start", timestring=timestring, outdir=outdir, total=total, **extra)

    def frame(self, index: int, path: str, seconds: float,
              used: dict[str, Any] | None = None) -> None:
        """A frame was written; ``used``: the diffusion values it was made with."""
        self._done += 1
        elapsed = time.monotonic() - self._started
        eta = elapsed / self._done * max(self._total - self._done, 0)
        self.info(f"frame {index} ({self._done}/{self._total}) {seconds:.2f}s  {path}")
        self.emit("frame", index=index, path=path, seconds=round(seconds, 4),
                   eta=round(eta, 2), done=self._done, total=self._total,
                   **({"used": used} if used is not None else {}))
        for listener in self.frame_listeners:
            listener(index, path)

    def step(self, frame: int, step: int, steps: int) -> None:
        """A denoising step finished (for progress inside long frames)."""
        self.emit("step", index=frame, step=step, steps=steps)

    def done(self, **extra: Any) -> None:
        self.info(f"done: {self._done} frames in {time.monotonic() - self._started:.1f}s")
        self.emit("done", frames=self._done, **extra)

    def cancelled(self) -> None:
        self.info(f"cancelled after {self._done} frames; written frames are kept")
        self.emit("cancelled", frames=self._done)
