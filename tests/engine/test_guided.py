"""Guided images (the webui's looper): keyframes pulled toward images keyed by frame."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import SettingsError
from engine.guided import color_correct, guided, load_guides
from engine.modes.animation import animation_generate, render_animation
from engine.modes.common import CancelToken
from engine.progress import Progress
from engine.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]
RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(folder: Path, name: str, rgb) -> str:
    import cv2
    path = folder / name
    cv2.imwrite(str(path), np.full((64, 64, 3), rgb[::-1], np.uint8))
    return str(path)


def guided_settings(tmp_path, **values):
    """A still 2D camera without colour coherence: only the guides change the picture."""
    base = dict(animation_mode="2D", max_frames=12, W=64, H=64, zoom="0:(1)",
                translation_x="0:(0)", color_coherence="None", use_looper=True,
                init_images={"0": solid(tmp_path, "red.png", RED),
                             "6": solid(tmp_path, "blue.png", BLUE)},
                tweening_frames_schedule="0:(5)")
    return parse_settings({**base, **values})


def render(settings, folder, generate=None):
    folder.mkdir(exist_ok=True)
    render_animation(settings, folder, "ts", Progress(log=open(os.devnull, "w")),
                     CancelToken(), generate)
    import cv2
    return [cv2.imread(str(folder / f"ts_{i:05d}.png"))[..., ::-1]
            for i in range(settings["max_frames"])]


def distance(image, rgb):
    return float(np.abs(image.reshape(-1, 3).mean(0) - rgb).sum())


def run_engine(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_each_section_moves_toward_its_own_guide(tmp_path):
    frames = render(guided_settings(tmp_path), tmp_path / "out")
    assert distance(frames[0], RED) < 1  # frame 0 starts from the first guide
    assert all(distance(f, RED) < 40 for f in frames[1:6])  # the red section stays red
    to_blue = [distance(f, BLUE) for f in frames[5:]]
    assert all(b < a for a, b in zip(to_blue, to_blue[1:])), to_blue  # closer every frame
    assert to_blue[-1] < to_blue[0] / 2


def test_a_larger_blend_factor_pulls_faster(tmp_path):
    low = render(guided_settings(tmp_path, blendFactorMax="0:(0.2)"), tmp_path / "low")
    high = render(guided_settings(tmp_path, blendFactorMax="0:(0.6)"), tmp_path / "high")
    assert distance(high[9], BLUE) < distance(low[9], BLUE) - 50


def test_blend_factor_follows_the_webui_cosine_and_slope(tmp_path):
    """max − slope·cos((f mod T)/(T/2)) while f mod section ≤ T, else 0.07 (f: the frame)."""
    def blends(slope):
        red, blue = str(tmp_path / "red.png"), str(tmp_path / "blue.png")
        g = load_guides(guided_settings(tmp_path, max_frames=60, blendFactorSlope=f"0:({slope})",
                                        tweening_frames_schedule="0:(5)",
                                        init_images={"0": red, "20": blue, "40": red}))
        return [g.blend(f) for f in range(60)]
    small, large = blends(0.1), blends(0.3)
    assert small[20] == pytest.approx(0.35 - 0.1)   # a section starts at max − slope
    assert small[23] == pytest.approx(0.35 - 0.1 * math.cos(3 / 2.5))
    assert small[20] < small[21] < small[22] < small[23] < small[24]  # rising in the window
    assert large[24] - large[20] > small[24] - small[20]   # faster with a larger slope
    assert max(small) < 0.35 + 0.1 * 0.42   # the cosine's argument never passes 2
    assert small[25] == pytest.approx(0.25)  # 25 mod 5 = 0: the cosine restarts
    assert small[26] == pytest.approx(0.07)  # 26 mod 20 = 6 > 5: past the window
    # After the last key a section is 25 frames: 52 mod 25 = 2 ≤ 5, 56 mod 25 = 6 > 5.
    assert small[52] == pytest.approx(0.35 - 0.1 * math.cos(2 / 2.5))
    assert small[56] == pytest.approx(0.07)


def test_guides_keyed_by_expression_or_as_json_text_pick_the_same_images(tmp_path):
    as_object = guided_settings(tmp_path)
    red, blue = as_object["init_images"]["0"], as_object["init_images"]["6"]
    as_text = guided_settings(tmp_path, max_frames=13,
                              init_images=json.dumps({"0": red, "max_f/2": blue}))
    for g in (load_guides(as_object), load_guides(as_text)):
        assert g.keys == [0, 6]
        assert [g.index(f) for f in (0, 5, 6, 11)] == [0, 0, 1, 1]
        assert distance(g.images[g.index(7)], BLUE) < 1


def test_cadence_in_betweens_blend_the_guided_keyframes(tmp_path):
    asked = []

    def generate(init, frame):
        asked.append(frame)
        return init

    settings = guided_settings(tmp_path, diffusion_cadence=3)
    frames = render(settings, tmp_path / "out", generate)
    assert asked == [0, 3, 6, 9]  # only diffused frames meet their guide
    assert distance(frames[7], BLUE) < distance(frames[6], BLUE)


def test_looper_off_renders_exactly_todays_frames(tmp_path):
    plain = dict(animation_mode="2D", max_frames=6, W=64, H=64)
    today = render(parse_settings(plain), tmp_path / "today")
    # A webui file keeps its guide URLs even with the looper off: they are not touched.
    off = render(parse_settings({**plain, "use_looper": False, "init_images": json.dumps(
        {"0": "https://deforum.github.io/a1/Gi1.png"}), "blendFactorMax": "0:(0.9)"}),
        tmp_path / "off")
    assert all(np.array_equal(a, b) for a, b in zip(today, off))


def test_diffusion_gets_the_image_strength_and_scheduled_seeds(tmp_path):
    calls = []

    def diffusion(init, *, strength, seed, noise, prompt, negative, mask, frame, **_options):
        calls.append((frame, strength, seed, init.reshape(-1, 3).mean(0)))
        return init

    settings = guided_settings(tmp_path, max_frames=4, seed=7, seed_behavior="iter",
                               image_strength_schedule="0:(0.9), 2:(0.5)",
                               seed_schedule="0:(100+t)")
    generate = guided(animation_generate(diffusion, settings, None), settings)
    render(settings, tmp_path / "out", generate)
    assert [(f, s, seed) for f, s, seed, _ in calls] == [
        (0, 0.9, 100), (1, pytest.approx(0.7), 101), (2, 0.5, 102), (3, 0.5, 103)]
    assert np.allclose(calls[0][3], RED)  # frame 0 is img2img from the first guide


def test_colour_correction_keeps_the_frames_luminosity():
    image = np.full((8, 8, 3), (200, 40, 40), np.uint8)
    out = color_correct(image, np.full((8, 8, 3), (40, 40, 200), np.uint8))
    luma = lambda a: a.reshape(-1, 3).mean(0) @ [0.3, 0.59, 0.11]
    assert out[..., 2].mean() > out[..., 0].mean()  # hue taken from the reference
    assert luma(out) == pytest.approx(luma(image), abs=3)


@pytest.mark.parametrize("images, words", [
    ({"0": "missing.png"}, "file not found"),
    ({"0": "https://deforum.github.io/a1/Gi1.png"}, "is a URL"),
    ("{not json", "is not JSON"),
    ({}, "at least one"),
])
def test_bad_guides_exit_2_naming_init_images_before_anything_is_written(tmp_path, images,
                                                                         words):
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(dict(animation_mode="2D", max_frames=3, W=64, H=64,
                                        use_looper=True, init_images=images)))
    result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                        tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "init_images" in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out/**/*.*"))


def test_tweening_frames_must_be_positive(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_guides(guided_settings(tmp_path, tweening_frames_schedule="0:(5), 3:(0)"))
    assert caught.value.key == "tweening_frames_schedule" and "frame 3" in str(caught.value)


def test_tiny_model_diffuses_guided_frames_with_the_image_strength(tmp_path, tiny_model):
    """Image strength 1 keeps every init (no denoising step): the diffused run equals the
    motion preview, although strength_schedule alone would have diffused each frame."""
    base = dict(animation_mode="2D", max_frames=4, W=64, H=64, zoom="0:(1)", steps=4,
                translation_x="0:(0)", color_coherence="None", use_looper=True,
                strength_schedule="0:(0.2)", image_strength_schedule="0:(1)",
                init_images={"0": solid(tmp_path, "red.png", RED),
                             "2": solid(tmp_path, "blue.png", BLUE)})
    runs = {}
    for name, model in (("preview", []), ("model", ["--model", tiny_model])):
        settings = tmp_path / f"{name}.json"
        settings.write_text(json.dumps({**base, "batch_name": name}))
        result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                            tmp_path / "out", *model)
        assert result.returncode == 0, result.stderr
        runs[name] = sorted((tmp_path / "out" / name).glob("*_0000[0-9].png"))
    assert "seed_behavior 'iter' becomes 'schedule'" in result.stderr
    import cv2
    assert len(runs["model"]) == 4
    for a, b in zip(runs["preview"], runs["model"]):
        assert np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))
