"""The run's movie encoded while its frames are made, so it is ready with the last frame.

ffmpeg reads the frames' PNG files through a pipe, in order, as each one is
reported whole (the background writer's ``frame`` event); frames a resumed or
partial run kept from before are read from disk when their turn comes.  It is
the encoder and the settings of ``video.write_video``, fed the same files, so
the movie is the same to the byte.  Anything out of the ordinary (a frame out of
order or missing, ffmpeg failing) stops the stream quietly and the movie is
encoded from the files after the last frame as before: the stream can delay a
frame's write while ffmpeg catches up, but never fails the run.
"""

from __future__ import annotations

import subprocess
import threading
from contextlib import ExitStack, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any

from .output import PNG_END, NewFile, frame_path
from .progress import Progress
from .video import ffmpeg_executable, movie_command, movie_path

PIPE_INPUT = ["-f", "image2pipe", "-c:v", "png", "-i", "-"]


class _Stopped(Exception):
    """The stream gives up; the movie will be encoded from the files."""


class MovieStream:
    """Feeds ``folder``'s frames of ``timestring`` to ffmpeg as they are reported.

    A context manager: leaving it before ``finish`` (a cancel, an error) stops
    ffmpeg and removes its unfinished file.
    """

    def __init__(self, folder: Path, timestring: str, audio: str | None, ffmpeg: str) -> None:
        self.folder, self.timestring, self.audio, self.ffmpeg = folder, timestring, audio, ffmpeg
        self.fps = 0.0
        self.fed = 0  # frames 0…fed−1 are in the pipe
        self._process: subprocess.Popen | None = None
        self._movie: NewFile | None = None
        self._temp = ExitStack()  # holds the movie's temporary file until it is published
        self._stopped = False
        self._lock = threading.Lock()

    def follow(self, progress: Progress, fps: float) -> None:
        """Feed each frame ``progress`` reports from now on, into a movie at ``fps``."""
        self.fps = fps
        progress.frame_listeners.append(self.frame_done)

    def frame_done(self, index: int, path: str) -> None:
        """Frame ``index`` is whole on disk: feed it, after any earlier frames kept from
        before; a frame out of order stops the stream.  Never raises."""
        with self._lock:
            if self._stopped:
                return
            try:
                if index < self.fed:
                    raise _Stopped(f"frame {index} came after frame {self.fed - 1}")
                if Path(path) != frame_path(self.folder, self.timestring, index):
                    raise _Stopped(f"{path} is not one of the movie's frames")
                self._feed(index + 1)
            except Exception:  # noqa: BLE001 - the movie is then encoded from the files
                self._stop()

    def finish(self, count: int) -> Path | None:
        """The movie of frames 0…count−1, published; None when the stream stopped or fed
        no frame (the caller encodes from the files)."""
        with self._lock:
            if not self._stopped and self._process is not None:
                try:
                    if self.fed > count:
                        raise _Stopped(f"{self.fed} frames fed for a movie of {count}")
                    self._feed(count)
                    self._process.stdin.close()
                    if self._process.wait() != 0:
                        raise _Stopped(f"ffmpeg exited with {self._process.returncode}")
                    self._temp.close()  # synced, then linked to its name
                    self._stopped = True
                    return self._movie.path
                except Exception:  # noqa: BLE001 - the movie is then encoded from the files
                    pass
            self._stop()
            return None

    def _feed(self, end: int) -> None:
        """Pipe frames ``fed``…end−1; one missing or cut short (a kept frame from a killed
        run) stops the stream."""
        while self.fed < end:
            path = frame_path(self.folder, self.timestring, self.fed)
            data = path.read_bytes()
            if not data.endswith(PNG_END):
                raise _Stopped(f"{path} is not a whole PNG")
            self._start().stdin.write(data)
            self.fed += 1

    def _start(self) -> subprocess.Popen:
        if self._process is None:
            self._movie = self._temp.enter_context(NewFile(
                lambda: movie_path(self.folder, self.timestring), suffix=".mp4"))
            self._process = subprocess.Popen(
                movie_command(self.ffmpeg, PIPE_INPUT, self.fps, self.audio, self._movie.temp),
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self._process

    def _stop(self) -> None:
        """Stop ffmpeg and remove its unfinished file (nothing is published)."""
        self._stopped = True
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process is not None and self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        self._temp.__exit__(_Stopped, _Stopped("stopped"), None)

    def __enter__(self) -> MovieStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with self._lock:
            if not self._stopped:
                self._stop()


def movie_stream(wanted: bool, folder: Path, timestring: str, audio: str | None) -> Any:
    """A ``MovieStream`` for a run that makes a movie with ffmpeg, else ``nullcontext()``
    (no movie, or OpenCV's encoder, which writes from the files at the end)."""
    ffmpeg = ffmpeg_executable() if wanted else None
    return MovieStream(folder, timestring, audio, ffmpeg) if ffmpeg else nullcontext()
