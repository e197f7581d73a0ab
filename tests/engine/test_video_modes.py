"""Video Input, Interpolation and movie output (issue: Video Input and Interpolation)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InputError, SettingsError
from engine.modes.interpolation import interpolation_plan
from engine.modes.video_input import video_input_generate
from engine.settings import parse_settings
from engine.video import extract_video, ffmpeg_executable

ROOT = Path(__file__).resolve().parents[2]


def make_clip(path, frames=10, size=64, fps=5):
    """A clip whose frame k is grey level 20·k with a white square at x = 4k."""
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for k in range(frames):
        image = np.full((size, size, 3), 20 * k, np.uint8)
        image[20:36, 4 * k:4 * k + 16] = 255
        writer.write(image)
    writer.release()
    return path


def grey_level(path):
    import cv2
    return float(np.median(cv2.imread(str(path))[40:, :, 0]))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.mark.parametrize("method", ["opencv", "ffmpeg"])
@pytest.mark.parametrize("nth, count", [(1, 10), (2, 5), (3, 4)])
def test_every_nth_frame_is_extracted(tmp_path, clip, method, nth, count):
    folder, frames, _ = extract_video(str(clip), tmp_path / "inputframes", nth, overwrite=True,
                                      key="video_init_path", method=method)
    assert [p.name for p in frames] == [f"{i:05d}.jpg" for i in range(1, count + 1)]
    # frame i of the output is video frame nth·i (grey level 20·nth·i)
    assert [round(grey_level(p) / 20) for p in frames] == [nth * i for i in range(count)]


def test_reuse_overwrite_and_stale_folders(tmp_path, clip):
    target = tmp_path / "inputframes"
    _, frames, _ = extract_video(str(clip), target, 3, overwrite=True, key="v")
    stamp = frames[0].stat().st_mtime_ns
    os.utime(frames[0], ns=(stamp - 10**9, stamp - 10**9))
    _, again, note = extract_video(str(clip), target, 3, overwrite=False, key="v")
    assert again == frames and "reusing 4 frames" in note
    assert frames[0].stat().st_mtime_ns == stamp - 10**9           # reused, untouched
    _, redone, _ = extract_video(str(clip), target, 3, overwrite=True, key="v")
    assert redone == frames and frames[0].stat().st_mtime_ns != stamp - 10**9
    # Different n without overwrite: the old frames stay, new ones go next to them.
    folder, other, note = extract_video(str(clip), target, 2, overwrite=False, key="v")
    assert folder == tmp_path / "inputframes_2" and len(other) == 5
    assert len(list(target.glob("*.jpg"))) == 4 and "another video" in note


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.mp4", None, "video not found"),
    ("notes.txt", b"hello", "is not a video file"),
    ("broken.mp4", b"\x00garbage" * 50, "could not be decoded"),
])
def test_bad_videos_name_the_setting(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        extract_video(str(path), tmp_path / "f", 1, overwrite=True, key="video_init_path")
    assert info.value.key == "video_init_path" and fragment in str(info.value)


def test_nth_frame_beyond_the_clip(tmp_path, clip):
    with pytest.raises(InputError, match="extract_nth_frame: 12 is more than the 10 frames"):
        extract_video(str(clip), tmp_path / "f", 12, overwrite=True, key="video_init_path")


def test_each_frame_is_img2img_of_its_source_with_its_strength(tmp_path, clip):
    _, frames, _ = extract_video(str(clip), tmp_path / "in", 3, overwrite=True, key="v")
    settings = parse_settings({"animation_mode": "Video Input", "W": 64, "H": 64,
                               "max_frames": 4, "seed": 9, "seed_behavior": "iter",
                               "strength_schedule": "0:(0.2), 3:(0.8)",
                               "animation_prompts": {"0": "oil", "2": "ink"}})
    calls = []

    def fake(init, **kw):
        calls.append((init, kw))
        return init

    make = video_input_generate(settings, frames, None, fake)
    for i in range(4):
        make(i)
    assert [round(float(np.median(init[40:, :, 0])) / 20) for init, _ in calls] == [0, 3, 6, 9]
    assert [kw["strength"] for _, kw in calls] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [kw["seed"] for _, kw in calls] == [9, 10, 11, 12]
    assert [kw["prompt"] for _, kw in calls] == ["oil", "oil", "ink", "ink"]


@pytest.mark.parametrize("key_frames, x, expected", [
    (False, 4, 11), (True, 4, 8)])
def test_interpolation_frame_counts_and_weights(key_frames, x, expected):
    settings = parse_settings({"animation_mode": "Interpolation",
                               "interpolate_key_frames": key_frames, "interpolate_x_frames": x,
                               "animation_prompts": {"0": "a", "3": "b", "7": "c"}})
    keys, plan = interpolation_plan(settings)
    assert keys == [0, 3, 7] and len(plan) == expected
    if key_frames:
        assert plan[:4] == [(0, 1, 0), (0, 1, 1 / 3), (0, 1, 2 / 3), (1, 2, 0)]
    else:
        assert plan[:6] == [(0, 1, j / 5) for j in range(5)] + [(1, 2, 0)]
    assert plan[-1] == (2, 2, 0)
    with pytest.raises(SettingsError, match="at least two prompts"):
        interpolation_plan(parse_settings({"animation_prompts": {"0": "one"}}))


def test_slerp_is_spherical_per_token():
    import torch
    from engine.diffusion import slerp
    a = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    b = torch.tensor([[[0.0, 1.0], [2.0, 0.0]]])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid[0, 0], torch.tensor([0.5 ** 0.5, 0.5 ** 0.5]), atol=1e-6)
    assert torch.allclose(mid[0, 1], torch.tensor([2.0, 0.0]))   # parallel → unchanged
    assert torch.equal(slerp(a, b, 0.0), a)


# ------------------------------------------------------------------ end to end

def run_engine(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def events(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def start_of(result):
    return next(e for e in events(result) if e["event"] == "start")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from engine.tiny_model import write_tiny_model
    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


def settings_file(path, **values):
    base = dict(W=64, H=64, steps=6, seed=5, sampler="euler", batch_name="vid")
    path.write_text(json.dumps({**base, **values}))
    return path


def read(path):
    import cv2
    return cv2.imread(str(path))[..., ::-1]


def test_video_input_end_to_end_with_mask_video_and_movie(tmp_path, clip, tiny_model):
    import cv2
    mask_clip = tmp_path / "mask.mp4"
    writer = cv2.VideoWriter(str(mask_clip), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 64))
    for _ in range(7):  # shorter than the video: masks apply to the overlap
        frame = np.zeros((64, 64, 3), np.uint8)
        frame[:, 32:] = 255
        writer.write(frame)
    writer.release()
    path = settings_file(tmp_path / "s.txt", animation_mode="Video Input", max_frames=99,
                         video_init_path=str(clip), extract_nth_frame=3,
                         overwrite_extracted_frames=False, use_mask_video=True,
                         video_mask_path=str(mask_clip), mask_overlay_blur=1,
                         strength_schedule="0:(0.3)", diffusion_cadence=2, fps=5)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", tiny_model, "--progress", "jsonl", "--video")
    assert result.returncode == 0, result.stderr
    assert "masks apply to the first 3 frames" in result.stderr
    assert "Video Input diffuses every frame" in result.stderr
    ts = start_of(result)["timestring"]
    folder = tmp_path / "out" / "vid"
    outputs = sorted(folder.glob(f"{ts}_0*.png"))
    assert len(outputs) == 4
    sources = sorted((folder / "inputframes").glob("*.jpg"))
    for out, src in zip(outputs[:3], sources[:3]):
        out, src = read(out).astype(int), read(src).astype(int)
        assert np.array_equal(out[:, :32], src[:, :32])            # black mask: kept
        assert np.abs(out[:, 40:] - src[:, 40:]).mean() > 3        # white mask: diffused
    assert json.loads((folder / f"{ts}_settings.txt").read_text())["max_frames"] == 4
    capture = cv2.VideoCapture(str(folder / f"{ts}.mp4"))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 4
    # A second run reuses the extracted frames.
    again = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                       tmp_path / "out", "--model", tiny_model)
    assert again.returncode == 0 and "reusing 4 frames" in again.stderr


def test_video_input_preview_and_bad_video_exit_2(tmp_path, clip):
    path = settings_file(tmp_path / "s.txt", animation_mode="Video Input",
                         video_init_path=str(clip), extract_nth_frame=2)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert len([e for e in events(result) if e["event"] == "frame"]) == 5
    missing = settings_file(tmp_path / "m.txt", animation_mode="Video Input",
                            video_init_path=str(tmp_path / "nope.mp4"))
    result = run_engine("--settings", missing, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--progress", "jsonl")
    assert result.returncode == 2 and "video_init_path: video not found" in result.stderr
    assert events(result)[-1]["key"] == "video_init_path"


def test_a_frame_range_counts_its_frames_and_one_past_the_end_is_refused(tmp_path, clip):
    path = settings_file(tmp_path / "s.txt", animation_mode="Video Input",
                         video_init_path=str(clip))
    runs = [run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                       tmp_path / "out", "--progress", "jsonl", "--timestring", "TS",
                       "--frames", frames) for frames in ("2-4", "50-60")]
    assert runs[0].returncode == 0, runs[0].stderr
    start, *frames, done = [e for e in events(runs[0]) if e["event"] in ("start", "frame", "done")]
    assert start["total"] == 3 and frames[-1]["done"] == 3 and frames[-1]["eta"] == 0
    assert runs[1].returncode == 2 and "Traceback" not in runs[1].stderr
    assert "frames: 50-60 starts after the last frame of this 10-frame shot (frame 9)" in \
        runs[1].stderr
    assert sorted(p.name for p in (tmp_path / "out" / "vid").glob("TS_*")) == [
        "TS_00002.png", "TS_00003.png", "TS_00004.png", "TS_settings.txt"]


def test_interpolation_renders_every_pair_with_one_seed(tmp_path, tiny_model):
    path = settings_file(tmp_path / "s.txt", animation_mode="Interpolation",
                         interpolate_x_frames=4, seed_behavior="iter", steps=4,
                         animation_prompts={"0": "a red apple on a table",
                                            "10": "a snowy mountain at night",
                                            "20": "a crowded city street"})
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "seed_behavior 'iter' is ignored" in result.stderr
    ts = start_of(result)["timestring"]
    frames = [read(p).astype(float) for p in sorted((tmp_path / "out" / "vid").glob(
        f"{ts}_0*.png"))]
    assert len(frames) == 2 * (4 + 1) + 1
    assert json.loads((tmp_path / "out" / "vid" / f"{ts}_settings.txt").read_text())[
        "max_frames"] == 11
    for start in (0, 5):  # pair A→B occupies frames start … start+5 (B's own frame)
        a, mid, b = frames[start], frames[start + 2], frames[start + 5]
        span = np.abs(a - b).mean()
        assert span > 0.5
        assert np.abs(mid - a).mean() < span and np.abs(mid - b).mean() < span


@pytest.mark.skipif(ffmpeg_executable() is None, reason="needs imageio-ffmpeg")
def test_soundtrack_from_the_init_video(tmp_path):
    ffmpeg = ffmpeg_executable()
    source = tmp_path / "with_audio.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x64:rate=5:duration=2", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-shortest", "-pix_fmt", "yuv420p",
                    str(source)], check=True)
    path = settings_file(tmp_path / "s.txt", animation_mode="Video Input",
                         video_init_path=str(source), extract_nth_frame=2,
                         add_soundtrack="Init Video", fps=2.5)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--progress", "jsonl", "--video")
    assert result.returncode == 0, result.stderr
    movie = events(result)[-1]["video"]
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", movie], capture_output=True, text=True)
    assert "Audio:" in probe.stderr and "Video: h264" in probe.stderr


def test_a_folder_of_images_is_video_input_used_in_place(tmp_path):
    """Blender's rendered scene frames (an image sequence) drive Video Input losslessly."""
    import cv2

    source = tmp_path / "scene_frames"
    source.mkdir()
    rng = np.random.default_rng(3)
    pictures = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    for k, picture in enumerate(pictures):  # frame2 before frame10: natural order
        cv2.imwrite(str(source / f"frame{k * 4}.png"), picture[..., ::-1])
    before = sorted(p.name for p in source.iterdir())
    masks = tmp_path / "scene_masks"
    masks.mkdir()
    for k in range(6):
        cv2.imwrite(str(masks / f"{k:05d}.png"), np.full((64, 64), 255 * (k % 2), np.uint8))
    path = settings_file(tmp_path / "s.txt", animation_mode="Video Input",
                         video_init_path=str(source), extract_nth_frame=2,
                         use_mask_video=True, video_mask_path=str(masks))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_of(result)["timestring"]
    frames = sorted((tmp_path / "out" / "vid").glob(f"{ts}_0*.png"))
    assert len(frames) == 3
    for frame, picture in zip(frames, pictures[::2]):
        assert np.array_equal(read(frame), picture)
    assert sorted(p.name for p in source.iterdir()) == before
    assert not (tmp_path / "out" / "vid" / "inputframes").exists()
    assert not (tmp_path / "out" / "vid" / "maskframes").exists()
    assert "mask video gives" not in result.stdout  # 3 masks for 3 frames

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no images"):
        extract_video(str(empty), tmp_path / "x", 1, overwrite=False, key="video_init_path")
