"""Hybrid motion: the motion preview follows a guide clip's translation and rotation."""

import hashlib

import cv2
import numpy as np
import pytest

from engine.hybrid import apply_matrix, transform_matrix

from tests.engine.test_cli import read_rgb, run_engine, write_settings

SIZE = 96
FRAMES = 4
STEP = (2.0, 1.0)      # the translated clip moves this far (x, y) per frame
ANGLE = 6.0            # the rotated clip turns this many degrees per frame
INTERIOR = (slice(20, -20), slice(20, -20))
STILL = {"animation_mode": "2D", "zoom": "0:(1)", "angle": "0:(0)", "translation_x": "0:(0)",
         "translation_y": "0:(0)", "translation_z": "0:(0)", "rotation_3d_x": "0:(0)",
         "rotation_3d_y": "0:(0)", "rotation_3d_z": "0:(0)", "color_coherence": "None"}


def texture(size, seed=0):
    """Smooth random colour blobs with corners everywhere for trackers to lock onto."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)).astype(np.float32),
                             (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def translation(k):
    return np.float32([[1, 0, STEP[0] * k], [0, 1, STEP[1] * k]])


def rotation(k):
    """The clip's frame k turned k·ANGLE degrees about the picture's centre (a 2×3 matrix)."""
    return cv2.getRotationMatrix2D((SIZE / 2 - 0.5, SIZE / 2 - 0.5), ANGLE * k, 1.0)


def clip_frame(k, motion):
    """Frame k: a bigger texture moved by motion(k), the middle SIZE×SIZE kept (no edges)."""
    big, pad = texture(2 * SIZE), SIZE // 2
    matrix = motion(k).astype(np.float64)
    # the motion is about the crop's own coordinates: move into the big picture and back
    shift = np.array([[1, 0, pad], [0, 1, pad], [0, 0, 1]], np.float64)
    full = shift @ np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(shift)
    moved = cv2.warpAffine(big, full[:2], (2 * SIZE, 2 * SIZE), flags=cv2.INTER_CUBIC)
    return moved[pad:pad + SIZE, pad:pad + SIZE]


def write_clip(folder, motion):
    folder.mkdir()
    for k in range(FRAMES):
        cv2.imwrite(str(folder / f"{k:03d}.png"), clip_frame(k, motion)[..., ::-1])
    return folder


def render(tmp_path, name, **values):
    """The motion preview's frames with ``values`` (a still camera)."""
    out = tmp_path / name
    out.mkdir()
    path = write_settings(out, W=SIZE, H=SIZE, max_frames=FRAMES, **{**STILL, **values})
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", out,
                        "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    files = sorted(out.rglob("*_0000[0-9].png"))
    assert len(files) == FRAMES
    return [read_rgb(f) for f in files], result


def followed(tmp_path, name, motion, **values):
    """Frames of a run whose first frame is the clip's, moved by the clip's hybrid motion."""
    clip = write_clip(tmp_path / f"{name}_clip", motion)
    frames, _ = render(tmp_path, name, video_init_path=str(clip), use_init=True,
                       init_image=str(clip / "000.png"), strength=0.0, **values)
    return frames


def endpoint_error(older, newer, expected):
    """Mean distance (pixels, interior) between the motion from older to newer measured
    with DIS Fine and ``expected`` (2×3 matrix of the true motion)."""
    from engine.flow import estimate
    flow = estimate(older, newer, "DIS Fine")
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    true_x = expected[0, 0] * xs + expected[0, 1] * ys + expected[0, 2] - xs
    true_y = expected[1, 0] * xs + expected[1, 1] * ys + expected[1, 2] - ys
    return float(np.hypot(flow[..., 0] - true_x, flow[..., 1] - true_y)[INTERIOR].mean())


def step_matrix(motion):
    """The clip's motion from one frame to the next."""
    one = np.vstack([motion(1), [0, 0, 1]])
    return one[:2]


@pytest.mark.parametrize("method", ["DIS Medium", "DIS Fine", "Farneback"])
@pytest.mark.parametrize("motion", [translation, rotation], ids=["translated", "rotated"])
def test_optical_flow_moves_the_animation_with_the_clip(tmp_path, method, motion):
    frames = followed(tmp_path, "flow", motion, hybrid_motion="Optical Flow",
                      hybrid_flow_method=method)
    errors = [endpoint_error(frames[k - 1], frames[k], step_matrix(motion))
              for k in range(1, FRAMES)]
    assert max(errors) < 1.0, f"{method}: mean end-point error per frame {errors}"


@pytest.mark.parametrize("kind", ["Perspective", "Affine"])
@pytest.mark.parametrize("motion", [translation, rotation], ids=["translated", "rotated"])
def test_transform_is_recovered_within_a_pixel(kind, motion):
    first, second = clip_frame(0, motion), clip_frame(1, motion)
    matrix = transform_matrix(first, second, kind)
    corners = np.float32([[20, 20], [75, 20], [20, 75], [75, 75]]).reshape(-1, 1, 2)
    found = (cv2.perspectiveTransform(corners, matrix) if kind == "Perspective"
             else cv2.transform(corners, matrix))
    true = cv2.transform(corners, step_matrix(motion))
    error = np.hypot(*(found - true).reshape(-1, 2).T)
    assert error.max() < 1.0, f"{kind}: corner errors {error}"
    moved = apply_matrix(first, matrix)
    assert np.abs(moved.astype(int) - second.astype(int))[INTERIOR].mean() < 6


@pytest.mark.parametrize("kind", ["Perspective", "Affine"])
@pytest.mark.parametrize("mode", ["2D", "3D"])
def test_transforms_move_the_animation_with_the_clip(tmp_path, kind, mode):
    frames = followed(tmp_path, kind, rotation, hybrid_motion=kind, animation_mode=mode)
    error = endpoint_error(frames[0], frames[1], step_matrix(rotation))
    assert error < 1.0, f"{kind} in {mode}: mean end-point error {error}"


def test_use_prev_img_pulls_the_animation_onto_the_clip(tmp_path):
    frames = followed(tmp_path, "prev", translation, hybrid_motion="Optical Flow",
                      hybrid_flow_method="DIS Fine", hybrid_motion_use_prev_img=True)
    last = clip_frame(FRAMES - 1, translation)
    difference = np.abs(frames[-1].astype(int) - last.astype(int))[INTERIOR].mean()
    assert difference < 6, f"mean difference from the clip's last frame {difference}"


def test_none_renders_the_same_frames_as_a_file_without_the_keys(tmp_path):
    clip = write_clip(tmp_path / "clip", translation)
    plain, _ = render(tmp_path, "plain")
    none, _ = render(tmp_path, "none", hybrid_motion="None", hybrid_flow_method="RAFT",
                     hybrid_motion_use_prev_img=True, hybrid_flow_factor_schedule="0:(2)",
                     video_init_path=str(clip))
    digest = [hashlib.sha256(f.tobytes()).hexdigest() for f in plain]
    assert digest == [hashlib.sha256(f.tobytes()).hexdigest() for f in none]


def test_raft_is_refused_naming_the_key(tmp_path):
    clip = write_clip(tmp_path / "clip", translation)
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=64, max_frames=3,
                          hybrid_motion="Optical Flow",
                          hybrid_flow_method="RAFT", video_init_path=str(clip))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2
    assert "hybrid_flow_method" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.rglob("*_00000.png"))


def test_a_missing_clip_is_refused_naming_video_init_path(tmp_path):
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=64, max_frames=3,
                          hybrid_motion="Affine",
                          video_init_path=str(tmp_path / "nowhere.mp4"))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2
    assert "video_init_path" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.rglob("*_00000.png"))


def test_in_between_frames_follow_the_clip_too(tmp_path):
    """With cadence both carried keyframes move with the clip, so every frame does."""
    frames = followed(tmp_path, "cadence", translation, hybrid_motion="Affine",
                      diffusion_cadence=2)
    errors = [endpoint_error(frames[k - 1], frames[k], step_matrix(translation))
              for k in range(1, FRAMES)]
    assert max(errors) < 1.0, f"mean end-point error per frame {errors}"


def test_a_video_file_guides_the_motion_like_an_image_folder(tmp_path):
    """The clip as a video file (extracted into the run's folder) moves the run the same way."""
    folder = write_clip(tmp_path / "clip", translation)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE, SIZE))
    for k in range(FRAMES):
        writer.write(cv2.imread(str(folder / f"{k:03d}.png")))
    writer.release()
    frames, _ = render(tmp_path, "video", video_init_path=str(video), use_init=True,
                       init_image=str(folder / "000.png"), strength=0.0,
                       hybrid_motion="Affine")
    errors = [endpoint_error(frames[k - 1], frames[k], step_matrix(translation))
              for k in range(1, FRAMES)]
    assert max(errors) < 1.0, f"mean end-point error per frame {errors}"
