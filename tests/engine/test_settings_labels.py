"""The settings table's labels and slider ranges: what users read in every UI."""

from __future__ import annotations

import re

from engine.errors import SettingsError
from engine.schedules import evaluate_schedule
from engine.settings_table import BOOKKEEPING, SETTINGS

SHOWN = [s for s in SETTINGS if s.used and s.group != BOOKKEEPING]
RAW = re.compile(r"_|\b3d\b|\bFov\b|\bDdim\b|\bN batch\b|\bStrength 0\b|\b[a-z]+ [a-z]+ [a-z]")


def test_every_row_a_ui_shows_has_a_unique_human_label():
    labels = [s.label for s in SHOWN]
    assert all(labels), [s.name for s in SHOWN if not s.label]
    assert len(set(labels)) == len(labels), sorted(l for l in labels if labels.count(l) > 1)
    for s in SHOWN:
        assert not RAW.search(s.label), (s.name, s.label)
        assert s.label[0].isupper() or s.label[0].isdigit(), s.label


def test_numeric_schedules_have_slider_ranges_around_their_default():
    for s in SHOWN:
        if s.is_numeric_schedule:
            assert s.soft_min is not None and s.soft_max is not None, s.name
            assert s.soft_min < s.soft_max, s.name


def _plain_numbers(text: str) -> bool:
    """The schedule is numbers whatever the seed: something a slider and an F-curve hold."""
    try:
        return bool((evaluate_schedule(text, 10, seed=1) == evaluate_schedule(text, 10, seed=2))
                    .all())
    except SettingsError:
        return False


def test_a_schedule_no_slider_can_hold_is_marked_text_and_only_such_a_one():
    """Blender makes a slider of every schedule row but the ``text`` ones: a row of names
    (sampler, checkpoint) or seed expressions left unmarked would become a slider at 0."""
    schedules = [s for s in SHOWN if s.is_schedule]
    assert any(s.text for s in schedules) and any(not s.text for s in schedules)
    for s in schedules:
        assert s.text != _plain_numbers(s.default), (s.name, s.default, s.text)
    assert not [s.name for s in SETTINGS if s.text and not s.is_schedule]
