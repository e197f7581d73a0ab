"""``python -m engine.farm local plan.json``: the plan on this machine, one task after
another — the reference every distributed run of the plan must equal."""

from __future__ import annotations

import sys

from ..plan import Plan
from .status import progress_line
from .task import TaskFailed, run_task


def run_local(plan: Plan, plan_path: str) -> int:
    """Run every task in plan order; the first failure stops the plan (its exit code)."""
    for n, task in enumerate(plan.tasks, 1):
        print(f"task {n}/{len(plan.tasks)}: {task.id} ({task.kind})", file=sys.stderr, flush=True)
        try:
            result = run_task(plan, task.id)
        except TaskFailed as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return exc.code
        resumed = " (continued the frames of an earlier try)" if result.resumed else ""
        print(progress_line(plan) + resumed, file=sys.stderr, flush=True)
    print(f"done: {len(plan.tasks)} tasks of {plan_path}", file=sys.stderr, flush=True)
    return 0
