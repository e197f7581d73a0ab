"""ControlNet OpenPose images from armatures: the evaluated pose of each frame projected
through the scene camera into the 18-keypoint skeleton image, ``{k:05d}.png`` at W×H.

Nothing is rendered: each joint is a bone's head (``openpose`` holds the bone-name
table and the drawing), taken from the evaluated pose at that frame and projected
with ``world_to_camera_view`` at the job's W×H (the render resolution is set to it for
the projection and restored). A joint behind the camera or outside the picture, or
whose bone is hidden, is left out, as an estimator leaves out what it cannot see; a
joint inside the body mesh is never hidden by it (the bones always are).
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from .. import bake
from . import openpose
from .driver import ScenePass
from .png import write_png
from .render import at_frame, scene_pass, temporarily

LABEL = "ControlNet pose"


def armatures(scene, name: str = "") -> list:
    """The armature called ``name``, or (empty) every armature that renders in ``scene``."""
    if name:
        found = bpy.data.objects.get(name)
        if found is None or found.type != "ARMATURE":
            raise RuntimeError(f"the armature {name!r} no longer exists")
        return [found]
    return [o for o in scene.objects if o.type == "ARMATURE" and not o.hide_render]


def _overrides(rig) -> dict[str, str]:
    """Bone name → its ``openpose`` custom property (pose bone first, then the bone)."""
    out = {}
    for pose_bone in rig.pose.bones:
        value = pose_bone.get("openpose", pose_bone.bone.get("openpose"))
        if isinstance(value, str):
            out[pose_bone.name] = value
    return out


def _point(matrix, pose_bone, end: str) -> Vector:
    if end == "head":
        local = pose_bone.head
    elif end == "tail":
        local = pose_bone.tail
    else:
        local = (pose_bone.head + pose_bone.tail) / 2
    return matrix @ local


def joints(scene, rig, camera, width: int, height: int) -> dict[str, tuple[float, float]]:
    """Joint → (x, y) in pixels (x right, y down from the top-left) of ``rig``'s evaluated
    pose now, for the joints the camera sees (see the module's docstring)."""
    evaluated = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
    names = [b.name for b in evaluated.pose.bones]
    seen = {}
    for joint, (bone_name, end) in openpose.choose_bones(names, _overrides(rig)).items():
        pose_bone = evaluated.pose.bones[bone_name]
        if pose_bone.bone.hide:
            continue
        x, y, z = world_to_camera_view(scene, camera,
                                       _point(evaluated.matrix_world, pose_bone, end))
        if z <= 0 or not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            continue
        seen[joint] = (x * width, (1.0 - y) * height)
    return seen


def pose_image(scene, frame: int, rig_name: str = "") -> np.ndarray:
    """Blender frame ``frame``'s skeleton image of the armature(s) at the job's W×H."""
    width, height = bake.render_size(scene)
    camera = bake.scene_camera(scene)
    r = scene.render
    size = [(r, "resolution_x", width), (r, "resolution_y", height),
            (r, "resolution_percentage", 100), (scene, "camera", camera)]
    with temporarily(size), at_frame(scene, frame):
        people = [joints(scene, rig, camera, width, height)
                  for rig in armatures(scene, rig_name)]
    return openpose.skeleton_image(people, width, height)


def pose_pass(scene, folder: str | Path, rig_name: str, setting: str) -> ScenePass:
    """Skeleton images ``{folder}/{k:05d}.png`` of the armature called ``rig_name`` (empty:
    every armature that renders) for every frame of the scene range."""
    def render_frame(target, frame: int, k: int, out: str | Path) -> Path:
        Path(out).mkdir(parents=True, exist_ok=True)
        return write_png(Path(out) / f"{k:05d}.png", pose_image(target, frame, rig_name))
    return scene_pass(scene, folder, LABEL, render_frame, setting)
