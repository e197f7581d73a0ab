"""The pre-flight check (``addon.preflight``) without Blender: each warning and error a
user would see before a run, and the absence of noise when all is well."""

from __future__ import annotations

import json

from tests.addon.pure import addon_module

pf = addon_module("addon.preflight")


def plan(**kw):
    values = dict(width=512, height=512, native=512, frames=24, frame_start=1, frame_end=24,
                  prompts=((1, "a forest"),))
    values.update(kw)
    return pf.Plan(**values)


def test_a_sound_plan_has_nothing_to_say():
    report = pf.check(plan())
    assert report.clean and report.resolution is None


def test_blenders_default_1920x1080_warns_and_offers_a_size_with_its_aspect():
    report = pf.check(plan(width=1920, height=1080))
    assert not report.errors
    assert len(report.warnings) == 1 and "1920×1080" in report.warnings[0]
    assert "512×512" in report.warnings[0]
    w, h = report.resolution
    assert w % 64 == 0 and h % 64 == 0 and abs(w / h - 16 / 9) < 0.1
    assert 0.8 < w * h / 512**2 < 1.25


def test_a_size_too_small_for_the_model_warns_too():
    report = pf.check(plan(width=512, height=512, native=1024))
    assert "1024×1024" in report.warnings[0] and report.resolution == (1024, 1024)


def test_a_size_whose_shape_rounding_changes_warns_even_in_the_motion_preview():
    report = pf.check(plan(width=16, height=8, scene_size=(20, 4), diffuse=False))
    assert report.warnings == ["Resolution 20×4 renders as 16×8 (sizes are multiples of 8, "
                               "at least 8), another shape: raise the resolution or its %"]
    assert pf.check(plan(width=1000, height=328, scene_size=(1001, 333),
                         diffuse=False)).clean


def test_resolution_is_not_judged_without_diffusion():
    assert pf.check(plan(width=1920, height=1080, diffuse=False)).clean


def test_native_size_from_a_diffusers_folder_and_from_file_names(tmp_path):
    for sample, expected in ((64, 512), (96, 768), (128, 1024)):
        folder = tmp_path / f"model{sample}"
        (folder / "unet").mkdir(parents=True)
        (folder / "unet" / "config.json").write_text(json.dumps({"sample_size": sample}))
        assert pf.native_size(str(folder)) == expected
    assert pf.native_size("/m/sd_xl_base_1.0.safetensors") == 1024
    assert pf.native_size("/m/v2-1_768-ema-pruned.safetensors") == 768
    assert pf.native_size("/m/dreamshaper_8.safetensors") == 512  # unknown: 512
    assert pf.native_size("") == 512


def test_preset_resolution_keeps_square_and_portrait():
    assert pf.preset_resolution(100, 100, 768) == (768, 768)
    w, h = pf.preset_resolution(1080, 1920, 512)
    assert h > w and w % 64 == 0 and h % 64 == 0


def test_diffusion_on_the_cpu_warns_with_a_rough_estimate():
    report = pf.check(plan(on_cpu=True, frames=120, steps=50, cadence=1, strength=0.65))
    (warning,) = report.warnings
    assert "CPU" in warning and "rough" in warning and "120 frames" in warning
    longer = pf.estimate_seconds(plan(frames=240, steps=50))
    assert longer > pf.estimate_seconds(plan(frames=120, steps=50))
    assert pf.estimate_seconds(plan(frames=120, cadence=4)) < pf.estimate_seconds(
        plan(frames=120, cadence=1))
    assert "h" in warning or "min" in warning


def test_the_cpu_does_not_matter_for_the_motion_preview():
    assert pf.check(plan(on_cpu=True, diffuse=False)).clean


def test_a_prompt_after_the_last_frame_is_named():
    report = pf.check(plan(prompts=((1, "a"), (300, "b")), frame_end=100))
    (warning,) = report.warnings
    assert "frame 300" in warning and "never used" in warning


def test_a_prompt_before_the_first_frame_warns_only_when_a_later_one_replaces_it():
    assert pf.check(plan(prompts=((-10, "a"), (20, "b")), frame_start=1)).clean
    report = pf.check(plan(prompts=((-10, "a"), (1, "b")), frame_start=1))
    (warning,) = report.warnings
    assert "frame -10" in warning and "never used" in warning


def test_two_prompts_on_one_frame_warn():
    (warning,) = pf.check(plan(prompts=((5, "a"), (5, "b"), (1, "c")))).warnings
    assert "2 prompts at frame 5" in warning


def test_no_prompt_while_diffusing_warns_but_not_in_the_motion_preview():
    (warning,) = pf.check(plan(prompts=((1, "   "),))).warnings
    assert "Prompts" in warning and "none" in warning
    assert pf.check(plan(prompts=(), diffuse=False)).clean


def test_a_missing_file_the_run_reads_is_an_error_naming_the_setting(tmp_path):
    mask = tmp_path / "mask.png"
    report = pf.check(plan(files=(pf.Needed("mask_file", "Mask Image", str(mask)),)))
    (error,) = report.errors
    assert error.startswith("mask_file:") and str(mask) in error and "Mask Image" in error
    mask.write_bytes(b"x")
    assert pf.check(plan(files=(pf.Needed("mask_file", "Mask Image", str(mask)),))).clean


def test_an_empty_path_is_a_warning_unless_the_run_needs_it():
    report = pf.check(plan(files=(pf.Needed("init_image", "Init Image", ""),)))
    assert not report.errors and "Init Image" in report.warnings[0]
    report = pf.check(plan(files=(pf.Needed("video_init_path", "Input Video", "", True),)))
    assert report.errors == ["video_init_path: no file is chosen (Deforum › Input Video)"]


def test_guide_images_are_checked_only_with_guided_images_on(tmp_path):
    red = tmp_path / "red.png"
    red.write_bytes(b"png")
    assert pf.check(plan(guides=((1, str(red)),))).clean
    assert pf.check(plan(guides=None)).clean  # looper off: the rows are not read
    report = pf.check(plan(guides=((1, str(red)), (9, str(tmp_path / "gone.png")),
                                   (12, ""), (20, "https://example.com/a.png"))))
    assert report.errors == [
        f"init_images: frame 9's guide image {tmp_path / 'gone.png'} does not exist "
        f"({pf.GUIDES})",
        f"init_images: frame 12's guide image has no file chosen ({pf.GUIDES})",
        "init_images: frame 20's guide image is a URL (https://example.com/a.png); download "
        f"it and choose the file ({pf.GUIDES})"]
    assert pf.check(plan(guides=())).errors == [
        f"init_images: Guided Images is on but no guide image is listed ({pf.GUIDES})"]


def test_a_mode_with_no_motion_to_preview_is_refused_without_diffusion():
    for mode in ("Interpolation", "None"):
        assert pf.check(plan(mode=mode, diffuse=False, has_model=False)).errors == [
            f"model_path: animation_mode '{mode}' needs a Stable Diffusion model (add-on "
            "preferences › Model); only 2D, 3D and Video Input render a motion preview "
            "without one"]
        assert pf.check(plan(mode=mode, diffuse=False)).errors == [
            f"preview_motion: animation_mode '{mode}' has no motion to preview; untick "
            "Preview Motion"]
        assert not pf.check(plan(mode=mode)).errors
    for mode in ("2D", "3D", "Video Input"):
        assert not pf.check(plan(mode=mode, diffuse=False, has_model=False)).errors
