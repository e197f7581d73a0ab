"""ControlNet units fed by the scene's own passes, in the real bpy: depth, normals, line
art, collection masks and armature poses rendered per frame at W×H, every render
setting given back, the job pointed at the images, and the panel.

The scene: a camera 5 m above a plane (z = 0) looking straight down, a 1 m box on
the plane right of centre (x 0.5 … 1.5 m), sky beyond the plane's edge (x > 1.7 m), and
a rig of Rigify-named bones lying on the plane.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import tests.blender.helpers  # noqa: F401, I001  (the hermetic environment before bpy)

pytest.importorskip("cv2")  # reads the images back; a bpy-only venv lacks it

import bpy  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tests.blender.helpers import ADDON, ENGINE_PY, box, plane_under_camera  # noqa: E402
from tests.blender.test_addon import CheckingLayout  # noqa: E402
from tests.blender.test_addon_scene import user_settings  # noqa: E402

START, FRAMES, HEIGHT_M = 1, 2, 5.0
WIDTH, HEIGHT = 64, 48
# Rig bones: name → (head, tail) on the plane, metres; a T-pose seen from above.
BONES = {
    "spine.004": ((0.0, 0.6, 0.0), (0.0, 0.8, 0.0)),   # the neck
    "spine.006": ((0.0, 0.8, 0.0), (0.0, 1.2, 0.0)),   # the head: the nose at its middle
    "upper_arm.R": ((-0.35, 0.55, 0.0), (-0.75, 0.55, 0.0)),
    "forearm.R": ((-0.75, 0.55, 0.0), (-1.1, 0.55, 0.0)),
    "hand.R": ((-1.1, 0.55, 0.0), (-1.25, 0.55, 0.0)),
    "upper_arm.L": ((0.35, 0.55, 0.0), (0.75, 0.55, 0.0)),
    "thigh.R": ((-0.2, -0.2, 0.0), (-0.25, -0.8, 0.0)),
    "shin.R": ((-0.25, -0.8, 0.0), (-0.3, -1.4, 0.0)),
    "thigh.L": ((0.2, -0.2, 0.0), (0.25, -0.8, 0.0)),
    "ear.L": ((9.0, 0.0, 0.0), (9.2, 0.0, 0.0)),       # far outside the picture: omitted
}


def module(name):
    return importlib.import_module(f"{ADDON}.{name}")


def rig(scene):
    """The armature; its right arm (upper arm → forearm → hand) turns at frame 2."""
    arm = bpy.data.objects.new("Rig", bpy.data.armatures.new("Rig"))
    scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    bones = {}
    for name, (head, tail) in BONES.items():
        bone = bones[name] = arm.data.edit_bones.new(name)
        bone.head, bone.tail = head, tail
    bones["forearm.R"].parent = bones["upper_arm.R"]
    bones["hand.R"].parent = bones["forearm.R"]
    bpy.ops.object.mode_set(mode="OBJECT")
    upper = arm.pose.bones["upper_arm.R"]
    upper.rotation_mode = "XYZ"
    upper.keyframe_insert("rotation_euler", frame=START)
    upper.rotation_euler = (0.5, 0.0, 0.5)
    upper.keyframe_insert("rotation_euler", frame=START + 1)
    return arm


@pytest.fixture
def control_scene(addon, tmp_path):
    # The plane ends at x = 1.7 m: the picture's right edge (1.8 m at 5 m) shows sky.
    scene, cam = plane_under_camera([(-3, -3), (1.7, -3), (1.7, 3), (-3, 3)], start=START,
                                    end=START + FRAMES - 1, size=(WIDTH, HEIGHT))
    actors = bpy.data.collections.new("Actors")
    scene.collection.children.link(actors)
    box(scene, "Box", (1.0, 0.0, 0.5), 1.0, actors)
    for k in range(FRAMES):  # a slow dolly down
        cam.location = (0.0, 0.0, HEIGHT_M - 0.2 * k)
        cam.keyframe_insert("location", frame=START + k)
    s = scene.deforum
    s.animation_mode, s.depth_source, s.output_dir, s.batch_name = "3D", "none", \
        str(tmp_path / "out"), "Shot"
    addon.prefs.engine_python = ENGINE_PY
    scene.frame_set(START)
    return scene, cam, actors


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image if image.ndim == 2 else image[..., 2::-1]


def run_pass(scene_pass) -> list[Path]:
    scene_pass.run()
    assert not scene_pass.error, scene_pass.error
    return scene_pass.paths


def column(x, depth):
    """The pixel column of ground point x (m) at ``depth`` below the camera (36 mm / 50 mm)."""
    return int((x / (depth * 18.0 / 50.0) + 1) / 2 * WIDTH)


def test_depth_normal_and_line_art_images_per_frame_restoring_every_setting(
        control_scene, tmp_path):
    scene, cam, _ = control_scene
    geometry = module("addon.scene_passes.geometry")
    snapshot = user_settings(scene, cam)
    before = snapshot()
    images = {}
    for kind in (geometry.DEPTH, geometry.NORMAL, geometry.LINEART):
        paths = run_pass(geometry.geometry_pass(scene, tmp_path / kind, kind, "cn_1_source"))
        assert [p.name for p in paths] == [f"{k:05d}.png" for k in range(FRAMES)]
        images[kind] = [read(p) for p in paths]
        assert all(i.shape[:2] == (HEIGHT, WIDTH) for i in images[kind])
        assert snapshot() == before  # every setting the render touched is given back
    row = HEIGHT // 2
    depth = images[geometry.DEPTH][0]
    # inverse depth over the nearest's (sky: 0): box top 1/4 → 255, plane 1/5 → 204
    assert depth[row, column(1.0, 4.0)] == 255 and depth[row, column(-1.0, 5.0)] == 204
    assert depth[3, -1] == 0  # sky past the plane's edge, above the box
    normal = images[geometry.NORMAL][0]
    assert (normal[row, column(-1.0, 5.0)] == [128, 128, 255]).all()  # facing the camera
    assert (normal[3, -1] == [128, 128, 255]).all()  # sky: the facing colour
    # the box's left side faces world −x = the camera's left: red 255 in normal_bae
    side = normal[row, column(0.5, 5.0):column(0.5, 4.0) + 1]
    assert ((side == [255, 128, 128]).all(axis=-1)).any()
    lines = images[geometry.LINEART][0]
    assert lines[row, column(0.5, 5.0) - 1:column(0.5, 4.0) + 2].any()  # the box's edges
    assert lines[row, column(-1.0, 5.0)] == 0 and lines[row, column(1.0, 4.0)] == 0
    assert set(np.unique(lines)) == {0, 255}
    assert (images[geometry.DEPTH][0] != images[geometry.DEPTH][1]).any()  # per frame


def projected(x: float, y: float, z: float, camera_height: float, width: int, height: int):
    """A world point's pixel position (x right, y down) for the camera straight above the
    origin: the pinhole with a 50 mm lens on a 36 mm sensor across the width."""
    focal = 50.0 / 36.0 * width
    depth = camera_height - z
    return width / 2 + x / depth * focal, height / 2 - y / depth * focal


def test_openpose_joints_lie_on_the_projected_bone_heads_of_the_posed_rig(control_scene,
                                                                          tmp_path):
    scene, cam, _ = control_scene
    arm = rig(scene)
    width, height = 320, 240  # nothing is rendered: room to keep the joints apart
    scene.render.resolution_x, scene.render.resolution_y = width, height
    openpose = module("addon.scene_passes.openpose")
    pose = module("addon.scene_passes.pose")
    snapshot = user_settings(scene, cam)
    before = snapshot()
    paths = run_pass(pose.pose_pass(scene, tmp_path / "pose", "", "cn_5_source"))
    assert snapshot() == before
    assert [p.name for p in paths] == [f"{k:05d}.png" for k in range(FRAMES)]
    ends = {"Neck": "spine.004", "RShoulder": "upper_arm.R", "RElbow": "forearm.R",
            "RWrist": "hand.R", "LShoulder": "upper_arm.L", "RHip": "thigh.R",
            "RKnee": "shin.R", "LHip": "thigh.L"}
    elbows = []
    for k, path in enumerate(paths):
        image = read(path)
        assert image.shape == (height, width, 3)
        scene.frame_set(START + k)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        evaluated = arm.evaluated_get(depsgraph)
        heads = {joint: evaluated.matrix_world @ evaluated.pose.bones[bone].head
                 for joint, bone in ends.items()}
        spine = evaluated.pose.bones["spine.006"]
        heads["Nose"] = evaluated.matrix_world @ ((spine.head + spine.tail) / 2)
        for joint, point in heads.items():
            colour = openpose.COLOURS[openpose.JOINTS.index(joint)]
            ys, xs = np.nonzero((image == colour).all(axis=-1))
            assert len(xs) > 20, joint
            x, y = projected(*point, cam.matrix_world.translation.z, width, height)
            assert abs(xs.mean() + 0.5 - x) < 1.0 and abs(ys.mean() + 0.5 - y) < 1.0, joint
        elbows.append(heads["RElbow"])
        for joint in ("LEar", "REye", "LAnkle"):  # outside the picture, or no bone
            colour = openpose.COLOURS[openpose.JOINTS.index(joint)]
            assert not (image == colour).all(axis=-1).any(), joint
    assert (elbows[0] - elbows[1]).length > 0.1  # the arm moved: the pose is per frame


def units_with_every_source(scene, actors, arm, model: str) -> None:
    s = scene.deforum
    for unit, source in enumerate(("DEPTH", "NORMAL", "LINEART", "MASK", "OPENPOSE"), 1):
        setattr(s, f"cn_{unit}_enabled", True)
        setattr(s, f"cn_{unit}_model", model)
        setattr(s, f"cn_{unit}_source", source)
    s.cn_4_collection, s.cn_5_armature = actors, arm


def test_compose_renders_each_units_pass_and_points_its_settings_at_the_images(
        control_scene, addon, tmp_path):
    scene, _cam, actors = control_scene
    arm = rig(scene)
    model = tmp_path / "sd.safetensors"
    model.write_bytes(b"")
    addon.prefs.model_path = str(model)
    units_with_every_source(scene, actors, arm, str(tmp_path / "cn_model"))
    scene.deforum.cn_3_enabled = False  # a unit that is off renders nothing
    compose = module("addon.compose")
    composed = compose.compose_job(bpy.context, scene)
    job = json.loads(composed.settings_path.read_text())
    control = composed.jobs_dir / f"{composed.stem}_control"
    for unit in (1, 2, 4, 5):
        assert job[f"cn_{unit}_vid_path"] == str(control / f"unit{unit}")
        assert job[f"cn_{unit}_module"] == "none"
    assert job["cn_3_vid_path"] == "" and not job["cn_3_enabled"]
    assert len(composed.scene_passes) == 4
    for scene_pass in composed.scene_passes:
        run_pass(scene_pass)
    for unit in (1, 2, 4, 5):
        images = sorted((control / f"unit{unit}").iterdir())
        assert [p.name for p in images] == [f"{k:05d}.png" for k in range(FRAMES)]
        assert all(read(p).shape[:2] == (HEIGHT, WIDTH) for p in images)
    mask = read(control / "unit4" / "00000.png")
    mask = mask if mask.ndim == 2 else mask[..., 0]
    assert mask[HEIGHT // 2, column(1.0, 4.0)] == 255 and mask[HEIGHT // 2, 5] == 0
    # A mask unit without its collection is refused by name; the motion preview
    # (no model) diffuses nothing and renders no control images (only its frame 0).
    scene.deforum.cn_4_collection = None
    with pytest.raises(compose.RunError, match="cn_4_collection"):
        compose.compose_job(bpy.context, scene)
    addon.prefs.model_path = ""
    preview = compose.compose_job(bpy.context, scene)
    assert [p.label for p in preview.scene_passes] == ["scene frames"]
    assert json.loads(preview.settings_path.read_text())["cn_1_vid_path"] == ""


def test_the_controlnet_panel_draws_every_unit_greyed_without_a_model(control_scene, addon,
                                                                      tmp_path):
    scene, _cam, actors = control_scene
    panels = module("panels.controlnet")

    def draw(cls):
        drawn, layout = [], CheckingLayout([])
        layout.log = drawn
        stand_in = type("P", (), {"layout": layout, "setup": cls.setup})()
        if hasattr(cls, "draw_header"):
            cls.draw_header(stand_in, bpy.context)
        cls.draw(stand_in, bpy.context)
        return drawn
    unit_panels = panels.CLASSES[1:]
    assert len(unit_panels) == 5
    drawn = draw(unit_panels[0])
    for part in ("enabled", "model", "source", "vid_path", "weight", "weight_override",
                 "guidance_start", "guidance_end", "control_mode"):
        assert f"cn_1_{part}" in drawn, part
    units_with_every_source(scene, actors, rig(scene), str(tmp_path / "cn"))
    assert "cn_4_collection" in draw(unit_panels[3])
    assert "cn_5_armature" in draw(unit_panels[4])
    draw(panels.CLASSES[0])
    relevance = module("addon.relevance")
    state = relevance.snapshot(scene.deforum)
    assert relevance.acts("cn_1_weight", state)
    assert not relevance.acts("cn_1_vid_path", state)  # the scene pass fills it in
    scene.deforum.cn_1_model = "None"
    state = relevance.snapshot(scene.deforum)
    assert not relevance.acts("cn_1_weight", state) and relevance.acts("cn_1_model", state)
    # the weight is an animatable schedule, keyframed like every schedule
    scene.deforum.keyframe_insert("cn_1_weight", frame=START)
