"""The five ControlNet units as the add-on sees them, without bpy: where each unit's
control images come from, and which of its settings can act.

A unit's settings are the webui's keys ``cn_N_*`` (rows of the settings table). The
add-on adds ``cn_N_source`` (a file or folder as in the webui, or a pass of this scene
rendered per frame before the engine starts), ``cn_N_collection`` (the mask pass's
collection) and ``cn_N_armature`` (the pose pass's rig; empty: every armature).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

GROUP = "controlnet"  # the settings table's group of the cn_N_* rows
UNITS = (1, 2, 3, 4, 5)
FILE = "FILE"
# (value, name, description) of cn_N_source; every value but FILE is a scene pass.
SOURCES = (
    (FILE, "File or Folder", "The video file or image folder in Control Frames, as in the "
     "webui (the unit's preprocessor runs on it)"),
    ("DEPTH", "Scene Depth", "The camera's exact depth, inverse and normalised per frame "
     "like MiDaS (near = white): for depth ControlNets"),
    ("NORMAL", "Scene Normals", "Camera-space normals in the normal_bae colours "
     "(R = left, G = up, B = toward the camera): for normal ControlNets"),
    ("LINEART", "Scene Line Art", "White lines on black where the geometry breaks "
     "(silhouettes, depth jumps, creases): for lineart, canny or scribble ControlNets"),
    ("MASK", "Collection Mask", "White where the camera sees the chosen collection, "
     "black elsewhere (hidden where other objects are in front)"),
    ("OPENPOSE", "Armature Pose", "The armature's pose projected through the camera as the "
     "18-keypoint OpenPose skeleton: for OpenPose ControlNets"),
)
SCENE_PASSES = tuple(value for value, _, _ in SOURCES if value != FILE)
NO_MODEL = ("", "none")  # what the webui writes when a unit has no model


def key(unit: int, name: str) -> str:
    """``cn_{unit}_{name}``: the webui's key of one unit's setting."""
    return f"cn_{unit}_{name}"


def unit_of(name: str) -> int | None:
    """The unit a ``cn_N_*`` key belongs to, else None."""
    parts = name.split("_", 2)
    if len(parts) == 3 and parts[0] == "cn" and parts[1].isdigit():
        return int(parts[1])
    return None


def has_model(value: Any) -> bool:
    """Whether ``cn_N_model`` names a model (the webui writes "None" for none)."""
    return str(value or "").strip().lower() not in NO_MODEL


def active(state: Mapping[str, Any], unit: int) -> bool:
    """A unit that runs: enabled, with a model."""
    return bool(state.get(key(unit, "enabled"))) and has_model(state.get(key(unit, "model")))


def scene_source(state: Mapping[str, Any], unit: int) -> str | None:
    """The scene pass a running unit takes its control images from, else None."""
    source = state.get(key(unit, "source")) or FILE
    return source if active(state, unit) and source in SCENE_PASSES else None


KEYS = tuple(key(u, name) for u in UNITS for name in ("enabled", "model", "source"))
_ALWAYS = ("enabled", "model")  # what a unit without a model still lets you set


def _rule(unit: int, name: str) -> Callable[[Mapping[str, Any]], bool]:
    if name in ("vid_path", "module"):  # a scene pass fills both in
        return lambda s: active(s, unit) and scene_source(s, unit) is None
    return lambda s: active(s, unit)


def acts_when(names: list[str]) -> dict[str, Callable[[Mapping[str, Any]], bool]]:
    """setting → when it acts, for the ``cn_N_*`` keys among ``names``: a unit's settings
    act only when it is enabled with a model; its control frames and preprocessor
    only when its source is a file or folder."""
    rules = {}
    for name in names:
        unit = unit_of(name)
        if unit is not None:
            part = name.split("_", 2)[2]
            if part not in _ALWAYS:
                rules[name] = _rule(unit, part)
    return rules
