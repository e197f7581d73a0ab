"""The movie encoded while the frames are written: ready with the last frame, the same
bytes as one encoded from the files afterwards, and nothing left behind when it stops."""

import json

import numpy as np
import pytest

from engine import video
from engine.cli import main
from engine.movie_stream import MovieStream
from engine.output import frame_path, write_png
from engine.video import ffmpeg_executable, write_video

pytestmark = pytest.mark.skipif(ffmpeg_executable() is None, reason="needs imageio-ffmpeg")

SETTINGS = {"animation_mode": "3D", "W": 64, "H": 48, "max_frames": 9, "diffusion_cadence": 2,
            "translation_z": "0:(4)", "rotation_3d_y": "0:(1.5)", "fps": 12}


def render(tmp_path, *extra):
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(SETTINGS))
    return main(["--settings", str(settings), "--outdir", str(tmp_path / "out"), "--preview",
                 "--enable_animation_mode", *extra])


def encoded_after(*args, **kwargs):
    raise AssertionError("the movie was encoded from the files after the frames")


def test_the_movie_made_with_the_frames_is_the_one_made_after_them(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "write_video", encoded_after)
    assert render(tmp_path, "--video", "--timestring", "T") == 0
    monkeypatch.undo()
    folder = tmp_path / "out" / "StableFun"
    assert write_video(folder, "T", 9, 12).read_bytes() == (folder / "T.mp4").read_bytes()
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".png")) == [
        "T.mp4", "T_2.mp4", "T_settings.txt"]


def test_a_resumed_run_streams_the_frames_it_kept_too(tmp_path, monkeypatch):
    assert render(tmp_path, "--timestring", "T") == 0
    folder = tmp_path / "out" / "StableFun"
    for index in range(5, 9):
        frame_path(folder, "T", index).unlink()
    monkeypatch.setattr(video, "write_video", encoded_after)
    assert render(tmp_path, "--resume", "T", "--video") == 0
    monkeypatch.undo()
    assert write_video(folder, "T", 9, 12).read_bytes() == (folder / "T.mp4").read_bytes()


def frames(folder, count):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        path = frame_path(folder, "T", index)
        write_png(path, rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


def only_frames_left(folder):
    return all(p.suffix == ".png" and not p.name.startswith(".") for p in folder.iterdir())


def test_frames_after_the_last_one_written_are_read_from_disk(tmp_path):
    paths = frames(tmp_path, 6)
    with MovieStream(tmp_path, "T", None, ffmpeg_executable()) as stream:
        stream.fps = 12
        for index in range(3):  # a partial run: frames 3-5 were there before
            stream.frame_done(index, paths[index])
        movie = stream.finish(6)
    assert movie == tmp_path / "T.mp4"
    assert write_video(tmp_path, "T", 6, 12).read_bytes() == movie.read_bytes()


def test_a_cancel_stops_the_encoder_and_leaves_only_the_frames(tmp_path):
    paths = frames(tmp_path, 3)
    with pytest.raises(KeyboardInterrupt):
        with MovieStream(tmp_path, "T", None, ffmpeg_executable()) as stream:
            stream.fps = 12
            stream.frame_done(0, paths[0])
            stream.frame_done(1, paths[1])
            raise KeyboardInterrupt
    assert stream._process.returncode is not None
    assert only_frames_left(tmp_path)


@pytest.mark.parametrize("problem", ["out of order", "cut short", "missing", "another name"])
def test_anything_unusual_falls_back_to_encoding_after(tmp_path, problem):
    paths = frames(tmp_path, 4)
    with MovieStream(tmp_path, "T", None, ffmpeg_executable()) as stream:
        stream.fps = 12
        if problem == "out of order":
            stream.frame_done(1, paths[1])
            stream.frame_done(0, paths[0])
        elif problem == "cut short":  # a kept frame from a killed run
            data = frame_path(tmp_path, "T", 1).read_bytes()
            frame_path(tmp_path, "T", 1).write_bytes(data[:-20])
            stream.frame_done(2, paths[2])
        elif problem == "missing":
            frame_path(tmp_path, "T", 3).unlink()
            stream.frame_done(0, paths[0])
        else:
            stream.frame_done(0, str(tmp_path / "T_00000_a_cat.png"))
        assert stream.finish(4) is None
    assert only_frames_left(tmp_path)
