"""Scene flow from Blender: the flow pass matches independent ground truth.

A small Cycles scene (tests/blender/fidelity_scene.py ``build_flow_scene``): the
camera trucks, rises and pans while the ball moves on its own. The ground truth of
each pixel's motion is Blender's own: ``scene.ray_cast`` through the pixel centre,
the hit point moved with the ball when it is on the ball, projected into the next
frame with ``world_to_camera_view``. Checked: the camera-and-depth (static) part
alone equals the Vector pass on everything that stands still (which fixes the pass's
channel order, sign and units), the combined flow matches the ground truth on the
ball and everywhere, the same for the backward flow (frame 2 → 1, from the Vector
pass's X/Y), and the pass writes its files and restores every setting.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.blender.helpers import ADDON, Addon  # noqa: I001  (hermetic environment first)

pytest.importorskip("cv2")  # the fidelity scene's helpers; a bpy-only venv lacks it
from tests.blender.fidelity_scene import build_flow_scene, true_flow  # noqa: E402

import bpy  # noqa: E402

STATIC_EPE = 0.01   # px: camera + depth vs the Vector pass, on what stands still
BALL_EPE = 0.02     # px: the flow vs the ray-cast ground truth on the moving ball
MEAN_EPE = 0.02     # px: the flow vs the Vector pass on every pixel seen in both frames


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    """Frame 1's flow to frame 2 and frame 2's back to frame 1, each with its truth."""
    addon = Addon()
    try:
        scene, cam, ball = build_flow_scene()
        flow_module = importlib.import_module(f"{ADDON}.addon.scene_passes.flow")
        folder = tmp_path_factory.mktemp("flow")
        first = flow_module.flow_frame(scene, 1, 0, folder)
        second = flow_module.flow_frame(scene, 2, 1, folder)
        yield dict(ahead=_direction(scene, cam, ball, first.ahead, first.depth, 1, 1),
                   back=_direction(scene, cam, ball, second.back, second.depth, 2, -1),
                   module=flow_module, scene=scene, first=first, second=second)
    finally:
        addon.close()


def _direction(scene, cam, ball, direction, depth, frame, step):
    """One direction's flow and parts, with ray-cast truth on every 7th pixel and the ball."""
    height, width = direction.flow.shape[:2]
    rows, cols = np.nonzero(np.ones((height, width), bool))
    every = list(zip(rows[::7].tolist(), cols[::7].tolist()))
    on_ball = list(zip(*[a.tolist() for a in np.nonzero(direction.moving)]))
    return dict(flow=direction.flow, static=direction.static, vectors=direction.vectors,
                moving=direction.moving, surface=np.isfinite(depth), every=every,
                truth_every=true_flow(scene, cam, ball, every, frame, step), on_ball=on_ball,
                truth_ball=true_flow(scene, cam, ball, on_ball, frame, step))


DIRECTIONS = pytest.mark.parametrize("way", ["ahead", "back"])


def _epe(a, b):
    return np.hypot(*(np.asarray(a) - np.asarray(b)).reshape(-1, 2).T)


def _seen_in_both(flow):
    """Pixels whose point lands inside the next picture."""
    height, width = flow.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    tx, ty = x + flow[..., 0], y + flow[..., 1]
    return (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)


@DIRECTIONS
def test_the_ball_and_only_the_ball_moves_on_its_own(flows, way):
    flows = flows[way]
    moving = flows["moving"]
    assert 0.02 < moving.mean() < 0.2  # the ball's share of the picture
    ys, xs = np.nonzero(moving)
    assert xs.max() - xs.min() < flows["flow"].shape[1] / 2  # one compact blob


@DIRECTIONS
def test_camera_and_depth_alone_equal_the_vector_pass_on_the_still_scene(flows, way):
    flows = flows[way]
    still = ~flows["moving"] & flows["surface"]  # the Vector pass leaves sky at 0
    error = _epe(flows["static"][still], flows["vectors"][still])
    assert error.mean() < STATIC_EPE, error.mean()
    assert np.hypot(*flows["static"][still].T).mean() > 1.0  # the camera moves the picture


@DIRECTIONS
def test_the_vector_pass_on_the_ball_is_not_the_camera_s_motion(flows, way):
    flows = flows[way]
    ball = flows["moving"]
    assert _epe(flows["static"][ball], flows["vectors"][ball]).mean() > 0.5


@DIRECTIONS
def test_the_flow_matches_ray_cast_ground_truth(flows, way):
    flows = flows[way]
    flow = flows["flow"]
    rows, cols = np.array(flows["on_ball"]).T
    ball = _epe(flow[rows, cols], flows["truth_ball"])
    assert ball.mean() < BALL_EPE, ball.mean()
    rows, cols = np.array(flows["every"]).T
    truth = flows["truth_every"]
    hit = ~np.isnan(truth[:, 0])
    inside = _seen_in_both(flow)[rows, cols] & hit
    every = _epe(flow[rows, cols][inside], truth[inside])
    assert every.mean() < BALL_EPE, every.mean()


@DIRECTIONS
def test_the_flow_matches_the_vector_pass_on_pixels_seen_in_both_frames(flows, way):
    flows = flows[way]
    flow, vectors = flows["flow"], flows["vectors"]
    both = _seen_in_both(flow)
    assert both.mean() > 0.9
    both &= flows["surface"]  # the Vector pass has no motion for sky
    assert _epe(flow[both], vectors[both]).mean() < MEAN_EPE


def test_the_way_back_undoes_the_way_ahead_on_the_ball(flows):
    """Frame 1's ball pixels carried to frame 2 and read back there come home."""
    import cv2
    ahead, back = flows["ahead"]["flow"], flows["back"]["flow"]
    rows, cols = np.array(flows["ahead"]["on_ball"]).T
    landed = np.stack([cols, rows], axis=-1) + ahead[rows, cols]
    sampled = cv2.remap(back, landed[:, 0:1].astype(np.float32),
                        landed[:, 1:2].astype(np.float32), cv2.INTER_LINEAR)[:, 0]
    assert np.median(_epe(ahead[rows, cols], -sampled)) < BALL_EPE


def test_the_pass_writes_one_file_per_step_and_restores_the_scene(flows, tmp_path):
    scene = flows["scene"]
    image, layer = scene.render.image_settings, scene.view_layers[0]
    before = (scene.render.engine, scene.cycles.samples, image.file_format,
              getattr(image, "media_type", None), image.exr_codec, image.color_depth,
              layer.use_pass_vector, scene.render.use_motion_blur, scene.frame_current,
              scene.render.filepath, layer.material_override)
    scene_pass = flows["module"].flow_pass(scene, tmp_path)
    scene_pass.run()
    assert not scene_pass.error
    after = (scene.render.engine, scene.cycles.samples, image.file_format,
             getattr(image, "media_type", None), image.exr_codec, image.color_depth,
             layer.use_pass_vector, scene.render.use_motion_blur, scene.frame_current,
             scene.render.filepath, layer.material_override)
    assert after == before
    files = sorted(p.name for p in tmp_path.iterdir())
    # frames 1→2 and 2→3 both ways; frame 3 is the last; a depth for every frame
    assert files == ["00000.npy", "00000_back.npy", "00000_depth.npy", "00001.npy",
                     "00001_back.npy", "00001_depth.npy", "00002_depth.npy"]
    flow = np.load(tmp_path / "00000.npy", allow_pickle=False)
    assert flow.dtype == np.float32 and flow.shape == (72, 96, 2)
    assert np.allclose(flow, flows["ahead"]["flow"])
    assert np.allclose(np.load(tmp_path / "00000_back.npy"), flows["back"]["flow"])
    depth = np.load(tmp_path / "00001_depth.npy")
    assert depth.dtype == np.float16
    assert np.allclose(depth, flows["second"].depth, rtol=1e-3)
    assert not bpy.data.materials.get("Deforum Scene Depth")
