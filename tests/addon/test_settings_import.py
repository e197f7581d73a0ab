"""Settings file → scene values and camera keys (``settings_import``), without bpy.

The camera keys are checked the way Blender will read them back: each key
becomes a camera-to-world matrix (location + unit quaternion) and a lens, the
bake's own math (``bake_math.camera_schedules``) turns them into schedules,
and those must equal the file's schedules evaluated at every frame.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from tests.addon.pure import PACKAGE, ROOT, addon_module

si = addon_module("addon.settings_import")
bake_math = addon_module("addon.bake_math")
parse_settings = addon_module("engine.settings").parse_settings
evaluate_schedule = addon_module("engine.schedules").evaluate_schedule

SENSOR = si.Sensor(36.0, 24.0, "AUTO", 512, 384)
MOTION_3D = {
    "translation_x": "0:(0), 10:(3), 30:(-2*sin(t/5))",
    "translation_y": "0:(0.5)",
    "translation_z": "0:(2+t/10)",
    "rotation_3d_x": "0:(1.5*cos(t/7))",
    "rotation_3d_y": "0:(0), 20:(-2), 40:(4)",
    "rotation_3d_z": "0:(0.7)",
    "fov": "0:(40), 25:(70), 45:(30)",
}


STILL = {key: "0:(0)" for key in ("angle", "translation_x", "translation_y", "translation_z",
                                  "rotation_3d_x", "rotation_3d_y", "rotation_3d_z")}


def settings(**values):
    """A 48-frame file; motion keys not given are still (the table's defaults move)."""
    return parse_settings({"max_frames": 48, "W": 512, "H": 384, **STILL, "zoom": "0:(1)",
                           **values})


def rotation(q: np.ndarray) -> np.ndarray:
    """The matrix Blender builds from a (w, x, y, z) quaternion."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def bake(keys, *, mode: str, scale: float, sensor=SENSOR, dtype=float) -> dict[str, str]:
    """What ``bake.sample`` computes from a camera carrying these keys."""
    locations, quats, lenses = (np.asarray(a, dtype=dtype).astype(float)
                                for a in (keys.locations, keys.quaternions, keys.lenses))
    mats = np.tile(np.eye(4), (len(lenses), 1, 1))
    mats[:, :3, :3] = [rotation(q) for q in quats]
    mats[:, :3, 3] = locations
    fovs = [sensor.fov(lens) for lens in lenses]
    return bake_math.camera_schedules(mats, fovs, mode=mode, scale=scale, height=sensor.res_y)


def assert_reproduces(baked: dict[str, str], file: dict[str, str], frames: int,
                      atol: float = 1e-6) -> None:
    """Every motion key from frame 1 on (Deforum never warps frame 0), fov on every frame."""
    for key, text in file.items():
        want = np.asarray(evaluate_schedule(text, frames), dtype=float)
        got = np.asarray(evaluate_schedule(baked[key], frames), dtype=float)
        first = 0 if key == "fov" else 1
        np.testing.assert_allclose(got[first:], want[first:], atol=atol, err_msg=key)


# ---------------------------------------------------------------- quaternions

def test_quaternions_rebuild_every_rotation_and_take_the_short_way():
    rng = np.random.default_rng(3)
    axes = rng.normal(size=(200, 3))
    angles = np.linspace(-2 * math.pi, 2 * math.pi, 200)  # passes 180° (all four branches)
    rots = []
    for axis, angle in zip(axes, angles):
        a = axis / np.linalg.norm(axis)
        k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        rots.append(np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k)
    rots += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    quats = si.quaternions(np.array(rots))
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-12)
    for q, r in zip(quats, rots):
        np.testing.assert_allclose(rotation(q), r, atol=1e-12)
    smooth = si.quaternions(np.array(rots[:10]))  # same axis family, growing angle
    assert all(smooth[k] @ smooth[k - 1] >= 0 for k in range(1, 10))


def test_a_full_turn_keeps_quaternion_keys_continuous():
    turn = np.linspace(0, 4 * math.pi, 60)
    rots = np.array([[[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]]
                     for a in turn])
    quats = si.quaternions(rots)
    assert np.all(np.sum(quats[1:] * quats[:-1], axis=1) > 0.9)


# ---------------------------------------------------------------- 3D camera

def test_3d_keys_bake_back_to_the_files_schedules():
    loaded = settings(animation_mode="3D", **MOTION_3D)
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)
    assert keys.locations.shape == (48, 3) and keys.quaternions.shape == (48, 4)
    assert keys.warnings == []
    assert_reproduces(bake(keys, mode="3D", scale=50.0), MOTION_3D, 48)


def test_3d_keys_start_from_the_given_pose_and_default_to_a_level_front_view():
    loaded = settings(animation_mode="3D", translation_z="0:(50)")
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)
    np.testing.assert_allclose(keys.locations[:3], [[0, 0, 0], [0, 1, 0], [0, 2, 0]],
                               atol=1e-12)  # 1 m per frame along +Y, the view direction
    start = np.eye(4)
    start[:3, 3] = (5, 6, 7)
    moved = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384, start=start)
    np.testing.assert_allclose(moved.locations[:2], [[5, 6, 7], [5, 6, 6]], atol=1e-12)


def test_long_3d_shot_survives_blenders_float32_keys():
    """1000 frames of travel and turning, keys rounded to float32 as Blender stores them."""
    motion = {"translation_x": "0:(3*sin(t/40))", "translation_z": "0:(4)",
              "rotation_3d_y": "0:(0.4)", "rotation_3d_x": "0:(0.3*cos(t/30))",
              "rotation_3d_z": "0:(0.2)", "translation_y": "0:(0)", "fov": "0:(50)"}
    loaded = settings(animation_mode="3D", max_frames=1000, **motion)
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)
    assert_reproduces(bake(keys, mode="3D", scale=50.0, dtype=np.float32), motion, 1000,
                      atol=1e-3)


def test_fov_outside_0_to_180_is_an_error_naming_the_frame():
    loaded = settings(animation_mode="3D", fov="0:(40), 5:(190)")
    with pytest.raises(si.SettingsError, match=r"fov: .* at frame \d+ is not between 0 and 180"):
        si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)


def test_a_lens_below_blenders_minimum_is_clamped_with_a_warning():
    loaded = settings(animation_mode="3D", fov="0:(40), 10:(179)")
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384, lens_range=(1.0, 1e6))
    assert keys.lenses.min() == 1.0
    assert any(w.startswith("fov: at frames") for w in keys.warnings)


# ---------------------------------------------------------------- 2D camera

MOTION_2D = {"angle": "0:(0), 10:(3), 20:(-1.5*sin(t/4))",
             "zoom": "0:(1.0025+0.002*sin(1.25*3.14*t/30)), 30:(0.98)",
             "translation_x": "0:(4), 15:(-6)", "translation_y": "0:(2*cos(t/9))"}


def test_2d_keys_bake_back_to_angle_zoom_and_translation():
    loaded = settings(animation_mode="2D", fov="0:(70)", **MOTION_2D)
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)
    assert keys.warnings == []
    np.testing.assert_allclose(keys.locations, 0.0, atol=1e-12)  # 2D never travels
    assert SENSOR.fov(keys.lenses[0]) == pytest.approx(70.0)  # starts at the file's fov
    assert_reproduces(bake(keys, mode="2D", scale=50.0), MOTION_2D, 48)


def test_2d_zoom_beyond_the_lens_range_and_big_turns_are_warned_about():
    loaded = settings(animation_mode="2D", zoom="0:(1), 5:(0.2)", angle="0:(0), 3:(270)")
    keys = si.camera_keys(loaded, scale=50.0, sensor=SENSOR, height=384)
    assert keys.lenses.min() == 1.0
    assert any(w.startswith("zoom: at frames") for w in keys.warnings)
    assert any(w.startswith("angle: at frames 3") for w in keys.warnings)
    angle = evaluate_schedule(bake(keys, mode="2D", scale=50.0)["angle"], 48)
    assert angle[3] == pytest.approx(-90.0)  # the same image as +270°


def test_zoom_of_zero_is_an_error():
    with pytest.raises(si.SettingsError, match="zoom: 0 at frame 4 is not above 0"):
        si.camera_keys(settings(animation_mode="2D", zoom="0:(1), 4:(0)"), scale=50.0,
                       sensor=SENSOR, height=384)


def test_modes_without_camera_are_refused():
    with pytest.raises(ValueError, match="Video Input"):
        si.camera_keys(settings(animation_mode="Video Input"), scale=50.0, sensor=SENSOR,
                       height=384)


# ---------------------------------------------------------------- settings, prompts, fps

ROWS = [row for row in addon_module("engine.settings_table").SETTINGS
        if row.name in ("strength_schedule", "zoom", "noise_schedule", "translation_z",
                        "seed", "steps", "sampler", "use_depth_warping")]
NUMERIC = ("strength_schedule", "zoom", "noise_schedule", "translation_z")


def test_property_values_split_constants_from_schedules():
    loaded = settings(strength_schedule="0: (0.65)", zoom="0:(1), 9:(1.2)",
                      noise_schedule="0:(0.02)", translation_z="0:(3)", seed=3521683328,
                      steps=20, sampler="Euler a", use_depth_warping=False)
    values, notes = si.property_values(
        loaded, ROWS, NUMERIC, limits={"seed": (-2**31, 2**31 - 1), "noise_schedule": (0, 0.01)},
        animated={"translation_z"}, camera_keys=("zoom",))
    assert values["strength_schedule"] == 0.65 and values["strength_schedule_override"] == ""
    assert "zoom" not in values and values["zoom_override"] == ""  # the camera drives it
    assert values["noise_schedule_override"] == "0:(0.02)"  # out of the property's range
    assert values["translation_z_override"] == "0:(3)"  # keyframed: the override wins
    assert values["steps"] == 20 and values["sampler"] == "euler_ancestral"
    assert values["use_depth_warping"] is False
    assert values["seed"] == 2**31 - 1
    assert notes == ["seed: 3521683328 is outside Blender's range; set to 2147483647, so "
                     "renders will differ from the file's"]


def test_a_non_constant_schedule_goes_into_the_override_as_written():
    loaded = settings(strength_schedule="0:(max_f/100)")
    values, _ = si.property_values(loaded, ROWS, NUMERIC, limits={})
    assert values["strength_schedule"] == pytest.approx(0.47)  # a constant expression
    text = "0:(0.5), 10:(0.3)"
    values, _ = si.property_values(settings(strength_schedule=text), ROWS, NUMERIC, limits={})
    assert values["strength_schedule_override"] == text and "strength_schedule" not in values


def test_prompt_rows_follow_the_engines_keys():
    loaded = settings(animation_prompts={"0": "a castle --neg fog", "max_f-8": "a ruin",
                                         "20": "a lake"},
                      negative_prompts={"20": "people", "30": "boats"})
    assert si.prompt_rows(loaded) == [(0, "a castle", "fog"), (20, "a lake", "people"),
                                      (30, "a lake", "boats"), (39, "a ruin", "")]


def test_fps_pairs():
    assert si.fps_pair(24) == (24, 1.0)
    whole, base = si.fps_pair(29.97)
    assert whole == 30 and whole / base == pytest.approx(29.97)
    assert si.fps_pair(0.5) == (1, 2.0)


def test_the_module_needs_no_bpy():
    code = ("import sys, importlib, types\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in {'bpy', 'torch', 'mathutils'}:\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            f"p = types.ModuleType({PACKAGE!r}); p.__path__ = [{str(ROOT)!r}]\n"
            f"sys.modules[{PACKAGE!r}] = p\n"
            f"importlib.import_module({PACKAGE!r} + '.addon.settings_import')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
