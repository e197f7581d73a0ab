"""What every operator does when it fails: the scene's status line and Blender's report."""

from __future__ import annotations

from ..addon import runner


def report_error(op, scene, message: str) -> set[str]:
    """Show ``message`` as the scene's error status and as the operator's report."""
    runner.fail(scene, message)
    op.report({"ERROR"}, message)
    return {"CANCELLED"}
