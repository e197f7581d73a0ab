"""Writing an imported Deforum settings file into a scene: ``scene.deforum`` values,
prompts, frame range, size, fps, and a keyframed camera whose bake reproduces the
file's motion. The planning (what to write) is bpy-free in ``settings_import``;
this module reads the scene it needs for that plan and writes the result.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import bpy
import numpy as np

from . import compat, props, settings_import

CAMERA_NAME = "Deforum Camera"
CAMERA_TAG = "deforum_import"  # custom property on the camera an import made (reused later)


class Plan(NamedTuple):
    """What an import will write: property values, camera keys (None: no camera motion)
    and warnings for the user."""

    values: dict[str, Any]
    keys: settings_import.CameraKeys | None
    notes: list[str]


def _animated_settings(scene) -> set[str]:
    """``scene.deforum`` properties that keyframes or drivers set."""
    ad = scene.animation_data
    curves = [*compat.fcurves_for(scene), *(ad.drivers if ad is not None else ())]
    return {fc.data_path.removeprefix("deforum.") for fc in curves
            if fc.data_path.startswith("deforum.")}


def _imported_camera(scene):
    return next((o for o in scene.objects if o.type == "CAMERA" and o.get(CAMERA_TAG)), None)


def _start_pose(scene, cam) -> np.ndarray | None:
    """A re-import keeps where the camera's first frame was placed."""
    if cam is None:
        return None
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        scene.frame_set(scene.frame_start)
        return np.array(cam.matrix_basis)
    finally:
        scene.frame_set(current, subframe=subframe)


def _sensor(scene, cam, width: int, height: int) -> settings_import.Sensor:
    """The sensor of the camera to animate (a new camera's defaults) at the file's size."""
    data = cam.data if cam is not None else None
    defaults = bpy.types.Camera.bl_rna.properties
    sensor = [getattr(data, name) if data is not None else defaults[name].default
              for name in ("sensor_width", "sensor_height", "sensor_fit")]
    r = scene.render
    return settings_import.Sensor(*sensor, width, height, r.pixel_aspect_x, r.pixel_aspect_y)


def plan(scene, loaded) -> Plan:
    """Property values, camera keys and warnings of an import; the scene is not changed."""
    settings = scene.deforum
    rna = settings.bl_rna.properties
    limits = {s.name: (rna[s.name].hard_min, rna[s.name].hard_max) for s in props.UI_SETTINGS
              if rna[s.name].type in ("INT", "FLOAT")}
    motion_keys = settings_import.CAMERA_MODES.get(loaded["animation_mode"], ())
    values, notes = settings_import.property_values(
        loaded, props.UI_SETTINGS, props.NUMERIC_SCHEDULES, limits=limits,
        animated=_animated_settings(scene), camera_keys=motion_keys)
    keys = None
    if motion_keys:
        cam = _imported_camera(scene)
        lens = bpy.types.Camera.bl_rna.properties["lens"]
        keys = settings_import.camera_keys(
            loaded, scale=settings.camera_scale, height=loaded["H"],
            sensor=_sensor(scene, cam, loaded["W"], loaded["H"]),
            start=_start_pose(scene, cam), lens_range=(lens.hard_min, lens.hard_max))
        notes += keys.warnings
        if cam is not None and (cam.parent is not None or len(cam.constraints)):
            notes.append(f"camera: {cam.name!r} has a parent or constraints; the bake "
                         "includes them")
    last = scene.frame_start + loaded["max_frames"] - 1
    end = bpy.types.Scene.bl_rna.properties["frame_end"].hard_max
    if last > end:
        notes.append(f"max_frames: {loaded['max_frames']} frames from frame "
                     f"{scene.frame_start} end past Blender's last frame {end}; the frame "
                     f"range stops there ({end - scene.frame_start + 1} frames)")
    return Plan(values, keys, notes)


def _write_keys(id_, data_path: str, values: np.ndarray, first: int) -> None:
    """One LINEAR key per frame on each channel of ``data_path`` (nothing overshoots)."""
    id_.keyframe_insert(data_path, frame=first)  # creates the fcurves on any version
    columns = values.reshape(len(values), -1)
    frames = np.arange(first, first + len(values), dtype=float)
    for fc in compat.fcurves_for(id_):
        if fc.data_path != data_path:
            continue
        points = fc.keyframe_points
        points.add(len(values) - len(points))
        points.foreach_set("co", np.column_stack([frames, columns[:, fc.array_index]]).ravel())
        for point in points:
            point.interpolation = "LINEAR"
        fc.update()


def _animate_camera(scene, keys: settings_import.CameraKeys):
    """The import's camera (made once, then reused) with only these keys."""
    cam = _imported_camera(scene)
    if cam is None:
        cam = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
        scene.collection.objects.link(cam)
        cam[CAMERA_TAG] = True
    cam.animation_data_clear()
    cam.data.animation_data_clear()
    cam.data.type = "PERSP"
    cam.rotation_mode = "QUATERNION"
    _write_keys(cam, "location", keys.locations, scene.frame_start)
    _write_keys(cam, "rotation_quaternion", keys.quaternions, scene.frame_start)
    _write_keys(cam.data, "lens", keys.lenses, scene.frame_start)
    return cam


def set_prompts(scene, rows) -> None:
    """Replace the scene's prompts with ``rows`` of (frame from the start, prompt, negative)."""
    prompts = scene.deforum.prompts
    prompts.clear()
    for frame, prompt, negative in rows:
        row = prompts.add()
        row.frame, row.prompt, row.negative = scene.frame_start + frame, prompt, negative
    scene.deforum.prompt_index = 0


def set_guides(scene, rows) -> None:
    """Replace the scene's guide images with ``rows`` of (frame from the start, path)."""
    guides = scene.deforum.guides
    guides.clear()
    for frame, path in rows:
        row = guides.add()
        row.frame, row.image = scene.frame_start + frame, path
    scene.deforum.guide_index = 0


def apply(scene, loaded, planned: Plan) -> list[str]:
    """Write a planned import into the scene; what was set, for the report."""
    settings = scene.deforum
    for name, value in planned.values.items():
        if isinstance(getattr(settings, name), str) and not isinstance(value, str):
            value = str(value)  # a whole number kept as text (the seed)
        setattr(settings, name, value)
    r = scene.render  # the size shapes the camera's motion; the frame rate only timing
    r.resolution_x, r.resolution_y, r.resolution_percentage = loaded["W"], loaded["H"], 100
    if "fps" in loaded.given:  # a file without one keeps the scene's
        r.fps, r.fps_base = settings_import.fps_pair(loaded["fps"])
    scene.frame_end = scene.frame_start + loaded["max_frames"] - 1
    done = [f"{loaded['animation_mode']}, {loaded['max_frames']} frames"]
    if planned.keys is not None:
        cam = _animate_camera(scene, planned.keys)
        scene.camera = settings.camera = cam
        settings.use_camera = True
        done.append(f"camera {cam.name!r}")
    return done
