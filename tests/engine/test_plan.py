"""The render plan: what ``python -m engine.plan`` writes, how a bad plan is refused, and
frame ranges (``--frames``) of independent modes equal to the whole run."""

from __future__ import annotations

import json
import os

import pytest

from engine.plan import PLAN_VERSION, PlanError, parse_plan, read_plan
from tests.engine.farm_helpers import (SHOT_2D, SHOT_INTERPOLATION, TIMESTRING, frames,
                                       make_plan, python, write_settings)


def test_a_plan_has_a_task_per_2d_shot_and_chunks_after_frame_0_elsewhere(tmp_path):
    shots = [write_settings(tmp_path, "wide", SHOT_2D),
             write_settings(tmp_path, "morph", SHOT_INTERPOLATION)]
    path = make_plan(tmp_path, shots, "plan", "--seeds", "7,8", "--chunk", "2", "--preview")
    plan = read_plan(path)
    assert [s.id for s in plan.shots] == ["wide-seed7", "wide-seed8", "morph-seed7",
                                          "morph-seed8"]
    assert [s.batch_name for s in plan.shots] == ["Farm-seed7", "Farm-seed8", "Morph-seed7",
                                                  "Morph-seed8"]
    assert {s.timestring for s in plan.shots} == {TIMESTRING}
    assert json.loads(open(plan.shots[1].settings).read())["seed"] == 8
    wide = [t for t in plan.tasks if t.shot == "wide-seed7"]
    assert [(t.kind, t.first, t.last) for t in wide] == [("shot", None, None)]  # sequential
    morph = [t for t in plan.tasks if t.shot == "morph-seed7"]
    assert [(t.kind, t.first, t.last, t.after) for t in morph] == [
        ("frames", 0, 0, ()), ("frames", 1, 2, ("morph-seed7",)),
        ("frames", 3, 4, ("morph-seed7",)), ("frames", 5, None, ("morph-seed7",))]
    assert not any(t.gpu for t in plan.tasks)  # a motion preview needs no GPU


def _plan_data() -> dict:
    return {"version": PLAN_VERSION, "outdir": "/tmp/out", "shots": [
        {"id": "a", "settings": "/tmp/a.json", "mode": "2D", "frames": 8, "batch_name": "A",
         "timestring": TIMESTRING}],
        "tasks": [{"id": "a", "kind": "shot", "shot": "a"}]}


@pytest.mark.parametrize("change, key", [
    (lambda d: d.update(version=9), "version"),
    (lambda d: d["shots"][0].update(frames="8"), "shots[0].frames"),
    (lambda d: d["shots"][0].update(timestring="../x"), "shots[0].timestring"),
    (lambda d: d["tasks"][0].update(kind="render"), "tasks[0].kind"),
    (lambda d: d["tasks"][0].update(shot="b"), "tasks[0].shot"),
    (lambda d: d["tasks"][0].update(after=["later"]), "tasks[0].after"),
    (lambda d: d["tasks"].append({"id": "a", "kind": "shot", "shot": "a"}), "tasks[1].id"),
    (lambda d: d["tasks"][0].update(kind="frames", first=5, last=2), "tasks[0].first"),
    (lambda d: d.pop("outdir"), "outdir"),
    (lambda d: d.update(outdir="relative/out"), "outdir"),
])
def test_a_bad_plan_is_refused_naming_the_field(change, key):
    data = _plan_data()
    parse_plan(data)
    change(data)
    with pytest.raises(PlanError) as caught:
        parse_plan(data)
    assert caught.value.key == key and key in str(caught.value)


def test_the_farm_command_says_what_is_wrong_with_a_plan_and_exits_2(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({**_plan_data(), "tasks": [{"id": "a", "kind": "x",
                                                          "shot": "a"}]}))
    done = python("-m", "engine.farm", "local", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert "tasks[0].kind" in done.stderr and "Traceback" not in done.stderr
    done = python("-m", "engine.plan", str(bad), "-o", str(tmp_path / "p.json"), "--seeds",
                  "1,x", cwd=tmp_path)
    assert done.returncode == 2 and "seeds" in done.stderr and "Traceback" not in done.stderr


def test_the_plan_file_is_neither_a_folder_nor_a_settings_file_it_reads(tmp_path):
    shot = write_settings(tmp_path, "wide", SHOT_2D)
    (tmp_path / "plans").mkdir()
    for output, why in (("plans", "it is a folder"),
                        ("wide.json", "it is one of the settings files the plan reads")):
        done = python("-m", "engine.plan", str(shot), "-o", output, "--preview", cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"output: '{output}' cannot be the plan file: {why}" in done.stderr
    assert json.loads(shot.read_text()) == SHOT_2D
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plans", "wide.json"]


def test_a_video_input_shot_whose_clip_is_no_video_is_refused_when_planned(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    for clip, why in (("notes.mp4", "could not be decoded as a video"),
                      ("missing.mp4", "video not found")):
        shot = write_settings(tmp_path, "clip", {"animation_mode": "Video Input", "W": 64,
                                                 "H": 64, "video_init_path": str(tmp_path / clip)})
        done = python("-m", "engine.plan", str(shot), "-o", "plan.json", "--preview",
                      cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "error: video_init_path: " in done.stderr and why in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.json", "notes.mp4"]


def test_a_prompts_file_that_is_a_pipe_is_refused_not_waited_on(tmp_path):
    shot = write_settings(tmp_path, "wide", SHOT_2D)
    os.mkfifo(tmp_path / "prompts.json")  # no writer: reading it would wait for ever
    done = python("-m", "engine.plan", str(shot), "-o", "plan.json", "--preview",
                  "--prompts-file", "prompts.json", cwd=tmp_path, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: prompts_file: 'prompts.json' is not a regular file" in done.stderr


def test_a_2d_shot_cannot_be_split_into_frame_ranges(tmp_path):
    shot = write_settings(tmp_path, "wide", SHOT_2D)
    done = python("-m", "engine", "--settings", str(shot), "--enable_animation_mode",
                  "--preview", "--frames", "2-4", "--outdir", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "frames: animation_mode '2D'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "Farm").exists()


def test_interpolation_in_chunks_equals_one_run(tmp_path, tiny_model):
    shot = write_settings(tmp_path, "morph", SHOT_INTERPOLATION)
    plan = make_plan(tmp_path, [shot], "plan", "--model", str(tiny_model), "--chunk", "5")
    done = python("-m", "engine.farm", "local", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    chunked = frames(tmp_path / "plan-out")
    assert len(chunked) == 6
    whole = python("-m", "engine", "--settings", str(shot), "--enable_animation_mode",
                   "--model", str(tiny_model), "--timestring", TIMESTRING, "--threads", "1",
                   "--outdir", str(tmp_path / "whole"), cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert frames(tmp_path / "whole") == chunked


def test_video_input_in_chunks_equals_one_run_and_a_retry_renders_only_what_is_missing(
        tmp_path):
    """Colour coherence 'Video Input' refreshes its reference every N clip frames: a chunk
    starting inside a block takes that block's frame, as the whole run does."""
    import cv2
    import numpy as np

    clip = tmp_path / "clip"
    clip.mkdir()
    rng = np.random.default_rng(3)
    for k in range(7):
        low = 20 * k  # every clip frame has colours of its own
        cv2.imwrite(str(clip / f"{k:03d}.png"), rng.integers(low, low + 100, (48, 64, 3),
                                                             np.uint8))
    shot = write_settings(tmp_path, "clip", {
        "batch_name": "Clip", "animation_mode": "Video Input", "W": 64, "H": 48,
        "video_init_path": str(clip), "color_coherence": "Video Input",
        "legacy_colormatch": False, "color_coherence_video_every_N_frames": 3})
    plan = make_plan(tmp_path, [shot], "plan", "--preview", "--chunk", "2")
    assert [(t.first, t.last) for t in read_plan(plan).tasks] == [(0, 0), (1, 2), (3, 4),
                                                                  (5, None)]
    done = python("-m", "engine.farm", "local", str(plan), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    whole = python("-m", "engine", "--settings", str(shot), "--enable_animation_mode",
                   "--preview", "--timestring", TIMESTRING, "--outdir", str(tmp_path / "whole"),
                   cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert len(frames(tmp_path / "whole")) == 7
    chunked = frames(tmp_path / "plan-out")
    assert chunked == frames(tmp_path / "whole")
    folder = tmp_path / "plan-out" / "Clip"
    (folder / f"{TIMESTRING}_00004.png").unlink()  # lost in a crash
    kept = (folder / f"{TIMESTRING}_00003.png").stat().st_mtime_ns
    again = python("-m", "engine.farm", "task", str(plan), "clip.f00003", cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # the retry renders what is missing, only
    assert frames(tmp_path / "plan-out") == chunked
    assert (folder / f"{TIMESTRING}_00003.png").stat().st_mtime_ns == kept
