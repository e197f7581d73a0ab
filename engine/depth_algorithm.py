"""The webui's ``depth_algorithm`` names, mapped onto the depth models this engine loads.

The webui picks a depth estimator by name; this engine loads one local transformers
folder (``depth_model_path``) of one of two kinds: DPT, which is MiDaS 3/3.1, and
Depth Anything.  A name the folder can serve is honoured; Zoe, LeReS and AdaBins
have no local equivalent here, so a run that would estimate depth with them stops
with a SettingsError naming ``depth_algorithm`` and the model to give instead.
Nothing here imports torch: it runs while settings are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ModelError, SettingsError, shown

# Every name the webui offers (its dropdown and the hidden BEiT one), plus the
# Depth Anything name newer Deforum versions write; matched regardless of case.
DEPTH_ALGORITHMS = ("Midas-3-Hybrid", "Midas-3.1-BeitLarge", "Midas+AdaBins (old)",
                    "Zoe+AdaBins (old)", "Zoe", "AdaBins", "Leres", "Depth-Anything-V2-Small")
# Name → the kind of model folder that serves it (see depth.depth_model_kind).
# The "(old)" MiDaS name blends in AdaBins below midas_weight 1; the MiDaS part is served.
SERVED = {"Midas-3-Hybrid": "dpt", "Midas-3.1-BeitLarge": "dpt",
          "Midas+AdaBins (old)": "dpt", "Depth-Anything-V2-Small": "depth_anything"}
_KIND_NAMES = {"dpt": "a DPT (MiDaS) model", "depth_anything": "a Depth Anything model"}
_INSTEAD = ("set depth_algorithm to 'Midas-3-Hybrid' with depth_model_path a local DPT "
            "(MiDaS) folder such as Intel/dpt-hybrid-midas saved with save_pretrained, or "
            "to 'Depth-Anything-V2-Small' with a local Depth Anything folder such as "
            "depth-anything/Depth-Anything-V2-Small-hf; or use depth_source 'scene' or 'none'")


def depth_is_estimated(settings: Mapping[str, Any]) -> bool:
    """Whether the run asks a depth model for depth: 3D with depth warping, no scene depth."""
    return (settings["animation_mode"] == "3D" and bool(settings["use_depth_warping"])
            and settings["depth_source"] == "model")


def _named(settings: Mapping[str, Any]) -> bool:
    """Whether the settings name an algorithm themselves (a plain dict names what it holds)."""
    given = getattr(settings, "given", settings)
    return "depth_algorithm" in given


def check_depth_algorithm(settings: Mapping[str, Any], folder_kind: Any = None) -> list[str]:
    """Stop on a name no local model serves; notices where the name and the folder disagree.

    Only a run that estimates depth is checked.  ``folder_kind`` reads the kind of
    ``depth_model_path`` (default ``depth.depth_model_kind``); an unreadable folder
    is left for the loader to report.
    """
    name = settings.get("depth_algorithm")
    if not name or not depth_is_estimated(settings):
        return []
    if name not in SERVED:
        raise SettingsError(f"depth_algorithm: {shown(name)} needs a depth model this engine "
                            f"cannot load; {_INSTEAD}", key="depth_algorithm", value=name)
    path = settings["depth_model_path"]
    if not path or not _named(settings):
        return []
    if folder_kind is None:
        from .depth import depth_model_kind as folder_kind
    try:
        kind = folder_kind(path)
    except ModelError:
        return []
    if kind == SERVED[name]:
        return []
    return [f"depth_algorithm {name!r} is {_KIND_NAMES[SERVED[name]]} but depth_model_path "
            f"holds {_KIND_NAMES.get(kind, kind)}; the folder's model is used"]
