"""Intermediates of runs in ``<output>/jobs/``: what they are, removing them, disk use.

A run ``<stem>`` (``<batch>_<YYYYmmddHHMMSS>[_n]``, its job file ``<stem>.json``)
leaves scratch beside its job file: ``<stem>_depth/`` (scene depth maps),
``<stem>_scene/`` (scene renders), ``<stem>_masks/`` (collection masks),
``<stem>_flow/`` (scene flow), ``<stem>_control/`` (ControlNet control images, a
folder per unit) and ``<stem>.cancel``. The job file and log are kept: a take's
strip names its job file. Nothing here touches frames or anything outside ``jobs/``; no bpy, so the
disk use can be measured on a thread while ``draw()`` only reads the last value.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

# A run's scratch beside its job file, by what it holds: the names compose and runner give.
DEPTH, SCENE, MASKS, FLOW, CANCEL = "_depth", "_scene", "_masks", "_flow", ".cancel"
CONTROL = "_control"
SCRATCH_SUFFIXES = (DEPTH, SCENE, MASKS, FLOW, CONTROL, CANCEL)
_SCRATCH = re.compile(r"^(?P<stem>.+_\d{14}(?:_\d+)?)(?P<suffix>%s)$"
                      % "|".join(re.escape(s) for s in SCRATCH_SUFFIXES))


def scratch(jobs_dir: Path, stem: str, suffix: str) -> Path:
    """Where run ``stem`` keeps one kind of scratch (``DEPTH``, ``SCENE``, …)."""
    return jobs_dir / f"{stem}{suffix}"


def scratch_stem(path: Path) -> str | None:
    """The run a ``jobs/`` entry is scratch of, else None (job files, logs, the rest)."""
    match = _SCRATCH.match(path.name)
    return match.group("stem") if match else None


def size_of(path: Path) -> int:
    """Bytes in a file or folder (links are not followed)."""
    if path.is_symlink() or not path.is_dir():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: Path, jobs_dir: Path) -> int:
    """Delete one scratch entry directly inside ``jobs_dir``; the bytes freed."""
    if path.parent.resolve() != jobs_dir.resolve() or scratch_stem(path) is None:
        raise ValueError(f"not run scratch in {jobs_dir}: {path}")
    freed = size_of(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    return freed


def remove_scratch(jobs_dir: Path, stem: str) -> int:
    """Delete one run's scratch (after it succeeded); the bytes freed."""
    freed = 0
    for suffix in SCRATCH_SUFFIXES:
        path = jobs_dir / f"{stem}{suffix}"
        if path.exists() or path.is_symlink():
            freed += _remove(path, jobs_dir)
    return freed


def clean_up(jobs_dir: Path, keep_jobs: set[str]) -> tuple[int, int]:
    """Delete the scratch of every run whose job file is not in ``keep_jobs`` (paths of
    job files that a take uses or a run is writing); (entries removed, bytes freed)."""
    if not jobs_dir.is_dir():
        return 0, 0
    keep = {os.path.normcase(os.path.abspath(p)) for p in keep_jobs}
    removed = freed = 0
    for path in sorted(jobs_dir.iterdir()):
        stem = scratch_stem(path)
        if stem is None or os.path.normcase(os.path.abspath(jobs_dir / f"{stem}.json")) in keep:
            continue
        freed += _remove(path, jobs_dir)
        removed += 1
    return removed, freed


def human(size: int) -> str:
    """1536 → '1.5 KB' (powers of 1024, as the file browser shows sizes)."""
    if size < 1024:
        return f"{size} B"
    value, unit = size / 1024, "KB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


class DiskUse:
    """The bytes in output folders, measured on a thread, read without waiting.

    ``get`` answers the last measurement (None until the first one ends) and
    starts a new one when it is older than ``max_age`` seconds or forgotten.
    """

    def __init__(self, max_age: float = 30.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, int, int]] = {}  # folder: (when, total, jobs)
        self._measuring: set[str] = set()

    def get(self, folder: Path) -> tuple[int, int] | None:
        """(bytes in ``folder``, bytes in its ``jobs/``) as last measured, else None."""
        key = str(folder)
        with self._lock:
            value = self._values.get(key)
            fresh = value is not None and time.monotonic() - value[0] < self.max_age
            if not fresh and key not in self._measuring:
                self._measuring.add(key)
                threading.Thread(target=self._measure, args=(key,), daemon=True).start()
        return value[1:] if value is not None else None

    def forget(self) -> None:
        """Measure again at the next ``get`` (a run or a clean-up changed the folder)."""
        with self._lock:
            self._values.clear()

    def _measure(self, key: str) -> None:
        folder = Path(key)
        try:
            total = size_of(folder) if folder.is_dir() else 0
            jobs = size_of(folder / "jobs") if (folder / "jobs").is_dir() else 0
            with self._lock:
                self._values[key] = (time.monotonic(), total, jobs)
        finally:
            with self._lock:
                self._measuring.discard(key)


DISK_USE = DiskUse()  # the Output panel's numbers
