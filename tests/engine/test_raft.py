"""RAFT optical flow from a local torchvision weights file (``raft_model_path``)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import SettingsError
from engine.flow import check_methods, estimate
from engine.raft import expected_keys, load_raft
from engine.settings import parse_settings
from engine.tiny_model import write_tiny_raft

from tests.engine.test_cli import run_engine, write_settings
from tests.engine.test_flow import texture
from tests.engine.test_hybrid import translation, write_clip

TORCHVISION_KEYS = Path(__file__).parent / "data" / "raft_torchvision_keys.json"


def test_weight_names_and_shapes_are_torchvision_s():
    """The fixture lists every tensor of torchvision 0.28's ``raft_small()`` and
    ``raft_large()`` state dicts (name → shape, in order), written once from torchvision's
    own models; a user's downloaded weights file loads only if ours match it exactly."""
    recorded = json.loads(TORCHVISION_KEYS.read_text())
    for kind in ("small", "large"):
        ours = expected_keys(kind)
        assert list(ours) == list(recorded[kind])
        assert ours == {name: tuple(shape) for name, shape in recorded[kind].items()}


def settings_with(raft_path, **values):
    return parse_settings({"animation_mode": "2D", "optical_flow_cadence": "RAFT",
                           "raft_model_path": str(raft_path), "device": "cpu", **values})


def test_the_tiny_weights_load_through_raft_model_path_and_give_a_flow(tiny_raft):
    check_methods(settings_with(tiny_raft))
    image = texture()
    flow = estimate(image, image, "RAFT")
    assert flow.shape == image.shape[:2] + (2,) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    odd = texture()[:41, :53]   # neither side a multiple of 8, both under RAFT's 128
    assert estimate(odd, np.roll(odd, 2, axis=1), "RAFT").shape == (41, 53, 2)


def test_a_safetensors_copy_loads_as_the_same_model(tmp_path, tiny_raft):
    copy = write_tiny_raft(tmp_path / "raft.safetensors")
    image, moved = texture(), np.roll(texture(), 3, axis=1)
    assert load_raft(str(copy)).kind == "small"
    from_pth = load_raft(str(tiny_raft))(image, moved)
    assert np.array_equal(load_raft(str(copy))(image, moved), from_pth)


def test_weights_that_are_not_raft_are_refused_naming_the_setting(tmp_path):
    foreign = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(SettingsError) as caught:
        check_methods(settings_with(foreign))
    assert caught.value.key == "raft_model_path" and "raft_small" in str(caught.value)


def run_2d(tmp_path, **values):
    path = write_settings(tmp_path, animation_mode="2D", W=64, H=48, max_frames=3,
                          diffusion_cadence=2, translation_x="0:(2)", **values)
    out = tmp_path / "out"
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", out,
                        "--progress", "jsonl")
    return result, sorted(out.rglob("*_0000[0-9].png"))


def test_optical_flow_cadence_runs_with_raft(tmp_path, tiny_raft):
    result, frames = run_2d(tmp_path, optical_flow_cadence="RAFT",
                            raft_model_path=str(tiny_raft))
    assert result.returncode == 0, result.stderr
    assert len(frames) == 3


def test_hybrid_optical_flow_runs_with_raft(tmp_path, tiny_raft):
    clip = write_clip(tmp_path / "clip", translation)
    result, frames = run_2d(tmp_path, hybrid_motion="Optical Flow", hybrid_flow_method="RAFT",
                            video_init_path=str(clip), raft_model_path=str(tiny_raft))
    assert result.returncode == 0, result.stderr
    assert len(frames) == len(list(clip.iterdir()))  # a hybrid run is as long as its clip


@pytest.mark.parametrize("weights", ["", "missing.pth", "corrupt.pth"])
def test_unusable_raft_weights_stop_the_run_before_any_frame(tmp_path, weights):
    (tmp_path / "corrupt.pth").write_bytes(b"not a torch file")
    value = str(tmp_path / weights) if weights else ""
    result, frames = run_2d(tmp_path, optical_flow_cadence="RAFT", raft_model_path=value)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "raft_model_path" in output and (weights or "optical_flow_cadence") in output
    assert "Traceback" not in result.stderr and frames == []


def test_the_scenes_flow_needs_no_raft_weights_where_it_replaces_the_estimate():
    """With ``flow_source`` scene, cadence and hybrid flow take the scene's flow whatever
    the method; only redo (which always estimates) still asks for the weights."""
    from engine.hybrid import check_hybrid

    scene = dict(raft_model_path="", flow_source="scene")
    check_methods(settings_with("", **scene))
    check_hybrid(parse_settings({"hybrid_motion": "Optical Flow", "hybrid_flow_method": "RAFT",
                                 **scene}))
    with pytest.raises(SettingsError, match="optical_flow_redo_generation 'RAFT'"):
        check_methods(settings_with("", optical_flow_redo_generation="RAFT", **scene))
    with pytest.raises(SettingsError, match="hybrid_flow_method 'RAFT'"):
        check_hybrid(parse_settings({"hybrid_motion": "Optical Flow",
                                     "hybrid_flow_method": "RAFT",
                                     "hybrid_motion_use_prev_img": True, **scene}))
