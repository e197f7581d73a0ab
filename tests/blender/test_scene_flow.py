"""Scene flow from Blender: the flow pass matches independent ground truth.

A small Cycles scene (tests/blender/fidelity_scene.py ``build_flow_scene``): the
camera trucks, rises and pans while the ball moves on its own. The ground truth of
each pixel's motion is Blender's own: ``scene.ray_cast`` through the pixel centre,
the hit point moved with the ball when it is on the ball, projected into the next
frame with ``world_to_camera_view``. Checked: the camera-and-depth (static) part
alone equals the Vector pass on everything that stands still (which fixes the pass's
channel order, sign and units), the combined flow matches the ground truth on the
ball and everywhere, and the pass writes its files and restores every setting.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tests.blender.helpers import ADDON, Addon  # noqa: I001  (hermetic environment first)
from tests.blender.fidelity_scene import build_flow_scene, true_flow  # noqa: E402

import bpy  # noqa: E402

STATIC_EPE = 0.01   # px: camera + depth vs the Vector pass, on what stands still
BALL_EPE = 0.02     # px: the flow vs the ray-cast ground truth on the moving ball
MEAN_EPE = 0.02     # px: the flow vs the Vector pass on every pixel seen in both frames


@pytest.fixture(scope="module")
def flows(tmp_path_factory):
    addon = Addon()
    try:
        scene, cam, ball = build_flow_scene()
        flow_module = importlib.import_module(f"{ADDON}.addon.scene_passes.flow")
        folder = tmp_path_factory.mktemp("flow")
        flow, static, vectors, moving, depth = flow_module.flow_frame(scene, 1, 0, folder)
        height, width = flow.shape[:2]
        rows, cols = np.nonzero(np.ones((height, width), bool))
        every = list(zip(rows[::7].tolist(), cols[::7].tolist()))
        on_ball = list(zip(*[a.tolist() for a in np.nonzero(moving)]))
        truth_every = true_flow(scene, cam, ball, every, 1)
        truth_ball = true_flow(scene, cam, ball, on_ball, 1)
        yield dict(flow=flow, static=static, vectors=vectors, moving=moving, every=every,
                   surface=np.isfinite(depth),
                   truth_every=truth_every, on_ball=on_ball, truth_ball=truth_ball,
                   module=flow_module, scene=scene, folder=folder)
    finally:
        addon.close()


def _epe(a, b):
    return np.hypot(*(np.asarray(a) - np.asarray(b)).reshape(-1, 2).T)


def _seen_in_both(flow):
    """Pixels whose point lands inside the next picture."""
    height, width = flow.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    tx, ty = x + flow[..., 0], y + flow[..., 1]
    return (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)


def test_the_ball_and_only_the_ball_moves_on_its_own(flows):
    moving = flows["moving"]
    assert 0.02 < moving.mean() < 0.2  # the ball's share of the picture
    ys, xs = np.nonzero(moving)
    assert xs.max() - xs.min() < flows["flow"].shape[1] / 2  # one compact blob


def test_camera_and_depth_alone_equal_the_vector_pass_on_the_still_scene(flows):
    still = ~flows["moving"] & flows["surface"]  # the Vector pass leaves sky at 0
    error = _epe(flows["static"][still], flows["vectors"][still])
    assert error.mean() < STATIC_EPE, error.mean()
    assert np.hypot(*flows["static"][still].T).mean() > 1.0  # the camera moves the picture


def test_the_vector_pass_on_the_ball_is_not_the_camera_s_motion(flows):
    ball = flows["moving"]
    assert _epe(flows["static"][ball], flows["vectors"][ball]).mean() > 0.5


def test_the_flow_matches_ray_cast_ground_truth(flows):
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


def test_the_flow_matches_the_vector_pass_on_pixels_seen_in_both_frames(flows):
    flow, vectors = flows["flow"], flows["vectors"]
    both = _seen_in_both(flow)
    assert both.mean() > 0.9
    both &= flows["surface"]  # the Vector pass has no motion for sky
    assert _epe(flow[both], vectors[both]).mean() < MEAN_EPE


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
    assert files == ["00000.npy", "00001.npy"]  # frames 1→2 and 2→3; frame 3 is the last
    flow = np.load(tmp_path / "00000.npy", allow_pickle=False)
    assert flow.dtype == np.float32 and flow.shape == (72, 96, 2)
    assert np.allclose(flow, flows["flow"])
    assert not bpy.data.materials.get("Deforum Scene Depth")
