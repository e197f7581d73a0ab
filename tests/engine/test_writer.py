"""Frames written in the background: the same files as writing in the loop, each reported
only once it is whole, every finished frame kept after a cancel, write errors not lost."""

import io
import json
import threading
from pathlib import Path

import pytest

from engine.errors import Cancelled
from engine.modes.animation import preview_generate, render_animation
from engine.modes.common import CancelToken
from engine.output import decodes, frame_path
from engine.progress import Progress
from engine.settings import parse_settings
from engine.writer import DEPTH, Writer

SETTINGS = {"animation_mode": "3D", "W": 64, "H": 48, "max_frames": 9, "diffusion_cadence": 2,
            "translation_z": "0:(4)", "rotation_3d_y": "0:(1.5)", "save_depth_maps": True}


def render(folder, writer=None, cancel=None, progress=None):
    folder.mkdir(exist_ok=True)
    settings = parse_settings(SETTINGS)
    return render_animation(settings, folder, "ts", progress or Progress(out=io.StringIO()),
                            cancel or CancelToken(), writer=writer,
                            depth=lambda frame, image: None)


def test_background_and_in_loop_writing_give_byte_identical_frames(tmp_path):
    assert render(tmp_path / "in-loop", Writer(background=False)) == 9
    assert render(tmp_path / "background") == 9
    for index in range(9):
        name = frame_path(tmp_path / "in-loop", "ts", index).name
        assert (tmp_path / "in-loop" / name).read_bytes() == \
            (tmp_path / "background" / name).read_bytes(), name


class Checking(Progress):
    """Checks, as the add-on's live preview would, that a reported frame is whole."""

    def frame(self, index, path, seconds, used=None):
        assert decodes(Path(path)), path
        super().frame(index, path, seconds, used)


def test_a_frame_is_reported_only_once_it_is_whole(tmp_path):
    out = io.StringIO()
    render(tmp_path, progress=Checking(jsonl=True, out=out, log=io.StringIO()))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["index"] for e in events if e["event"] == "frame"] == list(range(9))


def test_a_cancel_keeps_every_frame_the_loop_finished(tmp_path):
    cancel = CancelToken()
    out = io.StringIO()
    settings = parse_settings(SETTINGS)
    preview = preview_generate(settings)

    def generate(init, frame, **extra):
        if frame == 6:
            cancel.request()
        return preview(init, frame, **extra)

    with pytest.raises(Cancelled):
        render_animation(settings, tmp_path, "ts", Progress(jsonl=True, out=out,
                                                            log=io.StringIO()),
                         cancel, generate=generate, depth=lambda frame, image: None)
    reported = [json.loads(line)["index"] for line in out.getvalue().splitlines()
                if json.loads(line)["event"] == "frame"]
    # The cancel came while keyframe 6 was made: it and every frame before it were finished.
    assert reported == list(range(len(reported))) and len(reported) >= 7
    assert all(decodes(frame_path(tmp_path, "ts", i)) for i in reported)
    assert len(list(tmp_path.glob("ts_*.png"))) == len(reported)
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written file left behind


def test_a_failed_write_stops_the_run_with_its_error():
    writer = Writer()
    writer.submit(lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        for _ in range(DEPTH + 2):
            writer.submit(lambda: None)
        writer.close()


def test_the_queue_is_bounded_so_a_slow_disk_slows_the_loop():
    release = threading.Event()
    writer = Writer()
    submitted = []

    def loop():
        for n in range(DEPTH + 3):
            writer.submit(release.wait)
            submitted.append(n)

    thread = threading.Thread(target=loop)
    thread.start()
    thread.join(1.0)
    waiting = len(submitted)
    release.set()
    thread.join()
    writer.close()
    assert waiting <= DEPTH + 1  # one running, DEPTH queued; the loop waits for the rest
    assert submitted == list(range(DEPTH + 3))
