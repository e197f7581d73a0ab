"""Fixtures of the tests that run the add-on in the real bpy: ``addon``, ``ready``,
``tiny_model``, ``warm``.

``tests.blender.helpers`` is imported first: it makes Blender's user folders
temporary before bpy loads.
"""

import os
import subprocess

import pytest

from tests.blender.helpers import ENGINE_PY, ROOT, Addon, keyframed_camera_scene


@pytest.fixture
def addon():
    """The add-on enabled on factory settings for one test."""
    a = Addon()
    try:
        yield a
    finally:
        a.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Written by the engine's Python: Blender's (the bpy-only 4.2/4.5 venvs) has no torch."""
    folder = tmp_path_factory.mktemp("tiny")
    subprocess.run([ENGINE_PY, "-m", "engine.tiny_model", str(folder)], check=True,
                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
                   capture_output=True)
    return folder


@pytest.fixture
def warm(addon, tmp_path, monkeypatch):
    """A 2D scene of 3 frames at 64×64; the motion preview until a test sets a model."""
    # One torch thread: on a shared CPU, spinning OpenMP threads make a tiny model's
    # steps take seconds at random, which would measure the machine, not the engine.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    scene, _cam = keyframed_camera_scene(start=1, end=3, size=(64, 64))
    settings = scene.deforum
    settings.animation_mode = "2D"
    settings.preview_motion = False
    settings.steps = 5
    settings.output_dir = str(tmp_path / "out")
    settings.batch_name = "Warm"
    addon.prefs.engine_python = ENGINE_PY
    addon.prefs.device = "cpu"
    assert addon.prefs.keep_engine_warm  # the default
    return scene, tmp_path / "out", addon.sub("addon.runner"), addon.sub("engine.client.warm")


@pytest.fixture
def ready(addon, tmp_path):
    """The keyframed scene, output in tmp_path, this venv's Python as the engine."""
    scene, cam = keyframed_camera_scene()
    addon.prefs.engine_python = ENGINE_PY
    scene.deforum.output_dir = str(tmp_path / "out")
    scene.deforum.batch_name = "Shot"
    # This scene is a camera in empty space: estimated (here flat) depth, baked at
    # camera_scale. Scene depth, the Blender default, has its own tests (test_addon_scene).
    scene.deforum.depth_source = "model"
    return scene, cam, tmp_path / "out"
