"""The settings table's labels and slider ranges: what users read in every UI."""

from __future__ import annotations

import re

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
