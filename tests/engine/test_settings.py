"""Settings files of every Deforum dialect load, validate and round-trip."""

import os
import re
from pathlib import Path

import pytest

from engine.errors import InputError, SettingsError
from engine.settings import effective_settings, load_settings, parse_settings, write_settings_file
from engine.settings_table import ALIASES, BY_NAME, SETTINGS, TYPES

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]


def test_table_is_complete_and_consistent():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert not set(ALIASES) & set(names)
    for s in SETTINGS:
        assert s.type in TYPES and s.help, s.name
        if s.type == "choice":
            assert s.default in s.choices, s.name
    assert len([s for s in SETTINGS if s.used]) >= 75


def test_defaults_are_the_notebook_defaults():
    s = parse_settings({})
    assert s["animation_mode"] == "None" and s["max_frames"] == 1000
    assert s["zoom"] == "0:(1.04)" and s["translation_z"] == "0:(10)"
    assert s["color_coherence"] == "Match Frame 0 LAB" and s["diffusion_cadence"] == 1
    assert s["sampler"] == "euler_ancestral" and s["steps"] == 50 and s["seed"] == -1
    assert s.warnings == []


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_every_alias_sets_its_setting(alias):
    name = ALIASES[alias]
    sample = {"int": 64, "float": 0.5, "bool": True, "schedule": "0:(3)", "str": "x",
              "path": "x", "prompts": {"0": "hello"}}[BY_NAME[name].type]
    settings = parse_settings({alias: sample})
    assert settings[name] == sample
    assert name in settings.given


def test_local_cli_settings_file():
    s = load_settings(DATA / "runSettings_3D_local.txt")
    assert (s["W"], s["H"]) == (512, 512)
    assert s["animation_mode"] == "3D" and s["diffusion_cadence"] == 3
    assert s["border"] == "replicate"          # the template's "warp" typo
    assert s["fov"] == "0:(40)" and s["near_plane"] == "0:(200)"
    assert s["save_depth_maps"] is True and s["still_prompts"][0].startswith("a scifi")
    assert s["animation_prompts"]["6"].startswith("a beautiful forest")
    assert s.warnings == []  # every guidance key is at its no-effect default


def test_webui_settings_file():
    s = load_settings(DATA / "webui_2D.txt")
    assert s["sampler"] == "euler_ancestral" and s["color_coherence"] == "Match Frame 0 LAB"
    assert s["fov"] == "0: (70)" and s["flip_2d_perspective"] is False
    assert s.prompts().at(4) == ("anthropomorphic clean cat, surrounded by fractals, epic "
                                 "angle and pose, symmetrical, 3d, depth of field",
                                 "nsfw, nsfw, nude")  # own --neg, then the webui suffix
    # Every key of this webui file is honoured now (noise, anti-blur, depth_algorithm …)
    # or at a default that changes nothing, so nothing is listed as not implemented.
    assert s["depth_algorithm"] == "Midas-3-Hybrid"
    assert [w for w in s.warnings if "not implemented" in w] == []


def test_ignored_and_unknown_keys_are_each_listed_once():
    s = parse_settings({"clip_scale": 1000, "aesthetics_scale": 3, "my_key": 1,
                        "other": 2})
    assert s.warnings == [
        "these settings are recognised but not implemented, and are ignored: "
        "aesthetics_scale, clip_scale",
        "unknown settings are ignored: my_key, other"]


@pytest.mark.parametrize("data, key, fragment", [
    ({"max_frames": "many"}, "max_frames", "'many' is not valid; expected a whole number"),
    ({"max_frames": 2.5}, "max_frames", "2.5"),
    ({"max_frames": 0}, "max_frames", "between 1"),
    ({"W": True}, "W", "True"),
    ({"use_init": "maybe"}, "use_init", "true or false"),
    ({"animation_mode": "4D"}, "animation_mode", "'4D' is not valid; expected one of 'None'"),
    ({"zoom": ["0:(1)"]}, "zoom", "expected a schedule"),
    ({"zoom": "0:(1.04"}, "zoom", "unbalanced"),
    ({"translation_x": "0:(os.system(1))"}, "translation_x", "os.system"),
    ({"animation_prompts": 3}, "animation_prompts", "frame → prompt"),
    ({"width": "wide"}, "W", "width (W): 'wide'"),
    ({"ddim_eta": -1}, "ddim_eta", "-1 is not valid; expected a number of at least 0.0"),
    ({"fps": 1e300}, "fps", "1e+300 is not valid; expected a number between 0.01 and 1000"),
])
def test_bad_values_name_key_value_and_expectation(data, key, fragment):
    with pytest.raises(SettingsError) as info:
        parse_settings(data)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_lenient_conversions_deforum_files_rely_on():
    s = parse_settings({"diffusion_cadence": "2", "fps": 24, "use_init": "True",
                        "seed": 5.0, "zoom": 1.02, "W": 500})
    assert s["diffusion_cadence"] == 2 and s["fps"] == 24.0 and s["use_init"] is True
    assert s["seed"] == 5 and s["zoom"] == "0:(1.02)" and s["W"] == 496
    assert any("rounded down to 496" in w for w in s.warnings)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text('{\n  "W": 512,\n  "H": 512\n  "zoom": "0:(1)"\n}')
    with pytest.raises(SettingsError, match=r"not valid JSON: Expecting ',' delimiter at line 4 "
                                            r"column 3"):
        load_settings(path)


def test_missing_file_and_wrong_top_level(tmp_path):
    with pytest.raises(InputError, match="settings file not found"):
        load_settings(tmp_path / "nope.txt")
    (tmp_path / "list.txt").write_text("[1, 2]")
    with pytest.raises(SettingsError, match="expected a JSON object"):
        load_settings(tmp_path / "list.txt")


def test_schedule_without_frame_zero_warns_but_loads():
    s = parse_settings({"zoom": "5:(1.1)"})
    assert any("zoom: no key at frame 0" in w for w in s.warnings)


def test_effective_settings_round_trip(tmp_path):
    original = load_settings(DATA / "webui_2D.txt")
    path = write_settings_file(tmp_path / "x_settings.txt",
                               effective_settings(original.replace(timestring="x")))
    again = load_settings(path)
    assert dict(again) == {**dict(original), "timestring": "x"}
    assert again.warnings == [w for w in original.warnings if "not implemented" in w]
    with pytest.raises(FileExistsError):
        write_settings_file(path, {})


def test_no_eval_exec_or_numexpr_anywhere():
    pattern = re.compile(r"(?<![\w.])(eval|exec|compile|__import__)\s*\(|\bnumexpr\.|"
                         r"import\s+numexpr|getattr\(\s*builtins")
    offenders = []
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("addon/**/*.py"),
                 *ROOT.glob("operators/**/*.py"), *ROOT.glob("panels/**/*.py"),
                 ROOT / "__init__.py"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_settings_file_that_is_no_regular_file_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # no writer: opening it to read would wait forever
    for path in (tmp_path / "pipe.txt", Path("/dev/zero")):
        with pytest.raises(InputError, match=r"settings: '.*' is not a regular file"):
            load_settings(path)


def test_a_settings_file_over_96_mib_is_refused(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as handle:
        handle.truncate(96 * 2**20 + 1)  # sparse: no disk used
    with pytest.raises(InputError, match=r"settings: '.*huge.txt' is over 96 MiB"):
        load_settings(huge)


def test_a_folder_as_settings_file_is_named_in_the_error(tmp_path):
    with pytest.raises(InputError, match=rf"settings file {tmp_path} cannot be read: "
                       rf"\[Errno 21\] Is a directory: '{tmp_path}'"):
        load_settings(tmp_path)
