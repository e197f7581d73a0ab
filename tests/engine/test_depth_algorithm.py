"""The webui's depth_algorithm names choose among the depth models we load locally."""

import pytest

from engine.depth_algorithm import DEPTH_ALGORITHMS, SERVED, check_depth_algorithm
from engine.errors import ModelError, SettingsError
from engine.settings import parse_settings
from tests.engine.test_cli import events, run_engine, write_settings
from tests.engine.tiny_depth import write_tiny_depth_model

UNSERVED = [name for name in DEPTH_ALGORITHMS if name not in SERVED]


def _settings(**changes):
    base = {"animation_mode": "3D", "use_depth_warping": True, "depth_source": "model",
            "depth_model_path": "/models/depth", "depth_algorithm": "Midas-3-Hybrid"}
    return {**base, **changes}


def test_the_webui_names_we_serve_and_those_we_cannot():
    assert SERVED == {"Midas-3-Hybrid": "dpt", "Midas-3.1-BeitLarge": "dpt",
                      "Midas+AdaBins (old)": "dpt", "Depth-Anything-V2-Small": "depth_anything"}
    assert UNSERVED == ["Zoe+AdaBins (old)", "Zoe", "AdaBins", "Leres"]


@pytest.mark.parametrize("name", UNSERVED)
def test_a_name_we_cannot_serve_says_what_to_give_instead(name):
    with pytest.raises(SettingsError) as info:
        check_depth_algorithm(_settings(depth_algorithm=name), folder_kind=lambda p: "dpt")
    message = str(info.value)
    assert info.value.key == "depth_algorithm" and repr(name) in message
    assert "Midas-3-Hybrid" in message and "Depth-Anything-V2-Small" in message
    assert "depth_model_path" in message


@pytest.mark.parametrize("changes", [{"animation_mode": "2D"}, {"use_depth_warping": False},
                                     {"depth_source": "scene"}, {"depth_source": "none"}])
def test_only_a_run_that_estimates_depth_needs_the_model(changes):
    assert check_depth_algorithm(_settings(depth_algorithm="Zoe", **changes)) == []


@pytest.mark.parametrize("name, kind, warns", [
    ("Midas-3-Hybrid", "dpt", False), ("Midas-3.1-BeitLarge", "dpt", False),
    ("Depth-Anything-V2-Small", "depth_anything", False),
    ("Midas-3-Hybrid", "depth_anything", True), ("Depth-Anything-V2-Small", "dpt", True)])
def test_a_name_that_disagrees_with_the_folder_warns(name, kind, warns):
    notices = check_depth_algorithm(_settings(depth_algorithm=name), folder_kind=lambda p: kind)
    assert len(notices) == warns
    if warns:
        assert name in notices[0] and "the folder's model is used" in notices[0]


def test_real_folders_are_told_apart(tmp_path):
    folder = write_tiny_depth_model(tmp_path / "da", "depth_anything")
    notices = check_depth_algorithm(_settings(depth_model_path=str(folder)))
    assert notices == ["depth_algorithm 'Midas-3-Hybrid' is a DPT (MiDaS) model but "
                       "depth_model_path holds a Depth Anything model; the folder's model "
                       "is used"]
    assert check_depth_algorithm(_settings(depth_model_path=str(folder),
                                           depth_algorithm="Depth-Anything-V2-Small")) == []


def test_no_notice_when_the_file_does_not_name_an_algorithm():
    settings = parse_settings({"animation_mode": "3D", "depth_model_path": "/models/da"})
    assert settings["depth_algorithm"] == "Midas-3-Hybrid"  # the webui default
    assert check_depth_algorithm(settings, folder_kind=lambda p: "depth_anything") == []


def test_an_unreadable_folder_is_left_to_the_loader():
    def broken(path):
        raise ModelError("no config.json")
    assert check_depth_algorithm(_settings(), folder_kind=broken) == []


def test_names_match_in_any_case_and_old_files_upgrade():
    assert parse_settings({"depth_algorithm": "zoe"})["depth_algorithm"] == "Zoe"
    assert parse_settings({"depth_algorithm": "midas-3-HYBRID"})["depth_algorithm"] == \
        "Midas-3-Hybrid"
    with pytest.raises(SettingsError) as info:
        parse_settings({"depth_algorithm": "Marigold"})
    assert info.value.key == "depth_algorithm"


def test_cli_stops_with_exit_2_before_rendering(tmp_path):
    path = write_settings(tmp_path, animation_mode="3D", W=64, H=48, max_frames=2,
                          use_zoe_depth=True)  # an older file: Zoe+AdaBins (old)
    result = run_engine("--settings", path, "--enable_animation_mode", "--preview",
                        "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = events(result)[-1]
    assert error["event"] == "error" and error["key"] == "depth_algorithm"
    assert "'Zoe+AdaBins (old)'" in error["message"]
    assert not list(tmp_path.glob("StableFun/*.png"))


def test_cli_warns_when_the_name_disagrees_with_the_folder(tmp_path):
    folder = write_tiny_depth_model(tmp_path / "dpt", "dpt")
    path = write_settings(tmp_path, animation_mode="3D", W=64, H=48, max_frames=2,
                          depth_model_path=str(folder), midas_weight=1.0,
                          depth_algorithm="Depth-Anything-V2-Small")
    result = run_engine("--settings", path, "--enable_animation_mode", "--preview",
                        "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    warnings = [e for e in events(result) if e["event"] == "warning"
                and e.get("key") == "depth_algorithm"]
    assert len(warnings) == 1 and "holds a DPT (MiDaS) model" in warnings[0]["message"]
