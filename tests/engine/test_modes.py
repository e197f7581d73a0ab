"""Every animation_mode a settings file may name has its module in ``engine.modes``."""

from engine.modes import MODES
from engine.modes.common import Mode
from engine.settings_table import SETTINGS


def test_every_animation_mode_has_a_mode_class():
    row = next(s for s in SETTINGS if s.name == "animation_mode")
    assert set(MODES) == set(row.choices)
    assert all(issubclass(kind, Mode) for kind in MODES.values())
