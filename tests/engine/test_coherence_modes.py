"""Colour coherence modes of the webui: Image, Video Input, legacy_colormatch, greyscale."""

import json

import cv2
import numpy as np

from engine.color import Coherence, match_colors
from engine.modes.video_input import video_input_generate
from engine.settings import parse_settings
from tests.engine.test_cli import frames_of, read_rgb, run_engine, start_event


def picture(seed: int, tint=(0, 0, 0), shape=(48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, shape + (3,)).astype(int) // 2 + np.array(tint)
    return cv2.GaussianBlur(np.clip(noise, 0, 255).astype(np.uint8), (0, 0), 2.0)


def channel_means(image: np.ndarray) -> np.ndarray:
    return image.reshape(-1, 3).mean(axis=0)


def settings(**values):
    return parse_settings({"W": 64, "H": 48, **values})


RED, BLUE = (120, 0, 0), (0, 0, 120)


def test_image_coherence_moves_the_histogram_to_the_image(tmp_path):
    red = picture(1, RED)
    path = tmp_path / "palette.png"
    cv2.imwrite(str(path), red[..., ::-1])
    out = tmp_path / "out"
    settings_file = tmp_path / "s.txt"
    settings_file.write_text(json.dumps({
        "animation_mode": "2D", "W": 64, "H": 48, "max_frames": 3, "zoom": "0:(1.02)",
        "color_coherence": "Image", "color_coherence_image_path": str(path)}))
    result = run_engine("--settings", settings_file, "--enable_animation_mode", "--outdir", out,
                        "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_event(result)["timestring"]
    for frame in frames_of(out / "StableFun", ts):  # frame 0 (the test card) too
        assert np.abs(channel_means(read_rgb(frame)) - channel_means(red)).max() < 12


def test_image_coherence_without_a_picture_names_the_key(tmp_path):
    settings_file = tmp_path / "s.txt"
    settings_file.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 48,
                                         "max_frames": 2, "color_coherence": "Image"}))
    result = run_engine("--settings", settings_file, "--enable_animation_mode", "--outdir",
                        tmp_path, "--progress", "jsonl")
    assert result.returncode == 2 and "color_coherence_image_path" in result.stdout


def test_force_grayscale_gives_grey_frames(tmp_path):
    settings_file = tmp_path / "s.txt"
    settings_file.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 48,
                                         "max_frames": 3, "color_force_grayscale": True}))
    result = run_engine("--settings", settings_file, "--enable_animation_mode", "--outdir",
                        tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    frames = [read_rgb(p).astype(int) for p in
              frames_of(tmp_path / "StableFun", start_event(result)["timestring"])]
    assert len(frames) == 3
    for frame in frames:
        assert np.array_equal(frame[..., 0], frame[..., 1]) and \
            np.array_equal(frame[..., 1], frame[..., 2])


def test_legacy_colormatch_matches_only_the_init_to_the_first_warped_frame():
    first, warped, generated = picture(2, RED), picture(3, BLUE), picture(4)
    legacy = Coherence(settings(color_coherence="LAB", legacy_colormatch=True))
    assert legacy.finish(first, 0, 0.65, had_init=False) is first
    assert legacy.prepare(warped) is warped  # the first warped frame becomes the reference
    assert legacy.finish(generated, 1, 0.65, had_init=True) is generated
    later = legacy.prepare(picture(5))
    assert np.array_equal(later, match_colors(picture(5), warped, "LAB"))


def test_without_legacy_frame_zero_is_the_reference_and_outputs_are_matched():
    first, warped, generated = picture(2, RED), picture(3, BLUE), picture(4)
    new = Coherence(settings(color_coherence="LAB", legacy_colormatch=False))
    assert new.finish(first, 0, 0.65, had_init=False) is first
    assert np.array_equal(new.prepare(warped), match_colors(warped, first, "LAB"))
    out = new.finish(generated, 1, 0.65, had_init=True)
    assert np.array_equal(out, match_colors(generated, first, "LAB"))
    assert np.abs(channel_means(out) - channel_means(first)).max() < 12


def test_legacy_takes_a_strength_zero_keyframe_as_the_new_reference():
    legacy = Coherence(settings(color_coherence="RGB", legacy_colormatch=True))
    legacy.prepare(picture(3, BLUE))
    fresh = picture(6, RED)
    legacy.finish(fresh, 2, 0.0, had_init=True)
    assert legacy.reference is fresh


def test_video_input_coherence_follows_the_video_every_n_frames(tmp_path):
    tints = [RED, RED, BLUE, BLUE]
    frames = []
    for i, tint in enumerate(tints):
        frames.append(tmp_path / f"{i:05d}.png")
        cv2.imwrite(str(frames[-1]), picture(10 + i, tint)[..., ::-1])
    s = settings(animation_mode="Video Input", max_frames=4, seed=1,
                 color_coherence="Video Input", legacy_colormatch=False,
                 color_coherence_video_every_N_frames=2)
    grey = picture(20)

    def diffusion(init, **kwargs):
        return grey.copy()
    make = video_input_generate(s, frames, None, diffusion, Coherence(s))
    outs = [make(i) for i in range(4)]
    # Reference: video frame 0 for frames 0–1 (red), frame 2 for frames 2–3 (blue).
    assert channel_means(outs[1])[0] > channel_means(outs[1])[2] + 40
    assert channel_means(outs[3])[2] > channel_means(outs[3])[0] + 40


def test_video_input_coherence_in_2d_warns_with_the_key(tmp_path):
    settings_file = tmp_path / "s.txt"
    settings_file.write_text(json.dumps({"animation_mode": "2D", "W": 64, "H": 48,
                                         "max_frames": 2, "color_coherence": "Video Input"}))
    result = run_engine("--settings", settings_file, "--enable_animation_mode", "--outdir",
                        tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    warnings = [json.loads(line) for line in result.stdout.splitlines()
                if '"warning"' in line]
    assert any(w.get("key") == "color_coherence" and "no video" in w["message"]
               for w in warnings)
