"""A run whose output folder does not take a file ends with an error naming ``outdir``,
never a traceback, and keeps every frame it wrote; nothing is ever replaced."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from engine.output import NAME_ROOM, NewFile, frame_path
from engine.video import movie_path
from tests.engine.test_cli import events, run_engine, write_settings

ROOT = Path(__file__).resolve().parents[2]
PREVIEW = dict(animation_mode="3D", W=64, H=64, max_frames=6, translation_z="0:(2)",
               batch_name="shot")


def run_failing(tmp_path: Path, error: int, frame: int) -> subprocess.CompletedProcess:
    """The CLI (3D preview, timestring TS) in a process whose write of frame ``frame``
    fails with ``error``, as a full disk or a locked folder makes it fail."""
    script = (
        "import errno, sys\n"
        "import engine.output as output\n"
        "real = output._fsync_file\n"
        "def failing(path):\n"
        f"    if path.name.startswith('.TS_{frame:05d}.png'):\n"
        f"        raise OSError({error}, output.os.strerror({error}))\n"
        "    real(path)\n"
        "output._fsync_file = failing\n"
        "from engine.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-c", script, "--settings", write_settings(tmp_path, **PREVIEW),
         "--enable_animation_mode", "--preview", "--outdir", tmp_path / "out",
         "--timestring", "TS", "--progress", "jsonl"],
        env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.ENAMETOOLONG])
def test_a_frame_the_folder_does_not_take_ends_the_run_naming_outdir(tmp_path, error):
    result = run_failing(tmp_path, error, frame=3)
    folder = tmp_path / "out" / "shot"
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (f"error: outdir: cannot write {frame_path(folder, 'TS', 3)}: {os.strerror(error)}"
            in result.stderr)
    assert events(result)[-1] == {"event": "error", "code": 2, "key": "outdir",
                                  "message": result.stderr.splitlines()[-1][len("error: "):]}
    kept = sorted(p.name for p in folder.glob("TS_*.png"))
    assert kept == [f"TS_{i:05d}.png" for i in range(3)]
    assert all(cv2.imread(str(folder / name)) is not None for name in kept)
    assert not list(folder.glob(".*")), "no temporary file is left"


def test_a_link_to_nothing_in_the_movies_place_is_kept_and_the_movie_takes_the_next_name(
        tmp_path):
    folder = tmp_path / "out" / "shot"
    folder.mkdir(parents=True)
    (folder / "TS.mp4").symlink_to(tmp_path / "nothing.mp4")
    result = run_engine("--settings", write_settings(tmp_path, **PREVIEW),
                        "--enable_animation_mode", "--preview", "--outdir", tmp_path / "out",
                        "--timestring", "TS", "--video", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert events(result)[-1]["video"] == str(folder / "TS_2.mp4")
    assert (folder / "TS.mp4").is_symlink() and not (folder / "TS.mp4").exists()


def test_a_movie_name_taken_while_encoding_goes_to_the_next_free_one(tmp_path):
    with NewFile(lambda: movie_path(tmp_path, "TS"), suffix=".mp4") as movie:
        movie.temp.write_bytes(b"ours")
        (tmp_path / "TS.mp4").write_bytes(b"another engine's")  # published meanwhile
    assert movie.path == tmp_path / "TS_2.mp4"
    assert movie.path.read_bytes() == b"ours"
    assert (tmp_path / "TS.mp4").read_bytes() == b"another engine's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TS.mp4", "TS_2.mp4"]


def test_a_file_in_a_fixed_place_is_never_replaced(tmp_path):
    target = tmp_path / "TS_00000.png"
    with pytest.raises(FileExistsError):
        with NewFile(lambda: target) as new:
            new.temp.write_bytes(b"ours")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and sorted(tmp_path.iterdir()) == [target]


def test_a_timestring_leaves_room_for_the_names_made_from_it(tmp_path):
    settings = write_settings(tmp_path, **{**PREVIEW, "max_frames": 2})
    longest = "t" * (255 - NAME_ROOM)
    results = [run_engine("--settings", settings, "--enable_animation_mode", "--preview",
                          "--outdir", tmp_path / "out", "--timestring", timestring)
               for timestring in (longest + "t", longest)]
    assert [r.returncode for r in results] == [2, 0], results[1].stderr
    assert not any("Traceback" in r.stderr for r in results)
    assert ("error: timestring: 'ttt" in results[0].stderr and
            f"is {256 - NAME_ROOM} bytes long; names here have at most {255 - NAME_ROOM}"
            in results[0].stderr)
    folder = tmp_path / "out" / "shot"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{longest}_00000.png", f"{longest}_00001.png", f"{longest}_settings.txt"]
    assert json.loads((folder / f"{longest}_settings.txt").read_text())["timestring"] == longest
