"""Hermetic set-up for tests that run the add-on in the real PyPI ``bpy`` module.

Import this module before ``bpy``: it points BLENDER_USER_RESOURCES at a
temporary folder, so no test reads or writes the user's Blender config. Each
test gets factory settings and the add-on enabled as an extension from a
temporary extension repository (``bl_ext.deforum_test.deforum_blender``,
exactly as Blender loads an installed extension); teardown disables it and
removes the repository, so nothing stays registered at exit (bpy 4.2
segfaults and 4.5 hangs otherwise).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPO_MODULE = "deforum_test"
ADDON_ID = "deforum_blender"
ADDON = f"bl_ext.{REPO_MODULE}.{ADDON_ID}"

# The engine's Python: this venv, or another one when the add-on tests run in a
# bpy-only venv (e.g. bpy 4.2: DEFORUM_TEST_ENGINE_PYTHON=.venv/bin/python).
ENGINE_PY = os.environ.get("DEFORUM_TEST_ENGINE_PYTHON", sys.executable)

_TMP = Path(tempfile.mkdtemp(prefix="deforum-bpy-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
if "bpy" not in sys.modules:
    os.environ["BLENDER_USER_RESOURCES"] = str(_TMP / "user")

import bpy  # noqa: E402  (after the environment is set)
import addon_utils  # noqa: E402  (importable once bpy is)

_EXT_DIR = _TMP / "extensions"
_EXT_DIR.mkdir(exist_ok=True)
if not (_EXT_DIR / ADDON_ID).exists():
    (_EXT_DIR / ADDON_ID).symlink_to(ROOT, target_is_directory=True)


def blender_ext_script() -> Path:
    """The stdlib-only extension validator/builder bundled in the bpy wheel."""
    base = Path(bpy.utils.resource_path("LOCAL"))
    return base / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


class Addon:
    """Factory settings + the add-on enabled as an extension; ``close()`` undoes it."""

    def __init__(self) -> None:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        # The factory engine, EEVEE, draws through software OpenGL without a GPU: about
        # 35 s for a 64×48 frame. A test that looks at a render's pixels picks its engine;
        # every other scene render (a preview's first frame, scene frames) takes Workbench.
        bpy.context.scene.render.engine = "BLENDER_WORKBENCH"
        self.repo = bpy.context.preferences.extensions.repos.new(
            name=REPO_MODULE, module=REPO_MODULE, custom_directory=str(_EXT_DIR),
            source="USER")
        errors: list[BaseException] = []
        self.module = addon_utils.enable(ADDON, default_set=True, handle_error=errors.append)
        if errors or self.module is None:
            self.close()
            raise RuntimeError(f"enabling {ADDON} failed: {errors}")

    @property
    def prefs(self):
        return bpy.context.preferences.addons[ADDON].preferences

    def sub(self, name: str):
        return sys.modules[f"{ADDON}.{name}"]

    def close(self) -> None:
        if self.module is not None:
            self.module.addon.runner.cancel_everything()
        addon_utils.disable(ADDON, default_set=True)
        repos = bpy.context.preferences.extensions.repos
        if self.repo is not None and self.repo.name in {r.name for r in repos}:
            repos.remove(self.repo)
        self.repo = None


def plane_under_camera(corners, *, start: int, end: int, size=(64, 48)):
    """The scene with frames ``start``…``end`` at ``size`` (100 %), a quad "Plane" at z = 0
    with the given ``corners`` and an unkeyed active camera "Cam"; returns (scene, cam)."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = start, end
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    mesh = bpy.data.meshes.new("Plane")
    mesh.from_pydata([(x, y, 0) for x, y in corners], [], [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Plane", mesh))
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene, cam


def box(scene, name, centre, size, collection=None):
    """An axis-aligned cube object ``name`` of edge ``size`` at ``centre``, linked into
    ``collection`` (default: the scene's)."""
    mesh = bpy.data.meshes.new(name)
    (x, y, z), h = centre, size / 2
    corners = [(x + a * h, y + b * h, z + c * h) for a in (-1, 1) for b in (-1, 1)
               for c in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4),
             (1, 5, 7, 3)]
    mesh.from_pydata(corners, [], faces)
    obj = bpy.data.objects.new(name, mesh)
    (collection or scene.collection).objects.link(obj)
    return obj


def keyframed_camera_scene(*, start: int = 3, end: int = 12, size=(64, 48)):
    """A camera with location/rotation keys, a Track-To constraint on a moving
    target, a parent, and an animated lens — everything frame_set must count."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = start, end
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100

    rig = bpy.data.objects.new("Rig", None)
    scene.collection.objects.link(rig)
    rig.location = (0.5, 0.0, 0.0)
    rig.keyframe_insert("location", frame=start)
    rig.location = (0.5, 0.5, 0.2)
    rig.keyframe_insert("location", frame=end)

    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    target.location = (0.0, 10.0, 1.0)
    target.keyframe_insert("location", frame=start)
    target.location = (2.0, 12.0, 0.0)
    target.keyframe_insert("location", frame=end)

    data = bpy.data.cameras.new("Cam")
    cam = bpy.data.objects.new("Cam", data)
    scene.collection.objects.link(cam)
    cam.parent = rig
    scene.camera = cam
    for frame, loc, rot, lens in ((start, (0, -8, 2), (1.3, 0.0, 0.1), 35.0),
                                  ((start + end) // 2, (1, -6, 2.5), (1.4, 0.05, -0.1), 50.0),
                                  (end, (2, -5, 2), (1.2, -0.05, 0.2), 42.0)):
        cam.location, cam.rotation_euler, data.lens = loc, rot, lens
        cam.keyframe_insert("location", frame=frame)
        cam.keyframe_insert("rotation_euler", frame=frame)
        data.keyframe_insert("lens", frame=frame)
    track = cam.constraints.new("TRACK_TO")
    track.target = target
    track.track_axis, track.up_axis = "TRACK_NEGATIVE_Z", "UP_Y"
    track.influence = 0.7
    scene.frame_set(start)
    return scene, cam
