"""Deforum keyframe schedules: ``"0:(1.0), 10:(0.5*sin(t))"`` → one value per frame.

Semantics follow the reference (constant keys ramp linearly to the next key
and hold after the last; keys that depend on ``t`` are evaluated on every frame
until the next key) with the deliberate fixes of product.md §2: no key at frame
0 holds the first key backwards, a constant written as an expression is still a
constant, and keys beyond the rendered range still shape the ramp toward them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import SettingsError
from .expressions import Expression, ExpressionError, compile_expression

MAX_SCHEDULE_CHARS = 1_000_000
MAX_KEYS = 100_000
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SEPARATOR = re.compile(r"\s*,\s*")


class ScheduleWarning(UserWarning):
    """A schedule was accepted but not as written (e.g. no key at frame 0)."""


@dataclass(frozen=True)
class Key:
    frame: int
    text: str
    constant: float | None  # set when the value does not depend on t
    expression: Expression | None


def _error(key: str, text: str, message: str, fragment: str | None = None) -> SettingsError:
    shown = text if len(text) <= 120 else text[:117] + "…"
    where = f" at {fragment!r}" if fragment is not None else ""
    return SettingsError(f"{key}: {message}{where} in schedule {shown!r}", key=key, value=text)


def _split_keys(text: str, key: str) -> list[tuple[str, str]]:
    """Split ``FRAME:(VALUE), …`` into (frame text, value text) pairs.

    Values may hold commas and nested parentheses; whitespace is allowed
    between any two tokens; a value without parentheses runs to the next comma.
    """
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        colon = text.find(":", i)
        if colon < 0:
            raise _error(key, text, "expected FRAME:(VALUE)", text[i:i + 40])
        frame = text[i:colon].strip()
        i = colon + 1
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == "(":
            depth, j = 0, i
            while j < n:
                c = text[j]
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if depth:
                raise _error(key, text, "unbalanced parentheses", text[i:i + 40])
            value = text[i + 1:j]
            i = j + 1
            while i < n and text[i].isspace():
                i += 1
            if i < n and text[i] != ",":
                raise _error(key, text, "expected ',' after a key", text[i:i + 40])
        else:
            j = text.find(",", i)
            j = n if j < 0 else j
            value = text[i:j]
            i = j
        if not value.strip():
            raise _error(key, text, "empty value", f"{frame}:")
        pairs.append((frame, value))
        if len(pairs) > MAX_KEYS:
            raise _error(key, text[:60], f"more than {MAX_KEYS} keys")
        if i < n:
            i += 1  # the comma; a trailing comma is allowed
    return pairs


def _frame_number(frame_text: str, key: str, text: str,
                  variables: Mapping[str, float]) -> int | None:
    raw = frame_text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1].strip()
    if raw.isdigit():
        return int(raw)
    try:
        expr = compile_expression(raw)
        if "t" in expr.uses:
            raise ExpressionError("a key frame cannot depend on t", raw)
        value = expr(variables)
    except ExpressionError as exc:
        raise _error(key, text, f"bad key frame ({exc})", exc.fragment) from None
    if value != value or value > 10**9 or value < 0 and _NUMBER.fullmatch(raw):
        raise _error(key, text, f"key frame evaluates to {value}, expected a frame ≥ 0", frame_text)
    return int(value) if value >= 0 else None  # e.g. "max_f-2" in a 1-frame run: unreachable


def _frame_number_required(frame_text: str, key: str, text: str,
                           variables: Mapping[str, float]) -> int:
    frame = _frame_number(frame_text, key, text, variables)
    if frame is None:
        raise _error(key, text, "key frame is before frame 0", frame_text)
    return frame


class Schedule:
    """A parsed schedule that yields a value for any frame index."""

    def __init__(self, text: str | float | int, *, key: str = "schedule",
                 max_frames: int = 1, seed: int = 0) -> None:
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise SettingsError(f"{key}: expected a schedule string like \"0:(1)\", got {text!r}",
                                key=key, value=text)
        if not isinstance(text, str):
            text = f"0:({text!r})"
        if len(text) > MAX_SCHEDULE_CHARS:
            raise _error(key, text[:60] + "…",
                         f"schedule is {len(text)} characters long (limit {MAX_SCHEDULE_CHARS})")
        self.key, self.text = key, text
        self.variables = {"max_f": max_frames - 1, "max_frames": max_frames, "s": seed}
        keys: dict[int, Key] = {}
        for frame_text, value_text in _split_keys(text, key):
            frame = _frame_number(frame_text, key, text, self.variables)
            if frame is not None:
                keys[frame] = self._compile_value(frame, value_text)
        if not keys:
            raise _error(key, text, "no keys found; expected e.g. \"0:(1)\"")
        self.keys = [keys[f] for f in sorted(keys)]
        self._frames = [k.frame for k in self.keys]
        if self.keys[0].frame != 0:
            warnings.warn(f"{key}: no key at frame 0; holding the value of frame "
                          f"{self.keys[0].frame} before it", ScheduleWarning, stacklevel=2)

    def _compile_value(self, frame: int, value_text: str) -> Key:
        stripped = value_text.strip()
        if _NUMBER.fullmatch(stripped):
            return Key(frame, stripped, float(stripped), None)
        try:
            expr = compile_expression(stripped)
            if "t" in expr.uses:
                expr({**self.variables, "t": frame})  # surface unknown variables early
                return Key(frame, stripped, None, expr)
            return Key(frame, stripped, self._finite(expr(self.variables), frame, stripped), None)
        except ExpressionError as exc:
            raise _error(self.key, self.text, str(exc), exc.fragment) from None

    def _finite(self, value: float, frame: int, fragment: str) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _error(self.key, self.text, f"value is {value} at frame {frame}", fragment)
        return value

    def _key_value(self, key: Key, frame: int) -> float:
        if key.constant is not None:
            return key.constant
        return self._finite(key.expression({**self.variables, "t": frame}), frame, key.text)

    def value_at(self, frame: int) -> float:
        from bisect import bisect_right

        index = bisect_right(self._frames, frame) - 1
        if index < 0:
            return self._key_value(self.keys[0], frame)
        current = self.keys[index]
        if current.constant is None or index + 1 == len(self.keys):
            return self._key_value(current, frame)
        following = self.keys[index + 1]
        target = self._key_value(following, following.frame)
        w = (frame - current.frame) / (following.frame - current.frame)
        return current.constant + (target - current.constant) * w

    def values(self, count: int) -> list[float]:
        return [self.value_at(f) for f in range(count)]


def evaluate_schedule(text: str | float, max_frames: int, seed: int = 0, *,
                      key: str = "schedule") -> list[float]:
    """One value per frame 0…max_frames−1 (product.md §2)."""
    return Schedule(text, key=key, max_frames=max_frames, seed=seed).values(max_frames)


# ---------------------------------------------------------------- prompts

NEGATIVE_MARK = "--neg"


def split_negative(prompt: str) -> tuple[str, str]:
    """Split a webui-style ``"positive --neg negative"`` prompt."""
    positive, _, negative = prompt.partition(NEGATIVE_MARK)
    return positive.strip(), negative.replace(NEGATIVE_MARK, " ").strip()


class PromptSchedule:
    """Prompts keyed by frame: frame f uses the latest key ≤ f (first key before it)."""

    def __init__(self, prompts: Mapping[str | int, str] | str | list, *,
                 negative: Mapping[str | int, str] | str | None = None,
                 max_frames: int = 1, seed: int = 0, key: str = "animation_prompts",
                 prefix: str = "", negative_suffix: str = "") -> None:
        self.prefix, self.negative_suffix = prefix.strip(), negative_suffix.strip()
        variables = {"max_f": max_frames - 1, "max_frames": max_frames, "s": seed}
        self._positive = self._keyed(prompts, key, variables)
        self._negative = self._keyed(negative, "negative_prompts", variables) if negative else []

    @staticmethod
    def _keyed(prompts, key: str, variables) -> list[tuple[int, str]]:
        if isinstance(prompts, str):
            return [(0, prompts)]
        if isinstance(prompts, list):
            items = list(enumerate(prompts))
        elif isinstance(prompts, Mapping):
            items = list(prompts.items())
        else:
            raise SettingsError(f"{key}: expected an object of frame → prompt, got {prompts!r}",
                                key=key, value=prompts)
        keyed: dict[int, str] = {}
        for frame, prompt in items:
            if not isinstance(prompt, str):
                raise SettingsError(f"{key}: the prompt for frame {frame!r} must be text, "
                                    f"got {prompt!r}", key=key, value=prompt)
            number = frame if isinstance(frame, int) else _frame_number_required(
                str(frame), key, str(frame), variables)
            keyed[number] = prompt
        return sorted(keyed.items()) or [(0, "")]

    @property
    def keys(self) -> list[int]:
        """Frame numbers of the positive prompts, in order."""
        return [frame for frame, _ in self._positive]

    @staticmethod
    def _at(keyed: list[tuple[int, str]], frame: int) -> str:
        chosen = keyed[0][1]
        for key_frame, prompt in keyed:
            if key_frame > frame:
                break
            chosen = prompt
        return chosen

    def at(self, frame: int) -> tuple[str, str]:
        """(positive, negative) prompt of ``frame``."""
        positive, negative = split_negative(self._at(self._positive, frame))
        extras = [self._at(self._negative, frame).strip() if self._negative else "",
                  self.negative_suffix]
        negative = ", ".join(part for part in (negative, *extras) if part)
        if self.prefix:
            positive = f"{self.prefix} {positive}".strip()
        return positive, negative
