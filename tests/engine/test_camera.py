"""Camera path ↔ Deforum motion: signs, indexing, round trips and field of view.

Blender matrices are built here with numpy the way Blender does (rotation_euler
in 'XYZ' mode = Rz·Ry·Rx), so none of these tests needs bpy.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from engine.camera import (MOTION_KEYS, SCHEDULE_KEYS, format_number, format_schedule,
                           lens_from_vertical_fov, matrices_to_motion, matrices_to_schedules,
                           motion_to_matrices, schedules_to_matrices, vertical_fov)

S = 200.0
F = np.diag([1.0, -1.0, -1.0])  # Blender camera frame ↔ Deforum camera frame


def rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def blender_matrix(location=(0.0, 0.0, 0.0), euler_deg=(90.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0)):
    """Object matrix for location / rotation_euler ('XYZ' mode) / scale, as Blender builds it."""
    m = np.eye(4)
    m[:3, :3] = rot_z(euler_deg[2]) @ rot_y(euler_deg[1]) @ rot_x(euler_deg[0]) @ np.diag(scale)
    m[:3, 3] = location
    return m


def motion_between(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Deforum values at key 1 for a two-frame move."""
    motion = matrices_to_motion([before, after], [40.0, 40.0])
    return {key: float(motion[key][1]) for key in MOTION_KEYS}


def assert_only(values: dict[str, float], **expected: float) -> None:
    for key in MOTION_KEYS:
        assert values[key] == pytest.approx(expected.get(key, 0.0), abs=1e-9), key


def smooth_path(n: int, seed: int, parent: np.ndarray | None = None,
                scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """A wandering camera turning on all three axes, with large total rotation."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)
    phase = rng.uniform(0, 2 * np.pi, size=(6, 1))
    freq = rng.uniform(0.5, 2.0, size=(6, 1))
    wave = np.sin(2 * np.pi * freq * t + phase)
    loc = 3.0 * wave[:3].T + np.array([1.0, -2.0, 0.5])
    euler = np.stack([90 + 60 * wave[3], 40 * wave[4], 200 * t + 30 * wave[5]], axis=1)
    mats = np.array([blender_matrix(p, e, scale) for p, e in zip(loc, euler)])
    return mats if parent is None else parent @ mats


def rigid(mats: np.ndarray) -> np.ndarray:
    """Expected camera pose: scale removed column by column (valid without shear)."""
    out = np.array(mats, dtype=float)
    out[:, :3, :3] /= np.linalg.norm(out[:, :3, :3], axis=1, keepdims=True)
    return out


# -------------------------------------------------- signs: each Blender camera move → its Deforum key

def test_dolly_forward_is_positive_tz():
    # looking along world +Y; forward 1 m
    assert_only(motion_between(blender_matrix(), blender_matrix((0, 1, 0))), translation_z=S)


def test_truck_right_is_positive_tx():
    assert_only(motion_between(blender_matrix(), blender_matrix((1, 0, 0))), translation_x=S)


def test_pedestal_up_is_positive_ty():
    assert_only(motion_between(blender_matrix(), blender_matrix((0, 0, 1))), translation_y=S)


def test_pan_left_is_negative_ry():
    assert_only(motion_between(blender_matrix(), blender_matrix(euler_deg=(90, 0, 5))),
                rotation_3d_y=-5.0)


def test_tilt_up_is_positive_rx():
    assert_only(motion_between(blender_matrix(), blender_matrix(euler_deg=(95, 0, 0))),
                rotation_3d_x=5.0)


def test_clockwise_roll_is_positive_rz():
    # Turning about the world +Y viewing direction looks clockwise to the viewer:
    # the camera's right axis dips toward −Z (down on screen).
    after = blender_matrix(euler_deg=(90, 5, 0))
    right = after[:3, 0]
    assert right[2] < 0 and right[0] > 0
    assert_only(motion_between(blender_matrix(), after), rotation_3d_z=5.0)


def test_scale_multiplies_translation():
    mats = [blender_matrix(), blender_matrix((0, 0.5, 0))]
    motion = matrices_to_motion(mats, [40, 40], scale=50)
    assert motion["translation_z"][1] == pytest.approx(25.0)


# ---------------------------------------------------------------- indexing

def test_key_zero_is_zero_and_key_k_is_move_into_frame_k():
    still, ahead = blender_matrix(), blender_matrix((0, 1, 0))
    mats = [still, still, ahead, ahead]
    motion = matrices_to_motion(mats, [40.0, 41.0, 42.0, 43.0])
    assert set(motion) == set(SCHEDULE_KEYS)
    assert list(motion["translation_z"]) == pytest.approx([0.0, 0.0, S, 0.0], abs=1e-9)
    assert list(motion["fov"]) == [40.0, 41.0, 42.0, 43.0]
    for key in MOTION_KEYS:
        assert motion[key][0] == 0.0


def test_first_key_is_zero_even_for_a_moved_start():
    motion = matrices_to_motion([blender_matrix((5, 6, 7), (10, 20, 30))], [55.0])
    assert all(motion[key].tolist() == [0.0] for key in MOTION_KEYS)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError):
        matrices_to_motion(np.zeros((3, 3, 3)), [40, 40, 40])
    with pytest.raises(ValueError):
        matrices_to_motion([np.eye(4), np.eye(4)], [40])
    with pytest.raises(ValueError):
        motion_to_matrices({"translation_x": [0, 1], "rotation_3d_y": [0, 1, 2]})
    with pytest.raises(ValueError):
        motion_to_matrices({"fov": [40, 40]})


# ---------------------------------------------------------------- agreement with Deforum's warp

def test_decomposition_order_matches_deforum_warp():
    # a combined turn, built in the other (Blender 'XYZ') order on purpose
    q_b = rot_z(30) @ rot_y(20) @ rot_x(10)
    before = blender_matrix((1, 2, 3), (70, -10, 25))
    after = before.copy()
    after[:3, :3] = before[:3, :3] @ q_b
    v = motion_between(before, after)
    rebuilt = rot_x(v["rotation_3d_x"]) @ rot_y(v["rotation_3d_y"]) @ rot_z(v["rotation_3d_z"])
    np.testing.assert_allclose(rebuilt, F @ q_b @ F, atol=1e-12)
    # the naive mathutils to_euler('XYZ') reading (10, −20, −30) would not match
    naive = rot_x(10) @ rot_y(-20) @ rot_z(-30)
    assert np.abs(naive - F @ q_b @ F).max() > 0.05


def test_deforum_point_transform_maps_old_view_to_new_view():
    """p_new = p_old·R + T (row vectors, Deforum frame) for real scene points."""
    rng = np.random.default_rng(3)
    before = blender_matrix((0.3, -1.0, 2.0), (80, 15, -40))
    after = blender_matrix((0.5, -0.7, 2.2), (88, 5, -31))
    v = motion_between(before, after)
    r = rot_x(v["rotation_3d_x"]) @ rot_y(v["rotation_3d_y"]) @ rot_z(v["rotation_3d_z"])
    t = np.array([-v["translation_x"], v["translation_y"], -v["translation_z"]]) / S
    world = rng.uniform(-5, 5, size=(20, 3))

    def deforum_view(cam: np.ndarray) -> np.ndarray:
        local = (world - cam[:3, 3]) @ cam[:3, :3]  # rows: Rᵀ(p − c)
        return local @ F

    np.testing.assert_allclose(deforum_view(before) @ r + t, deforum_view(after), atol=1e-12)


def test_gimbal_lock_turn_is_reproduced():
    before = blender_matrix()
    after = before.copy()
    after[:3, :3] = before[:3, :3] @ rot_x(20) @ rot_y(90) @ rot_z(-35)
    motion = matrices_to_motion([before, after], [40, 40])
    assert abs(motion["rotation_3d_y"][1]) == pytest.approx(90.0)
    np.testing.assert_allclose(motion_to_matrices(motion, start=before), [before, after], atol=1e-9)


# ---------------------------------------------------------------- round trips

def round_trip_strings(mats: np.ndarray, fovs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    schedules = matrices_to_schedules(mats, fovs)
    assert all("e" not in text.lower() for text in schedules.values())
    parsed = {key: [float(v) for v in re.findall(r"\d+:\(([^)]*)\)", text)]
              for key, text in schedules.items()}
    assert all(len(values) == len(mats) for values in parsed.values())
    return schedules_to_matrices(parsed, len(mats), start=mats[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_through_schedule_text(seed):
    mats = smooth_path(120, seed)
    fovs = np.linspace(30.0, 55.0, len(mats))
    rebuilt, fov_back = round_trip_strings(mats, fovs)
    np.testing.assert_allclose(rebuilt, mats, atol=1e-6)
    np.testing.assert_allclose(fov_back, fovs, atol=1e-9)


def test_round_trip_with_scaled_parent_and_object_scale():
    parent = blender_matrix((4, -3, 1), (-20, 35, 110), (2.5, 2.5, 2.5))
    mats = smooth_path(80, 7, parent=parent, scale=(0.5, 1.7, 3.0))
    rebuilt, _ = round_trip_strings(mats, np.full(len(mats), 40.0))
    np.testing.assert_allclose(rebuilt, rigid(mats), atol=1e-6)


def test_sheared_parent_keeps_viewing_axis():
    # non-uniform parent scale on a turning camera shears its matrix
    parent = blender_matrix((0, 0, 0), (0, 0, 0), (1.0, 3.0, 0.5))
    mats = smooth_path(20, 9, parent=parent)
    rebuilt, _ = round_trip_strings(mats, np.full(len(mats), 40.0))
    view = mats[:, :3, 2] / np.linalg.norm(mats[:, :3, 2], axis=1, keepdims=True)
    np.testing.assert_allclose(rebuilt[:, :3, 2], view, atol=1e-6)
    np.testing.assert_allclose(rebuilt[:, :3, 3], mats[:, :3, 3], atol=1e-6)


def test_parent_scale_counts_as_world_distance():
    parent = blender_matrix((0, 0, 0), (0, 0, 0), (2, 2, 2))
    mats = parent @ np.array([blender_matrix(), blender_matrix((0, 1, 0))])
    assert motion_between(*mats)["translation_z"] == pytest.approx(2 * S)


def test_motion_arrays_round_trip_and_missing_keys_mean_still():
    mats = smooth_path(30, 11)
    motion = matrices_to_motion(mats, np.full(30, 40.0))
    np.testing.assert_allclose(motion_to_matrices(motion, start=mats[0]), mats, atol=1e-9)
    only_forward = motion_to_matrices({"translation_z": [0, S, S]})
    np.testing.assert_allclose(only_forward[:, :3, 3], [[0, 0, 0], [0, 0, -1], [0, 0, -2]],
                               atol=1e-12)
    np.testing.assert_allclose(only_forward[:, :3, :3], np.broadcast_to(np.eye(3), (3, 3, 3)))


def test_defaults_without_schedules():
    mats, fovs = schedules_to_matrices({}, 4)
    np.testing.assert_allclose(mats, np.broadcast_to(np.eye(4), (4, 4, 4)))
    assert fovs.tolist() == [40.0] * 4


def test_schedule_strings_are_evaluated():
    pytest.importorskip("engine.schedules")
    before = blender_matrix((1, 2, 3))
    schedules = {"translation_z": "0:(0), 1:(200)", "fov": "0:(50)"}
    mats, fovs = schedules_to_matrices(schedules, 3, start=before)
    # frame 1 and 2 each move 1 m forward along world +Y; key 0 is not applied
    np.testing.assert_allclose(mats[:, :3, 3], [[1, 2, 3], [1, 3, 3], [1, 4, 3]], atol=1e-12)
    assert fovs.tolist() == [50.0, 50.0, 50.0]


def test_full_text_round_trip_through_schedule_parser():
    pytest.importorskip("engine.schedules")
    mats = smooth_path(40, 5)
    fovs = np.linspace(35.0, 45.0, 40)
    schedules = matrices_to_schedules(mats, fovs)
    rebuilt, fov_back = schedules_to_matrices(schedules, 40, start=mats[0])
    np.testing.assert_allclose(rebuilt, mats, atol=1e-6)
    np.testing.assert_allclose(fov_back, fovs, atol=1e-9)


# ---------------------------------------------------------------- number formatting

@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (-0.0, "0"), (-1e-12, "0"), (1e-3, "0.001"), (-2.5, "-2.5"), (100.0, "100"),
    (0.123456789, "0.123456789"), (1e20, "100000000000000000000"), (-7e-8, "-0.00000007"),
])
def test_format_number_never_uses_exponents(value, text):
    assert format_number(value) == text


def test_format_number_rejects_non_finite():
    with pytest.raises(ValueError):
        format_number(float("nan"))


def test_format_schedule_writes_every_frame():
    assert format_schedule([0, 0.5, -1]) == "0:(0), 1:(0.5), 2:(-1)"


# -------------------------------------------------- field of view: Blender's sensor fit → vertical fov

def test_vertical_fov_probe_auto_landscape():
    assert vertical_fov(50, 36, 24, "AUTO", 1024, 576) == pytest.approx(22.895, abs=1e-3)


def test_vertical_fov_auto_portrait_fits_sensor_width_to_height():
    assert vertical_fov(50, 36, 24, "AUTO", 576, 1024) == pytest.approx(39.598, abs=1e-3)


def test_vertical_fov_horizontal_and_vertical_fits():
    assert vertical_fov(50, 36, 24, "HORIZONTAL", 1024, 576) == pytest.approx(22.895, abs=1e-3)
    expected = math.degrees(2 * math.atan(0.36 * 1024 / 576))
    assert vertical_fov(50, 36, 24, "HORIZONTAL", 576, 1024) == pytest.approx(expected)
    # VERTICAL uses the sensor height: Blender's angle_y probe value
    assert vertical_fov(50, 36, 24, "VERTICAL", 1024, 576) == pytest.approx(26.991, abs=1e-3)
    assert vertical_fov(50, 36, 24, "VERTICAL", 576, 1024) == pytest.approx(26.991, abs=1e-3)


def test_vertical_fov_counts_pixel_aspect():
    # 1024×576 pixels twice as wide as tall: the frame is 2048×576
    expected = math.degrees(2 * math.atan(0.36 * 576 / 2048))
    assert vertical_fov(50, 36, 24, "AUTO", 1024, 576, 2.0, 1.0) == pytest.approx(expected)
    # 512×576 with 2:1 pixels is landscape, so AUTO fits the width
    expected = math.degrees(2 * math.atan(0.36 * 576 / 1024))
    assert vertical_fov(50, 36, 24, "AUTO", 512, 576, 2.0, 1.0) == pytest.approx(expected)


@pytest.mark.parametrize("fit, res", [("AUTO", (1024, 576)), ("AUTO", (576, 1024)),
                                      ("HORIZONTAL", (640, 480)), ("VERTICAL", (1920, 1080))])
def test_lens_from_vertical_fov_inverts(fit, res):
    fov = vertical_fov(35, 36, 24, fit, *res, 1.0, 1.1)
    assert lens_from_vertical_fov(fov, 36, 24, fit, *res, 1.0, 1.1) == pytest.approx(35)


def test_unknown_sensor_fit_is_rejected():
    with pytest.raises(ValueError):
        vertical_fov(50, 36, 24, "DIAGONAL", 1024, 576)


def test_lens_shift_fractions_follow_blenders_fitted_side():
    from engine.camera import shift_fractions

    # Blender measures shift in units of the fitted side: the width when it fits the width.
    assert shift_fractions(0.1, 0.05, "AUTO", 640, 480) == pytest.approx((0.1, 0.05 * 640 / 480))
    assert shift_fractions(0.1, 0.05, "HORIZONTAL", 480, 640) == pytest.approx(
        (0.1, 0.05 * 480 / 640))
    # A portrait picture with AUTO (or VERTICAL) fits the height.
    assert shift_fractions(0.1, 0.05, "AUTO", 480, 640) == pytest.approx((0.1 * 640 / 480, 0.05))
    assert shift_fractions(0.1, 0.05, "VERTICAL", 640, 480) == pytest.approx(
        (0.1 * 480 / 640, 0.05))
    with pytest.raises(ValueError, match="sensor_fit"):
        shift_fractions(0.1, 0.0, "DIAGONAL", 640, 480)
