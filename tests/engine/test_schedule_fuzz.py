"""Schedules and prompt keys from strangers: finite numbers or a SettingsError, quickly.

The contract checked for every input: ``evaluate_schedule`` returns a finite
float64 array with one value per frame, or raises a SettingsError whose ``key``
is the setting's name; prompt keys give frames 0…MAX_FRAME or such an error.
Nothing else may escape and no single input may take a second.
"""

import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import SettingsError
from engine.expressions import _ARITY, FUNCTIONS
from engine.schedules import (MAX_FRAME, MAX_KEYS, PromptSchedule, ScheduleWarning,
                              evaluate_schedule)

# The promised bound per input, in CPU seconds of the evaluating thread: other work on
# the machine or in this process does not count against it (evaluation is single-threaded).
SECOND = 1.0
FUZZ = settings(max_examples=500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_schedule(text, frames: int, key: str = "zoom",
                   limit: float = SECOND) -> np.ndarray | None:
    """Assert the contract for one schedule; the values, or None after a SettingsError."""
    started = time.thread_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScheduleWarning)
            values = evaluate_schedule(text, frames, key=key)
    except SettingsError as exc:
        assert exc.key == key, str(exc)
        assert str(exc).startswith(f"{key}:")
        values = None
    elapsed = time.thread_time() - started
    assert elapsed < limit, f"{elapsed:.2f} CPU s for {text[:80]!r}"
    if values is not None:
        assert isinstance(values, np.ndarray) and values.dtype == np.float64
        assert values.shape == (frames,)
        assert np.isfinite(values).all()
    return values


def check_prompts(prompts, frames: int) -> PromptSchedule | None:
    """Assert the contract for one prompt mapping; the schedule, or None after an error."""
    started = time.thread_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScheduleWarning)
            schedule = PromptSchedule(prompts, max_frames=frames)
            texts = [schedule.at(f) for f in (0, frames // 2, frames - 1)]
    except SettingsError as exc:
        assert exc.key == "animation_prompts", str(exc)
        schedule = None
    elapsed = time.thread_time() - started
    assert elapsed < SECOND, f"{elapsed:.2f} CPU s for {str(prompts)[:80]}"
    if schedule is not None:
        assert all(isinstance(f, int) and 0 <= f <= MAX_FRAME for f in schedule.keys)
        assert all(isinstance(p, str) and isinstance(n, str) for p, n in texts)
    return schedule


# ---------------------------------------------------------------- the grammar

DIGITS = st.text("0123456789", min_size=1, max_size=400)
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=-10**400, max_value=10**400).map(str),
    st.builds(lambda m, e: f"{m}e{e}", DIGITS, st.integers(-400, 400)),
    st.builds(lambda a, b: f"{a}.{b}", DIGITS, DIGITS),
    st.sampled_from(["1e309", "-1e309", "1e-400", ".5", "5.", "0x" + "f" * 300, "0/0", "1/0"]),
)
NAMES = st.sampled_from(["t", "max_f", "max_frames", "s", "pi", "e"])
BINARY = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "&", "|", "<", "<=", ">",
                          ">=", "==", "!=", " and ", " or "])
UNARY = st.sampled_from(["-", "+", "~", "not "])


def _call(name: str, args: list[str]) -> str:
    return f"{name}({', '.join(args)})"


def _expressions(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def call(draw_name: str) -> st.SearchStrategy[str]:
        low, high = _ARITY.get(draw_name, (1, 1))
        # Sometimes one argument too few or too many, to reach the arity checks.
        count = st.integers(max(low - 1, 0), min(high, 4) + 1)
        return count.flatmap(lambda n: st.lists(children, min_size=n, max_size=n)).map(
            lambda args: _call(draw_name, args))

    return st.one_of(
        st.builds(lambda a, op, b: f"({a}{op}{b})", children, BINARY, children),
        st.builds(lambda op, a: f"{op}({a})", UNARY, children),
        st.builds(lambda a, c, b: f"({a} if {c} else {b})", children, children, children),
        st.sampled_from(sorted(FUNCTIONS)).flatmap(call),
    )


EXPRESSIONS = st.recursive(st.one_of(NUMBERS, NAMES), _expressions, max_leaves=12)
FRAMES = st.one_of(
    st.integers(0, 2 * 10**9).map(str),
    DIGITS,
    st.floats(min_value=-10, max_value=10**10, allow_nan=False).map(repr),
    st.sampled_from(["max_f", "max_f-2", '"max_f-2"', "'max_f/2'", "max_frames", "s", "t",
                     "²", "٣", "３", "1_0", "-0", "+3", " 7 "]),
    EXPRESSIONS,
)
KEYS = st.tuples(FRAMES, EXPRESSIONS, st.sampled_from(["{}:({})", "{}: ( {} )", "{}:{}"]))
SCHEDULES = st.lists(KEYS, min_size=1, max_size=8).map(
    lambda keys: ", ".join(form.format(f, v) for f, v, form in keys))
SYMBOLS = st.text("0123456789.:(),-+eE tmax_fsin*/ \n\t²٣３", max_size=300)
FRAME_COUNTS = st.integers(1, 2000)


@FUZZ
@given(SCHEDULES, FRAME_COUNTS)
def test_generated_schedules_keep_the_contract(text, frames):
    check_schedule(text, frames)


@FUZZ
@given(st.one_of(st.text(max_size=2000), SYMBOLS), FRAME_COUNTS)
def test_raw_text_schedules_keep_the_contract(text, frames):
    check_schedule(text, frames, key="translation_x")


PROMPT_KEYS = st.one_of(FRAMES, st.text(max_size=200),
                        st.integers(min_value=-10**400, max_value=10**400), st.booleans())


@FUZZ
@given(st.dictionaries(PROMPT_KEYS, st.text(max_size=20), min_size=1, max_size=6), FRAME_COUNTS)
def test_prompt_keys_keep_the_contract(prompts, frames):
    check_prompts(prompts, frames)


# ---------------------------------------------------------------- the found defects

def _digits(n: int) -> str:
    return "1" * n


ERRORS = {
    "round with infinite digits": ("0:(round(t, 1e309))", "1e309"),
    "round with nan digits": ("0:(round(t, 0/0))", "round(t, 0/0)"),
    "400-digit literal in an expression": ("0:(" + _digits(400) + "+t)", "1111"),
    "400-digit literal alone": ("0:(" + _digits(400) + ")", "1111"),
    "superscript frame": ("²:(1)", "²"),
    "5000-digit frame": (_digits(5000) + ":(1)", "1111"),
    "Arabic-Indic frame": ("٣:(1)", "٣"),
    "fullwidth frame": ("３:(1)", "３"),
    "infinite literal": ("0:(1e309)", "1e309"),
    "long digit run before a non-digit": ("0:(" + _digits(16000) + "x)", "1111"),
    "nan at a later frame": ("0:(1/(t-3))", "1/(t-3)"),
    "nan in the branch not taken": ("0:(where(t>99, round(1, 0/0), 1))", "round(1, 0/0)"),
    "hexadecimal beyond float64": ("0:(0x" + "f" * 300 + ")", "0xfff"),
}


@pytest.mark.parametrize("text, fragment", ERRORS.values(), ids=ERRORS.keys())
def test_found_defects_are_settings_errors_naming_key_and_fragment(text, fragment):
    assert check_schedule(text, 12, key="zoom") is None  # the error, within a second
    with pytest.raises(SettingsError) as info:
        evaluate_schedule(text, 12, key="zoom")
    assert fragment in str(info.value)


FINITE = {
    "min of one argument": ("0:(min(t))", [0, 1, 2, 3]),
    "max of one argument": ("0:(max(t))", [0, 1, 2, 3]),
    "round with 1e30 digits": ("0:(round(t + 0.25, 1e30))", [0.25, 1.25, 2.25, 3.25]),
    "round with 2e9 digits": ("0:(round(1.5, 2e9))", [1.5] * 4),
    "round with negative digits": ("0:(round(1234.5 + t, -2))", [1200] * 4),
    "ramp across ±1e308": ("0:(1e308), 4:(-1e308)", [1e308, 5e307, 0, -5e307]),
    "ramp between equal extremes": ("0:(1.7e308), 4:(1.7e308)", [1.7e308] * 4),
}


@pytest.mark.parametrize("text, expected", FINITE.values(), ids=FINITE.keys())
def test_found_defects_with_a_finite_answer(text, expected):
    assert check_schedule(text, 4) == pytest.approx(expected, rel=1e-12)


def test_fractional_frames_are_rounded_with_a_warning():
    with pytest.warns(ScheduleWarning, match=r"'2.999' is 2.999.*using frame 3"):
        values = evaluate_schedule("0:(0), 2.999:(3)", 5)
    assert values == pytest.approx([0, 1, 2, 3, 3])
    with pytest.warns(ScheduleWarning, match="using frame 3"):
        assert evaluate_schedule('0:(0), "max_f/2":(1)', 6)[3] == pytest.approx(1)
    assert evaluate_schedule('0:(0), "max_f-2":(1)', 6)[3] == pytest.approx(1)


@pytest.mark.parametrize("frame, fragment", [
    ("²", "²"), ("٣", "٣"), ("３", "３"), (_digits(5000), "1111"), ("-1", "-1"),
    (-3, "-3"), (10**5000, "integer of"), (MAX_FRAME + 1, str(MAX_FRAME + 1)),
], ids=["superscript", "arabic-indic", "fullwidth", "5000-digit", "negative text",
        "negative int", "5000-digit int", "beyond MAX_FRAME"])
def test_bad_prompt_keys_name_the_setting(frame, fragment):
    with pytest.raises(SettingsError) as info:
        PromptSchedule({frame: "a cat"}, max_frames=10)
    assert info.value.key == "animation_prompts"
    assert fragment in str(info.value)


def test_fractional_prompt_key_is_rounded_with_a_warning():
    with pytest.warns(ScheduleWarning, match="using frame 3"):
        prompts = PromptSchedule({"0": "a", "2.999": "b"}, max_frames=10)
    assert prompts.keys == [0, 3]


def test_megabyte_of_simple_keys_is_fast():
    """The largest schedule a file may hold, ~92 000 keys: linear work, 0.23–0.48 CPU s on
    a quiet 2-core machine and up to 1.01 beside a second test worker, so its bound is a
    few of the fuzz's seconds (a quadratic parse would take minutes)."""
    text = ", ".join(f"{i}:({i % 10})" for i in range(100_000))[:1_000_000].rpartition(",")[0]
    assert text.count(":") > 90_000
    values = check_schedule(text, 100, limit=5 * SECOND)
    assert values[57] == 7


def test_expression_work_is_bounded_for_a_million_frames():
    heavy = "+".join(f"sin(t*{k})" for k in range(1, 40))
    assert check_schedule(f"0:({heavy})", 1_000_000) is None  # refused within a second
    with pytest.raises(SettingsError, match="evaluation steps"):
        evaluate_schedule(f"0:({heavy})", 1_000_000)
    assert check_schedule("0:(sin(t/100)*2 + 1)", 1_000_000)[0] == pytest.approx(1)


def test_ten_thousand_frame_camera_bake():
    """A keyframe-per-frame schedule from a camera bake gives back its exact values."""
    expected = np.round(np.sin(np.arange(10_000) / 50.0) * 3.0, 6)
    text = ", ".join(f"{i}:({v:.6f})" for i, v in enumerate(expected))
    values = evaluate_schedule(text, 10_000, key="translation_x")
    np.testing.assert_array_equal(values, expected)


def test_key_limit_is_exact():
    keys = [f"{i % 10}:1" for i in range(MAX_KEYS + 1)]
    assert check_schedule(",".join(keys[:-1]), 3) is not None
    with pytest.raises(SettingsError, match=f"more than {MAX_KEYS} keys"):
        evaluate_schedule(",".join(keys), 3, key="zoom")


def test_integer_setting_of_hundreds_of_digits_is_a_settings_error():
    from engine.settings import parse_settings

    with pytest.raises(SettingsError) as info:
        parse_settings({"seed": 10**400})
    assert info.value.key == "seed"
