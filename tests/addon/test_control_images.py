"""ControlNet control images from exact scene data (``addon.scene_passes.control_pixels``,
``openpose``, ``png``) and the units' rules (``addon.controlnet_units``), without Blender."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.addon.pure import addon_module

pixels = addon_module("addon.scene_passes.control_pixels")
openpose = addon_module("addon.scene_passes.openpose")
png = addon_module("addon.scene_passes.png")
units = addon_module("addon.controlnet_units")


def test_png_holds_exactly_the_pixels_grey_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (4, 9), dtype=np.uint8)
    png.write_png(tmp_path / "rgb.png", rgb)
    png.write_png(tmp_path / "grey.png", grey)
    assert (cv2.imread(str(tmp_path / "rgb.png"))[..., ::-1] == rgb).all()
    assert (cv2.imread(str(tmp_path / "grey.png"), cv2.IMREAD_UNCHANGED) == grey).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(ValueError, match="uint8"):
        png.encode_png(rgb.astype(np.float32))


def test_depth_is_inverse_depth_near_white_sky_black():
    depth = np.array([[1.0, 2.0, 4.0, np.inf]])
    image = pixels.depth_image(depth)
    assert image.tolist() == [[255, 128, 64, 0]]  # 1/z over 1/1 (sky: 1/inf = 0)
    no_sky = pixels.depth_image(np.array([[1.0, 2.0]]))
    assert no_sky.tolist() == [[255, 0]]  # min–max per frame, like MiDaS
    assert pixels.depth_image(np.full((2, 2), 3.0)).tolist() == [[255, 255], [255, 255]]


def test_normals_use_the_normal_bae_colours_in_camera_space():
    # A camera turned 90° about z (looking down −z, its right is world +y): world +y is
    # the camera's +x (right), which normal_bae stores as red 0 (its x points left).
    turn = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    world = np.array([[[0.0, 1, 0], [0, 0, 1], [-1, 0, 0]]])
    cam = pixels.camera_normals(world, turn)
    np.testing.assert_allclose(cam[0], [[1, 0, 0], [0, 0, 1], [0, 1, 0]], atol=1e-12)
    rgb = pixels.normal_image(cam, np.array([[True, True, False]]))
    assert rgb[0].tolist() == [[0, 128, 128], [128, 128, 255], [128, 128, 255]]


def test_line_art_marks_silhouettes_and_depth_jumps_but_not_a_slanted_plane():
    slanted = np.tile(np.linspace(2.0, 6.0, 12), (8, 1))  # a floor receding: no lines
    facing = np.zeros((8, 12, 3))
    facing[..., 2] = 1.0
    assert not pixels.line_art(slanted, facing).any()
    box = slanted.copy()
    box[2:6, 3:7] = 1.0  # a box in front: its outline, on the box's side
    lines = pixels.line_art(box, facing) > 0
    assert lines[2, 3:7].all() and lines[5, 3:7].all() and lines[2:6, 3].all()
    assert not lines[3:5, 4:6].any() and not lines[0].any()
    sky = slanted.copy()
    sky[:, 9:] = np.inf
    assert (pixels.line_art(sky, facing)[:, 8] == 255).all()  # the surface's last column
    crease = facing.copy()
    crease[:, 6:] = [np.sin(1.0), 0, np.cos(1.0)]  # 57° apart
    assert (pixels.line_art(np.full((8, 12), 3.0), crease)[:, 5] == 255).all()


def test_bones_of_rigify_and_mixamo_rigs_give_the_openpose_joints():
    rigify = ["DEF-spine.004", "DEF-upper_arm.R", "DEF-forearm.R", "DEF-hand.R",
              "DEF-thigh.L", "DEF-shin.L", "DEF-foot.L", "eye.L", "spine.006"]
    chosen = openpose.choose_bones(rigify, {})
    assert chosen["Neck"] == ("DEF-spine.004", "head")
    assert chosen["RShoulder"] == ("DEF-upper_arm.R", "head")
    assert chosen["LAnkle"] == ("DEF-foot.L", "head") and chosen["LEye"] == ("eye.L", "head")
    assert chosen["Nose"] == ("spine.006", "middle")  # no nose bone: mid-head
    assert "RHip" not in chosen
    mixamo = ["mixamorig:Neck", "mixamorig:RightArm", "mixamorig:RightForeArm",
              "mixamorig:LeftUpLeg", "mixamorig:LeftLeg", "mixamorig:Head"]
    chosen = openpose.choose_bones(mixamo, {"mixamorig:Head": "nose:tail"})
    assert chosen["RShoulder"] == ("mixamorig:RightArm", "head")
    assert chosen["RElbow"] == ("mixamorig:RightForeArm", "head")
    assert chosen["LKnee"] == ("mixamorig:LeftLeg", "head")
    assert chosen["Nose"] == ("mixamorig:Head", "tail")  # the bone's property wins
    assert openpose.parse_override("Elbow") is None


def test_skeleton_image_has_each_joint_disc_centred_on_its_point():
    person = {"Neck": (40.3, 30.7), "RShoulder": (25.6, 31.2), "RElbow": (20.2, 50.9),
              "LShoulder": (55.5, 29.5), "Nose": (41.0, 12.25)}
    image = openpose.skeleton_image([person], 80, 64)
    for joint, (x, y) in person.items():
        colour = openpose.COLOURS[openpose.JOINTS.index(joint)]
        ys, xs = np.nonzero((image == colour).all(axis=-1))
        assert abs(xs.mean() + 0.5 - x) < 0.5 and abs(ys.mean() + 0.5 - y) < 0.5, joint
    neck_to_elbow = openpose.COLOURS[openpose.LIMBS.index((1, 2))]
    shade = tuple(int(c * openpose.LIMB_SHADE) for c in neck_to_elbow)
    assert (image[31, 33] == shade).all()  # the limb between neck and shoulder
    assert not image[:, 70:].any()  # nothing where no joint is


def test_a_unit_acts_only_enabled_with_a_model_and_a_scene_source_fills_its_frames():
    rules = units.acts_when(["cn_2_weight", "cn_2_vid_path", "cn_2_model", "cn_2_enabled",
                             "use_init"])
    assert set(rules) == {"cn_2_weight", "cn_2_vid_path"}
    off = {"cn_2_enabled": True, "cn_2_model": "None", "cn_2_source": "FILE"}
    assert not rules["cn_2_weight"](off) and units.scene_source(off, 2) is None
    on = {**off, "cn_2_model": "/models/cn_depth"}
    assert rules["cn_2_weight"](on) and rules["cn_2_vid_path"](on)
    depth = {**on, "cn_2_source": "DEPTH"}
    assert units.scene_source(depth, 2) == "DEPTH" and not rules["cn_2_vid_path"](depth)
    assert units.scene_source({**depth, "cn_2_enabled": False}, 2) is None
