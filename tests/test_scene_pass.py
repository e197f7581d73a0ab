"""The scene pass driver and the depth pixel conversion, without Blender."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scene_pass import ScenePass, depth_from_rgba


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
