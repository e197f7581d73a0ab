"""``python -m engine.farm ray plan.json --address ADDR``: the plan on a Ray cluster.

Each task is a Ray task that runs ``task.run_task`` on whichever node Ray
picks, after the tasks it depends on; it asks for one CPU, and one GPU when
it diffuses and the cluster has GPUs.  Frames go straight to the plan's
output folder, which every node must see at the same path.  When a node dies,
Ray runs its tasks again on another node (``max_retries``); a retried shot
resumes its frames after the last complete cadence block, so nothing is lost
or written twice.  A task whose engine fails (bad settings, a missing model)
is not retried: it would fail again.  Each try appends
``{task, node, pid, try}`` to ``<plan>.nodes.jsonl`` beside the plan: which
machine ran what.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import SettingsError, shown
from ..plan import Plan, read_plan
from .status import progress_line
from .task import TaskFailed, run_task

DEFAULT_RETRIES = 3
CONNECT_SECONDS = 10.0  # to reach the cluster's address before Ray is asked to join it


def nodes_log(plan_path: str) -> Path:
    path = Path(plan_path)
    return path.with_name(f"{path.stem}.nodes.jsonl")


def run_on_node(plan_path: str, task_id: str, *_after: Any) -> str:
    """The Ray task: record where it runs, then run the plan's task ``task_id``.

    ``_after`` are the results of the tasks it depends on: Ray starts it once
    they exist.
    """
    import ray

    context = ray.get_runtime_context()
    record = {"task": task_id, "node": context.get_node_id(), "pid": os.getpid(),
              "try": context.get_task_id()}
    with open(nodes_log(plan_path), "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    run_task(read_plan(plan_path), task_id)
    return task_id


def submit(plan: Plan, plan_path: str, retries: int = DEFAULT_RETRIES) -> dict[str, Any]:
    """Submit every task, each after its dependencies; returns task id → ObjectRef."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    remote = ray.remote(run_on_node)
    refs: dict[str, Any] = {}
    for task in plan.tasks:
        refs[task.id] = remote.options(
            name=f"deforum:{task.id}", num_cpus=1, num_gpus=1 if task.gpu and gpus else 0,
            max_retries=retries, retry_exceptions=False,
        ).remote(plan_path, task.id, *(refs[a] for a in task.after))
    return refs


def wait(plan: Plan, refs: dict[str, Any], every: float = 2.0) -> int:
    """Print each shot's progress until every task is done; the first failure's code."""
    import ray

    pending = list(refs.values())
    names = {ref: task_id for task_id, ref in refs.items()}
    last = ""
    while pending:
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=every)
        for ref in done:
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, TaskFailed) else None
                print(f"error: task {names[ref]}: {cause or exc}", file=sys.stderr, flush=True)
                return cause.code if cause else 1
        line = progress_line(plan)
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
    return 0


def _check_reachable(address: str) -> None:
    """``host:port`` (or ``ray://host:port``) must take a connection within
    ``CONNECT_SECONDS``: Ray itself retries an unreachable cluster for ever."""
    if address in ("auto", "local"):
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not (colon and host and port.isdigit()):
        raise SettingsError(f"address: {shown(address)} is not host:port, ray://host:port or "
                            "auto", key="address", value=address)
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_SECONDS).close()
    except (OSError, ValueError) as exc:
        raise SettingsError(f"address: cannot reach the Ray cluster at {shown(address)} "
                            f"({getattr(exc, 'strerror', None) or exc})", key="address",
                            value=address) from None


def run_ray(plan: Plan, plan_path: str, address: str, retries: int = DEFAULT_RETRIES) -> int:
    """Connect to the cluster at ``address``, run the plan, disconnect; the exit code."""
    import ray

    if retries < 0:
        raise SettingsError(f"retries: must be 0 or more, got {retries}", key="retries",
                            value=retries)
    _check_reachable(address)
    root = str(Path(__file__).resolve().parents[2])
    env = {"PYTHONPATH": root, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False,
                 logging_level="WARNING")
    except (ValueError, ConnectionError) as exc:
        raise SettingsError(f"address: {shown(address)}: {exc}", key="address",
                            value=address) from None
    started = time.monotonic()
    try:
        code = wait(plan, submit(plan, str(Path(plan_path).resolve()), retries))
    finally:
        ray.shutdown()
    if code == 0:
        print(f"done: {len(plan.tasks)} tasks in {time.monotonic() - started:.1f} s",
              file=sys.stderr, flush=True)
    return code
