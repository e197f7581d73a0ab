"""Where a run writes: folder, timestring and frame files, never overwriting.

Every file the engine writes appears whole or not at all (``atomic_path``): a
run killed mid-write leaves at most a dot-prefixed temporary file, which no
listing of frames or images picks up.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from .errors import InputError, OutputError
from .paths import check_folder_name

FRAME_DIGITS = 5
# Bytes the longest file name made from a timestring adds to it, its temporary name's
# included: ``.{timestring}_frames_00001-00016_settings.txt.tmp-{pid}``.
NAME_ROOM = 56


def batch_folder(outdir: str | Path, batch_name: str, timestring: str) -> Path:
    """``outdir/batch_name`` with ``{timestring}`` substituted; no path tricks, and no name
    the file system would refuse (checked before anything is written)."""
    name = batch_name.replace("{timestring}", timestring).strip() or "Deforum"
    check_folder_name(name, Path(outdir), "batch_name", batch_name)
    return Path(outdir) / name


def new_timestring(taken: callable) -> str:
    """Now as YYYYmmddHHMMSS, moved forward a second at a time while ``taken``."""
    now = time.time()
    while True:
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
        if not taken(stamp):
            return stamp
        now += 1


def timestring_in_use(folder: Path, stamp: str) -> bool:
    return folder.is_dir() and any(folder.glob(f"{stamp}_*"))


def frame_path(folder: Path, timestring: str, index: int) -> Path:
    return folder / f"{timestring}_{index:0{FRAME_DIGITS}d}.png"


# ---------------------------------------------------------------- atomic writes

TEMP_MARK = ".tmp-"
# Test-only (tests/engine/test_kill_resume.py): DEFORUM_TEST_PAUSE_IN_WRITE=N makes the
# write of frame N stop halfway for PAUSE_SECONDS, so a test can kill the engine there.
PAUSE_VARIABLE = "DEFORUM_TEST_PAUSE_IN_WRITE"
PAUSE_SECONDS = 60.0
# With DEFORUM_TEST_PAUSE_ONCE=FILE too, only the first engine to make FILE (holding its
# pid) pauses: a farm test kills that one, and the task's retry must not pause again.
PAUSE_ONCE_VARIABLE = "DEFORUM_TEST_PAUSE_ONCE"
# Errors of os.link on file systems without hard links (FAT/exFAT drives, some shares;
# Windows reports ERROR_INVALID_FUNCTION as EINVAL).
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL}


def temp_path(path: Path, suffix: str = "") -> Path:
    """``.{name}.tmp-{pid}{suffix}`` beside ``path``: hidden, never a frame name, ours alone.

    ``suffix`` is for writers that choose the format by extension (the movie).
    """
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}{suffix}")


class NewFile:
    """A file written under a temporary name, then published whole: ``path`` is where.

    The temporary file is synced to disk, then hard-linked to its name and
    unlinked: ``os.link`` fails with FileExistsError when the name is taken, so
    an existing file is never replaced, with no window between a check and the
    move.  ``first_free()`` gives the name; when another process takes it first,
    the next name ``first_free()`` gives is tried (a movie's ``_2.mp4``), and a
    name that does not change fails.  Where a file system has no hard links,
    the name is checked and the file renamed.  ``replace=True`` renames over the
    name (``os.replace``, atomic too).  The folder is synced where that is
    supported, so the new name survives a power cut.  On any failure the
    temporary file is removed and nothing is published; an OSError names the
    file it was writing, not its temporary name.
    """

    def __init__(self, first_free: Callable[[], Path], *, replace: bool = False,
                 suffix: str = "") -> None:
        self.first_free, self.replace = first_free, replace
        self.path = first_free()
        self.temp = temp_path(self.path, suffix)

    def __enter__(self) -> NewFile:
        try:
            self.temp.unlink(missing_ok=True)  # ours: left by a killed process with our pid
        except OSError as exc:
            _raise_naming(exc, self.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if kind is None:
                _fsync_file(self.temp)
                self._publish()
        except OSError as exc:
            _raise_naming(exc, self.path)
        finally:
            self.temp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            _raise_naming(error, self.path)
        if kind is None:
            _fsync_folder(self.path.parent)

    def _publish(self) -> None:
        while True:
            try:
                return _publish(self.temp, self.path, self.replace)
            except FileExistsError:
                taken, self.path = self.path, self.first_free()
                if self.path == taken:
                    raise


def _raise_naming(error: OSError, path: Path) -> None:
    """Raise ``error``, as the same kind of OSError naming ``path`` (the file being written)
    where it names another file (the temporary one) or none."""
    if error.errno is None or (error.filename2 or error.filename) == str(path):
        raise error
    raise OSError(error.errno, error.strerror or str(error), str(path)) from error


@contextmanager
def atomic_path(path: Path, *, replace: bool = False, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary name to write; when the block ends, the file appears as ``path``
    (``NewFile``: never replacing a file unless ``replace``).  ``suffix`` is for writers
    that choose the format by extension (the movie)."""
    with NewFile(lambda: path, replace=replace, suffix=suffix) as new:
        yield new.temp


def output_failure(error: OSError, outdir: str | Path) -> OutputError | None:
    """``error`` as the user's error when it came from writing a file under ``outdir``
    (no permission, no space left, a name too long, a file in the way); else None."""
    name = error.filename2 or error.filename
    if error.errno is None or not isinstance(name, str):
        return None
    root = os.path.abspath(outdir)
    try:
        if os.path.commonpath([root, os.path.abspath(name)]) != root:
            return None
    except ValueError:  # another drive
        return None
    why = "a file of that name is in the way (files are never replaced)" \
        if isinstance(error, FileExistsError) else error.strerror
    return OutputError(f"outdir: cannot write {name}: {why}", key="outdir", value=str(outdir))


def write_atomic(path: Path, data: bytes, *, replace: bool = False) -> Path:
    """Write ``data`` to ``path`` as one step (see ``atomic_path``); returns ``path``."""
    with atomic_path(path, replace=replace) as temp:
        with open(temp, "wb") as handle:
            _test_pause(path, handle, data)
            handle.write(data)
    return path


def _publish(temp: Path, path: Path, replace: bool) -> None:
    if replace:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:  # FileExistsError included: never replace
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "not replacing an existing file", str(path))
        os.rename(temp, path)


def _fsync_file(path: Path) -> None:
    with open(path, "r+b") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable; Windows and some file systems cannot."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _test_pause(path: Path, handle: BinaryIO, data: bytes) -> None:
    """Test-only hook (``PAUSE_VARIABLE``): write half of frame N, then wait to be killed."""
    index = os.environ.get(PAUSE_VARIABLE)
    if not index or not re.fullmatch(rf"[^_]+_{int(index):0{FRAME_DIGITS}d}\.png", path.name):
        return
    once = os.environ.get(PAUSE_ONCE_VARIABLE)
    if once:
        try:
            fd = os.open(once, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    handle.write(data[:len(data) // 2])
    handle.flush()
    time.sleep(PAUSE_SECONDS)
    handle.seek(0)  # not killed: the whole file follows


def remove_stale_temps(folder: Path, names: str) -> list[Path]:
    """Delete temporary files a killed run left for targets whose names match ``names``.

    Only names ``temp_path`` makes (``.{name}.tmp-{digits}``, optional
    suffix) are touched; every other file stays.  Returns what was removed.
    """
    pattern = re.compile(rf"\.(?:{names}){re.escape(TEMP_MARK)}\d+(?:\.[a-z0-9]+)?")
    stale = [p for p in folder.glob(".*") if pattern.fullmatch(p.name) and p.is_file()] \
        if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------- images

def encode_png(image: np.ndarray, path: Path) -> bytes:
    """An RGB (or grey H×W) uint8 image as PNG bytes; ``path`` names it in errors."""
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(
        image if image.ndim == 2 else image[..., ::-1]))
    if not ok:
        raise OSError(f"could not encode {path}")
    return data.tobytes()


def write_png(path: Path, image: np.ndarray, *, replace: bool = False) -> None:
    """Write an RGB (or grey H×W) uint8 image as a PNG, atomically; replaces a file only
    when asked (a resumed run replacing a frame it found broken)."""
    write_atomic(path, encode_png(image, path), replace=replace)


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def decodes(path: Path) -> bool:
    """Whether ``path`` is a whole image: a PNG must end in its IEND chunk and decode."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return False
    if not data.size or (path.suffix.lower() == ".png" and data[-12:].tobytes() != PNG_END):
        return False
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED) is not None


def read_image(path: str | Path, size: tuple[int, int], key: str) -> np.ndarray:
    """Read an image file as RGB uint8 resized to (W, H); errors name the setting."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{key}: file not found: {path}", key=key, value=str(path))
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{key}: {path} is not a readable image", key=key, value=str(path))
    image = image[..., ::-1]
    if image.shape[1] != size[0] or image.shape[0] != size[1]:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4)
    return np.ascontiguousarray(image)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    """The images in ``folder`` in natural order (frame2 before frame10).

    Hidden files are left out: a killed writer's temporary files, macOS's ``._`` files.
    """
    def natural(path: Path) -> list:
        return [int(part) if part.isdigit() else part.lower()
                for part in re.split(r"(\d+)", path.name)]
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")
                   and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural)
