"""A run killed at any moment resumes to exactly the frames of an uninterrupted run.

Files appear whole or not at all (``engine.output.atomic_path``), a killed run's
temporary files are ignored and cleared, and a resume re-renders a frame that
does not decode instead of keeping it.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.output import (atomic_path, frame_path, image_files, remove_stale_temps,
                           write_atomic, write_png)
from tests.engine.kill_harness import (Moment, events, frame_damage, kill_at, resume,
                                       run_engine, write_settings)

FRAMES = 10


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory,
              tiny_model: Path) -> tuple[Path, str, list[bytes]]:
    """One uninterrupted run with ``--video``: (batch folder, timestring, frame bytes)."""
    root = tmp_path_factory.mktemp("reference")
    result = run_engine(write_settings(root / "s.txt", batch_name="full"), root / "out",
                        tiny_model, "--video")
    assert result.returncode == 0, result.stderr
    ts = next(e for e in events(result) if e["event"] == "start")["timestring"]
    folder = root / "out" / "full"
    return folder, ts, [frame_path(folder, ts, i).read_bytes() for i in range(FRAMES)]


MOMENTS = [Moment(frames=1), Moment(frames=4, delay=0.3), Moment(frames=7),
           Moment(in_write=3), Moment(in_write=6)]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_killed_run_resumes_to_the_uninterrupted_frames(tmp_path, tiny_model, reference,
                                                          moment):
    settings = write_settings(tmp_path / "s.txt", batch_name="killed")
    ts, killed = kill_at(moment, settings, tmp_path / "out", tiny_model)
    assert killed
    folder = tmp_path / "out" / "killed"
    if moment.in_write is not None:  # the half-written frame is only a hidden temporary
        assert not frame_path(folder, ts, moment.in_write).exists()
        assert [p.name for p in folder.glob(".*.tmp-*")] != []
    result = resume(settings, tmp_path / "out", tiny_model, ts)
    assert result.returncode == 0, result.stderr
    assert frame_damage(folder, ts, reference[2]) == (0, 0)
    assert not list(folder.glob(".*"))  # the killed run's temporary files are gone


def _old_engine_leftovers(reference: tuple[Path, str, list[bytes]], folder: Path) -> str:
    """Frames 0–6 of the reference as an old engine killed mid-write would leave them:
    frame 5 truncated, frame 6 empty; plus temporary files, ours and a stranger's."""
    source, ts, frames = reference
    folder.mkdir(parents=True)
    for index in range(7):
        data = frames[index][:len(frames[index]) // 2] if index == 5 else frames[index]
        frame_path(folder, ts, index).write_bytes(b"" if index == 6 else data)
    shutil.copy(source / f"{ts}_settings.txt", folder)
    (folder / f".{ts}_00007.png.tmp-999999").write_bytes(b"half")
    (folder / f".{ts}_notes.txt").write_text("not ours")
    (folder / ".other_00007.png.tmp-1").write_text("not ours")
    return ts


def test_resume_rerenders_empty_and_truncated_frames_and_keeps_good_ones(tmp_path, tiny_model,
                                                                         reference):
    folder = tmp_path / "out" / "old"
    ts = _old_engine_leftovers(reference, folder)
    good = {i: os.stat(frame_path(folder, ts, i)) for i in range(5)}
    settings = write_settings(tmp_path / "s.txt", batch_name="old")
    result = resume(settings, tmp_path / "out", tiny_model, ts)
    assert result.returncode == 0, result.stderr
    assert [e["index"] for e in events(result) if e["event"] == "frame"] == [5, 6, 7, 8, 9]
    # The progress counts the frames this run writes, so its bar ends full.
    start, *frames, done = [e for e in events(result) if e["event"] in ("start", "frame", "done")]
    assert start["total"] == 5 and (frames[-1]["done"], frames[-1]["eta"]) == (5, 0.0)
    assert result.stderr.count("is not a whole image") == 2
    assert frame_damage(folder, ts, reference[2]) == (0, 0)
    for index, before in good.items():
        after = os.stat(frame_path(folder, ts, index))
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in folder.glob(".*")) == [f".{ts}_notes.txt",
                                                        ".other_00007.png.tmp-1"]


def test_a_second_movie_gets_the_next_free_name(tmp_path, tiny_model, reference):
    source, ts, frames = reference
    folder = tmp_path / "out" / "again"
    shutil.copytree(source, folder)
    movie = (folder / f"{ts}.mp4").read_bytes()
    settings = write_settings(tmp_path / "s.txt", batch_name="again")
    result = resume(settings, tmp_path / "out", tiny_model, ts, "--video")
    assert result.returncode == 0, result.stderr
    assert events(result)[-1]["video"] == str(folder / f"{ts}_2.mp4")
    assert (folder / f"{ts}.mp4").read_bytes() == movie
    assert (folder / f"{ts}_2.mp4").stat().st_size > 0
    assert frame_damage(folder, ts, frames) == (0, 0)


# ---------------------------------------------------------------- the writer alone

def test_write_atomic_never_replaces_unless_asked_and_leaves_no_temporary(tmp_path):
    path = write_atomic(tmp_path / "a.txt", b"first")
    with pytest.raises(FileExistsError):
        write_atomic(path, b"second")
    assert path.read_bytes() == b"first"
    write_atomic(path, b"third", replace=True)
    assert path.read_bytes() == b"third"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_without_hard_links_the_writer_still_refuses_to_replace(tmp_path, monkeypatch):
    def no_link(src: object, dst: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", no_link)
    path = write_atomic(tmp_path / "a.png", b"first")
    with pytest.raises(FileExistsError):
        write_atomic(path, b"second")
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "movie.mp4", suffix=".mp4") as temp:
            temp.write_bytes(b"half a movie")
            raise RuntimeError("encoder died")
    assert list(tmp_path.iterdir()) == []


def test_listings_ignore_temporaries_and_cleaning_spares_other_files(tmp_path):
    write_png(frame_path(tmp_path, "20240101000000", 0), np.zeros((4, 4, 3), np.uint8))
    temps = [".20240101000000_00001.png.tmp-42", ".20240101000000.mp4.tmp-7.mp4"]
    others = [".20240101000000_00001.png.tmp-x", ".2024010100000_00001.png.tmp-3", "x.tmp-4"]
    for name in temps + others:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in image_files(tmp_path)] == ["20240101000000_00000.png"]
    removed = remove_stale_temps(tmp_path, r"20240101000000(?:_.+|\.mp4)")
    assert sorted(p.name for p in removed) == sorted(temps)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        others + ["20240101000000_00000.png"])
