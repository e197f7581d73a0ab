"""The ControlNet units of a job: for each unit that runs with a scene pass as its source,
the pass that renders its control images before the engine starts.

A unit's images go to ``<job>_control/unit<N>/{k:05d}.png`` (engine frame k = Blender
frame start + k) at the job's W×H; the job's settings then point ``cn_N_vid_path``
at that folder with ``cn_N_module`` "none": the images are ready-made control frames,
read by the engine as an image folder, exactly like a webui user's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import controlnet_units, relevance, tidy
from .scene_passes import geometry, mask, pose
from .scene_passes.driver import ScenePass

GEOMETRY = (geometry.DEPTH, geometry.NORMAL, geometry.LINEART)


def _unit_pass(scene, unit: int, source: str, folder: Path) -> ScenePass:
    settings = scene.deforum
    setting = controlnet_units.key(unit, "source")
    if source in GEOMETRY:
        return geometry.geometry_pass(scene, folder, source, setting)
    if source == "OPENPOSE":
        rig = getattr(settings, controlnet_units.key(unit, "armature"))
        if rig is not None and rig.type != "ARMATURE":
            raise ValueError(f"{controlnet_units.key(unit, 'armature')}: {rig.name!r} is not "
                             "an armature")
        return pose.pose_pass(scene, folder, rig.name if rig is not None else "", setting)
    collection = getattr(settings, controlnet_units.key(unit, "collection"))
    if collection is None:
        raise ValueError(f"{controlnet_units.key(unit, 'collection')}: unit {unit}'s source "
                         "is Collection Mask; choose the collection that is white in it")
    return mask.mask_pass(scene, folder, collection, setting=setting)


def control_passes(scene, data: dict[str, Any], jobs_dir: Path, stem: str) -> list[ScenePass]:
    """The passes of every running unit whose source is a scene pass, each pointing
    ``data`` at its folder (ValueError naming the setting when a pass lacks its input)."""
    state = relevance.snapshot(scene.deforum)
    passes = []
    for unit in controlnet_units.UNITS:
        source = controlnet_units.scene_source(state, unit)
        if source is None:
            continue
        folder = tidy.scratch(jobs_dir, stem, tidy.CONTROL) / f"unit{unit}"
        passes.append(_unit_pass(scene, unit, source, folder))
        data[controlnet_units.key(unit, "vid_path")] = str(folder)
        data[controlnet_units.key(unit, "module")] = "none"
    return passes
