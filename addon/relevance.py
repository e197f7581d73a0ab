"""Which settings can act in the current set-up, so the panels grey out those that cannot.

Greyed, never hidden: a value the user set stays visible (and editable). The
rules read plain values (``snapshot`` takes them from ``scene.deforum``), so
they are tested without Blender.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..engine.settings_table import SETTINGS
from . import controlnet_units

# The values the rules below read.
KEYS = ("animation_mode", "use_depth_warping", "depth_source", "warp_model", "seed_behavior",
        "sampler", "use_init", "init_from_scene", "use_mask", "use_alpha_as_mask",
        "video_from_scene", "use_mask_video", "add_soundtrack", "resume_from_timestring",
        "flip_2d_perspective", "hybrid_motion", "hybrid_composite", "hybrid_comp_mask_type",
        "hybrid_comp_mask_auto_contrast", *controlnet_units.KEYS)

State = Mapping[str, Any]


def snapshot(settings: Any) -> dict[str, Any]:
    """The values the rules read, from ``scene.deforum`` (or any object with them)."""
    return {key: getattr(settings, key, None) for key in KEYS}


def _depth(s: State) -> bool:
    return s["animation_mode"] == "3D" and bool(s["use_depth_warping"])


def _scene_depth(s: State) -> bool:
    return _depth(s) and s["depth_source"] == "scene"


def _pinhole(s: State) -> bool:
    return _scene_depth(s) or s["warp_model"] == "pinhole"


def _init(s: State) -> bool:
    return bool(s["use_init"] or s["init_from_scene"])


def _video(s: State) -> bool:
    return s["animation_mode"] == "Video Input"


def _hybrid(s: State) -> bool:
    """A 2D/3D run guided by a clip (hybrid motion or compositing)."""
    return s["animation_mode"] in ("2D", "3D") and (
        s["hybrid_motion"] not in (None, "None") or s["hybrid_composite"] not in (None, "None"))


def _clip(s: State) -> bool:
    """The run reads video_init_path: Video Input, or a hybrid 2D/3D run."""
    return _video(s) or _hybrid(s)


def _composite(s: State) -> bool:
    return _hybrid(s) and s["hybrid_composite"] not in (None, "None")


def _comp_mask(s: State) -> bool:
    return _composite(s) and s["hybrid_comp_mask_type"] not in (None, "None")


def _mask(s: State) -> bool:
    return bool(s["use_mask"])


_Rule = Callable[[State], bool]
# setting → when it acts; a setting not listed always acts.
ACTS_WHEN: dict[str, _Rule] = {
    "near_plane": lambda s: not _pinhole(s),
    "far_plane": lambda s: not _pinhole(s),
    "warp_model": lambda s: not _scene_depth(s),
    "depth_source": _depth,
    "save_depth_maps": _depth,
    "midas_weight": lambda s: _depth(s) and s["depth_source"] == "model",
    # Blender renders the scene's depth itself and sets the folder of its maps.
    "depth_maps_path": lambda s: False,
    "scene_flow_path": lambda s: False,  # likewise the folder of the scene's flow
    "inpaint_disocclusions": _scene_depth,
    "use_depth_warping": lambda s: s["animation_mode"] == "3D",
    "filename_format": lambda s: s["animation_mode"] == "None",
    "n_batch": lambda s: s["animation_mode"] == "None",
    "seed_iter_N": lambda s: s["seed_behavior"] == "iter",
    "seed_schedule": lambda s: s["seed_behavior"] == "schedule",
    "ddim_eta": lambda s: s["sampler"] == "ddim",
    "init_image": lambda s: bool(s["use_init"]) and not s["init_from_scene"],
    "strength": _init,
    "use_alpha_as_mask": _mask,
    "mask_file": lambda s: _mask(s) and not s["use_alpha_as_mask"],
    "invert_mask": _mask,
    "mask_brightness_adjust": _mask,
    "mask_contrast_adjust": _mask,
    "overlay_mask": _mask,
    "mask_overlay_blur": _mask,
    "video_init_path": lambda s: _hybrid(s) or _video(s) and not s["video_from_scene"],
    "video_decoder": lambda s: _hybrid(s) or _video(s) and not s["video_from_scene"],
    "extract_nth_frame": _clip,
    "overwrite_extracted_frames": _clip,
    "extract_from_frame": _clip,
    "extract_to_frame": _clip,
    "hybrid_motion_use_prev_img": lambda s: _hybrid(s) and s["hybrid_motion"] != "None",
    "hybrid_flow_method": lambda s: _hybrid(s) and s["hybrid_motion"] == "Optical Flow",
    "hybrid_flow_factor_schedule": lambda s: _hybrid(s) and s["hybrid_motion"] == "Optical Flow",
    "hybrid_flow_consistency": lambda s: _hybrid(s) and s["hybrid_motion"] == "Optical Flow",
    "hybrid_consistency_blur": lambda s: _hybrid(s) and s["hybrid_motion"] == "Optical Flow",
    "hybrid_comp_alpha_schedule": _composite,
    "hybrid_comp_mask_type": _composite,
    "hybrid_use_init_image": _composite,
    "hybrid_comp_mask_blend_alpha_schedule": lambda s: _comp_mask(s)
    and s["hybrid_comp_mask_type"] == "Blend",
    "hybrid_comp_mask_contrast_schedule": _comp_mask,
    "hybrid_comp_mask_auto_contrast": _comp_mask,
    "hybrid_comp_mask_auto_contrast_cutoff_low_schedule": lambda s: _comp_mask(s)
    and bool(s["hybrid_comp_mask_auto_contrast"]),
    "hybrid_comp_mask_auto_contrast_cutoff_high_schedule": lambda s: _comp_mask(s)
    and bool(s["hybrid_comp_mask_auto_contrast"]),
    "hybrid_comp_mask_inverse": _comp_mask,
    "hybrid_comp_mask_equalize": _comp_mask,
    "hybrid_comp_save_extra_frames": _hybrid,
    "hybrid_use_first_frame_as_init_image": _hybrid,
    "use_mask_video": _video,
    "video_mask_path": lambda s: _video(s) and bool(s["use_mask_video"]),
    "interpolate_key_frames": lambda s: s["animation_mode"] == "Interpolation",
    "interpolate_x_frames": lambda s: s["animation_mode"] == "Interpolation",
    "soundtrack_path": lambda s: s["add_soundtrack"] == "File",
    "resume_timestring": lambda s: bool(s["resume_from_timestring"]),
    "perspective_flip_theta": lambda s: bool(s["flip_2d_perspective"]),
    "perspective_flip_phi": lambda s: bool(s["flip_2d_perspective"]),
    "perspective_flip_gamma": lambda s: bool(s["flip_2d_perspective"]),
    "perspective_flip_fv": lambda s: bool(s["flip_2d_perspective"]),
}

ACTS_WHEN.update(controlnet_units.acts_when([s.name for s in SETTINGS]))


def acts(name: str, state: State) -> bool:
    """Whether setting ``name`` changes the result with the values in ``state``."""
    rule = ACTS_WHEN.get(name)
    return rule is None or bool(rule(state))
