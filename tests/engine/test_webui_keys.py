"""Settings files saved by today's webui, and by older versions, load and run unchanged."""

import json
from fnmatch import fnmatch
from pathlib import Path

import pytest

from engine.errors import SettingsError
from engine.settings import load_settings, parse_settings
from engine.settings_table import BY_NAME

from tests.engine.test_cli import events, frames_of, run_engine, start_event

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = ("webui_defaults.txt", "webui_older.txt")
IGNORED = "these settings are recognised but not implemented, and are ignored: "
UNKNOWN = "unknown settings are ignored: "
CONTROLNET = ("cn_[1-5]_*",)
# Keys still not implemented: diffusers' ancestral samplers have no eta to schedule.
PENDING_ELSEWHERE = ("ancestral_eta_schedule", "enable_ancestral_eta_scheduling")


def named_keys(warnings):
    """The keys the loader's warnings name; any other kind of warning fails the test."""
    keys = []
    for warning in warnings:
        prefix = next((p for p in (IGNORED, UNKNOWN) if warning.startswith(p)), None)
        assert prefix, f"unexpected warning: {warning}"
        keys += warning[len(prefix):].split(", ")
    return keys


def unexpected(keys):
    return [k for k in keys if not any(fnmatch(k, p) for p in PENDING_ELSEWHERE)]


@pytest.mark.parametrize("name", FIXTURES)
def test_webui_exports_load_and_warn_only_about_later_keys(name):
    s = load_settings(DATA / name)
    assert unexpected(named_keys(s.warnings)) == []
    for warning in s.warnings:  # each kind of warning once
        assert sum(w.split(":")[0] == warning.split(":")[0] for w in s.warnings) == 1


def test_every_key_of_todays_defaults_is_recognised_with_its_type():
    data = json.loads((DATA / "webui_defaults.txt").read_text())
    s = parse_settings(data)
    unknown = [w for w in s.warnings if w.startswith(UNKNOWN)]
    assert unexpected(named_keys(unknown)) == []
    assert s["hybrid_composite"] == "None" and s["depth_algorithm"] == "Midas-3-Hybrid"
    assert s["cn_5_weight"] == "0:(1)" and s["cn_1_enabled"] is False
    assert s["cn_3_threshold_a"] == 64.0 and s["hybrid_consistency_blur"] == 2
    assert s["color_coherence"] == "Match Frame 0 LAB" and s["skip_video_creation"] is False
    # A run's saved prefix/suffix text is the UI's, not a frame → prompt object.
    assert s["animation_prompts_negative"] == "nsfw, nude" and s["negative_prompts"] == {}


def test_older_export_is_read_as_today_s_webui_reads_it():
    s = load_settings(DATA / "webui_older.txt")
    assert s["hybrid_composite"] == "None" and s["optical_flow_cadence"] == "None"
    assert s["color_coherence"] == "Match Frame 0 LAB" and s["flip_2d_perspective"] is False
    assert s["depth_algorithm"] == "Midas+AdaBins (old)"  # use_zoe_depth: false
    assert s["skip_video_creation"] is False  # skip_video_for_run_all
    assert s["frame_interpolation_engine"] == "None"  # x_amount "Disabled"
    assert s["fill"] == "original" and s["diffusion_cadence"] == 1
    assert s["cn_1_weight"] == "0:(1)" and s["cn_2_resize_mode"] == "Inner Fit (Scale to Fit)"


@pytest.mark.parametrize("old, new", [(True, "Normal"), (False, "None"),
                                      ("After Generation", "After Generation")])
def test_hybrid_composite_old_and_new_values(old, new):
    s = parse_settings({"hybrid_composite": old})
    assert s["hybrid_composite"] == new and s.warnings == []


def test_later_keys_are_typed_and_named_when_wrong():
    with pytest.raises(SettingsError) as info:
        parse_settings({"cn_2_enabled": "maybe"})
    assert info.value.key == "cn_2_enabled" and "true or false" in str(info.value)
    with pytest.raises(SettingsError) as info:
        parse_settings({"hybrid_comp_alpha_schedule": ["0:(1)"]})
    assert info.value.key == "hybrid_comp_alpha_schedule"
    assert parse_settings({"cn_1_guidance_end": 0.5})["cn_1_guidance_end"] == "0:(0.5)"


def test_use_zoe_depth_and_run_prompt_names():
    assert parse_settings({"use_zoe_depth": True})["depth_algorithm"] == "Zoe+AdaBins (old)"
    s = parse_settings({"positive_prompts": "sunny", "negative_prompts": "blurry"})
    assert s["animation_prompts_positive"] == "sunny"
    assert s["animation_prompts_negative"] == "blurry" and s.warnings == []
    # Without the run's positive_prompts, negative_prompts is the notebook's object.
    assert parse_settings({"negative_prompts": "fog"})["negative_prompts"] == {"0": "fog"}


def test_table_defaults_of_controlnet_and_hybrid_keys_are_todays_webui_defaults():
    data = json.loads((DATA / "webui_defaults.txt").read_text())
    for key, value in data.items():
        if any(fnmatch(key, p) for p in CONTROLNET + ("hybrid_*", "extract_*")) and key in BY_NAME:
            assert parse_settings({key: value})[key] == BY_NAME[key].default, key


@pytest.mark.parametrize("name", FIXTURES)
def test_webui_exports_run_in_the_preview(name, tmp_path):
    data = json.loads((DATA / name).read_text())
    data.update(W=64, H=48)
    path = tmp_path / name
    path.write_text(json.dumps(data))
    result = run_engine("--settings", path, "--enable_animation_mode", "--preview",
                        "--max-frames", 2, "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    start = start_event(result)
    done = events(result)[-1]
    assert done["event"] == "done" and done["written"] == 2
    assert len(frames_of(Path(done["outdir"]), start["timestring"])) == 2
    loader = [e["message"] for e in events(result) if e["event"] == "warning"
              and e["message"].startswith((IGNORED, UNKNOWN))]
    assert unexpected(named_keys(loader)) == []
