"""Scene depth with the pinhole warp: disocclusion masks and inpainting what was hidden."""

import json
import math
from pathlib import Path

import numpy as np

from engine.depth import write_scene_depth
from engine.warp import warp_3d
from tests.engine.test_diffusion import png, run_engine, start_of

H = W = 64
FOV = 40.0
STEP = 0.1     # metres the camera trucks right per frame (20 schedule units)


def box_scene_depth(frame: int, stop: int = 99) -> np.ndarray:
    """True depth of a 0.6 m box 2 m away in front of a wall 10 m away, camera at
    x = STEP·k (standing still from frame ``stop`` on)."""
    f = (H / 2) / math.tan(math.radians(FOV) / 2)
    u = (np.arange(W) + 0.5 - W / 2) / f
    v = (np.arange(H) + 0.5 - H / 2) / f
    x = STEP * min(frame, stop) + u[None, :] * 2.0
    y = v[:, None] * 2.0
    on_box = (np.abs(x) < 0.3) & (np.abs(y) < 0.3)
    return np.where(on_box, 2.0, 10.0).astype(np.float32)


def scene_settings(tmp_path, frames, stop=99, **values):
    maps = tmp_path / "depth"
    for k in range(frames):
        write_scene_depth(maps, k, box_scene_depth(k, stop))
    settings = dict(W=W, H=H, animation_mode="3D", max_frames=frames, diffusion_cadence=1,
                    depth_source="scene", depth_maps_path=str(maps), warp_model="pinhole",
                    fov_schedule=f"0:({FOV})", translation_x="0:(20)",
                    translation_z="0:(0)", rotation_3d_x="0:(0)", rotation_3d_y="0:(0)",
                    rotation_3d_z="0:(0)", color_coherence="None", noise_schedule="0:(0)",
                    contrast_schedule="0:(1)", steps=6, seed=7, sampler="euler",
                    strength_schedule="0:(0.65)", animation_prompts={"0": "a red house"})
    settings.update(values)
    path = tmp_path / "settings.txt"
    path.write_text(json.dumps(settings))
    return path


def test_each_frame_saves_what_the_truck_uncovered_beside_the_box(tmp_path):
    result = run_engine("--settings", scene_settings(tmp_path, 4), "--enable_animation_mode",
                        "--outdir", tmp_path / "out", "--preview", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    start = start_of(result)
    folder, ts = Path(start["outdir"]), start["timestring"]
    masks = sorted((folder / f"{ts}_disocclusion").iterdir())
    assert [p.name for p in masks] == [f"{k:05d}.png" for k in (1, 2, 3)]
    assert len(list(folder.glob("*.png"))) == 4  # the frames' folder holds the frames
    for k in (1, 2, 3):
        mask = png(folder / f"{ts}_disocclusion" / f"{k:05d}.png")[..., 0] > 127
        before, now = box_scene_depth(k - 1), box_scene_depth(k)
        # The wall just right of the box was behind the box one frame earlier.
        rows, cols = np.nonzero((now == 10.0) & (before == 2.0))
        assert mask[rows, cols].mean() > 0.9
        assert not mask[now == 2.0].any()               # the box was seen before
        assert mask[:, -1].all()                         # the new right edge
        assert mask.mean() < 0.2
    assert "inpaint_disocclusions" not in result.stdout


def test_inpainting_changes_only_the_uncovered_area(tmp_path, tiny_model):  # noqa: F811
    settings = scene_settings(tmp_path, 3, stop=1, inpaint_disocclusions=True,
                              translation_x="0:(20), 1:(20), 2:(0)")
    result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    start = start_of(result)
    folder, ts = Path(start["outdir"]), start["timestring"]
    frames = [png(folder / f"{ts}_{k:05d}.png") for k in range(3)]
    # Frame 1: the warped frame 0 everywhere the scene was visible, new pixels elsewhere.
    warped = warp_3d(frames[0], box_scene_depth(1), translation=(20, 0, 0),
                     rotation=(0, 0, 0), fov=FOV, prev_fov=FOV, warp_model="pinhole")
    uncovered = png(folder / f"{ts}_disocclusion" / "00001.png")[..., 0] > 127
    assert uncovered.any()
    assert np.array_equal(frames[1][~uncovered], warped[~uncovered])
    assert np.abs(frames[1][uncovered].astype(int) - warped[uncovered]).mean() > 2
    # Frame 2: the camera stops, nothing new comes into view, nothing is re-diffused.
    assert not (png(folder / f"{ts}_disocclusion" / "00002.png") > 127).any()
    assert np.array_equal(frames[2], frames[1])


def test_inpainting_without_scene_depth_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(json.dumps(dict(W=W, H=H, animation_mode="2D", max_frames=2,
                                    inpaint_disocclusions=True)))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--preview", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    warnings = [json.loads(line) for line in result.stdout.splitlines()
                if '"warning"' in line]
    assert any(w.get("key") == "inpaint_disocclusions" for w in warnings)


def test_a_keyframe_after_tweens_inpaints_everything_uncovered_since_the_last_one(tmp_path):
    from engine.motion import Motion
    from engine.modes.animation import _Disocclusions
    from engine.settings import load_settings

    settings = load_settings(scene_settings(tmp_path, 4, diffusion_cadence=3))
    maps = {k: box_scene_depth(k) for k in range(4)}
    hidden = _Disocclusions(Motion(settings, 4), maps.__getitem__,
                            lambda frame, image: maps[frame], tmp_path, "ts", 3)
    region = hidden.since_keyframe(3)
    assert region[hidden.step(3)].all()
    # The strip uncovered at frame 1 has moved with the wall by frame 3 and is still there.
    assert region.sum() > hidden.step(3).sum() + hidden.step(1)[:, :-4].sum() // 2
    assert sorted(p.name for p in (tmp_path / "ts_disocclusion").iterdir()) == [
        f"{k:05d}.png" for k in (1, 2, 3)]


def _preview_frames(tmp_path, name, **values):
    result = run_engine("--settings", scene_settings(tmp_path / name, 4, **values),
                        "--enable_animation_mode", "--outdir", tmp_path / name / "out",
                        "--preview", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    start = start_of(result)
    folder, ts = Path(start["outdir"]), start["timestring"]
    masks = [png(folder / f"{ts}_disocclusion" / f"{k:05d}.png")[..., 0] > 127
             for k in (1, 2, 3)]
    return [png(folder / f"{ts}_{k:05d}.png") for k in range(4)], masks


def test_the_motion_preview_tints_magenta_what_no_frame_has_shown_yet(tmp_path):
    (tmp_path / "tint").mkdir()
    (tmp_path / "plain").mkdir()
    tinted, masks = _preview_frames(tmp_path, "tint")  # preview_tint is on by default
    plain, _ = _preview_frames(tmp_path, "plain", preview_tint=False)
    assert np.array_equal(tinted[0], plain[0])  # frame 0 uncovers nothing
    for k in (1, 2, 3):
        changed = np.any(tinted[k] != plain[k], axis=-1)
        assert changed[masks[k - 1]].all()  # what frame k uncovered is tinted …
        assert changed.mean() < 0.3          # … and the box and most of the wall are not
        red, green, blue = (tinted[k][changed].astype(int) - plain[k][changed]).T
        assert (red >= 0).all() and (green <= 0).all() and (blue >= 0).all()  # magenta
    # What frame 1 uncovered stays tinted while it moves along (the preview never repaints).
    assert changed.sum() > masks[2].sum()


def test_diffused_frames_are_never_tinted(tmp_path, tiny_model):  # noqa: F811
    frames = {}
    for tint in (True, False):
        folder = tmp_path / str(tint)
        folder.mkdir()
        result = run_engine("--settings", scene_settings(folder, 2, preview_tint=tint),
                            "--enable_animation_mode", "--outdir", folder / "out", "--model",
                            tiny_model, "--device", "cpu", "--progress", "jsonl")
        assert result.returncode == 0, result.stderr
        start = start_of(result)
        frames[tint] = [png(Path(start["outdir"]) / f"{start['timestring']}_{k:05d}.png")
                        for k in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(frames[True], frames[False]))
