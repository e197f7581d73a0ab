"""2D and 3D warps: what a user sees move, and agreement with Deforum's own formula (the reference)."""

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.warp import grid_3d, matrix_2d, sample_grid, warp_2d, warp_3d

H, W = 64, 96


# ----------------------------------------------------------------- test images

def structured() -> np.ndarray:
    """Random blocks, a smooth gradient and a one-pixel checker (hard on samplers)."""
    rng = np.random.default_rng(0)
    img = np.kron(rng.integers(0, 256, (H // 8, W // 8, 3)), np.ones((8, 8, 1)))
    y, x = np.mgrid[0:H, 0:W]
    third = W // 3
    img[:, :third, 0] = x[:, :third] * 255.0 / third
    img[:, :third, 1] = y[:, :third] * 4
    img[:, :third, 2] = (x + y)[:, :third] % 2 * 255
    return img.astype(np.uint8)


def smooth_depth() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W]
    return (1.0 + 0.75 * (1.0 + np.sin(x / 13.0) * np.cos(y / 9.0))).astype(np.float32)


def gradient_x(slope: float = 2.0) -> np.ndarray:
    """Value = slope · column: a horizontal shift of s pixels adds slope·s."""
    row = (slope * np.arange(W)).astype(np.uint8)
    return np.repeat(np.broadcast_to(row[None, :, None], (H, W, 1)), 3, axis=2).copy()


def gradient_y(slope: float = 3.0) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(
        np.broadcast_to((slope * np.arange(H)).astype(np.uint8)[None, :, None], (W, H, 3)),
        (1, 0, 2)))


def blob(cx: float, cy: float, radius: int = 3) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    cv2.circle(img, (int(cx), int(cy)), radius, (255, 255, 255), -1)
    return img


def centroid(img: np.ndarray) -> np.ndarray:
    weight = img[..., 0].astype(float)
    y, x = np.mgrid[0:H, 0:W]
    return np.array([(x * weight).sum(), (y * weight).sum()]) / weight.sum()


def focal(fov: float, aspect: float = W / H) -> tuple[float, float]:
    k11 = 1.0 / math.tan(math.radians(fov) / 2.0)
    return k11 / aspect, k11


# ----------------------------------------------- Deforum's own 3D formula, written as Deforum does

def rotation_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    a, b, c = map(math.radians, (rx, ry, rz))
    rot_x = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rot_y = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rot_z = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rot_x @ rot_y @ rot_z


def reference_warp(image, depth, translation, rotation, fov, prev_fov, sampling, padding):
    """Deforum's 3D warp written straight from the spec, float64, rounded."""
    k00_new, k11_new = focal(fov)
    k00_old, k11_old = focal(prev_fov)
    tx, ty, tz = translation
    shift = np.array([-tx / 200, ty / 200, -tz / 200])
    y, x = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    z = np.ones((H, W)) if depth is None else depth.astype(np.float64)
    moved = np.stack([x, y, z], axis=-1) @ rotation_xyz(*rotation) + shift
    old = np.stack([k00_old * x / z, k11_old * y / z], axis=-1)
    new = np.stack([k00_new * moved[..., 0] / moved[..., 2],
                    k11_new * moved[..., 1] / moved[..., 2]], axis=-1)
    base = F.affine_grid(torch.eye(2, 3, dtype=torch.float64)[None], [1, 1, H, W],
                         align_corners=False)
    grid = base - torch.from_numpy(new - old)[None]
    source = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None]
    out = F.grid_sample(source, grid, mode=sampling, padding_mode=padding, align_corners=False)
    return out[0].clamp(0, 255).round().permute(1, 2, 0).numpy().astype(np.uint8)


MOTION = dict(translation=(7.0, -5.0, 12.0), rotation=(2.5, -3.0, 6.0))


@pytest.mark.parametrize("with_depth", [False, True], ids=["flat", "depth"])
@pytest.mark.parametrize("padding", ["border", "reflection", "zeros"])
@pytest.mark.parametrize("sampling", ["bicubic", "bilinear", "nearest"])
def test_deforum_model_agrees_with_reference_formula(sampling, padding, with_depth):
    image = structured()
    depth = smooth_depth() if with_depth else None
    expected = reference_warp(image, depth, MOTION["translation"], MOTION["rotation"], 55, 55,
                              sampling, padding)
    ours = warp_3d(image, depth, fov=55, sampling_mode=sampling, padding_mode=padding, **MOTION)
    within_one = np.mean(np.abs(ours.astype(int) - expected) <= 1)
    assert within_one >= 0.99, within_one


def test_fov_change_uses_previous_fov_for_the_old_projection():
    image, depth = structured(), smooth_depth()
    expected = reference_warp(image, depth, MOTION["translation"], MOTION["rotation"], 50, 44,
                              "bicubic", "border")
    ours = warp_3d(image, depth, fov=50, prev_fov=44, **MOTION)
    assert np.mean(np.abs(ours.astype(int) - expected) <= 1) >= 0.99


# ----------------------------------------------------------------------- 2D

def test_2d_translation_shifts_right_and_down_by_whole_pixels():
    image = structured()
    out = warp_2d(image, angle=0, zoom=1, translation_x=5, translation_y=3)
    assert np.array_equal(out[3:, 5:], image[:-3, :-5])


def test_2d_zoom_enlarges_about_the_centre():
    cx, cy = W // 2, H // 2
    out = warp_2d(blob(cx + 10, cy), angle=0, zoom=1.5, translation_x=0, translation_y=0)
    assert centroid(out) == pytest.approx([cx + 15, cy], abs=0.3)
    assert (out[..., 0] > 127).sum() > 2.0 * (blob(cx + 10, cy)[..., 0] > 127).sum()


def test_2d_positive_angle_turns_counter_clockwise():
    cx, cy = W // 2, H // 2
    out = warp_2d(blob(cx + 20, cy), angle=90, zoom=1, translation_x=0, translation_y=0)
    assert centroid(out) == pytest.approx([cx, cy - 20], abs=0.3)  # right → up


def test_2d_wrap_border_tiles_and_replicate_border_stretches():
    image = structured()
    wrapped = warp_2d(image, angle=0, zoom=1, translation_x=10, translation_y=0, border="wrap")
    assert np.array_equal(wrapped[:, :10], image[:, -10:])
    replicated = warp_2d(image, angle=0, zoom=1, translation_x=10, translation_y=0,
                         border="replicate")
    assert np.array_equal(replicated[:, :10], np.repeat(image[:, :1], 10, axis=1))


def reference_flip(theta, phi, gamma, fv):
    """Deforum's perspective-flip homography, built with OpenCV as Deforum's code does."""
    half = math.radians(fv / 2)
    d = math.hypot(W, H)
    side, h = d / math.cos(half), d / (2 * math.sin(half))
    n, f = h - d / 2, h + d / 2
    rot = np.eye(4)
    rot[:3, :3] = rotation_xyz(phi, gamma, theta)
    push = np.eye(4)
    push[2, 3] = -h
    proj = np.zeros((4, 4))
    proj[0, 0] = proj[1, 1] = 1 / math.tan(half)
    proj[2, 2], proj[2, 3], proj[3, 2] = -(f + n) / (f - n), -2 * f * n / (f - n), -1
    corners = np.array([[[-W / 2, H / 2, 0], [W / 2, H / 2, 0], [W / 2, -H / 2, 0],
                         [-W / 2, -H / 2, 0]]])
    projected = cv2.perspectiveTransform(corners, proj @ push @ rot)[0]
    homography = cv2.getPerspectiveTransform(
        (corners[0, :, :2] + [W / 2, H / 2]).astype(np.float32),
        ((projected[:, :2] + 1) * side / 2).astype(np.float32))
    return homography @ np.array([[1, 0, (W - side) / 2], [0, 1, (H - side) / 2], [0, 0, 1]])


def test_perspective_flip_matrix_matches_reference_and_keeps_translation():
    flip = (10.0, -15.0, 20.0, 53.0)
    rotate_zoom = matrix_2d(W, H, angle=4, zoom=1.1, translation_x=0, translation_y=0)
    ours = matrix_2d(W, H, angle=4, zoom=1.1, translation_x=0, translation_y=0,
                     perspective_flip=flip)
    np.testing.assert_allclose(ours, reference_flip(*flip) @ rotate_zoom, rtol=1e-9, atol=1e-9)
    moved = matrix_2d(W, H, angle=4, zoom=1.1, translation_x=6, translation_y=-3,
                      perspective_flip=flip)
    shift = np.array([[1, 0, 6], [0, 1, -3], [0, 0, 1]])
    np.testing.assert_allclose(moved, ours @ shift, rtol=1e-9, atol=1e-9)


def test_flat_perspective_flip_is_the_plain_warp_translation_included():
    image = structured()
    plain = warp_2d(image, angle=0, zoom=1, translation_x=5, translation_y=3)
    flipped = warp_2d(image, angle=0, zoom=1, translation_x=5, translation_y=3,
                      perspective_flip=(0.0, 0.0, 0.0, 53.0))
    assert np.abs(flipped.astype(int) - plain).max() <= 1


# ------------------------------------------------------ 3D directions (Deforum)

def moved_centroid(start, **motion):
    image = blob(*start)
    kwargs = dict(translation=(0, 0, 0), rotation=(0, 0, 0), fov=40)
    kwargs.update(motion)
    return centroid(warp_3d(image, None, **kwargs)) - centroid(image)


@pytest.mark.parametrize("model", ["deforum", "pinhole"])
def test_3d_directions(model):
    centre = (W // 2, H // 2)
    assert moved_centroid(centre, translation=(10, 0, 0), warp_model=model)[0] < -2  # left
    assert moved_centroid(centre, translation=(0, 10, 0), warp_model=model)[1] > 2  # down
    assert moved_centroid(centre, rotation=(3, 0, 0), warp_model=model)[1] > 2  # down
    assert moved_centroid(centre, rotation=(0, 3, 0), warp_model=model)[0] < -2  # left
    right = (W // 2 + 20, H // 2)
    ccw = moved_centroid(right, rotation=(0, 0, 10), warp_model=model)
    assert ccw[1] < -2 and abs(ccw[0]) < abs(ccw[1])  # right of centre → up
    outward = moved_centroid(right, translation=(0, 0, 20), warp_model=model)
    assert outward[0] > 2 and abs(outward[1]) < 0.5  # zoom in


def test_deforum_translation_x_shift_in_pixels():
    k00, _ = focal(40)
    pixels = 6  # Δndc = K00·tx/200 and pixels = Δndc·W/2
    tx = 200 * (2 * pixels / W) / k00
    image = structured()
    out = warp_3d(image, None, translation=(tx, 0, 0), rotation=(0, 0, 0), fov=40,
                  sampling_mode="bilinear")
    assert np.abs(out[:, :-pixels].astype(int) - image[:, pixels:]).max() <= 1


def test_deforum_translation_y_shift_in_pixels():
    _, k11 = focal(40)
    pixels = 4
    ty = 200 * (2 * pixels / H) / k11
    image = structured()
    out = warp_3d(image, None, translation=(0, ty, 0), rotation=(0, 0, 0), fov=40,
                  sampling_mode="bilinear")
    assert np.abs(out[pixels:].astype(int) - image[:-pixels]).max() <= 1


def test_depth_parallax_near_moves_more_than_far():
    k00, _ = focal(40)
    tx = 200 * (2 * 4 / W) / k00  # 4 pixels at z = 1
    depth = np.ones((H, W), np.float32)
    depth[H // 2:] = 2.0
    image = gradient_x()
    out = warp_3d(image, depth, translation=(tx, 0, 0), rotation=(0, 0, 0), fov=40,
                  sampling_mode="bilinear")
    shift = (out[:, 4:W - 8, 0].astype(float) - image[:, 4:W - 8, 0]) / 2.0
    assert shift[: H // 2] == pytest.approx(4.0, abs=0.5)
    assert shift[H // 2:] == pytest.approx(2.0, abs=0.5)


# ------------------------------------------------------------- 3D pinhole

def test_pinhole_translation_on_a_plane_shifts_by_focal_over_depth():
    k00, _ = focal(40)
    plane = 2.0
    tx = 40.0
    pixels = k00 * (tx / 200) / plane * W / 2
    out = warp_3d(gradient_x(), np.full((H, W), plane, np.float32), translation=(tx, 0, 0),
                  rotation=(0, 0, 0), fov=40, sampling_mode="bilinear", warp_model="pinhole")
    shift = (out[:, 4:W - 12, 0].astype(float) - gradient_x()[:, 4:W - 12, 0]) / 2.0
    assert shift == pytest.approx(pixels, abs=0.5)


def test_pinhole_translation_y_on_a_plane_moves_down():
    _, k11 = focal(40)
    plane, ty = 1.5, 20.0
    pixels = k11 * (ty / 200) / plane * H / 2
    image = gradient_y()
    out = warp_3d(image, np.full((H, W), plane, np.float32), translation=(0, ty, 0),
                  rotation=(0, 0, 0), fov=40, sampling_mode="bilinear", warp_model="pinhole")
    shift = (image[12:H - 4, :, 0].astype(float) - out[12:H - 4, :, 0]) / 3.0
    assert shift == pytest.approx(pixels, abs=0.5)


def test_pinhole_dolly_towards_a_plane_scales_by_distance_ratio():
    plane, step = 2.0, 0.5  # old distance Z, camera moves d forward
    scale = plane / (plane - step)
    image = gradient_x()
    out = warp_3d(image, np.full((H, W), plane - step, np.float32),
                  translation=(0, 0, 200 * step), rotation=(0, 0, 0), fov=40,
                  sampling_mode="bilinear", warp_model="pinhole")
    x_ndc = (2 * np.arange(W) + 1) / W - 1
    source_px = ((x_ndc / scale + 1) * W - 1) / 2
    np.testing.assert_allclose(out[H // 2, :, 0], 2.0 * source_px, atol=1.0)


def test_pinhole_rotation_does_not_depend_on_depth():
    image = structured()
    motion = dict(translation=(0, 0, 0), rotation=(3, -4, 5), fov=50, warp_model="pinhole")
    flat = warp_3d(image, None, **motion)
    deep = warp_3d(image, smooth_depth() * 7.0, **motion)
    assert np.abs(flat.astype(int) - deep).max() <= 1


def test_pinhole_points_behind_the_old_camera_take_the_padding():
    out = warp_3d(structured(), None, translation=(0, 0, 0), rotation=(0, 150, 0), fov=40,
                  padding_mode="zeros", warp_model="pinhole")
    assert not out.any()


# ------------------------------------------------------------------- common

@pytest.mark.parametrize("model", ["deforum", "pinhole"])
@pytest.mark.parametrize("sampling", ["bicubic", "bilinear", "nearest"])
def test_identity_motion_returns_the_image(model, sampling):
    image = structured()
    for depth in (None, smooth_depth()):
        out = warp_3d(image, depth, translation=(0, 0, 0), rotation=(0, 0, 0), fov=40,
                      sampling_mode=sampling, warp_model=model)
        assert np.array_equal(out, image)
    assert np.array_equal(warp_2d(image, angle=0, zoom=1, translation_x=0, translation_y=0),
                          image)


def test_single_channel_masks_warp_like_images():
    image = structured()
    depth = smooth_depth()
    rgb = warp_3d(image, depth, fov=40, **MOTION)
    grey = warp_3d(np.ascontiguousarray(image[..., 1]), depth, fov=40, **MOTION)
    assert np.array_equal(grey, rgb[..., 1])


@pytest.mark.parametrize("sampling", ["bicubic", "bilinear"])
@pytest.mark.parametrize("height", [H, H - 1])  # H - 1 (odd): fewer bands than threads
def test_pixels_do_not_depend_on_the_thread_count(sampling, height):
    """The picture is sampled in bands, one per thread: every thread count gives the
    pixels of one whole-picture ``grid_sample``."""
    image = np.ascontiguousarray(structured()[:height])
    grid = grid_3d(height, W, smooth_depth()[:height], fov=40, **MOTION)
    whole = F.grid_sample(torch.from_numpy(image).permute(2, 0, 1)[None].float(),
                          torch.from_numpy(grid)[None], mode=sampling, padding_mode="border",
                          align_corners=False)[0].clamp(0, 255).round().permute(1, 2, 0)
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3, 4):
            torch.set_num_threads(count)
            out = sample_grid(image, grid, sampling_mode=sampling)
            assert np.array_equal(out, whole.to(torch.uint8).numpy()), count
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name, value", [("sampling_mode", "cubic"),
                                         ("padding_mode", "wrap"),
                                         ("warp_model", "physical")])
def test_invalid_modes_are_rejected_by_name(name, value):
    with pytest.raises(ValueError, match=f"{name}.*'{value}'"):
        warp_3d(structured(), None, translation=(0, 0, 0), rotation=(0, 0, 0), fov=40,
                **{name: value})


# ------------------------------------------------------------- disocclusion

def test_disocclusion_marks_what_a_truck_reveals_behind_a_box_and_the_new_edge():
    from engine.warp import disocclusion_mask

    h, w = 48, 64
    wall = np.full((h, w), 10.0, np.float32)
    prev = wall.copy()
    prev[16:32, 24:40] = 2.0              # a box 2 m away in front of a wall 10 m away
    # The camera trucks right by 0.1 m (20 schedule units): the box shifts left more
    # than the wall, uncovering the wall just right of it.
    f = (h / 2) / np.tan(np.radians(40) / 2)
    box_shift = int(round(f * 0.1 / 2.0))
    wall_shift = f * 0.1 / 10.0
    new = wall.copy()
    new[16:32, 24 - box_shift:40 - box_shift] = 2.0
    mask = disocclusion_mask(prev, new, translation=(20, 0, 0), rotation=(0, 0, 0), fov=40)
    assert mask.shape == (h, w) and mask.dtype == bool
    revealed = mask[18:30, 40 - box_shift:40]
    assert revealed[:, 1:-1].all()        # the strip of wall the box hid
    assert not mask[18:30, 26 - box_shift:38 - box_shift].any()  # the box itself
    assert not mask[2:14, 4:w - 8].any()  # the wall above the box
    assert mask[:, w - int(np.ceil(wall_shift)):].all()  # entered at the right edge
    assert mask.mean() < 0.15


def test_disocclusion_is_empty_for_a_pure_rotation_inside_the_frame_and_flags_behind():
    from engine.warp import disocclusion_mask

    depth = np.full((32, 32), 5.0, np.float32)
    still = disocclusion_mask(depth, depth, translation=(0, 0, 0), rotation=(0, 0, 0), fov=50)
    assert not still.any()
    back = disocclusion_mask(depth, depth, translation=(0, 0, -2000), rotation=(0, 0, 0),
                             fov=50)               # 10 m back: everything new was behind
    assert back.all()


def test_pinhole_lens_shift_moves_the_view_like_blenders_shift():
    """Shift X +0.1 (of the width) moves the view right: content 6.4 px left at 64 wide;
    Shift Y +0.25 (of the height) moves it up: content 12 px down at 48 high."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = np.full((48, 64), 3.0, np.float32)
    common = dict(translation=(0, 0, 0), rotation=(0, 0, 0), fov=40, warp_model="pinhole",
                  sampling_mode="nearest")
    right = warp_3d(image, depth, shift=(0.125, 0.0), prev_shift=(0.0, 0.0), **common)
    assert np.array_equal(right[:, :-8], image[:, 8:])
    up = warp_3d(image, depth, shift=(0.0, 0.25), prev_shift=(0.0, 0.0), **common)
    assert np.array_equal(up[12:], image[:-12])
    # The same shift in both frames changes nothing.
    same = warp_3d(image, depth, shift=(0.2, -0.1), prev_shift=(0.2, -0.1), **common)
    assert np.array_equal(same, image)
