"""Frames written in the background, so the next frame's work starts at once.

Encoding a 512² PNG and writing it takes about as long as warping the frame; on
a GPU it would be a tenth of the frame's time spent idle.  A ``Writer`` runs
the loop's writes (frames, depth maps, masks) on one thread, in the order they
were submitted, each file atomically, and reports each frame only once it is on
disk — so the ``frame`` event still means "this file is whole".  The queue is
short (``DEPTH`` frames), so memory stays bounded and a slow disk slows the loop
rather than piling up pictures.  Closing the writer (also after a cancel or an
error in the loop) waits for every submitted write: every finished frame is
kept.  A write that fails stops the run with its error at the next submission
or at the close.  ``Writer(background=False)`` writes in the caller's thread,
which is the loop as it was, for comparison.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

DEPTH = 3  # frames waiting to be written at most; the loop waits beyond that

Task = Callable[[], None]


class Writer:
    """Runs submitted writes in order, on a background thread unless ``background`` is
    False; a context manager that closes (waits for every write) on exit."""

    def __init__(self, background: bool = True, depth: int = DEPTH) -> None:
        self.background = background
        self._error: BaseException | None = None
        self._queue: queue.Queue[Task | None] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._work, name="deforum-writer",
                                            daemon=True)
            self._thread.start()

    def submit(self, task: Task) -> None:
        """Queue ``task`` (waits while the queue is full); raises an earlier write's error."""
        self._raise()
        if self._thread is None:
            task()
        else:
            self._queue.put(task)

    def close(self) -> None:
        """Wait for every submitted write; raises the first write error, if any."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.close()
            return
        try:  # the loop's own error wins over a write error behind it
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def _work(self) -> None:
        while (task := self._queue.get()) is not None:
            if self._error is None:  # after a failure, later writes are skipped
                try:
                    task()
                except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
