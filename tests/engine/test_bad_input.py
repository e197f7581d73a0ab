"""The bad-input matrix: every class of hostile settings file or argument, run through
the real CLI, ends in exit 2 (or 3 for the model) with an error naming the setting,
no traceback, and nothing left on disk."""

import pytest

from tests.engine.bad_inputs import CASES, run_case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_cleanly(case, tmp_path):
    outcome = run_case(case, tmp_path)
    assert outcome.code == case.code, outcome.stderr
    assert outcome.error is not None, outcome.stderr
    assert outcome.error["key"] == case.key and outcome.error["code"] == case.code
    assert case.key in outcome.error["message"]
    assert not outcome.traceback, outcome.stderr
    assert not any(path.endswith("_settings.txt") for path in outcome.stray)
    assert outcome.stray == []  # nothing new anywhere: not in the output folder, not beside it
    assert outcome.problems(case) == []
