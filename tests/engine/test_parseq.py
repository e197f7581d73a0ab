"""Parseq manifests drive a run exactly as a settings file with the same per-frame values.

The manifests are built like Parseq's own: ``options``, ``rendered_frames`` of
per-frame objects carrying absolute values, ``*_delta`` changes per frame,
``*_pc`` positions and the ``deforum_prompt``, plus fields this engine ignores.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.settings import effective_settings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
MOTION = ("translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y",
          "rotation_3d_z", "angle", "zoom")


def run_engine(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def deltas(frame: int) -> dict[str, float]:
    """Motion per frame (what Deforum's schedules mean), rounded like Parseq's output."""
    return {"translation_x": round(2 * math.sin(frame / 2), 4),
            "translation_y": round(0.5 * frame, 4), "translation_z": round(1 + frame / 4, 4),
            "rotation_3d_x": 0.25, "rotation_3d_y": round(-0.5 * math.cos(frame), 4),
            "rotation_3d_z": 0.1, "angle": round(0.3 * frame, 4),
            "zoom": round(1.0 + 0.01 * frame, 4)}


def per_frame(frames: int) -> list[dict]:
    """The other fields of each frame."""
    return [{"strength": round(0.55 + 0.05 * (f % 3), 4), "noise": round(0.01 * f, 4),
             "contrast": round(1.0 - 0.01 * f, 4), "seed": 100 + 7 * f, "fov": 40 + f,
             "near": 200, "far": 10000, "scale": 6,
             "deforum_prompt": "a red house --neg fog" if f < 3 else "a blue lake"}
            for f in range(frames)]


def manifest(frames: int, **options) -> dict:
    """A Parseq manifest: absolute motion is the running sum (product for zoom) of the deltas."""
    rows, absolute = [], {key: 1.0 if key == "zoom" else 0.0 for key in MOTION}
    for f, extra in enumerate(per_frame(frames)):
        change = deltas(f)
        for key in MOTION:
            absolute[key] = absolute[key] * change[key] if key == "zoom" else \
                absolute[key] + change[key]
        row = {"frame": f, **extra, "subseed": 1, "subseed_strength": 0, "antiblur_kernel": 5}
        for key in MOTION:
            row[key], row[key + "_delta"] = round(absolute[key], 6), change[key]
            row[key + "_pc"] = 0.0
        rows.append(row)
    return {"meta": {"generated_by": "sd_parseq", "version": "0.1.94"},
            "options": {"output_fps": 20, "cadence": 1, **options},
            "keyframes": [{"frame": 0}, {"frame": frames - 1}],
            "rendered_frames": rows, "rendered_frames_meta": {}}


def schedule(values) -> str:
    return ", ".join(f"{f}:({float(v)!r})" for f, v in enumerate(values))


def equivalent(data: dict, use_deltas: bool = True) -> dict:
    """The settings file a user would write by hand for the manifest ``data``."""
    rows = data["rendered_frames"]
    out = {key: schedule(r[key + "_delta" if use_deltas else key] for r in rows)
           for key in MOTION}
    for key, field in (("strength_schedule", "strength"), ("noise_schedule", "noise"),
                       ("contrast_schedule", "contrast"), ("seed_schedule", "seed"),
                       ("fov", "fov"), ("near_plane", "near"), ("far_plane", "far")):
        out[key] = schedule(r[field] for r in rows)
    prompts = {"0": rows[0]["deforum_prompt"], "3": rows[3]["deforum_prompt"]}
    return {**out, "seed_behavior": "schedule", "animation_prompts": prompts, "scale": 6,
            "max_frames": len(rows), "fps": 20, "diffusion_cadence": 1}


def render(tmp_path, name, settings, *extra):
    path = tmp_path / f"{name}.txt"
    path.write_text(json.dumps(settings))
    out = tmp_path / name
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", out, *extra)
    assert result.returncode == 0, result.stderr
    return [p.read_bytes() for p in sorted(out.rglob("*_[0-9][0-9][0-9][0-9][0-9].png"))]


BASE = {"W": 64, "H": 64, "seed": 5, "color_coherence": "None", "use_depth_warping": False,
        "animation_prompts_positive": "ignored with Parseq prompts"}


@pytest.mark.parametrize("mode", ["2D", "3D"])
def test_preview_of_a_manifest_is_the_preview_of_the_same_settings(tmp_path, mode):
    data = manifest(6)
    base = {**BASE, "animation_mode": mode, "max_frames": 50, "diffusion_cadence": 3}
    from_manifest = render(tmp_path, "parseq", {**base, "parseq_manifest": json.dumps(data)},
                           "--preview")
    by_hand = render(tmp_path, "file", {**base, **equivalent(data),
                                        "animation_prompts_positive": ""}, "--preview")
    assert len(from_manifest) == 6 and from_manifest == by_hand
    still = render(tmp_path, "still", {**base, "max_frames": 6, **{k: "0:(0)" for k in MOTION},
                                       "zoom": "0:(1)"}, "--preview")
    assert from_manifest[1:] != still[1:]  # the manifest's motion is really there


def test_frames_with_the_tiny_model_match_the_same_settings(tmp_path):
    from engine.tiny_model import write_tiny_model

    model = write_tiny_model(tmp_path / "tiny", single_file=True)
    data = manifest(4)
    base = {**BASE, "animation_mode": "3D", "steps": 4, "sampler": "euler"}
    from_file = tmp_path / "manifest.json"
    from_file.write_text(json.dumps(data))
    from_manifest = render(tmp_path, "parseq", {**base, "parseq_manifest": str(from_file)},
                           "--model", model)
    by_hand = render(tmp_path, "file", {**base, **equivalent(data),
                                        "animation_prompts_positive": ""}, "--model", model)
    assert len(from_manifest) == 4 and from_manifest == by_hand


@pytest.mark.parametrize("use_deltas", [True, False])
def test_deltas_or_absolute_values_drive_the_motion(use_deltas):
    data = manifest(5)
    loaded = parse_settings({"parseq_manifest": data, "parseq_use_deltas": use_deltas})
    want = parse_settings(equivalent(data, use_deltas))
    for key in MOTION:
        assert list(loaded.schedule(key).values(5)) == list(want.schedule(key).values(5)), key
    assert loaded["translation_y"] != equivalent(data, not use_deltas)["translation_y"]


def test_frames_beyond_the_manifest_hold_its_last_values_and_options_can_be_ignored():
    data = manifest(4, cadence=2)
    loaded = parse_settings({"parseq_manifest": data, "parseq_non_schedule_overrides": False,
                             "max_frames": 7, "fps": 12, "diffusion_cadence": 3})
    assert (loaded["max_frames"], loaded["fps"], loaded["diffusion_cadence"]) == (7, 12, 3)
    z = list(loaded.schedule("translation_z").values(7))
    assert z[3:] == [data["rendered_frames"][3]["translation_z_delta"]] * 4
    assert loaded.prompts().at(6) == ("a blue lake", "")
    overridden = parse_settings({"parseq_manifest": data, "max_frames": 7})
    assert (overridden["max_frames"], overridden["fps"], overridden["diffusion_cadence"]) == \
        (4, 20, 2)


def test_the_effective_settings_are_ordinary_settings():
    loaded = parse_settings({"parseq_manifest": json.dumps(manifest(4))})
    effective = effective_settings(loaded)
    assert effective["parseq_manifest"] == "" and effective["seed_behavior"] == "schedule"
    again = parse_settings(effective)
    assert effective_settings(again) == effective
    assert any("subseed" in note and "antiblur_kernel" in note for note in loaded.warnings)


def _with(change) -> str:
    data = manifest(3)
    change(data)
    return json.dumps(data)


BAD = {
    "url": ("https://example.com/parseq/doc.json", "URL"),
    "not json": ("{\"rendered_frames\": [", "not valid JSON"),
    "no frames": (json.dumps({"options": {}}), "rendered_frames"),
    "text value": (_with(lambda d: d["rendered_frames"][1].update(strength="high")), "strength"),
    "missing value": (_with(lambda d: d["rendered_frames"][2].pop("translation_x_delta")),
                      "translation_x_delta"),
    "infinite": (_with(lambda d: d["rendered_frames"][1].update(noise="INF")).replace(
        '"INF"', "1e400"), "noise"),
    "huge": (_with(lambda d: d["rendered_frames"][1].update(seed=10**400)), "seed"),
    "bad frame": (_with(lambda d: d["rendered_frames"][1].update(frame=-1)), "frame"),
    "missing file": ("no/such/manifest.json", "cannot be read"),
    "bad cadence": (_with(lambda d: d["options"].update(cadence=2.5)), "options.cadence"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_url_or_a_malformed_manifest_exits_2_naming_parseq_manifest(tmp_path, case):
    value, detail = BAD[case]
    path = tmp_path / "s.txt"
    path.write_text(json.dumps({**BASE, "animation_mode": "2D", "parseq_manifest": value}))
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--preview")
    assert result.returncode == 2, result.stderr
    assert "parseq_manifest" in result.stderr and detail in result.stderr
    assert "Traceback" not in result.stderr


def test_a_varying_guidance_scale_becomes_the_per_frame_cfg_schedule():
    data = manifest(5)
    for f, row in enumerate(data["rendered_frames"]):
        row["scale"] = 5 + f
    s = parse_settings({**BASE, "animation_mode": "2D", "parseq_manifest": data})
    assert list(s.schedule("cfg_scale_schedule").values(5)) == [5, 6, 7, 8, 9]
    assert s["scale"] == 5
    assert not any("scale" in w and "Parseq" in w for w in s.warnings)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_manifest_file_that_is_no_regular_file_is_refused_not_waited_on(tmp_path):
    from engine.errors import SettingsError

    os.mkfifo(tmp_path / "manifest.json")
    with pytest.raises(SettingsError, match=r"parseq_manifest: '.*' is not a regular file"):
        parse_settings({"parseq_manifest": str(tmp_path / "manifest.json")})
