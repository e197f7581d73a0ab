"""The scene pass driver and the depth pixel conversion, without Blender."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.addon.pure import addon_module

ScenePass = addon_module("addon.scene_passes.driver").ScenePass
depth_from_rgba = addon_module("addon.scene_passes.pixels").depth_from_rgba


def recording_pass(fail_at: int | None = None):
    calls = []

    def step(k: int, frame: int) -> Path:
        if frame == fail_at:
            raise RuntimeError("Cycles exploded")
        calls.append((k, frame))
        return Path(f"{k:05d}.npy")

    return ScenePass("scene depth", range(3, 7), step, setting="depth_source"), calls


def test_one_frame_per_advance_numbered_from_the_scene_start():
    p, calls = recording_pass()
    assert p.text == "Rendering scene depth 0/4" and p.running
    p.advance()
    assert calls == [(0, 3)] and p.text == "Rendering scene depth 1/4"
    p.run()
    assert calls == [(0, 3), (1, 4), (2, 5), (3, 6)]
    assert p.complete and not p.running and not p.stopped
    assert [path.name for path in p.paths] == ["00000.npy", "00001.npy", "00002.npy",
                                               "00003.npy"]
    p.advance()  # nothing more
    assert len(calls) == 4


def test_cancel_stops_before_the_next_frame():
    p, calls = recording_pass()
    p.advance()
    p.cancel()
    p.run()
    assert calls == [(0, 3)] and p.stopped and p.cancelled and not p.complete


def test_a_failing_frame_stops_the_pass_with_the_setting_and_frame():
    p, calls = recording_pass(fail_at=5)
    p.run()
    assert calls == [(0, 3), (1, 4)] and p.stopped and not p.cancelled
    assert p.error == ("depth_source: rendering scene depth failed at frame 5 (3/4): "
                       "Cycles exploded")


def test_depth_from_rgba_flips_rows_and_makes_uncovered_pixels_far():
    width, height = 3, 2
    rgba = np.zeros((height, width, 4), np.float32)  # Blender's order: bottom row first
    rgba[0, :, 0] = [1.0, 2.0, 3.0]
    rgba[1, :, 0] = [4.0, 5.0, 0.0]
    rgba[..., 3] = 1.0
    rgba[1, 2, 3] = 0.0  # the ray hit nothing: R is 0, which must not be read as depth
    depth = depth_from_rgba(rgba.ravel(), width, height)
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    np.testing.assert_array_equal(depth, [[4.0, 5.0, np.inf], [1.0, 2.0, 3.0]])


class FakeRender:
    """Blender's render job stand-in: done after ``ticks`` polls; None = stopped by the user."""

    def __init__(self, k, ticks, path):
        self.k, self.ticks, self.path = k, ticks, path

    @property
    def done(self):
        self.ticks -= 1
        return self.ticks < 0

    def result(self):
        return self.path


def background_pass(paths):
    started = []

    def start(k, frame):
        started.append((k, frame))
        return FakeRender(k, 2, paths[k])

    def blocking(k, frame):
        raise AssertionError("the modal path must not render in the foreground")

    return ScenePass("scene frames", range(1, 1 + len(paths)), blocking,
                     setting="video_from_scene", start=start), started


def test_background_frames_are_started_then_collected_on_later_ticks():
    p, started = background_pass([Path("00000.png"), Path("00001.png")])
    p.advance(background=True)
    assert started == [(0, 1)] and p.running and p.done == 0
    p.advance(background=True)
    p.advance(background=True)   # still rendering: nothing new starts
    assert started == [(0, 1)] and p.done == 0
    p.advance(background=True)   # collected
    assert p.done == 1 and p.paths == [Path("00000.png")]
    for _ in range(4):
        p.advance(background=True)
    assert started == [(0, 1), (1, 2)] and p.complete and not p.running


def test_cancel_waits_for_the_render_in_flight_and_a_stopped_render_cancels():
    p, started = background_pass([Path("00000.png"), Path("00001.png")])
    p.advance(background=True)
    p.cancel()
    assert p.running and not p.stopped      # Blender's job still holds the scene's settings
    for _ in range(3):
        p.advance(background=True)
    assert p.stopped and p.cancelled and p.done == 1 and started == [(0, 1)]

    q, _ = background_pass([None, Path("00001.png")])   # Esc in the render window
    for _ in range(4):
        q.advance(background=True)
    assert q.stopped and q.cancelled and q.done == 0
