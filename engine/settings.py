"""Load, validate and write Deforum settings files.

Everything here is derived from ``settings_table.SETTINGS``: aliases map old and
webui key names to ours, missing keys take the table's defaults, each value is
checked against its row, and the effective settings are written back with our
names so the file can be loaded again.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import parseq
from .errors import InputError, SettingsError, shown
from .paths import read_text, unusable
from .schedules import PromptSchedule, Schedule
from .settings_table import ALIASES, BOOKKEEPING, BY_NAME, SETTINGS, Setting
from .webui_compat import upgrade

# Room for the largest Parseq manifest (``parseq.MAX_CHARS``) inside, escaped as text.
MAX_SETTINGS_BYTES = 96 * 2**20

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Settings(Mapping[str, Any]):
    """Validated settings by canonical name, plus what the loader had to say."""

    def __init__(self, values: dict[str, Any], warnings_: list[str], source: str,
                 given: frozenset[str]) -> None:
        self._values = values
        self.warnings = warnings_
        self.source = source
        self.given = given  # canonical names present in the input

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed (validated like the file's own)."""
        data = {**self._values, **changes}
        return parse_settings(data, source=self.source)

    def schedule(self, name: str) -> Schedule:
        return Schedule(self._values[name], key=name, max_frames=self._values["max_frames"],
                        seed=max(self._values["seed"], 0))

    def prompts(self) -> PromptSchedule:
        v = self._values
        return PromptSchedule(v["animation_prompts"], negative=v["negative_prompts"] or None,
                              max_frames=v["max_frames"], seed=max(v["seed"], 0),
                              prefix=v["animation_prompts_positive"],
                              negative_suffix=v["animation_prompts_negative"])


def _expected(setting: Setting) -> str:
    if setting.type == "choice":
        return "one of " + ", ".join(repr(c) for c in setting.choices)
    return {"bool": "true or false", "int": "a whole number", "float": "a number",
            "str": "text", "path": "a file path", "schedule": 'a schedule like "0:(1)"',
            "prompts": "an object of frame → prompt", "json": "a JSON value"}[setting.type]


def _bad(setting: Setting, key: str, value: Any, extra: str = "") -> SettingsError:
    name = key if key == setting.name else f"{key} ({setting.name})"
    return SettingsError(f"{name}: {shown(value)} is not valid; expected "
                         f"{_expected(setting)}{extra}", key=setting.name, value=value)


def _convert(setting: Setting, key: str, value: Any) -> Any:
    """Convert a JSON value to the row's type, leniently where Deforum files are."""
    kind = setting.type
    if kind == "json" or not setting.used and value is None:
        return value
    converter = _CONVERTERS.get(kind)
    if converter is None:
        raise AssertionError(kind)
    return converter(setting, key, value)


def _to_bool(setting: Setting, key: str, value: Any) -> bool:
    """true/false, also as the strings and 0/1 that Deforum files use."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad(setting, key, value)


def _to_number(setting: Setting, key: str, value: Any) -> int | float:
    """A finite int or float (also from a numeric string) within the row's range."""
    number: float
    if isinstance(value, bool):
        raise _bad(setting, key, value)
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _bad(setting, key, value) from None
    else:
        raise _bad(setting, key, value)
    try:
        finite = math.isfinite(number)
    except OverflowError:  # an integer of hundreds of digits
        finite = False
    if not finite:
        raise _bad(setting, key, value)
    if setting.type == "int":
        if number != int(number):
            raise _bad(setting, key, value)
        number = int(number)
    else:
        number = float(number)
    if setting.minimum is not None and number < setting.minimum or \
            setting.maximum is not None and number > setting.maximum:
        low, high = setting.minimum, setting.maximum
        raise _bad(setting, key, value, f" of at least {low}" if high is None else
                   f" of at most {high}" if low is None else f" between {low} and {high}")
    return number


def _to_str(setting: Setting, key: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. a resume timestring written as a number
    if not isinstance(value, str):
        raise _bad(setting, key, value)
    return value


def _to_path(setting: Setting, key: str, value: Any) -> str:
    """Text the operating system takes as a path (``open`` raises on a NUL byte)."""
    path = _to_str(setting, key, value)
    why = unusable(path)
    if why:
        raise _bad(setting, key, value, f" ({why})")
    return path


def _to_choice(setting: Setting, key: str, value: Any) -> str:
    """One of the row's choices or their aliases, in any case; returns the choice."""
    if isinstance(value, str):
        text = value.strip()
        lookup = {c.lower(): c for c in setting.choices}
        lookup.update({a.lower(): c for a, c in setting.choice_aliases.items()})
        if text.lower() in lookup:
            return lookup[text.lower()]
    raise _bad(setting, key, value)


def _to_schedule(setting: Setting, key: str, value: Any) -> str:
    """A schedule string; a bare number is the constant schedule ``0:(n)``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"0:({value})"
    if not isinstance(value, str):
        raise _bad(setting, key, value)
    return value


def _to_prompts(setting: Setting, key: str, value: Any) -> dict[str, Any]:
    """Prompts by frame; one string is frame 0's, a list numbers its prompts 0, 1, …"""
    if isinstance(value, str):
        return {"0": value}
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return {str(i): p for i, p in enumerate(value)}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    raise _bad(setting, key, value)


_CONVERTERS = {"bool": _to_bool, "int": _to_number, "float": _to_number, "str": _to_str,
               "path": _to_path, "choice": _to_choice, "schedule": _to_schedule,
               "prompts": _to_prompts}


def _apply_parseq(values: dict[str, Any], given: dict[str, str], notes: list[str]) -> None:
    """Replace what the Parseq manifest carries; the manifest itself is used up, so the
    effective settings (and any later ``replace``) are ordinary settings."""
    changes, parseq_notes = parseq.overrides(values)
    for name, (where, value) in changes.items():
        values[name] = _convert(BY_NAME[name], where, value)
        given.setdefault(name, name)
    values[parseq.KEY] = ""
    notes.extend(parseq_notes)


def parse_settings(data: Mapping[str, Any], *, source: str = "settings") -> Settings:
    """Validate a dict of Deforum settings (any supported dialect)."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: expected a JSON object of settings, got "
                            f"{type(data).__name__}")
    data = upgrade(data)  # older webui keys and values in today's form
    notes: list[str] = []
    values: dict[str, Any] = {}
    given: dict[str, str] = {}
    unknown: list[str] = []
    for key, value in data.items():
        if key == "prompts" and isinstance(value, list):
            name = "still_prompts"  # the CLI's list of still-image prompts
        else:
            name = key if key in BY_NAME else ALIASES.get(key)
        if name is None:
            unknown.append(key)
            continue
        if name in given and given[name] != key:
            notes.append(f"{key} and {given[name]} both set {name}; using {key}")
        given[name] = key
        values[name] = _convert(BY_NAME[name], key, value)
    for setting in SETTINGS:
        values.setdefault(setting.name, setting.default)
    if parseq.wanted(values[parseq.KEY]):
        _apply_parseq(values, given, notes)
    if "cfg_scale_schedule" not in given:  # files before the webui's schedule: their scale
        values["cfg_scale_schedule"] = f"0: ({values['scale']})"
    _check_still_prompts(values["still_prompts"], given.get("still_prompts", "still_prompts"))

    ignored = sorted(name for name in given
                     if not BY_NAME[name].used and BY_NAME[name].group != BOOKKEEPING
                     and values[name] != BY_NAME[name].default)
    if ignored:
        notes.append("these settings are recognised but not implemented, and are ignored: "
                     + ", ".join(given[n] for n in ignored))
    if unknown:
        notes.append("unknown settings are ignored: " + ", ".join(sorted(unknown)))

    for axis in ("W", "H"):
        if values[axis] % 8:
            rounded = max(8, values[axis] - values[axis] % 8)
            notes.append(f"{axis}: {values[axis]} rounded down to {rounded} (a multiple of 8)")
            values[axis] = rounded

    seed = max(values["seed"], 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for setting in SETTINGS:
            if setting.is_schedule and setting.used:  # every frame, so nan fails here
                Schedule(values[setting.name], key=setting.name, max_frames=values["max_frames"],
                         seed=seed).values(values["max_frames"])
        PromptSchedule(values["animation_prompts"], negative=values["negative_prompts"] or None,
                       max_frames=values["max_frames"], seed=seed)
    notes.extend(str(w.message) for w in caught)
    return Settings(values, notes, source, frozenset(given))


def _check_still_prompts(prompts: Any, key: str) -> None:
    """Still-image prompts are a list of text; checked here, before any model is loaded."""
    if not (isinstance(prompts, list) and all(isinstance(p, str) for p in prompts)):
        name = key if key == "still_prompts" else f"{key} (still_prompts)"
        raise SettingsError(f"{name}: {shown(prompts)} is not valid; expected a list of text "
                            "prompts", key="still_prompts", value=prompts)


class _LongInteger(float):
    """A JSON integer with more digits than Python converts (``sys.get_int_max_str_digits``).

    It stands in as infinity, so the setting's own validation rejects it by name, and it
    shows its digits, shortened, in that message.
    """

    def __new__(cls, digits: str) -> "_LongInteger":
        number = super().__new__(cls, "-inf" if digits.startswith("-") else "inf")
        number.digits = digits
        return number

    def __repr__(self) -> str:
        return f"{self.digits[:20]}… ({len(self.digits.lstrip('-'))} digits)"


def _parse_int(digits: str) -> int | float:
    """``json``'s integer parser, but a long integer is a value to reject, not a crash."""
    limit = sys.get_int_max_str_digits()
    return int(digits) if not limit or len(digits) <= limit else _LongInteger(digits)


def _parse_json(text: str, path: Path) -> Any:
    """The file's JSON; a SettingsError (key ``settings``) for anything unreadable."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"settings file {path} is not valid JSON: {exc.msg} at line "
                            f"{exc.lineno} column {exc.colno}", key="settings",
                            value=str(path)) from None
    except RecursionError:
        raise SettingsError(f"settings file {path} nests lists or objects too deeply",
                            key="settings", value=str(path)) from None


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read a Deforum settings file (JSON), fill defaults and validate it."""
    why = unusable(str(path))
    if why:
        raise InputError(f"settings: {shown(str(path))} is not a file path ({why})",
                         key="settings", value=str(path))
    path = Path(path)
    try:
        text = read_text(path, MAX_SETTINGS_BYTES, "settings")
    except FileNotFoundError:
        raise InputError(f"settings file not found: {path}", key="settings",
                         value=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"settings file {path} cannot be read: {exc}", key="settings",
                         value=str(path)) from None
    return parse_settings(_parse_json(text, path), source=str(path))


def effective_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The fully resolved settings under our names, as written beside the frames."""
    return {s.name: settings[s.name] for s in SETTINGS}


def write_settings_file(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write settings JSON to a new file atomically; an existing file is never replaced."""
    from .output import write_atomic

    text = json.dumps(dict(data), indent=4, ensure_ascii=False) + "\n"
    return write_atomic(Path(path), text.encode("utf-8"))
