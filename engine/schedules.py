"""Deforum keyframe schedules: ``"0:(1.0), 10:(0.5*sin(t))"`` → one value per frame.

Semantics follow Deforum's (constant keys ramp linearly to the next key and
hold after the last; keys that depend on ``t`` are evaluated on every frame
until the next key) with deliberate fixes: no key at frame 0 holds the first key
backwards, a constant written as an expression is still a constant, and keys
beyond the rendered range still shape the ramp toward them.

Settings files come from strangers, so every input ends in finite numbers or a
SettingsError naming the setting, and the work of every step is bounded by the
size of the input.
"""

from __future__ import annotations

import math
import re
import warnings
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import SettingsError
from .expressions import Expression, ExpressionError, compile_expression

# Limits a real schedule never meets: a keyframe-per-frame camera bake of 10,000
# frames is about 200,000 characters and 10,000 keys.
MAX_SCHEDULE_CHARS = 1_000_000
MAX_KEYS = 100_000
MAX_FRAME = 10**9
# Expressions (in values or key frames) cost a parse, a check and a trial
# evaluation each, about 20 µs plus 2 µs per node; plain numbers cost neither.
# A hand-written schedule has tens of them.
MAX_EXPRESSIONS = 5_000
MAX_EXPRESSION_NODES = 50_000
# Expression nodes evaluated per schedule, summed over the frames that evaluate
# them (an expression of 20 nodes over 1,000,000 frames is 2e7).
MAX_WORK = 50_000_000
_CALL_FRAMES = 256  # the fixed cost of one numpy call, in frames of elementwise work
_CHUNK = 65_536  # frames evaluated together: bounds the memory of deep expressions

# ASCII digits only, everywhere (``\d`` would accept Arabic-Indic or fullwidth
# digits that the expression parser rejects).  No two parts can match the same
# digits, so matching is linear in the input even when it fails.
_NUMBER_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(_NUMBER_PATTERN)
# The common key, matched in one step: a frame number and a number in parentheses.
_SIMPLE_KEY = re.compile(r"[ \t\r\n]*([0-9]+)[ \t\r\n]*:[ \t\r\n]*\([ \t\r\n]*("
                         + _NUMBER_PATTERN + r")[ \t\r\n]*\)[ \t\r\n]*(?:,|\Z)")
_PAREN = re.compile(r"[()]")
_FRAME_DIGITS = len(str(MAX_FRAME))


class ScheduleWarning(UserWarning):
    """A schedule was accepted but not as written (e.g. no key at frame 0)."""


@dataclass(frozen=True)
class Key:
    frame: int
    text: str
    value: float  # the value at ``frame``: what a ramp from the previous key aims at
    expression: Expression | None  # set when the value depends on t


def _error(key: str, text: str, message: str, fragment: str | None = None) -> SettingsError:
    shown = text if len(text) <= 120 else text[:117] + "…"
    if fragment is not None and len(fragment) > 60:
        fragment = fragment[:57] + "…"
    where = f" at {fragment!r}" if fragment is not None else ""
    return SettingsError(f"{key}: {message}{where} in schedule {shown!r}", key=key, value=text)


def _split_keys(text: str, key: str) -> list[tuple[str, str, bool]]:
    """Split ``FRAME:(VALUE), …`` into (frame text, value text, simple) triples; simple
    keys are digits and a plain number, which the caller can read without compiling.

    Values may hold commas and nested parentheses; whitespace is allowed
    between any two tokens; a value without parentheses runs to the next comma.
    Every character is looked at a bounded number of times.
    """
    pairs: list[tuple[str, str, bool]] = []
    i, n = 0, len(text)
    while len(pairs) <= MAX_KEYS:
        simple = _SIMPLE_KEY.match(text, i)
        if simple:
            pairs.append((simple[1], simple[2], True))
            i = simple.end()
            continue
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
            depth, j = 0, -1
            for paren in _PAREN.finditer(text, i):
                depth += 1 if paren[0] == "(" else -1
                if depth == 0:
                    j = paren.start()
                    break
            if j < 0:
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
        pairs.append((frame, value, False))
        if i < n:
            i += 1  # the comma; a trailing comma is allowed
    if len(pairs) > MAX_KEYS:
        raise _error(key, text, f"more than {MAX_KEYS} keys")
    return pairs


class _Compiler:
    """Compiles the expressions of one schedule within MAX_EXPRESSIONS and MAX_EXPRESSION_NODES."""

    def __init__(self) -> None:
        self.count = self.nodes = 0

    def __call__(self, text: str) -> Expression:
        self.count += 1
        if self.count > MAX_EXPRESSIONS:
            raise ExpressionError(f"more than {MAX_EXPRESSIONS} expressions", text)
        expr = compile_expression(text)
        self.nodes += expr.nodes
        if self.nodes > MAX_EXPRESSION_NODES:
            raise ExpressionError(f"expressions have more than {MAX_EXPRESSION_NODES} parts "
                                  "in all", text)
        return expr


def _frame_number(frame_text: str, key: str, text: str, variables: Mapping[str, float],
                  compile_: _Compiler) -> int | None:
    """The frame of a key, or None for an expression that lands before frame 0.

    Frames are ASCII digits or an expression without t (e.g. ``"max_f-2"``);
    a fractional frame is rounded to the nearest one with a ScheduleWarning.
    """
    raw = frame_text.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1].strip()
    if raw.isascii() and raw.isdigit():
        digits = raw.lstrip("0") or "0"
        if len(digits) > len(str(MAX_FRAME)) or int(digits) > MAX_FRAME:
            raise _error(key, text, f"key frame is beyond frame {MAX_FRAME}", frame_text)
        return int(digits)
    try:
        expr = compile_(raw)
        if "t" in expr.uses:
            raise ExpressionError("a key frame cannot depend on t", raw)
        value = expr.evaluate(variables)  # the caller holds np.errstate
    except ExpressionError as exc:
        raise _error(key, text, f"bad key frame ({exc})", exc.fragment) from None
    if not math.isfinite(value) or value > MAX_FRAME or value < 0 and _NUMBER.fullmatch(raw):
        raise _error(key, text, f"key frame evaluates to {value}, expected a frame "
                     f"0…{MAX_FRAME}", frame_text)
    frame = math.floor(value + 0.5)
    if frame != value:
        warnings.warn(f"{key}: key frame {frame_text.strip()!r} is {value:g}, not a whole "
                      f"frame; using frame {frame}", ScheduleWarning, stacklevel=3)
    return frame if frame >= 0 else None  # e.g. "max_f-2" in a 1-frame run: unreachable


def _frame_number_required(frame_text: str, key: str, text: str,
                           variables: Mapping[str, float], compile_: _Compiler) -> int:
    frame = _frame_number(frame_text, key, text, variables, compile_)
    if frame is None:
        raise _error(key, text, "key frame is before frame 0", frame_text)
    return frame


class Schedule:
    """A parsed schedule that yields a finite value for every frame.

    Parsing is linear in the text and evaluation is bounded (MAX_EXPRESSIONS,
    MAX_EXPRESSION_NODES, MAX_WORK), so the worst schedule takes about 0.3 s to
    parse and evaluate.  A run evaluates its schedules before the first frame and
    checks for cancel between frames; with each schedule this short, a cancel
    check between schedules is enough and none is needed inside one.
    """

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
        self._compile = _Compiler()
        keys: dict[int, Key] = {}
        with np.errstate(all="ignore"):
            for frame_text, value_text, simple in _split_keys(text, key):
                if simple and len(frame_text) <= _FRAME_DIGITS:  # the common case, fast
                    frame, value = int(frame_text), float(value_text)
                    if frame <= MAX_FRAME and math.isfinite(value):
                        keys[frame] = Key(frame, value_text, value, None)
                        continue
                frame = _frame_number(frame_text, key, text, self.variables, self._compile)
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
            return Key(frame, stripped, self._finite(float(stripped), frame, stripped), None)
        try:
            expr = self._compile(stripped)
            value = expr.evaluate({**self.variables, "t": frame})  # errors before the run
        except ExpressionError as exc:
            raise _error(self.key, self.text, str(exc), exc.fragment) from None
        self._finite(value, frame, stripped)
        return Key(frame, stripped, value, expr if "t" in expr.uses else None)

    def _finite(self, value: float, frame: int, fragment: str) -> float:
        if not math.isfinite(value):
            raise _error(self.key, self.text, f"value is {value} at frame {frame}", fragment)
        return value

    def _evaluate(self, key: Key, frames: np.ndarray) -> np.ndarray:
        """``key``'s expression at ``frames``, a chunk at a time."""
        out = np.empty(len(frames))
        for start in range(0, len(frames), _CHUNK):
            part = frames[start:start + _CHUNK]
            try:
                out[start:start + len(part)] = key.expression.evaluate(
                    {**self.variables, "t": part})
            except ExpressionError as exc:
                raise _error(self.key, self.text, str(exc), exc.fragment) from None
        return out

    def _check_work(self, count: int) -> None:
        """Refuse before evaluating when expressions × frames exceed MAX_WORK."""
        work = 0
        for i, key in enumerate(self.keys):
            if key.expression is None:
                continue
            start = 0 if i == 0 else min(key.frame, count)
            stop = min(self._frames[i + 1] if i + 1 < len(self.keys) else count, count)
            work += key.expression.nodes * (max(stop - start, 0) + _CALL_FRAMES)
            if work > MAX_WORK:
                raise _error(self.key, self.text,
                             f"expressions need more than {MAX_WORK} evaluation steps for "
                             f"{count} frames; simplify them or use fewer frames", key.text)

    def values(self, count: int) -> np.ndarray:
        """One finite float64 per frame 0…count−1, or a SettingsError naming the frame.

        Constant keys ramp linearly to the next key and hold after the last one;
        a key that depends on t is evaluated on every frame until the next key,
        all frames of a key in one vectorised call.
        """
        if len(self.keys) == 1 and self.keys[0].expression is None:  # the usual "0:(1)"
            return np.full(count, self.keys[0].value)
        self._check_work(count)
        with np.errstate(all="ignore"):
            return self._values(count)

    def _values(self, count: int) -> np.ndarray:
        frames = np.arange(count, dtype=np.float64)
        starts = np.asarray(self._frames, dtype=np.float64)
        index = np.maximum(np.searchsorted(starts, frames, side="right") - 1, 0)
        at_key = np.array([k.value for k in self.keys])
        following = np.minimum(index + 1, len(self.keys) - 1)
        span = starts[following] - starts[index]
        # Before the first key and after the last, span is 0 and the key holds.
        w = np.where(span > 0, (frames - starts[index]) / np.where(span > 0, span, 1.0), 0.0)
        w = np.clip(w, 0.0, 1.0)
        c, t = at_key[index], at_key[following]
        out = c + (t - c) * w
        wide = ~np.isfinite(out)  # t − c overflowed: the convex form does not
        out[wide] = c[wide] * (1.0 - w[wide]) + t[wide] * w[wide]
        for i, key in enumerate(self.keys):
            if key.expression is None:
                continue
            start = 0 if i == 0 else min(key.frame, count)
            stop = min(self._frames[i + 1] if i + 1 < len(self.keys) else count, count)
            out[start:stop] = self._evaluate(key, frames[start:stop])
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            frame = int(bad[0])
            source = self.keys[int(index[frame])]
            raise _error(self.key, self.text, f"value is {out[frame]} at frame {frame}",
                         source.text)
        return out


def evaluate_schedule(text: str | float, max_frames: int, seed: int = 0, *,
                      key: str = "schedule") -> np.ndarray:
    """One finite float64 per frame 0…max_frames−1, or a SettingsError naming ``key``."""
    return Schedule(text, key=key, max_frames=max_frames, seed=seed).values(max_frames)


# ---------------------------------------------------------------- prompts

NEGATIVE_MARK = "--neg"


def _shown(value: object) -> str:
    """``repr`` cut to a readable length (a stranger's key may be megabytes long)."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        text = f"<integer of {value.bit_length()} bits>"  # type: ignore[attr-defined]
    return text if len(text) <= 60 else text[:57] + "…"


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
        if len(items) > MAX_KEYS:
            raise SettingsError(f"{key}: more than {MAX_KEYS} prompts", key=key,
                                value=f"{len(items)} prompts")
        keyed: dict[int, str] = {}
        compile_ = _Compiler()
        with np.errstate(all="ignore"):  # entered once: it costs more than a small key
            for frame, prompt in items:
                if not isinstance(prompt, str):
                    raise SettingsError(f"{key}: the prompt for frame {_shown(frame)} must be "
                                        f"text, got {_shown(prompt)}", key=key, value=prompt)
                if isinstance(frame, int) and not isinstance(frame, bool):
                    if not 0 <= frame <= MAX_FRAME:
                        raise SettingsError(f"{key}: key frame {_shown(frame)} is not a frame "
                                            f"0…{MAX_FRAME}", key=key, value=frame)
                    number = frame
                else:
                    number = _frame_number_required(str(frame), key, str(frame), variables,
                                                    compile_)
                keyed[number] = prompt
        return sorted(keyed.items()) or [(0, "")]

    @property
    def keys(self) -> list[int]:
        """Frame numbers of the positive prompts, in order."""
        return [frame for frame, _ in self._positive]

    @staticmethod
    def _at(keyed: list[tuple[int, str]], frame: int) -> str:
        index = bisect_right(keyed, frame, key=lambda item: item[0]) - 1
        return keyed[max(index, 0)][1]

    def at(self, frame: int) -> tuple[str, str]:
        """(positive, negative) prompt of ``frame``."""
        positive, negative = split_negative(self._at(self._positive, frame))
        extras = [self._at(self._negative, frame).strip() if self._negative else "",
                  self.negative_suffix]
        negative = ", ".join(part for part in (negative, *extras) if part)
        if self.prefix:
            positive = f"{self.prefix} {positive}".strip()
        return positive, negative
