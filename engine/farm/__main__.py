"""``python -m engine.farm {local,ray,openjd,task} plan.json …``: run or export a plan.

    local  PLAN                   every task here, one after another
    ray    PLAN --address ADDR    on a Ray cluster (pip install -r requirements-farm.txt)
    openjd PLAN --out DIR         an Open Job Description job bundle
    task   PLAN TASK              one task here (what the other backends run)

Exit codes: 0 done, 2 a bad plan or option (the message names the field), else
the failing task's engine exit code.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_SETTINGS, SettingsError
from ..plan import read_plan
from .task import TaskFailed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.farm",
                                     description="Run a render plan (python -m engine.plan).")
    sub = parser.add_subparsers(dest="backend", required=True)
    sub.add_parser("local", help="run every task here").add_argument("plan")
    ray = sub.add_parser("ray", help="run on a Ray cluster")
    ray.add_argument("plan")
    ray.add_argument("--address", required=True, help="the cluster, e.g. 10.0.0.5:6379 or auto")
    ray.add_argument("--retries", type=int, default=3, help="tries after a node dies (3)")
    openjd = sub.add_parser("openjd", help="export an Open Job Description bundle")
    openjd.add_argument("plan")
    openjd.add_argument("--out", required=True, help="the bundle folder to write")
    task = sub.add_parser("task", help="run one task of the plan here")
    task.add_argument("plan")
    task.add_argument("task")
    return parser


def _run(args: argparse.Namespace) -> int:
    plan = read_plan(args.plan)
    if args.backend == "local":
        from .local import run_local
        return run_local(plan, args.plan)
    if args.backend == "task":
        from .task import run_task
        run_task(plan, args.task)
        return 0
    if args.backend == "openjd":
        from .openjd import export_bundle
        print(f"wrote {export_bundle(plan, args.plan, args.out)}", file=sys.stderr)
        return 0
    from .ray_backend import run_ray
    return run_ray(plan, args.plan, args.address, args.retries)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except ModuleNotFoundError as exc:
        if exc.name not in ("ray", "yaml"):
            raise
        print(f"error: {args.backend}: {exc.name} is not installed; pip install -r "
              "requirements-farm.txt", file=sys.stderr)
        return EXIT_SETTINGS
    except TaskFailed as exc:  # its message, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
