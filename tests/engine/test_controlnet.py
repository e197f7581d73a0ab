"""ControlNet units steer the frames: loaded offline from a folder, fed control frames from
a folder or the previous frame, weighted per frame, and off exactly when their weight is 0."""

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.control_images import (INNER_FIT, JUST_RESIZE, OUTER_FIT, check_module,
                                   control_image, fit, pixel_perfect_resolution)
from engine.errors import EXIT_MODEL, EXIT_SETTINGS, ModelError, SettingsError
from engine.settings import load_settings, parse_settings

DATA = Path(__file__).resolve().parents[1] / "data"
RUN = {"animation_mode": "2D", "max_frames": 3, "W": 64, "H": 64, "steps": 4, "seed": 5,
       "zoom": "0:(1.02)", "strength_schedule": "0:(0.5)", "animation_prompts": {"0": "a cat"}}


def control_folder(folder: Path, count: int = 3) -> Path:
    """A white disc moving right on black, one PNG per frame as the add-on writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        picture = np.zeros((64, 64, 3), np.uint8)
        cv2.circle(picture, (16 + 10 * k, 32), 12, (255, 255, 255), -1)
        cv2.imwrite(str(folder / f"{k:05d}.png"), picture)
    return folder


def two_units(controlnet: Path, frames: Path, weight: str = "0:(1), 2:(0.5)") -> dict:
    return {"cn_1_enabled": True, "cn_1_model": str(controlnet), "cn_1_vid_path": str(frames),
            "cn_1_weight": weight, "cn_1_guidance_end": "0:(0.8)",
            "cn_2_enabled": True, "cn_2_model": str(controlnet), "cn_2_loopback_mode": True,
            "cn_2_module": "canny", "cn_2_threshold_a": 50, "cn_2_threshold_b": 120,
            "cn_2_weight": "0:(0)" if weight == "0:(0)" else "0:(0.7)",
            "cn_2_control_mode": "ControlNet is more important"}


def render(tmp_path, capsys, name, model, **settings):
    """Run the engine in-process; returns (exit code, frames as arrays, frame events, warnings)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**RUN, **settings}))
    capsys.readouterr()
    code = main(["--settings", str(path), "--enable_animation_mode", "--model", str(model),
                 "--outdir", str(tmp_path / name), "--progress", "jsonl"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()
              if line.startswith("{")]
    frames = [cv2.imread(e["path"]) for e in events if e["event"] == "frame"]
    warnings = [e["message"] for e in events if e["event"] in ("warning", "error")]
    return code, frames, [e for e in events if e["event"] == "frame"], warnings


def test_two_units_steer_the_frames_and_weight_zero_gives_the_plain_run(
        tmp_path, capsys, tiny_model, tiny_controlnet):
    frames = control_folder(tmp_path / "passes")
    _, plain, _, _ = render(tmp_path, capsys, "plain", tiny_model)
    code, steered, events, warnings = render(tmp_path, capsys, "steered", tiny_model,
                                             **two_units(tiny_controlnet, frames))
    assert code == 0 and warnings == [] and len(steered) == 3
    assert all(np.abs(a.astype(int) - b).max() > 10 for a, b in zip(plain, steered))
    used = [e["used"]["controlnet"] for e in events]
    assert [u[0]["weight"] for u in used] == [1.0, 0.75, 0.5]
    assert {(u[0]["guidance_start"], u[0]["guidance_end"]) for u in used} == {(0.0, 0.8)}
    assert [u[0]["image"] for u in used] == ["frames"] * 3
    # Frame 0 has no previous frame: the loopback unit sits it out, then takes the last one.
    assert [u[1]["image"] for u in used] == [None, "loopback", "loopback"]
    assert used[1][1] == {"unit": 2, "model": tiny_controlnet.name, "module": "canny",
                          "weight": 0.7, "guidance_start": 0.0, "guidance_end": 1.0,
                          "control_mode": "ControlNet is more important", "image": "loopback"}
    code, off, events, _ = render(tmp_path, capsys, "off", tiny_model,
                                  **two_units(tiny_controlnet, frames, weight="0:(0)"))
    assert code == 0 and all(np.array_equal(a, b) for a, b in zip(plain, off))
    assert [u["weight"] for e in events for u in e["used"]["controlnet"]] == [0.0] * 6


class Never:
    requested = False


INIT = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)


def frame_pair(pipes, folder, init=INIT, **units):
    """Frame 0 (txt2img) and frame 1 (img2img of ``init``) diffused in-process, and the
    Diffusion that made them."""
    from engine.diffusion import Diffusion
    from engine.progress import Progress

    s = parse_settings({"W": 64, "H": 64, "steps": 6, "max_frames": 2, **units})
    diffusion = Diffusion(pipes, s, Never(), Progress(out=io.StringIO()), folder=folder)
    return (diffusion(None, strength=0, seed=1, noise=0, prompt="cat", frame=0),
            diffusion(init, strength=0.4, seed=2, noise=0.02, prompt="cat", frame=1), diffusion)


def same(pair, other):
    return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pair[:2], other[:2]))


def test_a_unit_masked_out_or_outside_its_steps_leaves_the_frame_as_without_it(pipes,
                                                                               tiny_controlnet,
                                                                               tmp_path):
    cv2.imwrite(str(tmp_path / "black.png"), np.zeros((64, 64), np.uint8))
    unit = {"cn_1_enabled": True, "cn_1_model": str(tiny_controlnet),
            "cn_1_vid_path": str(control_folder(tmp_path / "passes"))}
    plain = frame_pair(pipes, tmp_path)
    assert not same(frame_pair(pipes, tmp_path, **unit), plain)
    assert same(frame_pair(pipes, tmp_path, **unit,
                           cn_1_mask_vid_path=str(tmp_path / "black.png")), plain)
    assert same(frame_pair(pipes, tmp_path, **unit, cn_1_guidance_start="0:(0.99)"), plain)


def test_loopback_on_the_device_loop_s_tensors_gives_the_array_loop_s_picture(
        pipes, tiny_controlnet, tmp_path):
    import torch

    unit = {"cn_1_enabled": True, "cn_1_model": str(tiny_controlnet), "cn_1_loopback_mode": True}
    arrays = frame_pair(pipes, tmp_path, **unit)
    tensors = frame_pair(pipes, tmp_path, init=torch.from_numpy(INIT), **unit)
    assert isinstance(tensors[1], torch.Tensor) and np.array_equal(tensors[1].numpy(), arrays[1])
    assert not same(arrays, frame_pair(pipes, tmp_path))


def test_single_file_controlnet_renders_like_its_folder(pipes, tiny_controlnet, tmp_path):
    from engine.tiny_model import CONTROLNET_FILE_NAME

    frames = str(control_folder(tmp_path / "passes"))
    folder = frame_pair(pipes, tmp_path, cn_1_enabled=True, cn_1_model=str(tiny_controlnet),
                        cn_1_vid_path=frames)
    single = frame_pair(pipes, tmp_path, cn_1_enabled=True, cn_1_vid_path=frames,
                        cn_1_model=str(tiny_controlnet / CONTROLNET_FILE_NAME))
    assert same(folder, single) and not same(folder, frame_pair(pipes, tmp_path))


def test_a_file_that_is_no_controlnet_exits_3_naming_the_unit(pipes, tiny_model, tmp_path):
    from engine.controlnet import ControlNets
    from engine.tiny_model import SINGLE_FILE_NAME

    s = parse_settings({"cn_5_enabled": True, "cn_5_loopback_mode": True,
                        "cn_5_model": str(tiny_model / SINGLE_FILE_NAME)})
    with pytest.raises(ModelError) as info:
        ControlNets(s, pipes, tmp_path)
    assert info.value.key == "cn_5_model" and info.value.exit_code == EXIT_MODEL
    assert SINGLE_FILE_NAME in str(info.value) and "holds no ControlNet weights" in str(info.value)


def test_control_video_and_depth_preprocessor(pipes, tiny_controlnet, tiny_depth, tmp_path):
    video = tmp_path / "control.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for k in range(3):
        picture = np.zeros((64, 96, 3), np.uint8)
        cv2.circle(picture, (20 + 20 * k, 32), 14, (200, 120, 40), -1)
        writer.write(picture)
    writer.release()
    *_, diffusion = frame_pair(pipes, tmp_path, cn_2_enabled=True,
                               cn_2_model=str(tiny_controlnet), cn_2_vid_path=str(video),
                               cn_2_module="depth_midas", depth_model_path=str(tiny_depth))
    assert len(list((tmp_path / "controlnet_2_inputframes").glob("*.jpg"))) == 2  # max_frames
    used = diffusion.used_for(1)["controlnet"]
    assert used[0]["image"] == "frames" and used[0]["module"] == "depth_midas"


def test_sdxl_model_gets_the_sdxl_controlnet_pipelines(tmp_path):
    from engine.models import load_pipelines
    from engine.tiny_model import main as tiny

    assert tiny([str(tmp_path / "xl"), "--sdxl", "--controlnet", str(tmp_path / "xl-cn")]) == 0
    pipes = load_pipelines(str(tmp_path / "xl"), device="cpu")
    unit = {"cn_1_enabled": True, "cn_1_model": str(tmp_path / "xl-cn"),
            "cn_1_vid_path": str(control_folder(tmp_path / "passes"))}
    steered, plain = frame_pair(pipes, tmp_path, **unit), frame_pair(pipes, tmp_path)
    built = type(steered[2].control._built[1]).__name__
    assert built == "StableDiffusionXLControlNetImg2ImgPipeline"
    assert not np.array_equal(steered[1], plain[1])


def test_control_modes_fade_deep_layers_and_leave_the_negative_half_alone(tiny_controlnet):
    import torch
    from diffusers import ControlNetModel

    from engine.controlnet import multi_class

    net = ControlNetModel.from_pretrained(tiny_controlnet, local_files_only=True)
    multi = multi_class()([net])
    sample, hint = torch.randn(2, 4, 8, 8), torch.rand(1, 3, 64, 64).repeat(2, 1, 1, 1)
    text = torch.randn(2, 77, 32)

    def residuals(soft, prompt_only):
        multi.setups = [(soft, prompt_only, None)]
        with torch.no_grad():
            down, mid = multi(sample, 10, text, [hint], [1.0], return_dict=False)
        return [*down, mid]

    balanced, prompt = residuals(False, False), residuals(True, False)
    control = residuals(True, True)
    ratios = [float(p.abs().sum() / b.abs().sum()) for p, b in zip(prompt, balanced)]
    assert ratios[0] == pytest.approx(0.1, rel=1e-4) and ratios[-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(ratios, ratios[1:]))
    assert all(c[0].abs().max() == 0 and torch.equal(c[1], p[1]) for c, p in zip(control, prompt))


def test_webui_file_with_unit_one_set_runs_unchanged(tmp_path, capsys, tiny_model,
                                                     tiny_controlnet):
    data = json.loads((DATA / "webui_defaults.txt").read_text())
    data.update({"cn_1_enabled": True, "cn_1_model": str(tiny_controlnet), "cn_1_module": "canny",
                 "cn_1_vid_path": str(control_folder(tmp_path / "passes")),
                 "cn_1_weight": "0:(0.8)", "cn_1_pixel_perfect": True, "cn_1_low_vram": True,
                 "cn_1_resize_mode": "Outer Fit (Shrink to Fit)", "cn_1_threshold_a": 100,
                 "cn_1_control_mode": "My prompt is more important",
                 "W": 64, "H": 64, "max_frames": 2, "steps": 3})
    loaded_warnings = load_settings_warnings(tmp_path, data)
    assert not [w for w in loaded_warnings if "cn_" in w]
    code, frames, events, warnings = render(tmp_path, capsys, "webui", tiny_model, **data)
    assert code == 0 and len(frames) == 2
    assert not [w for w in warnings if "cn_" in w]
    assert events[1]["used"]["controlnet"][0]["weight"] == 0.8


def load_settings_warnings(tmp_path, data):
    path = tmp_path / "webui.txt"
    path.write_text(json.dumps(data))
    return load_settings(path).warnings


@pytest.mark.parametrize("units, key, code", [
    ({"cn_1_model": "nowhere/control_v11p_sd15_canny [d14c016b]"}, "cn_1_model", EXIT_MODEL),
    ({"cn_1_vid_path": ""}, "cn_1_vid_path", EXIT_SETTINGS),
    ({"cn_1_module": "openpose_full"}, "cn_1_module", EXIT_SETTINGS),
    ({"cn_1_weight": "0:(-1)"}, "cn_1_weight", EXIT_SETTINGS),
    ({"cn_1_vid_path": "missing-folder"}, "cn_1_vid_path", EXIT_SETTINGS),
])
def test_bad_units_stop_before_the_first_frame_naming_the_key(tmp_path, capsys, tiny_model,
                                                             tiny_controlnet, units, key, code):
    unit = {"cn_1_enabled": True, "cn_1_model": str(tiny_controlnet),
            "cn_1_vid_path": str(control_folder(tmp_path / "passes")), **units}
    capsys.readouterr()
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**RUN, **unit}))
    result = main(["--settings", str(path), "--enable_animation_mode", "--model", str(tiny_model),
                   "--outdir", str(tmp_path / "out"), "--progress", "jsonl"])
    error = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")][-1]
    assert result == code and error["event"] == "error" and error["key"] == key
    assert not list((tmp_path / "out").rglob("*.png"))


def test_a_controlnet_of_another_family_is_refused(pipes, tmp_path):
    from engine.controlnet import ControlNets
    from engine.tiny_model import write_tiny_controlnet

    xl = write_tiny_controlnet(tmp_path / "xl", sdxl=True)
    s = parse_settings({"cn_3_enabled": True, "cn_3_model": str(xl), "cn_3_loopback_mode": True})
    with pytest.raises(ModelError) as info:
        ControlNets(s, pipes, tmp_path)
    assert info.value.key == "cn_3_model" and "cross_attention_dim" in str(info.value)


def test_enabled_unit_without_model_is_skipped_with_a_warning(tmp_path):
    from engine.controlnet import enabled_units

    warned = []
    units = enabled_units(parse_settings({"cn_2_enabled": True}), tmp_path,
                          lambda message, key: warned.append(key))
    assert units == [] and warned == ["cn_2_model"]


def test_resize_modes_fit_a_wide_picture_into_a_square():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 6:34] = 200  # the middle is bright, the sides dark
    assert fit(wide, 32, 32, JUST_RESIZE).shape == (32, 32, 3)
    cropped = fit(wide, 32, 32, INNER_FIT)  # scaled to 64×32, the middle 32 kept: bright
    assert cropped.shape == (32, 32, 3) and cropped.min() >= 190
    inside = fit(wide, 32, 32, OUTER_FIT)  # 32×16 band in the middle, dark border fill
    assert inside.shape == (32, 32, 3) and inside[:8].max() == 0 and inside[16, 16, 0] >= 190
    assert pixel_perfect_resolution((20, 40, 3), 32, 32, INNER_FIT) == 32
    assert pixel_perfect_resolution((20, 40, 3), 32, 32, OUTER_FIT) == 16


def test_canny_gives_black_and_white_edges_at_the_output_size():
    picture = np.zeros((100, 100, 3), np.uint8)
    cv2.rectangle(picture, (30, 30), (70, 70), (255, 255, 255), -1)
    edges = control_image(picture, "canny", 100, 100.0, 200.0, (64, 48), INNER_FIT)
    assert edges.shape == (48, 64, 3) and set(np.unique(edges)) == {0, 255}
    assert edges[24, 32].max() == 0 and edges[:, :, 0].sum() > 0  # inside the square: no edge


def test_preprocessors_without_weights_here_are_refused_clearly():
    assert check_module("Canny", "cn_1_module", "") == "canny"
    with pytest.raises(SettingsError) as info:
        check_module("openpose", "cn_4_module", "")
    assert info.value.key == "cn_4_module" and "ready-made control frames" in str(info.value)
    with pytest.raises(SettingsError) as info:
        check_module("depth_midas", "cn_2_module", "")
    assert "depth_model_path" in str(info.value)
    assert check_module("depth_midas", "cn_2_module", "/models/dpt") == "depth_midas"


def test_a_webui_model_name_is_found_beside_the_model_and_urls_are_refused(tmp_path):
    from engine.controlnet import model_file
    from engine.errors import InputError

    (tmp_path / "control_v11p_sd15_canny").mkdir()
    model = str(tmp_path / "sd15.safetensors")
    assert model_file("control_v11p_sd15_canny [d14c016b]", "cn_1_model", model) == \
        tmp_path / "control_v11p_sd15_canny"
    with pytest.raises(InputError) as info:
        model_file("https://example.com/cn.safetensors", "cn_2_model", model)
    assert info.value.key == "cn_2_model" and "never downloads" in str(info.value)
