"""Scene flow (flow_source = scene): the engine follows supplied flow files instead of
estimating, refuses bad ones naming scene_flow_path, and its cadence tweens beat blending."""

import math

import numpy as np
import pytest

from engine.camera_flow import step_back_flow, step_flow
from engine.flow import flow_tween
from engine.scene_flow import SceneFlow, chain, meet, write_flow_depth, write_scene_flow
from engine.warp import grid_3d

from tests.engine.test_cli import events, run_engine, write_settings
from tests.engine.test_hybrid import STILL, render, texture

SIZE, FRAMES = 96, 4
STEP = (2.0, 1.0)  # the synthetic scene moves this far (x, y) per frame


def write_flows(folder, count, step=STEP, size=(SIZE, SIZE)):
    flow = np.zeros((size[1], size[0], 2), np.float32)
    flow[...] = step
    for k in range(count):
        write_scene_flow(folder, k, flow)
    return folder


def still_clip(folder):
    """A clip of FRAMES pictures, each ``texture(SIZE)``: any motion in the frames comes
    from elsewhere."""
    import cv2
    folder.mkdir()
    still = texture(SIZE)
    for k in range(FRAMES):
        cv2.imwrite(str(folder / f"{k:03d}.png"), still[..., ::-1])
    return folder


def psnr(a, b):
    mse = np.mean((a[16:-16, 16:-16].astype(np.float64) - b[16:-16, 16:-16]) ** 2)
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-6))


def moved(image, shift):
    """``image`` moved by ``shift`` pixels (x, y), edges replicated."""
    import cv2
    matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
    return cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)


def test_hybrid_motion_follows_the_flow_files_not_the_video(tmp_path):
    """The clip stands still; the flow files say it moves: the frames move as the files say."""
    clip, still = still_clip(tmp_path / "clip"), texture(SIZE)
    flows = write_flows(tmp_path / "flow", FRAMES - 1)
    frames, _ = render(tmp_path, "scene", video_init_path=str(clip), use_init=True,
                       init_image=str(clip / "000.png"), strength=0.0,
                       hybrid_motion="Optical Flow", hybrid_flow_method="DIS Medium",
                       flow_source="scene", scene_flow_path=str(flows))
    for k in (1, 3):
        expected = moved(still, (STEP[0] * k, STEP[1] * k))
        assert psnr(frames[k], expected) > 30.0, k
    assert psnr(frames[3], still) < 25.0  # an estimate of the still clip would not move it


@pytest.mark.parametrize("damage", ["missing", "shape", "pickle"])
def test_bad_flow_files_are_refused_naming_the_key(tmp_path, damage):
    flows = write_flows(tmp_path / "flow", 2)
    bad = flows / "00001.npy"
    if damage == "missing":
        bad.unlink()
    elif damage == "shape":
        np.save(bad, np.zeros((SIZE, SIZE, 3), np.float32))
    else:
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path = write_settings(tmp_path, W=SIZE, H=SIZE, max_frames=3, **STILL,
                          flow_source="scene",
                          scene_flow_path=str(flows), optical_flow_cadence="DIS Medium",
                          diffusion_cadence=2)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2, result.stderr
    errors = [e for e in events(result) if e["event"] == "error"]
    assert errors and errors[0]["key"] == "scene_flow_path", result.stdout
    assert "00001.npy" in errors[0]["message"]
    assert "Traceback" not in result.stderr


def test_cadence_with_scene_flow_beats_plain_blending(tmp_path):
    """Keyframes 0 and 4 of a translating clip; every in-between from the two keyframes
    moved along the chained scene flow is closer to the true frame than their blend."""
    cadence = 4
    base = texture(2 * SIZE)[SIZE // 2:SIZE // 2 + SIZE, SIZE // 2:SIZE // 2 + SIZE]
    truth = [moved(base, (STEP[0] * k, STEP[1] * k)) for k in range(cadence + 1)]
    flows = SceneFlow(str(write_flows(tmp_path, cadence)), (SIZE, SIZE))
    for k in range(1, cadence):
        weight = k / cadence
        older, newer = flows.tween(truth[0], truth[cadence], weight, (0, cadence), 1.0)
        tween = np.rint(older * (1 - weight) + newer * weight).astype(np.uint8)
        blend = np.rint(truth[0] * (1 - weight) + truth[cadence] * weight).astype(np.uint8)
        assert psnr(tween, truth[k]) > psnr(blend, truth[k]) + 8.0, k


# --- occlusion: a near square slides over a far textured wall --------------------------

SQUARE, SPEED, NEAR, FAR = 28, 4, 2.0, 10.0  # side px, px per frame, depths


def square_scene(frames):
    """Frames 0…frames−1 of a textured square sliding right over a still textured wall,
    each rendered exactly (integer shifts), with the add-on's files: the flows of each
    step both ways and each frame's depth."""
    wall = texture(SIZE, seed=1)
    face = texture(SQUARE, seed=2)
    top = (SIZE - SQUARE) // 2
    pictures, depths, ahead, back = [], [], [], []
    for k in range(frames):
        left = 16 + SPEED * k
        picture, depth = wall.copy(), np.full((SIZE, SIZE), FAR, np.float32)
        picture[top:top + SQUARE, left:left + SQUARE] = face
        depth[top:top + SQUARE, left:left + SQUARE] = NEAR
        pictures.append(picture)
        depths.append(depth)
        on_square = (depth == NEAR)[..., None]
        ahead.append(np.where(on_square, np.float32([SPEED, 0]), np.float32(0)))
        back.append(np.where(on_square, np.float32([-SPEED, 0]), np.float32(0)))
    return pictures, depths, ahead, back


def write_square_scene(folder, frames):
    pictures, depths, ahead, back = square_scene(frames)
    for k in range(frames):
        write_flow_depth(folder, k, depths[k])
        if k + 1 < frames:
            write_scene_flow(folder, k, ahead[k])
            write_scene_flow(folder, k, back[k + 1], back=True)
    return pictures


def blend(pair, weight):
    return np.rint(pair[0] * (1.0 - weight) + pair[1] * weight).astype(np.uint8)


def whole_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-6))


def test_occlusion_aware_tweens_show_the_square_over_the_wall(tmp_path):
    """Keyframes 0 and 4: the square covers wall on one side and uncovers it on the other.
    Tweens that know what is in front (backward flows and depth) are closer to the true
    frames than the forward flow alone and than DIS's estimate, and keep the wall the
    square uncovers clean."""
    cadence = 4
    truth = write_square_scene(tmp_path, cadence + 1)
    aware = SceneFlow(str(tmp_path), (SIZE, SIZE), both=True)
    forward_only = SceneFlow(str(tmp_path), (SIZE, SIZE))
    for k in range(1, cadence):
        weight = k / cadence
        ours = blend(aware.tween(truth[0], truth[cadence], weight, (0, cadence), 1.0), weight)
        single = blend(forward_only.tween(truth[0], truth[cadence], weight, (0, cadence), 1.0),
                       weight)
        dis = blend(flow_tween(truth[0], truth[cadence], weight, "DIS Medium", 1.0), weight)
        assert whole_psnr(ours, truth[k]) > whole_psnr(single, truth[k]) + 3.0, k
        assert whole_psnr(ours, truth[k]) > whole_psnr(dis, truth[k]) + 3.0, k
        assert whole_psnr(ours, truth[k]) > 40.0, k
        uncovered = slice(16, 16 + SPEED * k)  # wall behind where the square was at 0
        rows = slice((SIZE - SQUARE) // 2, (SIZE + SQUARE) // 2)
        error = np.abs(ours[rows, uncovered].astype(int) - truth[k][rows, uncovered])
        assert error.mean() < 2.0, (k, error.mean())


def test_occlusion_aware_tween_falls_back_where_neither_keyframe_sees(tmp_path):
    """Where both pictures say nothing arrives (flows that push everything off the picture),
    the forward-flow tween is kept rather than a black hole."""
    from engine.scene_tween import occlusion_tween
    picture = texture(SIZE)
    away = np.full((SIZE, SIZE, 2), 3.0 * SIZE, np.float32)
    fallback = meet(picture, picture, away, 0.5, 1.0)
    depth = np.full((SIZE, SIZE), FAR, np.float32)
    pair = occlusion_tween(picture, picture, away, away, (depth, depth), 0.5, 1.0, fallback)
    assert np.array_equal(pair[0], fallback[0]) and np.array_equal(pair[1], fallback[1])


@pytest.mark.parametrize("missing", [None, "00002_depth.npy", "00001_back.npy"])
def test_a_folder_with_backward_flows_needs_every_file(tmp_path, missing):
    """The add-on's whole folder runs a cadence; one file short, the error names it."""
    write_square_scene(tmp_path / "flow", 3)
    if missing:
        (tmp_path / "flow" / missing).unlink()
    path = write_settings(tmp_path, W=SIZE, H=SIZE, max_frames=3, **STILL,
                          flow_source="scene", scene_flow_path=str(tmp_path / "flow"),
                          optical_flow_cadence="DIS Medium", diffusion_cadence=2)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    if missing is None:
        assert result.returncode == 0, result.stderr
        assert [e["index"] for e in events(result) if e["event"] == "frame"] == [0, 1, 2]
        return
    assert result.returncode == 2, result.stderr
    errors = [e for e in events(result) if e["event"] == "error"]
    assert errors and errors[0]["key"] == "scene_flow_path", result.stdout
    assert missing in errors[0]["message"]
    assert "Traceback" not in result.stderr


def test_flow_depth_reads_sky_as_far_and_refuses_negative_depth(tmp_path):
    from engine.depth import FAR_AWAY
    from engine.errors import InputError
    from engine.scene_flow import read_flow_depth
    depth = np.full((SIZE, SIZE), 3.0, np.float32)
    depth[:10] = np.inf  # sky
    write_flow_depth(tmp_path, 0, depth)
    read = read_flow_depth(tmp_path, 0, (SIZE, SIZE))
    assert read[0, 0] == FAR_AWAY and read[50, 50] == pytest.approx(3.0)
    write_flow_depth(tmp_path, 1, -depth)
    with pytest.raises(InputError) as error:
        read_flow_depth(tmp_path, 1, (SIZE, SIZE))
    assert error.value.key == "scene_flow_path" and "00001_depth.npy" in str(error.value)


def test_camera_step_back_undoes_the_step():
    """A wall's pixel carried by a step's flow and then by the way back lands home."""
    height, width = 48, 64
    step = {"fov": 40.0, "prev_fov": 38.0, "translation": (10.0, 5.0, -20.0),
            "rotation": (0.5, 1.0, -1.0), "shift": (0.05, 0.1), "prev_shift": (0.0, 0.0)}
    ahead = step_flow(np.full((height, width), 5.0, np.float32), step)
    y, x = 20, 30
    landed = np.array([x, y], np.float64) + ahead[y, x]
    # the wall's depth at the landing point in the new camera, by the same ray-plane maths
    back = step_back_flow(_new_depth(step, height, width, 5.0), step)
    home = landed + np.array(_bilinear(back, landed))
    assert home == pytest.approx((x, y), abs=0.02)


def test_chained_flow_follows_each_pixel_from_step_to_step():
    height, width = 40, 60
    first = np.zeros((height, width, 2), np.float32)
    first[..., 0] = np.arange(width, dtype=np.float32)[None, :] * 0.1  # stretch in x
    second = np.zeros((height, width, 2), np.float32)
    second[:, 30:, 1] = 3.0  # the right half then moves down
    total = chain([first, second])
    x = 20  # lands at 22 after the stretch: left half, no second motion
    assert total[10, x].tolist() == pytest.approx([2.0, 0.0], abs=1e-4)
    x = 40  # lands at 44: right half, moves down 3
    assert total[10, x].tolist() == pytest.approx([4.0, 3.0], abs=1e-4)


@pytest.mark.parametrize("step", [
    dict(translation=(20.0, -10.0, 30.0), rotation=(0.0, 0.0, 0.0)),
    dict(translation=(0.0, 0.0, 0.0), rotation=(1.0, -2.0, 3.0)),
    dict(translation=(10.0, 5.0, -20.0), rotation=(0.5, 1.0, -1.0), shift=(0.05, 0.1),
         prev_shift=(0.0, 0.0)),
])
def test_camera_flow_inverts_the_pinhole_warp(step):
    """Pixels of a wall carried by the camera flow land where the pinhole warp of the new
    frame samples them from."""
    height, width, z = 48, 64, 5.0
    step = {"fov": 40.0, "prev_fov": 38.0, **step}
    flow = step_flow(np.full((height, width), z, np.float32), step)
    # the wall's depth in the new camera: the plane z = 5 of the old camera, seen anew
    y, x = 20, 30
    target = np.array([x, y]) + flow[y, x]
    grid = grid_3d(height, width, _new_depth(step, height, width, z), warp_model="pinhole",
                   **{k: v for k, v in step.items()})
    gx, gy = _bilinear(grid, target)
    source = ((gx + 1) * width - 1) / 2, ((gy + 1) * height - 1) / 2
    assert source == pytest.approx((x, y), abs=0.02)


def _new_depth(step, height, width, z):
    """Depth in the new camera of the old camera's plane at z, per new pixel (ray-plane)."""
    from engine.camera_flow import _intrinsics, _rotation_xyz
    fx, fy, cx, cy = _intrinsics((step["fov"], step.get("shift", (0, 0))), width, height)
    u = (2.0 * np.arange(width) + 1.0) / width - 1.0
    v = (2.0 * np.arange(height) + 1.0) / height - 1.0
    rays = np.stack(np.broadcast_arrays((u[None] - cx) / fx, (v[:, None] - cy) / fy,
                                        np.ones((height, 1))), axis=-1)
    q = _rotation_xyz(*step["rotation"])
    d = np.array([step["translation"][0], -step["translation"][1], step["translation"][2]]) / 200
    # old point = q·(t·ray + d); its z must be the plane's
    along = (z - q[2] @ d) / (rays @ q[2])
    return along.astype(np.float32)


def _bilinear(grid, point):
    x, y = point
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    value = (grid[y0, x0] * (1 - fx) * (1 - fy) + grid[y0, x0 + 1] * fx * (1 - fy)
             + grid[y0 + 1, x0] * (1 - fx) * fy + grid[y0 + 1, x0 + 1] * fx * fy)
    return float(value[0]), float(value[1])


def test_hybrid_motion_completes_the_camera_warp_to_the_scene_s_motion(tmp_path):
    """The 2D warp moves 2 px right a frame; the scene moves (2, 1): hybrid motion adds only
    the (0, 1) the warp left out, so the frames move as the scene does, not twice as far."""
    clip, still = still_clip(tmp_path / "clip"), texture(SIZE)
    flows = write_flows(tmp_path / "flow", FRAMES - 1)
    frames, _ = render(tmp_path, "scene", video_init_path=str(clip), use_init=True,
                       init_image=str(clip / "000.png"), strength=0.0, translation_x="0:(2)",
                       hybrid_motion="Optical Flow", hybrid_flow_method="DIS Medium",
                       flow_source="scene", scene_flow_path=str(flows))
    expected = moved(still, (STEP[0] * 3, STEP[1] * 3))
    assert psnr(frames[3], expected) > 30.0
