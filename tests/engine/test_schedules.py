"""Schedules: the reference's examples, our deliberate fixes, and hostile input."""

import time

import pytest

from engine.errors import SettingsError
from engine.schedules import PromptSchedule, ScheduleWarning, evaluate_schedule, split_negative


def approx(values):
    return pytest.approx(values, abs=1e-9)


@pytest.mark.parametrize("text, frames, expected", [
    # how Deforum combines t-dependent and number keys
    ("0:(t), 5:(0)", 9, [0, 1, 2, 3, 4, 0, 0, 0, 0]),
    ("0:(0), 5:(t)", 8, [0, 1, 2, 3, 4, 5, 6, 7]),
    ("0:(t), 5:(0), 8:(2*t)", 11, [0, 1, 2, 3, 4, 0, 16 / 3, 32 / 3, 16, 18, 20]),
    # numbers ramp linearly and hold after the last key
    ("0:(0), 4:(1)", 6, [0, 0.25, 0.5, 0.75, 1, 1]),
    ("0:(1.04)", 3, [1.04, 1.04, 1.04]),
    ("0:(-.5), 2:(+2)", 3, [-0.5, 0.75, 2]),
    # values with commas and parentheses
    ("0:(where(t>2, 1, 0))", 5, [0, 0, 0, 1, 1]),
    # duplicate frames: the last wins; a trailing comma is fine
    ("0:(1), 0:(2),", 2, [2, 2]),
    ("0:(1)", 1, [1]),
])
def test_reference_semantics(text, frames, expected):
    assert evaluate_schedule(text, frames) == approx(expected)


def test_whitespace_anywhere_between_tokens():
    assert evaluate_schedule(" 0 : ( 0 ) , 4 :(1)\n,8: (1) ", 5) == approx([0, .25, .5, .75, 1])


def test_constant_written_as_expression_still_ramps():
    # Reference: "1e-3" and "( 1 )" are expressions and make steps; we ramp.
    assert evaluate_schedule("0:(1e-3), 4:(1)", 5)[2] == pytest.approx(0.5005)
    assert evaluate_schedule("0:( 0 ), 4:(2*0.5)", 5) == approx([0, .25, .5, .75, 1])


def test_no_key_at_frame_zero_holds_first_key_backwards_with_warning():
    with pytest.warns(ScheduleWarning, match="no key at frame 0"):
        values = evaluate_schedule("3:(1), 6:(4)", 8)
    assert values == approx([1, 1, 1, 1, 2, 3, 4, 4])


def test_value_never_depends_on_max_frames():
    full = evaluate_schedule("0:(0), 100:(10)", 101)
    short = evaluate_schedule("0:(0), 100:(10)", 10)
    assert short == approx(full[:10])
    assert short[9] == pytest.approx(0.9)


def test_variables_functions_and_constants():
    values = evaluate_schedule("0:(max_f + max_frames + s + pi*0 + floor(2.7) + t//2 + t%2)",
                               4, seed=7)
    assert values == approx([3 + 4 + 7 + 2 + f // 2 + f % 2 for f in range(4)])
    assert evaluate_schedule("0:(min(t, 2) + max(0, -1) + abs(-1) + sqrt(4))", 4) == \
        approx([3, 4, 5, 5])
    assert evaluate_schedule("0:((t > 1) & (t < 3) | (t == 0))", 4) == approx([1, 0, 1, 0])


def test_webui_frame_expressions():
    assert evaluate_schedule('0:(0), "max_f-2":(1)', 6) == approx([0, 1 / 3, 2 / 3, 1, 1, 1])
    assert evaluate_schedule("0:(0), max_f:(5)", 6)[-1] == pytest.approx(5)


def test_bare_values_without_parentheses():
    assert evaluate_schedule("0:1, 2:3", 3) == approx([1, 2, 3])


def test_number_instead_of_string():
    assert evaluate_schedule(0.5, 2) == approx([0.5, 0.5])


@pytest.mark.parametrize("text, fragment", [
    ("", "no keys"),
    ("garbage", "expected FRAME:(VALUE)"),
    ("0:(1", "unbalanced"),
    ("0:(1) 5:(2)", "expected ','"),
    ("0:()", "empty value"),
    ("0:(foo)", "unknown name 'foo'"),
    ("0:(1/0)", "value is inf"),
    ("-5:(1)", "key frame evaluates to -5"),
    ("0:(t), t:(1)", "bad key frame"),
])
def test_malformed_schedules_name_setting_and_fragment(text, fragment):
    with pytest.raises(SettingsError) as info:
        evaluate_schedule(text, 5, key="zoom")
    message = str(info.value)
    assert message.startswith("zoom:")
    assert fragment in message
    assert info.value.key == "zoom"
    assert isinstance(info.value, ValueError)


HOSTILE = [
    "0:(__import__('os').system('x'))",
    "0:(().__class__.__bases__)",
    "0:(9**9**9**9)",
    "0:(" + "1+" * 500_000 + "1)",
    "0:(" + "(" * 100_000 + "1" + ")" * 100_000 + ")",
    "0:(" + "sin(" * 150 + "1" + ")" * 150 + ")",
    "0:(ｓｉｎ(t))",
    "0:(sin(t)）",
    "0:(lambda: 1)",
    "0:([1, 2][0])",
    "0:(open('x'))",
    "0:(t.real)",
    "0:('a' * 10)",
    "0:(sin(t) # comment)",
    "0:(eval('1'))",
    "0:(max(*[1]))",
    "0:(sin(x=1))",
    "0:(1 if t else 2) , 1:(__builtins__)",
    "x" * 1_100_000,
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:30])
def test_hostile_input_rejected_quickly(text):
    started = time.thread_time()
    with pytest.raises(SettingsError) as info:
        evaluate_schedule(text, 10, key="translation_x")
    assert time.thread_time() - started < 0.5
    assert str(info.value).startswith("translation_x:")


def test_redundant_parentheses_are_harmless():
    assert evaluate_schedule("0:(" + "(" * 150 + "1" + ")" * 150 + ")", 2) == approx([1, 1])


def test_huge_exponent_is_an_error_not_a_hang():
    started = time.thread_time()
    with pytest.raises(SettingsError, match="inf"):
        evaluate_schedule("0:(9**9**9**9)", 3)
    assert time.thread_time() - started < 0.5


def test_large_baked_schedule_gives_its_values():
    text = ", ".join(f"{i}:({i * 0.001:.9f})" for i in range(20_000))
    values = evaluate_schedule(text, 20_000)
    assert values[12_345] == pytest.approx(12.345)


def test_prompt_schedule_latest_key_wins_and_negatives():
    prompts = PromptSchedule({"0": "a cat --neg blurry", "10": "a dog", "max_f": "a bird"},
                             negative={"0": "ugly"}, max_frames=20)
    assert prompts.at(0) == ("a cat", "blurry, ugly")
    assert prompts.at(9) == ("a cat", "blurry, ugly")
    assert prompts.at(10) == ("a dog", "ugly")
    assert prompts.at(19) == ("a bird", "ugly")


def test_frames_before_first_prompt_key_use_first_prompt():
    prompts = PromptSchedule({"5": "late", "8": "later"}, max_frames=10)
    assert [prompts.at(f)[0] for f in (0, 4, 5, 7, 8, 9)] == \
        ["late", "late", "late", "late", "later", "later"]


def test_split_negative():
    assert split_negative("sky --neg rain") == ("sky", "rain")
    assert split_negative("sky") == ("sky", "")


def test_frame_expressions_before_frame_zero_are_unreachable_not_errors():
    # webui's default seed schedule in a 2-frame run: "max_f-2" is frame −1.
    values = evaluate_schedule('0:(s), 1:(-1), "max_f-2":(-1), "max_f-1":(s)', 2, seed=5)
    assert values == approx([5, -1])
