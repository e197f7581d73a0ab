"""The webui's per-frame schedules: guidance, steps, sampler, seeds, variation seeds, models."""

import json

import numpy as np
import pytest

from engine.diffusion import Diffusion
from engine.errors import SettingsError
from engine.frame_params import FrameSchedules
from engine.modes.common import CancelToken
from engine.settings import parse_settings
from tests.engine.test_diffusion import events, run_engine


def test_files_without_the_webui_keys_keep_their_single_values():
    settings = parse_settings({"scale": 9.5, "steps": 12, "sampler": "ddim", "ddim_eta": 0.3,
                               "max_frames": 5})
    p = FrameSchedules(settings).at(3)
    assert (p.cfg, p.steps, p.sampler, p.ddim_eta) == (9.5, 12, "ddim", 0.3)
    assert (p.clip_skip, p.checkpoint, p.subseed, p.subseed_strength) == (1, None, None, 0.0)
    assert settings["cfg_scale_schedule"] == "0: (9.5)"  # recorded, so a reload is the same


def test_schedules_apply_only_with_their_enable_flags():
    data = {"max_frames": 6, "steps": 10, "sampler": "euler",
            "cfg_scale_schedule": "0:(4), 5:(9)", "steps_schedule": "0: (3), 3: (6)",
            "sampler_schedule": '0: ("Euler a"), 2: (\'DPM++ 2M Karras\')',
            "clipskip_schedule": "0: (2)", "ddim_eta_schedule": "0: (0.5)"}
    off = FrameSchedules(parse_settings(data))
    assert [off.at(f).cfg for f in (0, 5)] == [4.0, 9.0]  # the webui always schedules guidance
    assert {off.at(f).steps for f in range(6)} == {10} and off.at(4).sampler == "euler"
    on = FrameSchedules(parse_settings({
        **data, "enable_steps_scheduling": True, "enable_sampler_scheduling": True,
        "enable_clipskip_scheduling": True, "enable_ddim_eta_scheduling": True}))
    assert [on.at(f).steps for f in range(6)] == [3, 4, 5, 6, 6, 6]
    assert [on.at(f).sampler for f in range(4)] == ["euler_ancestral"] * 2 + ["dpmpp_2m_karras"] * 2
    assert (on.at(0).clip_skip, on.at(0).ddim_eta) == (2, 0.5)


@pytest.mark.parametrize("key, data, words", [
    ("sampler_schedule", {"enable_sampler_scheduling": True,
                          "sampler_schedule": '0: ("Euler a"), 3: ("Warp Speed")'}, "Warp Speed"),
    ("steps_schedule", {"enable_steps_scheduling": True, "steps_schedule": "0: (0)"}, "at least 1"),
    ("subseed_strength_schedule", {"enable_subseed_scheduling": True,
                                   "subseed_strength_schedule": "0: (1.5)"}, "between 0 and 1"),
    ("checkpoint_schedule", {"enable_checkpoint_scheduling": True,
                             "checkpoint_schedule": '0: ("https://example.com/a.ckpt")'}, "URL"),
    ("checkpoint_schedule", {"enable_checkpoint_scheduling": True,
                             "checkpoint_schedule": '0: ("nowhere.safetensors")'}, "not found"),
    ("checkpoint_schedule", {"enable_checkpoint_scheduling": True}, "empty"),
])
def test_bad_schedules_are_named(key, data, words):
    with pytest.raises(SettingsError) as caught:
        FrameSchedules(parse_settings({"max_frames": 5, **data}))
    assert caught.value.key == key and key in str(caught.value) and words in str(caught.value)


def test_frame_events_carry_the_scheduled_values(tiny_model, tmp_path):
    settings = {
        "animation_mode": "2D", "max_frames": 4, "W": 64, "H": 64, "steps": 4, "seed": 7,
        "strength_schedule": "0: (0.25)", "zoom": "0: (1.0)", "translation_x": "0: (0)",
        "color_coherence": "None", "animation_prompts": {"0": "a cat"},
        "cfg_scale_schedule": "0: (3), 3: (6)",
        "enable_steps_scheduling": True, "steps_schedule": "0: (4), 2: (8)",
        "enable_sampler_scheduling": True, "sampler_schedule": '0: ("Euler"), 2: ("DDIM")',
        "seed_behavior": "schedule", "seed_schedule": "0: (11), 1: (12), 2: (13), 3: (14)",
        "enable_subseed_scheduling": True, "subseed_schedule": "0: (20), 2: (21)",
        "subseed_strength_schedule": "0: (0), 3: (0.75)"}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(settings))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    used = [e["used"] for e in events(result) if e["event"] == "frame"]
    assert [u["cfg"] for u in used] == [3.0, 4.0, 5.0, 6.0]
    assert [u["steps"] for u in used] == [4, 6, 8, 8]
    assert [u["sampler"] for u in used] == ["euler", "euler", "ddim", "ddim"]
    assert [u["seed"] for u in used] == [11, 12, 13, 14]
    assert [u["subseed"] for u in used] == [20, 20, 21, 21]
    assert [u["subseed_strength"] for u in used] == [0.0, 0.25, 0.5, 0.75]
    assert {u["checkpoint"] for u in used} == {str(tiny_model)} and used[0]["clip_skip"] == 1


def _variation(pipes, strength, subseed=9):
    return Diffusion(pipes, parse_settings({
        "W": 64, "H": 64, "steps": 3, "sampler": "euler", "enable_subseed_scheduling": True,
        "subseed_schedule": f"0: ({subseed})", "subseed_strength_schedule": f"0: ({strength})"}),
        CancelToken())


def test_subseed_strength_moves_the_picture_from_the_seed_to_the_subseed(pipes):  # noqa: F811
    plain = Diffusion(pipes, parse_settings({"W": 64, "H": 64, "steps": 3, "sampler": "euler"}),
                      CancelToken())
    seed_picture = plain(None, strength=0.0, seed=5, noise=0.0, prompt="a cat")
    subseed_picture = plain(None, strength=0.0, seed=9, noise=0.0, prompt="a cat")
    at = {s: _variation(pipes, s)(None, strength=0.0, seed=5, noise=0.0, prompt="a cat")
          for s in (0, 0.5, 1)}
    assert np.array_equal(at[0], seed_picture) and np.array_equal(at[1], subseed_picture)
    assert not np.array_equal(at[0.5], seed_picture)
    assert not np.array_equal(at[0.5], subseed_picture)
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    keep = plain(init, strength=0.3, seed=5, noise=0.02, prompt="a cat")
    assert np.array_equal(_variation(pipes, 0)(init, strength=0.3, seed=5, noise=0.02,
                                               prompt="a cat"), keep)
    assert not np.array_equal(_variation(pipes, 1)(init, strength=0.3, seed=5, noise=0.02,
                                                   prompt="a cat"), keep)


class CountingLoaders:
    """The engine's loader, counting what it loads."""

    def __init__(self):
        from engine.cli import Loaders
        self.inner, self.loaded = Loaders(), []

    def pipelines(self, path, config, device, half):
        self.loaded.append(path)
        return self.inner.pipelines(path, config, "cpu", half)


def test_checkpoint_schedule_loads_each_model_once(tmp_path):
    from engine.models import load_pipelines
    from engine.tiny_model import write_tiny_model

    for name, seed in (("a", 0), ("b", 1)):
        write_tiny_model(tmp_path / name, seed=seed)
    model_a = str(tmp_path / "a")
    settings = parse_settings({
        "W": 64, "H": 64, "steps": 3, "max_frames": 4, "device": "cpu", "model_path": model_a,
        "enable_checkpoint_scheduling": True,
        "checkpoint_schedule": '0: ("a"), 1: ("b"), 2: ("a"), 3: ("b")'})
    loaders = CountingLoaders()
    diffusion = Diffusion(load_pipelines(model_a, device="cpu"), settings, CancelToken(),
                          loaders=loaders)
    frames = [diffusion(None, strength=0.0, seed=3, noise=0.0, prompt="a cat", frame=f)
              for f in range(4)]
    assert loaders.loaded == [str(tmp_path / "b")]
    assert not np.array_equal(frames[0], frames[1])
    assert np.array_equal(frames[0], frames[2]) and np.array_equal(frames[1], frames[3])
    assert diffusion.used_for(3)["checkpoint"] == str(tmp_path / "b")


def test_transform_centre_and_aspect_ratio_move_the_warp():
    from engine.motion import Motion

    image = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    base = {"max_frames": 3, "W": 96, "H": 64, "angle": "0: (10)", "zoom": "0: (1.1)"}

    def warped(mode, **changes):
        settings = parse_settings({**base, "animation_mode": mode, **changes})
        depth = np.full((64, 96), 5.0, np.float32) if mode == "3D" else None
        return Motion(settings, 3).warp(image, 1, depth)

    assert np.array_equal(warped("2D"), warped("2D", transform_center_x="0: (0.5)"))
    assert not np.array_equal(warped("2D"), warped("2D", transform_center_x="0: (0)"))
    turn = {"rotation_3d_y": "0: (5)", "translation_z": "0: (0)"}
    assert np.array_equal(warped("3D", **turn),
                          warped("3D", **turn, aspect_ratio_schedule="0: (2)"))
    assert not np.array_equal(warped("3D", **turn), warped(
        "3D", **turn, aspect_ratio_schedule="0: (1)", aspect_ratio_use_old_formula=False))


def _run(tmp_path, tiny_model, settings, *flags):  # noqa: F811
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"W": 64, "H": 64, "seed": 7, "sampler": "euler",
                                "color_coherence": "None", **settings}))
    result = run_engine("--settings", path, *flags, "--outdir", tmp_path / "out", "--model",
                        tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    frames = [e for e in events(result) if e["event"] == "frame"]
    steps = {}  # frame index → the denoising steps its step events counted
    for e in events(result):
        if e["event"] == "step":
            steps[e["index"]] = e["steps"]
    return [e["used"] for e in frames], [steps[e["index"]] for e in frames]


def test_video_input_frames_follow_and_report_the_schedules(tiny_model, tmp_path):  # noqa: F811
    from tests.engine.test_video_modes import make_clip

    clip = make_clip(tmp_path / "clip.mp4")
    used, steps = _run(tmp_path, tiny_model, {
        "animation_mode": "Video Input", "video_init_path": str(clip), "extract_nth_frame": 3,
        "strength_schedule": "0: (0.25)", "animation_prompts": {"0": "ink"},
        "cfg_scale_schedule": "0: (3), 3: (6)",
        "enable_steps_scheduling": True, "steps_schedule": "0: (4), 2: (8)"},
        "--enable_animation_mode")
    assert [u["cfg"] for u in used] == [3.0, 4.0, 5.0, 6.0]
    assert [u["steps"] for u in used] == [4, 6, 8, 8]
    assert steps == [3, 4, 6, 6]  # ⌊0.75 · steps⌋ img2img steps were run
    assert [u["seed"] for u in used] == [7, 8, 9, 10]


def test_interpolation_frames_follow_and_report_the_schedules(tiny_model, tmp_path):  # noqa: F811
    used, steps = _run(tmp_path, tiny_model, {
        "animation_mode": "Interpolation", "interpolate_x_frames": 2, "seed_behavior": "fixed",
        "animation_prompts": {"0": "a red apple", "5": "a snowy mountain"},
        "cfg_scale_schedule": "0: (2), 3: (8)",
        "enable_steps_scheduling": True, "steps_schedule": "0: (2), 3: (5)",
        "enable_sampler_scheduling": True, "sampler_schedule": '0: ("Euler"), 2: ("DDIM")',
        "enable_clipskip_scheduling": True, "clipskip_schedule": "0: (1), 2: (2)"},
        "--enable_animation_mode")
    assert [u["steps"] for u in used] == [2, 3, 4, 5] and steps == [2, 3, 4, 5]
    assert [u["cfg"] for u in used] == [2.0, 4.0, 6.0, 8.0]
    assert [u["sampler"] for u in used] == ["euler", "euler", "ddim", "ddim"]
    assert [u["clip_skip"] for u in used] == [1, 1, 2, 2]
    assert {u["seed"] for u in used} == {7}


def test_clip_skip_changes_the_picture_in_every_mode(pipes, tiny_model, tmp_path):  # noqa: F811
    from engine.output import read_image

    def skipping(skip):
        return {"enable_clipskip_scheduling": True, "clipskip_schedule": f"0: ({skip})"}

    direct = [Diffusion(pipes, parse_settings({"W": 64, "H": 64, "steps": 2, **skipping(k)}),
                        CancelToken())(None, strength=0.0, seed=5, noise=0.0, prompt="a cat")
              for k in (1, 2)]
    assert not np.array_equal(*direct)
    interpolated = []
    for skip in (1, 2):
        out = tmp_path / str(skip)
        out.mkdir()
        _run(out, tiny_model, {
            "animation_mode": "Interpolation", "interpolate_x_frames": 0, "steps": 2,
            "animation_prompts": {"0": "a red apple", "1": "a snowy mountain"},
            **skipping(skip)}, "--enable_animation_mode")
        first = sorted((out / "out").rglob("*_0*.png"))[0]
        interpolated.append(read_image(first, (64, 64), "frame"))
    assert not np.array_equal(*interpolated)


def test_still_images_report_the_values_of_frame_zero(tiny_model, tmp_path):  # noqa: F811
    used, steps = _run(tmp_path, tiny_model, {
        "n_batch": 2, "seed_behavior": "iter", "still_prompts": ["a boat", "a hill"],
        "cfg_scale_schedule": "0: (3), 1: (9)",
        "enable_steps_scheduling": True, "steps_schedule": "0: (2), 1: (5)"})
    assert [(u["cfg"], u["steps"]) for u in used] == [(3.0, 2)] * 4 and steps == [2] * 4
    assert [u["seed"] for u in used] == [7, 8, 9, 10]
