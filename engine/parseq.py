"""Parseq manifests turned into ordinary Deforum settings.

A Parseq manifest lists, for every rendered frame, the value of each field it
manages (``rendered_frames``: ``[{"frame": 0, "translation_x": …, …}, …]``).
Each field it carries becomes a schedule with one key per frame for the
matching setting, and its ``deforum_prompt`` becomes the prompts, so the rest of
the engine (motion, seeds, strength, the effective settings file) only ever
sees ordinary settings.  As in Deforum's webui:

* a field counts as carried when the first listed frame has it (not null);
* with ``parseq_use_deltas`` the motion settings take the ``<field>_delta``
  values (the change per frame), else the absolute values;
* frames after the last one hold its values; a frame listed twice takes the
  later row (missing frames in between ramp from neighbour to neighbour);
* a carried seed means ``seed_behavior`` = schedule; carried prompts replace
  the prompts and their positive/negative additions;
* with ``parseq_non_schedule_overrides`` the manifest's frame count,
  ``options.cadence`` and ``options.output_fps`` set max_frames, the cadence
  and fps.

Manifests come from strangers: the engine never fetches one (a URL is refused),
its size and frame count are bounded, and every value must be a finite number
(or text, for the prompt), or a SettingsError names ``parseq_manifest`` and
the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import InputError, SettingsError
from .paths import local_path, read_text

KEY = "parseq_manifest"
MAX_CHARS = 64 * 1024 * 1024  # a 10,000-frame manifest with 60 fields is about 20 MB
MAX_FRAMES = 10_000
MAX_FRAME_NUMBER = 10**9

# Deforum motion settings: their Parseq field has the same name (plus "_delta").
MOTION = ("angle", "zoom", "translation_x", "translation_y", "translation_z",
          "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "perspective_flip_theta",
          "perspective_flip_phi", "perspective_flip_gamma")
# Other schedules: Deforum setting → Parseq field (always the absolute value).
FIELDS = {"perspective_flip_fv": "perspective_flip_fv", "noise_schedule": "noise",
          "strength_schedule": "strength", "contrast_schedule": "contrast",
          "seed_schedule": "seed", "fov": "fov", "near_plane": "near", "far_plane": "far"}
PROMPT = "deforum_prompt"  # "{positive} --neg {negative}"
SCALE = "scale"  # the guidance scale per frame
# Fields read other than as schedules (the frame number, the prompt).
_NOT_SCHEDULES = ("frame", PROMPT)

Overrides = dict[str, tuple[str, Any]]  # setting → (where the value came from, value)


def _error(message: str, value: object = None) -> SettingsError:
    return SettingsError(f"{KEY}: {message}", key=KEY, value=value)


def wanted(value: Any) -> bool:
    """Whether a ``parseq_manifest`` value asks for a manifest (empty text: no)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _decode(text: str, where: str) -> Any:
    if len(text) > MAX_CHARS:
        raise _error(f"{where} is over {MAX_CHARS // (1024 * 1024)} MiB")

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a finite number")
    try:
        return json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise _error(f"{where} is not valid JSON: {exc}") from None


def load(value: Any) -> Mapping[str, Any]:
    """The manifest: an object, JSON text, or a local file path (never a URL)."""
    if isinstance(value, Mapping):
        manifest = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower().startswith("http") or "://" in text:
            raise InputError(f"{KEY}: {text[:80]!r} is a URL; this engine never downloads, "
                             "save the manifest and give its file or its JSON", key=KEY,
                             value=text)
        if not text.startswith("{"):
            path = local_path(text, KEY)
            try:
                text = read_text(path, MAX_CHARS, KEY)
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{KEY}: file {str(path)!r} cannot be read "
                                 f"({type(exc).__name__}: {exc})", key=KEY,
                                 value=str(path)) from None
        manifest = _decode(text, "the manifest")
    else:
        raise _error(f"expected a manifest object, its JSON text or a file path, got "
                     f"{type(value).__name__}", value)
    if not isinstance(manifest, Mapping):
        raise _error("the manifest is not a JSON object")
    return manifest


def _frame_number(row: Any, index: int) -> int:
    if not isinstance(row, Mapping):
        raise _error(f"rendered_frames[{index}] is not an object")
    frame = row.get("frame")
    if isinstance(frame, float) and frame.is_integer():
        frame = int(frame)
    if not isinstance(frame, int) or isinstance(frame, bool) or \
            not 0 <= frame <= MAX_FRAME_NUMBER:
        raise _error(f"rendered_frames[{index}].frame: {frame!r} is not a frame number "
                     f"0…{MAX_FRAME_NUMBER}", frame)
    return frame


def frames(manifest: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], dict[int, Mapping]]:
    """The rows as listed, and by frame number in order (a later duplicate wins)."""
    rows = manifest.get("rendered_frames")
    if not isinstance(rows, list) or not rows:
        raise _error("the manifest has no rendered_frames (a list of per-frame objects)")
    if len(rows) > MAX_FRAMES:
        raise _error(f"rendered_frames has {len(rows)} frames; at most {MAX_FRAMES}")
    by_frame = {_frame_number(row, i): row for i, row in enumerate(rows)}
    return rows, dict(sorted(by_frame.items()))


def _number(row: Mapping[str, Any], field: str, frame: int) -> float:
    value = row.get(field)
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and \
            math.isfinite(value)
    except OverflowError:  # an integer of hundreds of digits
        finite = False
    if not finite:
        raise _error(f"{field} at frame {frame}: {value!r} is not a finite number", value)
    return float(value)


def schedule(by_frame: Mapping[int, Mapping[str, Any]], field: str) -> str:
    """One key per listed frame, each value written exactly (``repr`` round-trips)."""
    return ", ".join(f"{frame}:({_number(row, field, frame)!r})"
                     for frame, row in by_frame.items())


def prompts(by_frame: Mapping[int, Mapping[str, Any]]) -> dict[str, str]:
    """Frame → prompt, keyed only where the prompt changes."""
    keyed: dict[str, str] = {}
    last = None
    for frame, row in by_frame.items():
        text = row.get(PROMPT)
        if not isinstance(text, str):
            raise _error(f"{PROMPT} at frame {frame}: {text!r} is not text", text)
        if text != last:
            keyed[str(frame)] = text
        last = text
    return keyed


def _scale(by_frame: Mapping[int, Mapping[str, Any]], out: Overrides) -> None:
    """The guidance scale per frame (``cfg_scale_schedule``); ``scale`` is the first frame's."""
    values = [_number(row, SCALE, frame) for frame, row in by_frame.items()]
    out["scale"] = (f"{KEY} {SCALE}", values[0])
    out["cfg_scale_schedule"] = (f"{KEY} {SCALE}", schedule(by_frame, SCALE))


def _non_schedule(manifest: Mapping[str, Any], rows: list, out: Overrides) -> None:
    """Frame count, cadence and fps of the manifest (its options, when set)."""
    out["max_frames"] = (f"{KEY} frame count", len(rows))
    options = manifest.get("options") or {}
    if not isinstance(options, Mapping):
        raise _error("options is not an object", options)
    for option, name in (("cadence", "diffusion_cadence"), ("output_fps", "fps")):
        if options.get(option):
            out[name] = (f"{KEY} options.{option}", options[option])


def _prompt_overrides(by_frame: Mapping[int, Mapping[str, Any]], out: Overrides) -> None:
    """Parseq's prompts are complete: no negative prompts or additions of the file apply."""
    where = f"{KEY} {PROMPT}"
    out["animation_prompts"] = (where, prompts(by_frame))
    out["negative_prompts"] = (where, {})
    out["animation_prompts_positive"] = (where, "")
    out["animation_prompts_negative"] = (where, "")


def _unused_note(carried: set[str], used: set[str]) -> list[str]:
    unused = sorted(f for f in carried - used
                    if not f.endswith(("_delta", "_pc")) and f not in MOTION)
    if not unused:
        return []
    shown = ", ".join(unused[:20]) + (f" … ({len(unused)} fields)" if len(unused) > 20 else "")
    return [f"{KEY}: fields this engine does not implement are ignored: {shown}"]


def overrides(values: Mapping[str, Any]) -> tuple[Overrides, list[str]]:
    """The settings the manifest in ``values["parseq_manifest"]`` sets, and notes.

    ``values`` are the other settings as loaded (``parseq_use_deltas`` and
    ``parseq_non_schedule_overrides`` decide what is taken).
    """
    manifest = load(values[KEY])
    rows, by_frame = frames(manifest)
    carried = {field for field, value in rows[0].items() if value is not None}
    suffix = "_delta" if values["parseq_use_deltas"] else ""
    fields = {**{name: name + suffix for name in MOTION}, **FIELDS}
    out: Overrides = {name: (f"{KEY} {field}", schedule(by_frame, field))
                      for name, field in fields.items() if field in carried}
    notes: list[str] = []
    if FIELDS["seed_schedule"] in carried:
        out["seed_behavior"] = (f"{KEY} seed", "schedule")
    if PROMPT in carried:
        _prompt_overrides(by_frame, out)
    if SCALE in carried:
        _scale(by_frame, out)
    if values["parseq_non_schedule_overrides"]:
        _non_schedule(manifest, rows, out)
    if len(rows) != len(by_frame) or list(by_frame) != list(range(len(by_frame))):
        notes.append(f"{KEY}: rendered_frames are not frames 0, 1, 2, … each once; values "
                     "ramp across missing frames and a repeated frame takes its last row")
    return out, notes + _unused_note(carried, set(fields.values()) | {SCALE, *_NOT_SCHEDULES})
