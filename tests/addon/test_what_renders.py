"""The main panel's headline (``addon.setup_ui.what_renders``): what Render Deforum will
make, or what it needs first, before the artist presses it."""

from __future__ import annotations

from tests.addon.pure import addon_module

setup_ui = addon_module("addon.setup_ui")


def what(model="", ticked=False, mode="3D"):
    return setup_ui.what_renders(model, ticked, "cpu", None, mode)


def test_a_model_on_disk_diffuses_and_a_missing_one_is_named(tmp_path):
    model = tmp_path / "dream.safetensors"
    model.write_bytes(b"")
    assert what(str(model)) == "Diffusion — dream.safetensors on CPU"
    assert what(str(tmp_path / "nope.safetensors")) == "Needs a model — nope.safetensors not found"


def test_motion_previews_only_where_a_mode_has_motion(tmp_path):
    for mode in ("2D", "3D", "Video Input"):
        assert what(mode=mode) == "Motion preview — no model set"
        assert what(str(tmp_path), True, mode) == "Motion preview — Preview Motion is ticked"
    for mode in ("Interpolation", "None"):
        assert what(mode=mode) == f"Needs a model — {mode} has no motion to preview"
        assert what(str(tmp_path), True, mode) == \
            f"Needs Preview Motion off — {mode} has no motion to preview"
