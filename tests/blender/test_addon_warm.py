"""The warm engine in the add-on (real bpy): one engine process, models kept loaded.

Renders reuse one ``python -m engine.server`` process, so the second render
starts diffusing at once; cancel keeps frames and the server; Release Engine,
disabling the add-on and a changed engine Python stop it; a killed server
fails its job clearly and the next render starts a new one. Live preview: the
newest frame in the "Deforum Preview" image, shown in free Image Editors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tests.blender.helpers  # noqa: F401, I001  (the hermetic environment before bpy)

import bpy  # noqa: E402

from tests.blender.test_addon import (ENGINE_PY, no_process, start_long_run,  # noqa: E402
                                      takes_of)

FRAMES = "*_[0-9][0-9][0-9][0-9][0-9].png"


def alive(pid) -> bool:
    return pid is not None and not no_process(pid)


def render_and_see_a_step(runner, monkeypatch) -> str:
    """Render; a denoising-step event must reach Blender. The job's engine log."""
    seen: list[bool] = []
    handle = runner.handle

    def spy(context, run, events):
        if any(e.get("event") == "step" for e in events):
            seen.append(True)
        handle(context, run, events)

    monkeypatch.setattr(runner, "handle", spy)
    assert bpy.ops.deforum.render() == {"FINISHED"}
    monkeypatch.setattr(runner, "handle", handle)
    assert seen, "no step event reached Blender"
    return Path(bpy.context.scene.deforum.last_log).read_text()


def test_second_render_reuses_the_warm_engine_and_starts_at_once(warm, tiny_model,
                                                                 monkeypatch, addon):
    scene, out, runner, job = warm
    addon.prefs.model_path = str(tiny_model)
    cold = render_and_see_a_step(runner, monkeypatch)
    pid = job.server_pid()
    assert alive(pid)
    again = render_and_see_a_step(runner, monkeypatch)
    assert job.server_pid() == pid
    # The promise: the second render loads nothing (timings: benchmarks/bench_warm.py).
    assert f"loading model {tiny_model}" in cold
    assert f"model {tiny_model} already loaded" in again and "loading model" not in again
    earlier, newest = sorted(takes_of(scene), key=lambda s: s.channel)  # two takes
    assert earlier.mute and not newest.mute and len(newest.elements) == 3
    assert len(list((out / "Warm").glob(FRAMES))) == 6  # two runs of 3 frames
    assert "Deforum: 3 frames" in scene.deforum.status


def test_cancel_and_file_load_keep_frames_and_the_warm_engine(warm, tiny_model, addon):
    scene, out, runner, job = warm
    addon.prefs.model_path = str(tiny_model)
    run = start_long_run(scene, runner, 500)
    pid = run.job.pid
    assert pid == job.server_pid()
    assert run.job.cancel() == "CANCELLED"
    level, message = runner.finish(bpy.context, run)
    assert level == "WARNING" and "cancelled" in message
    written = sorted((out / "Warm").glob(FRAMES))
    assert 1 <= len(written) < 500 and all(p.stat().st_size > 0 for p in written)
    (strip,) = takes_of(scene)  # live preview: the strip holds exactly the kept frames
    assert len(strip.elements) == len(written)
    assert alive(pid)
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert job.server_pid() == pid
    cancelled, strip = sorted(takes_of(scene), key=lambda s: s.channel)  # a new take on top
    assert cancelled.mute and len(cancelled.elements) == len(written)
    assert not strip.mute and len(strip.elements) == 3

    run = start_long_run(scene, runner, 500)  # loading a file cancels the render, not the engine
    bpy.ops.wm.read_homefile(use_empty=True)
    assert run.job.state == "CANCELLED" and job.server_pid() == pid


def test_release_python_change_and_disable_stop_the_warm_engine(warm, addon):
    scene, _out, runner, job = warm
    scene.deforum.preview_motion = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    first = job.server_pid()
    assert alive(first)
    assert bpy.ops.deforum.release_engine() == {"FINISHED"}
    assert no_process(first) and job.server_pid() is None
    with pytest.raises(RuntimeError):  # nothing left to release: the button is disabled
        bpy.ops.deforum.release_engine()

    assert bpy.ops.deforum.render() == {"FINISHED"}
    second = job.server_pid()
    assert alive(second) and second != first
    # another engine Python setting (the same venv, spelled differently): a new server
    addon.prefs.engine_python = os.path.join(os.path.dirname(ENGINE_PY), ".",
                                             os.path.basename(ENGINE_PY))
    assert bpy.ops.deforum.render() == {"FINISHED"}
    third = job.server_pid()
    assert no_process(second) and alive(third)

    addon.prefs.keep_engine_warm = False  # one process per render: the idle server goes
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert no_process(third) and job.server_pid() is None
    addon.prefs.keep_engine_warm = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    fourth = job.server_pid()
    assert alive(fourth)
    addon.close()
    assert no_process(fourth)


def test_killed_engine_fails_its_render_clearly_and_the_next_starts_a_new_one(warm):
    scene, out, runner, job = warm
    scene.deforum.preview_motion = True
    run = start_long_run(scene, runner, 2000)
    pid = run.job.pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not run.finished and time.monotonic() < deadline:
        runner.handle(bpy.context, run, run.job.wait_events(0.1))
    assert run.job.state == "FAILED"
    level, message = runner.finish(bpy.context, run)
    assert level == "ERROR"
    assert f"warm engine process (pid {pid}) was killed" in message
    assert "next render starts a new engine" in message and "engine log:" in message
    assert scene.deforum.status_error
    assert list((out / "Warm").glob(FRAMES))  # written frames are kept
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert alive(job.server_pid()) and job.server_pid() != pid


def test_an_engine_python_that_cannot_serve_is_named_in_the_error(warm, addon, tmp_path):
    scene, _out, _runner, _job = warm
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no engine here' >&2\nexit 1\n")
    broken.chmod(0o755)
    addon.prefs.engine_python = str(broken)
    with pytest.raises(RuntimeError, match=f"before it was ready: check engine_python {broken}"):
        bpy.ops.deforum.render()
    assert "no engine here" in Path(scene.deforum.last_log).read_text()


def test_live_render_shows_the_newest_frame_in_free_image_editors(warm, tmp_path):
    scene, out, _runner, _job = warm
    scene.deforum.preview_motion = True
    scene.deforum.live_strip = True
    areas = bpy.context.window.screen.areas
    free, taken = areas[0], areas[1]
    free.type = taken.type = "IMAGE_EDITOR"
    mine = bpy.data.images.new("Mine", 4, 4)
    taken.spaces.active.image = mine
    assert bpy.ops.deforum.render() == {"FINISHED"}
    image = bpy.data.images["Deforum Preview"]
    last = sorted((out / "Warm").glob(FRAMES))[-1]
    assert Path(bpy.path.abspath(image.filepath)) == last
    assert tuple(image.size) == (64, 64)
    assert free.spaces.active.image == image
    assert taken.spaces.active.image == mine  # a user's image is never replaced
    (strip,) = takes_of(scene)
    assert len(strip.elements) == 3


EXIT_WITH_A_WARM_ENGINE = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.blender.helpers import Addon, keyframed_camera_scene
import bpy
addon = Addon()
scene, _cam = keyframed_camera_scene(start=1, end=3, size=(32, 32))
scene.deforum.animation_mode, scene.deforum.preview_motion = "2D", True
scene.deforum.output_dir = sys.argv[2]
addon.prefs.engine_python = sys.argv[3]
scene.frame_end = 2000
runner = addon.sub("addon.runner")
run = runner.start(bpy.context, runner.prepare(bpy.context))
while not run.job.frames and not run.finished:
    run.job.wait_events(0.1)
print("server", run.job.pid, run.job.state, flush=True)
"""  # then quit mid-render without disabling the add-on ourselves


def test_blender_exit_mid_render_leaves_no_engine_process(tmp_path):
    out = subprocess.run([sys.executable, "-c", EXIT_WITH_A_WARM_ENGINE,
                          str(Path(__file__).resolve().parents[2]), str(tmp_path), ENGINE_PY],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    pid, state = out.stdout.split("server ")[1].split()[:2]
    assert state == "RUNNING" and no_process(int(pid))
