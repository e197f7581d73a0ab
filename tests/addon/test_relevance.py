"""Which settings the panels grey out (``addon.relevance``), without Blender."""

from __future__ import annotations

from tests.addon.pure import addon_module

rel = addon_module("addon.relevance")

BASE = dict(animation_mode="3D", use_depth_warping=True, depth_source="model",
            warp_model="deforum", seed_behavior="iter", sampler="euler_ancestral",
            use_init=False, init_from_scene=False, use_mask=False, use_alpha_as_mask=False,
            video_from_scene=False, use_mask_video=False, add_soundtrack="None",
            resume_from_timestring=False, flip_2d_perspective=False, hybrid_motion="None",
            hybrid_composite="None", hybrid_comp_mask_type="None",
            hybrid_comp_mask_auto_contrast=False,
            **{f"cn_{u}_{k}": v for u in range(1, 6)
               for k, v in (("enabled", False), ("model", "None"), ("source", "FILE"))})


def state(**kw):
    return {**BASE, **kw}


def test_snapshot_reads_every_value_the_rules_need():
    settings = type("S", (), BASE)()
    assert rel.snapshot(settings) == BASE


def test_near_and_far_planes_do_nothing_with_the_pinhole_warp():
    assert rel.acts("near_plane", state()) and rel.acts("far_plane", state())
    for s in (state(warp_model="pinhole"), state(depth_source="scene")):
        assert not rel.acts("near_plane", s) and not rel.acts("far_plane", s)


def test_scene_depth_greys_the_estimator_blend_the_maps_folder_and_the_warp_model():
    scene = state(depth_source="scene")
    for name in ("midas_weight", "depth_maps_path", "warp_model"):
        assert not rel.acts(name, scene), name
    assert rel.acts("midas_weight", state()) and rel.acts("inpaint_disocclusions", scene)
    assert not rel.acts("inpaint_disocclusions", state())


def test_still_only_settings_act_only_in_the_none_mode():
    for name in ("filename_format", "n_batch"):
        assert not rel.acts(name, state()) and rel.acts(name, state(animation_mode="None"))


def test_video_and_interpolation_settings_act_only_in_their_mode():
    assert not rel.acts("video_init_path", state())
    assert rel.acts("video_init_path", state(animation_mode="Video Input"))
    assert not rel.acts("video_init_path", state(animation_mode="Video Input",
                                                 video_from_scene=True))
    assert not rel.acts("interpolate_x_frames", state(animation_mode="Video Input"))
    assert rel.acts("interpolate_x_frames", state(animation_mode="Interpolation"))


def test_switches_grey_what_they_switch():
    assert not rel.acts("ddim_eta", state()) and rel.acts("ddim_eta", state(sampler="ddim"))
    assert not rel.acts("seed_schedule", state())
    assert rel.acts("seed_schedule", state(seed_behavior="schedule"))
    assert not rel.acts("mask_file", state()) and rel.acts("mask_file", state(use_mask=True))
    assert not rel.acts("mask_file", state(use_mask=True, use_alpha_as_mask=True))
    assert rel.acts("strength", state(init_from_scene=True))
    assert not rel.acts("init_image", state(use_init=True, init_from_scene=True))


def test_settings_without_a_rule_always_act():
    assert rel.acts("steps", state()) and rel.acts("strength_schedule", state())


def test_a_hybrid_run_reads_the_clip_and_its_mask_settings_follow_the_mask():
    plain, hybrid = state(animation_mode="2D"), state(animation_mode="2D",
                                                      hybrid_composite="Normal")
    for name in ("video_init_path", "extract_from_frame", "hybrid_comp_alpha_schedule"):
        assert not rel.acts(name, plain) and rel.acts(name, hybrid), name
    assert not rel.acts("hybrid_comp_mask_inverse", hybrid)
    masked = {**hybrid, "hybrid_comp_mask_type": "Difference"}
    assert rel.acts("hybrid_comp_mask_inverse", masked)
    assert not rel.acts("hybrid_comp_mask_blend_alpha_schedule", masked)
    assert rel.acts("hybrid_flow_consistency", state(hybrid_motion="Optical Flow"))
