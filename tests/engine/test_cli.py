"""The engine CLI end to end in motion-preview mode, as a user runs it."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.output import new_timestring
from engine.progress import Progress
from engine.modes.animation import render_animation
from engine.modes.common import CancelToken
from engine.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data"


def engine_env():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    return env


def run_engine(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=cwd or ROOT,
                          env=engine_env(), capture_output=True, text=True, timeout=300)


def events(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def start_event(result):
    return next(e for e in events(result) if e["event"] == "start")


def read_rgb(path):
    import cv2
    return cv2.imread(str(path))[..., ::-1]


def write_settings(tmp_path, **values):
    path = tmp_path / "settings.txt"
    path.write_text(json.dumps(values))
    return path


def frames_of(folder, timestring):
    return sorted(folder.glob(f"{timestring}_[0-9]*.png"))


def test_3d_local_settings_file_renders_every_frame(tmp_path):
    result = run_engine("--settings", DATA / "runSettings_3D_local.txt", "--enable_animation_mode",
                        "--outdir", tmp_path, "--progress", "jsonl", "--max-frames", 8)
    assert result.returncode == 0, result.stderr
    evs = events(result)
    start, done = start_event(result), evs[-1]
    assert start["event"] == "start" and start["total"] == 8 and done["event"] == "done"
    folder = Path(start["outdir"])
    assert folder == tmp_path / "TaskName"
    ts = start["timestring"]
    names = [p.name for p in frames_of(folder, ts)]
    assert names == [f"{ts}_{i:05d}.png" for i in range(8)]  # cadence 3: the tail is kept
    assert [e["index"] for e in evs if e["event"] == "frame"] == list(range(8))
    assert "no model configured: rendering the motion preview" in result.stderr
    effective = json.loads((folder / f"{ts}_settings.txt").read_text())
    assert effective["seed"] == 3521683328 and effective["diffusion_cadence"] == 3
    assert effective["max_frames"] == 8 and effective["timestring"] == ts
    # translation_z 0.5 per frame zooms in: the centre stays, the corners move.
    first, last = read_rgb(folder / names[0]), read_rgb(folder / names[-1])
    assert first.shape == (512, 512, 3)
    assert np.abs(first.astype(int) - last).mean() > 5


def test_local_template_lists_ignored_keys_once(tmp_path):
    data = json.loads((DATA / "runSettings_3D_local.txt").read_text())
    data.update(clip_scale=1000, use_mask_video=True, max_frames=3, width=64, height=64)
    path = tmp_path / "s.txt"
    path.write_text(json.dumps(data))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("recognised but not implemented") == 1
    assert "clip_scale" in result.stderr


def test_2d_webui_file_and_placeholder_batch_name(tmp_path):
    result = run_engine("--settings", DATA / "webui_2D.txt", "--enable_animation_mode",
                        "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    start = start_event(result)
    ts = start["timestring"]
    folder = tmp_path / f"Deforum_{ts}"
    assert len(frames_of(folder, ts)) == 6
    effective = json.loads((folder / f"{ts}_settings.txt").read_text())
    assert 0 <= effective["seed"] < 2**32  # -1 was resolved and recorded
    assert (folder / f"{ts}.mp4").is_file()  # webui: skip_video_creation = false


def test_2d_translation_moves_content_right(tmp_path):
    path = write_settings(tmp_path, animation_mode="2D", W=96, H=64, max_frames=4,
                          translation_x="0:(2)", translation_y="0:(0)", zoom="0:(1)",
                          angle="0:(0)", color_coherence="None")
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_event(result)["timestring"]
    frames = [read_rgb(p).astype(int) for p in frames_of(tmp_path / "StableFun", ts)]
    # Frame 3 = frame 0 moved right by 3 × 2 pixels.
    assert np.array_equal(frames[3][:, 6:], frames[0][:, :-6])


def test_runs_are_deterministic_and_never_overwrite(tmp_path):
    path = write_settings(tmp_path, animation_mode="3D", W=64, H=48, max_frames=5,
                          diffusion_cadence=2, translation_z="0:(3)", rotation_3d_y="0:(1)",
                          seed=7)
    first = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                       "--progress", "jsonl")
    folder = tmp_path / "StableFun"
    ts1 = start_event(first)["timestring"]
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    second = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert first.returncode == second.returncode == 0
    ts2 = start_event(second)["timestring"]
    assert ts1 != ts2  # same second → the next free timestring, not an overwrite
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    assert {k: after[k] for k in before} == before
    for a, b in zip(frames_of(folder, ts1), frames_of(folder, ts2), strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_broken_settings_file_exits_2_with_a_clear_message(tmp_path):
    folder = tmp_path / "StableFun"
    folder.mkdir()
    keep = folder / "20200101000000_00000.png"
    keep.write_bytes(b"user frame")
    path = write_settings(tmp_path, animation_mode="2D", zoom="0:(1.04", max_frames=3)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2
    assert "zoom: unbalanced parentheses" in result.stderr
    assert "Traceback" not in result.stderr
    error = events(result)[-1]
    assert error["event"] == "error" and error["key"] == "zoom"
    assert sorted(p.name for p in folder.iterdir()) == [keep.name]
    assert keep.read_bytes() == b"user frame"


def test_a_refused_settings_file_is_answered_before_torch_loads(tmp_path):
    """Loading torch takes seconds: a schedule typo is answered without it."""
    path = write_settings(tmp_path, animation_mode="3D", zoom="0:(1.04", max_frames=3)
    code = ("import sys; from engine.cli import main; code = main(sys.argv[1:]); "
            "print('torch' in sys.modules, file=sys.stderr); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, "--settings", str(path),
                             "--enable_animation_mode", "--outdir", str(tmp_path)],
                            env=engine_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "zoom: unbalanced parentheses" in result.stderr
    assert result.stderr.rstrip().endswith("False")  # torch was never imported


def test_invalid_json_and_missing_init_image(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text('{"W": 64,, "H": 64}')
    result = run_engine("--settings", bad, "--enable_animation_mode", "--outdir", tmp_path)
    assert result.returncode == 2 and "line 1 column 10" in result.stderr
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=64, max_frames=2,
                          use_init=True, init_image=str(tmp_path / "missing.png"))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path)
    assert result.returncode == 2 and "init_image: file not found" in result.stderr


def test_init_image_is_frame_zero(tmp_path):
    import cv2
    picture = np.zeros((32, 48, 3), np.uint8)
    picture[:, :24] = (200, 30, 10)
    cv2.imwrite(str(tmp_path / "init.png"), picture[..., ::-1])
    path = write_settings(tmp_path, animation_mode="2D", W=48, H=32, max_frames=2,
                          use_init=True, init_image=str(tmp_path / "init.png"))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_event(result)["timestring"]
    assert np.array_equal(read_rgb(tmp_path / "StableFun" / f"{ts}_00000.png"), picture)


def test_still_images_need_a_model(tmp_path):
    path = write_settings(tmp_path, animation_mode="3D")
    result = run_engine("--settings", path, "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 3
    assert "no model configured" in result.stderr
    assert not (tmp_path / "StableFun").exists()


def test_cancel_file_keeps_written_frames(tmp_path):
    stop = tmp_path / "stop"
    stop.write_text("")
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=64, max_frames=10)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl", "--cancel-file", stop)
    assert result.returncode == 130
    evs = events(result)
    assert evs[-1]["event"] == "cancelled"
    ts = start_event(result)["timestring"]
    assert len(frames_of(tmp_path / "StableFun", ts)) == 1


def test_video_has_every_frame(tmp_path):
    import cv2
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=48, max_frames=7, fps=10)
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl", "--video")
    assert result.returncode == 0, result.stderr
    movie = Path(events(result)[-1]["video"])
    capture = cv2.VideoCapture(str(movie))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 7
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)


@pytest.mark.parametrize("cadence, frames", [(1, 5), (2, 7), (3, 7), (4, 4), (8, 7)])
def test_cadence_blends_the_two_latest_keyframes_and_writes_every_frame(tmp_path, cadence,
                                                                        frames):
    settings = parse_settings({"animation_mode": "2D", "W": 16, "H": 8, "max_frames": frames,
                               "diffusion_cadence": cadence, "translation_x": "0:(0)",
                               "zoom": "0:(1)", "color_coherence": "None"})
    keyframes = []

    def generate(init, frame):  # stand-in for diffusion: keyframe s is grey level 10·s
        keyframes.append(frame)
        return np.full((8, 16, 3), 10 * frame, np.uint8)

    count = render_animation(settings, tmp_path, "ts", Progress(), CancelToken(), generate)
    assert count == frames
    assert keyframes == list(range(0, frames, cadence))
    for f in range(frames):
        s = cadence * (f // cadence)
        w = (f - s + 1) / cadence
        expected = 10 * s if s == 0 else round((1 - w) * 10 * (s - cadence) + w * 10 * s)
        assert read_rgb(tmp_path / f"ts_{f:05d}.png")[0, 0, 0] == expected, f


def test_new_timestring_skips_taken_ones():
    taken = set()
    first = new_timestring(taken.__contains__)
    taken.add(first)
    assert new_timestring(taken.__contains__) > first


@pytest.mark.parametrize("cadence", [1, 3])
def test_depth_is_estimated_once_per_frame_and_shared(tmp_path, cadence):
    settings = parse_settings({"animation_mode": "3D", "W": 16, "H": 8, "max_frames": 7,
                               "diffusion_cadence": cadence, "color_coherence": "None"})
    asked, described = [], []

    def depth(frame, image):
        asked.append(frame)
        return np.ones(image.shape[:2], np.float32)

    render_animation(settings, tmp_path, "ts", Progress(), CancelToken(), depth=depth,
                     on_depth=lambda frame, z: described.append(frame))
    assert asked == list(range(1, 8))        # one estimate per warp step (+ the last frame's)
    assert described == list(range(7))      # each frame's own depth, once, for saving


def test_a_resume_at_another_size_is_refused_and_keeps_the_frames(tmp_path):
    values = dict(animation_mode="3D", W=64, H=64, max_frames=4, translation_z="0:(2)",
                  batch_name="shot")
    first = run_engine("--settings", write_settings(tmp_path, **values),
                       "--enable_animation_mode", "--preview", "--outdir", tmp_path,
                       "--timestring", "TS", "--max-frames", 2)
    assert first.returncode == 0, first.stderr
    kept = {p: p.stat().st_mtime_ns for p in frames_of(tmp_path / "shot", "TS")}
    again = write_settings(tmp_path, **{**values, "W": 128}, resume_from_timestring=True,
                           resume_timestring="TS")
    result = run_engine("--settings", again, "--enable_animation_mode", "--preview",
                        "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "W: 128 differs from the 64×64 frames being resumed" in result.stderr
    assert events(result)[-1]["key"] == "W"
    assert {p: p.stat().st_mtime_ns for p in frames_of(tmp_path / "shot", "TS")} == kept
