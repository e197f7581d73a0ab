"""Optical flow: estimation, cadence tweens that follow moving content, redo, RAFT refused."""

import hashlib

import cv2
import numpy as np
import pytest

from engine.flow import estimate, warp
from engine.modes.animation import render_animation
from engine.modes.common import CancelToken
from engine.progress import Progress
from engine.redo import Redo
from engine.settings import parse_settings

from tests.engine.test_cli import read_rgb, run_engine, write_settings

H, W = 96, 128


def texture(seed=0):
    """Smooth random colour blobs: structure at every position for flow to lock onto."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (H, W, 3)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def shifted(image, dx, dy=0.0):
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, matrix, (W, H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-9))


INTERIOR = (slice(16, -16), slice(16, -16))


@pytest.mark.parametrize("method", ["DIS Medium", "DIS Fine", "Farneback"])
def test_estimate_recovers_a_known_translation(method):
    image = texture()
    flow = estimate(image, shifted(image, 3.0, -2.0), method)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    error = np.hypot(flow[..., 0] - 3.0, flow[..., 1] + 2.0)[INTERIOR]
    assert error.mean() < 1.0


def test_warp_along_the_flow_reproduces_the_moved_picture():
    image = texture()
    moved = shifted(image, 4.0, 1.0)
    warped = warp(image, estimate(image, moved, "DIS Medium"), 1.0)
    assert psnr(warped[INTERIOR], moved[INTERIOR]) > 35


def render_drift(tmp_path, cadence, **extra):
    """A 2D run with a still camera whose 'model' returns the scene as it is at the
    keyframe: content drifting 2 px right a frame, which the camera warp cannot follow."""
    settings = parse_settings({"animation_mode": "2D", "W": W, "H": H, "max_frames": 9,
                               "diffusion_cadence": cadence, "translation_x": "0:(0)",
                               "zoom": "0:(1)", "color_coherence": "None", **extra})
    scene = texture()

    def generate(init, frame, uncovered=None):
        return shifted(scene, 2.0 * frame)

    tmp_path.mkdir()
    render_animation(settings, tmp_path, "ts", Progress(), CancelToken(), generate)
    return [read_rgb(tmp_path / f"ts_{f:05d}.png") for f in range(9)]


def sharpness(image):
    """Mean gradient magnitude: two offset copies blended (double edges) lower it."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
                 [INTERIOR].mean())


def test_flow_cadence_tweens_are_the_true_in_between_frames(tmp_path):
    truth = render_drift(tmp_path / "c1", 1)
    plain = render_drift(tmp_path / "plain", 4)
    flowed = render_drift(tmp_path / "flow", 4, optical_flow_cadence="DIS Medium")
    for f in (4, 5, 6, 8):  # the tweens between two keyframes (7 is keyframe 4 itself)
        # Blending keyframes s − 4 and s at weight (f − s + 1)/4 shows the scene of f − 3.
        expected = truth[f - 3]
        with_flow = psnr(flowed[f][INTERIOR], expected[INTERIOR])
        without = psnr(plain[f][INTERIOR], expected[INTERIOR])
        assert with_flow > without + 6 and with_flow > 30, (f, with_flow, without)
        # No double edges: as sharp as the true frame, where plain blending is not.
        assert sharpness(flowed[f]) > 0.9 * sharpness(expected), f
        assert sharpness(plain[f]) < 0.8 * sharpness(expected), f
    # Frames 0–3 (no older keyframe) and keyframe 4 carried to 7 are untouched by flow.
    for f in (0, 1, 2, 3, 7):
        assert np.array_equal(flowed[f], plain[f]), f


def test_flow_cadence_factor_zero_is_plain_blending(tmp_path):
    plain = render_drift(tmp_path / "plain", 4)
    zero = render_drift(tmp_path / "zero", 4, optical_flow_cadence="Farneback",
                        cadence_flow_factor_schedule="0:(0)")
    for f in range(9):
        assert np.abs(zero[f].astype(int) - plain[f]).max() <= 1, f


def digests(folder):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))]


def test_files_without_flow_keys_render_the_same_frames(tmp_path):
    base = dict(animation_mode="2D", W=64, H=48, max_frames=7, diffusion_cadence=3,
                translation_x="0:(2)", zoom="0:(1.02)")
    results = []
    for name, extra in (("without", {}), ("none", {"optical_flow_cadence": "None",
                                                   "optical_flow_redo_generation": "None",
                                                   "diffusion_redo": "0"})):
        out = tmp_path / name
        path = write_settings(tmp_path, **base, **extra)
        result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", out,
                            "--progress", "jsonl")
        assert result.returncode == 0, result.stderr
        results.append(digests(next(out.rglob("*_00000.png")).parent))
    assert len(results[0]) == 7 and results[0] == results[1]


@pytest.mark.parametrize("key", ["optical_flow_cadence", "optical_flow_redo_generation"])
def test_raft_without_local_weights_is_refused_naming_the_key(tmp_path, key):
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=48, max_frames=3,
                          diffusion_cadence=2, **{key: "RAFT"})
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2
    assert key in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*_00000.png"))


def test_redo_diffuses_throwaway_seeds_before_the_real_one():
    settings = parse_settings({"animation_mode": "2D", "max_frames": 4, "diffusion_redo": 2,
                               "optical_flow_redo_generation": "DIS Medium",
                               "strength_schedule": "0:(0.6), 3:(0)"})
    calls = []

    def diffuse(image, seed):  # stand-in: content moves 2 px a diffusion
        calls.append(seed)
        return shifted(image, 2.0)

    redo = Redo(settings, 4)
    init = texture()
    out = redo(init, 1, 1234, diffuse)
    assert len(calls) == 3 and 1234 not in calls and len(set(calls)) == 3
    # Flow redo carries the throw-away result 2 px further along its flow (4 px in all),
    # then two redos move it 2 px each.
    assert psnr(out[INTERIOR], shifted(init, 8.0)[INTERIOR]) > 30
    calls.clear()
    assert redo(init, 1, 1234, diffuse) is not None and len(calls) == 3
    first = list(calls)
    calls.clear()
    redo(init, 1, 1234, diffuse)
    assert calls == first  # repeatable seeds: a resumed run diffuses the same
    calls.clear()
    assert redo(init, 3, 1234, diffuse) is init and calls == []  # strength 0: no redo
    assert redo(init, 0, 1234, diffuse) is init and calls == []


def test_keyframes_of_a_run_are_redone_before_the_real_diffusion():
    from engine.modes.animation import animation_generate
    settings = parse_settings({"animation_mode": "2D", "W": W, "H": H, "max_frames": 3,
                               "diffusion_redo": 1, "optical_flow_redo_generation": "Farneback",
                               "seed": 7, "seed_behavior": "fixed"})
    seeds = []

    def diffusion(init, *, seed, frame, **kwargs):
        seeds.append((frame, seed))
        return texture(seed % 100) if init is None else init

    generate = animation_generate(diffusion, settings, None)
    generate(None, 0)
    generate(texture(), 1)
    assert [f for f, _ in seeds] == [0, 1, 1, 1]  # flow redo, one redo, the real one
    assert seeds[-1] == (1, 7) and 7 not in [s for _, s in seeds[1:3]]
