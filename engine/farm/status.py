"""How far each shot of a plan is, read from the shared output folder."""

from __future__ import annotations

import re

from ..plan import Plan, Shot


def frames_done(plan: Plan, shot: Shot) -> int:
    """The shot's whole frames on disk (a killed write leaves only a hidden temp file)."""
    folder = plan.folder(shot)
    if not folder.is_dir():
        return 0
    pattern = re.compile(re.escape(shot.timestring) + r"_\d{5}(?:_.*)?\.png")
    return sum(1 for p in folder.iterdir() if pattern.fullmatch(p.name))


def progress_line(plan: Plan) -> str:
    """``shot a 3/8 · shot b 8/8 …``: one line for a terminal or a log."""
    return " · ".join(f"{shot.id} {min(frames_done(plan, shot), shot.frames)}/{shot.frames}"
                      for shot in plan.shots)
