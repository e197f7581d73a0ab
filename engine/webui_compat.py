"""Settings files of older webui versions, brought to today's keys and values.

The webui upgrades a file as it loads it: a key that became a choice keeps its
old true/false meaning, ``use_zoe_depth`` became ``depth_algorithm``, and a run's
saved settings carry the prompt prefix and suffix under other names.  Doing the
same before validation lets every webui export load; plain renames are aliases
in the settings table, only the changes that depend on the value live here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keys that were true/false and are now a choice: old value → today's value.
_BOOL_TO_CHOICE = {
    "hybrid_composite": {False: "None", True: "Normal"},
    "optical_flow_cadence": {False: "None", True: "DIS Fine"},
    "optical_flow_redo_generation": {False: "None", True: "DIS Fine"},
}
_ZOE_DEPTH = {True: "Zoe+AdaBins (old)", False: "Midas+AdaBins (old)"}
# Once "Disabled" or "x2" … "x10"; now a plain number (default 2).  A disabled
# interpolation amount meant no interpolation: today's engine "None".
_AMOUNTS = ("frame_interpolation_x_amount", "frame_interpolation_slow_mo_amount")
_FILL = ("fill", "original", "latent noise", "latent nothing")  # once saved by index
_RESIZE_MODES = {"Envelope (Outer Fit)": "Outer Fit (Shrink to Fit)",
                 "Scale to Fit (Inner Fit)": "Inner Fit (Scale to Fit)"}
# A run's saved settings name the prompt prefix and suffix differently from the UI's.
_RUN_PROMPTS = {"positive_prompts": "animation_prompts_positive",
                "negative_prompts": "animation_prompts_negative"}


def _flag(value: Any) -> bool | None:
    """True/False, also as the text the webui compares with; None for anything else."""
    if isinstance(value, bool):
        return value
    return {"true": True, "false": False}.get(str(value).strip().lower())


def _amount(value: Any) -> Any:
    """'x3' → 3; 'Disabled' → None (the key is dropped); anything else unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text == "disabled":
        return None
    return int(text[1:]) if text[:1] == "x" and text[1:].isdigit() else value


def _run_prompts(data: dict[str, Any]) -> None:
    """A run's ``positive_prompts``/``negative_prompts`` text is the UI's prefix/suffix.

    Only a file with ``positive_prompts`` is such a run file: elsewhere
    ``negative_prompts`` is an object of negative prompts by frame.
    """
    if not isinstance(data.get("positive_prompts"), str):
        return
    for old, new in _RUN_PROMPTS.items():
        if isinstance(data.get(old), str):
            value = data.pop(old)
            data.setdefault(new, value)


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with older webui keys and values in today's form."""
    out = dict(data)
    for key, values in _BOOL_TO_CHOICE.items():
        flag = _flag(out[key]) if key in out and not isinstance(out[key], str) else None
        if flag is not None:
            out[key] = values[flag]
    if "use_zoe_depth" in out:
        flag = _flag(out.pop("use_zoe_depth"))
        if flag is not None:
            out["depth_algorithm"] = _ZOE_DEPTH[flag]
    _amounts(out)
    fill = out.get("fill")
    if isinstance(fill, int) and not isinstance(fill, bool) and 0 <= fill < len(_FILL):
        out["fill"] = _FILL[fill]
    for unit in range(1, 6):
        key = f"cn_{unit}_resize_mode"
        if isinstance(out.get(key), str):
            out[key] = _RESIZE_MODES.get(out[key], out[key])
    _run_prompts(out)
    return out


def _amounts(data: dict[str, Any]) -> None:
    """Interpolation amounts as numbers; "Disabled" turns interpolation off."""
    for key in _AMOUNTS:
        if key in data:
            amount = _amount(data.pop(key))
            if amount is not None:
                data[key] = amount
            elif key == "frame_interpolation_x_amount":
                data["frame_interpolation_engine"] = "None"
