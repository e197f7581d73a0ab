"""The plan as an Open Job Description job bundle: the template of a three-shot plan (one
shot with a scene pass) passes ``openjd check``, and ``openjd run`` of one shot's task
renders that shot's frames (the Ray test checks that a task's frames equal the
one-machine run's)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.plan import read_plan, with_scene_pass, write_plan
from engine.output import decodes
from tests.engine.farm_helpers import (SHOT_2D, SHOT_INTERPOLATION, TIMESTRING, engine_env,
                                       frames, make_plan, python, write_settings)

yaml = pytest.importorskip("yaml")
OPENJD = shutil.which("openjd") or str(Path(sys.executable).with_name("openjd"))
if not Path(OPENJD).exists():
    pytest.skip("openjd-cli is not installed (requirements-farm.txt)", allow_module_level=True)


def _three_shots(tmp_path: Path, name: str, model: Path) -> Path:
    """2D, Interpolation (frame 0 then chunks) and 2D with a scene pass before it."""
    shots = [write_settings(tmp_path, "wide", SHOT_2D),
             write_settings(tmp_path, "morph", SHOT_INTERPOLATION),
             write_settings(tmp_path, "close", {**SHOT_2D, "batch_name": "Close"})]
    plan_path = make_plan(tmp_path, shots, name, "--model", str(model), "--chunk", "3")
    blender = ["blender", "-b", str(tmp_path / "close.blend"), "--python",
               "/addon/batch.py", "--", "--passes-only", "--settings-out", str(shots[2])]
    write_plan(with_scene_pass(read_plan(plan_path), ["close"], blender), plan_path)
    return plan_path


def test_the_bundle_passes_openjd_check_and_runs_one_shot(tmp_path, tiny_model):
    plan = _three_shots(tmp_path, "farm", tiny_model)
    bundle = tmp_path / "bundle"
    done = python("-m", "engine.farm", "openjd", str(plan), "--out", str(bundle), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    template = yaml.safe_load((bundle / "template.yaml").read_text())
    steps = {s["name"]: s for s in template["steps"]}
    assert list(steps) == ["ScenePasses", "Shots", "Frames"]
    assert steps["Shots"]["dependencies"] == [{"dependsOn": "ScenePasses"}]
    assert steps["Shots"]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == [
        "wide", "morph", "close"]
    assert (bundle / "parameter_values.yaml").is_file()
    check = subprocess.run([OPENJD, "check", str(bundle / "template.yaml")],
                           capture_output=True, text=True, env=engine_env())
    assert check.returncode == 0, check.stdout + check.stderr

    run = subprocess.run([OPENJD, "run", str(bundle / "template.yaml"), "--step", "Shots",
                          "--task-param", "Shot=wide", "--no-run-dependencies"],
                         capture_output=True, text=True, env=engine_env(), cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    got = frames(tmp_path / "farm-out")
    assert len(got) == 8 and all(name.startswith("Farm/") for name in got)

    assert all(decodes(tmp_path / "farm-out" / name) for name in got)
    assert (tmp_path / "farm-out" / "Farm" / f"{TIMESTRING}_settings.txt").is_file()


def test_a_bundle_folder_that_cannot_be_one_is_refused_by_name(tmp_path):
    plan = make_plan(tmp_path, [write_settings(tmp_path, "wide", SHOT_2D)], "farm", "--preview")
    (tmp_path / "a-file").write_text("kept")
    for out, why in (("a-file", "it is not a folder"), ("", "it is empty")):
        done = python("-m", "engine.farm", "openjd", str(plan), "--out", out, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"error: out: '{out}' cannot be the output folder: {why}" in done.stderr
    assert (tmp_path / "a-file").read_text() == "kept"
    assert not (tmp_path / "template.yaml").exists()
