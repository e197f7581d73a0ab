"""One task of a plan on this machine: the unit every backend runs.

A shot task starts the engine with the shot's fixed timestring, or, when
frames of that timestring are already there (an earlier try died), resumes
them after their last complete cadence block; a frames task renders its
range, keeping the frames an earlier try finished.  Either way a task run
twice gives the frames one run gives.  A scene-pass task runs its Blender
command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import EXIT_FAILED
from ..output import frame_path
from ..plan import Plan, Task

_PR_SET_PDEATHSIG = 1


class TaskFailed(RuntimeError):
    """A task's process failed; ``code`` is its exit status (the engine's exit codes)."""

    def __init__(self, task: str, code: int, message: str) -> None:
        super().__init__(f"task {task} failed (exit {code}): {message}")
        self.task, self.code = task, code


@dataclass(frozen=True)
class TaskResult:
    """What ran: the command line, and whether it continued an earlier try's frames."""

    task: str
    command: tuple[str, ...]
    resumed: bool


def engine_command(plan: Plan, task: Task, python: str = sys.executable) -> tuple[list[str], bool]:
    """The engine command line of a shot or frames task, and whether it resumes."""
    shot = plan.shot(task.shot)
    command = [python, "-m", "engine", "--settings", shot.settings, "--enable_animation_mode",
               "--outdir", plan.outdir, "--progress", "jsonl"]
    if plan.model:
        command += ["--model", plan.model]
    if plan.preview:
        command.append("--preview")
    if plan.threads:
        command += ["--threads", str(plan.threads)]
    resumed = False
    if task.kind == "frames":
        last = "" if task.last is None else str(task.last)
        command += ["--timestring", shot.timestring, "--frames", f"{task.first}-{last}"]
    elif frame_path(plan.folder(shot), shot.timestring, 0).exists():
        command += ["--resume", shot.timestring]
        resumed = True
    else:
        command += ["--timestring", shot.timestring]
    return command, resumed


def run_task(plan: Plan, task_id: str, python: str = sys.executable) -> TaskResult:
    """Run one task to the end; TaskFailed if its process fails."""
    task = plan.task(task_id)
    if task.kind == "scene_pass":
        command, resumed = list(task.command), False
    else:
        command, resumed = engine_command(plan, task, python)
    workdir = plan.workdir if Path(plan.workdir).is_dir() else None
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, text=True,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    message = "no message"
    for line in process.stdout:
        message = _error_message(line) or message
    code = process.wait()
    if code != 0:
        raise TaskFailed(task_id, code if code > 0 else EXIT_FAILED, message)
    return TaskResult(task_id, tuple(command), resumed)


def _error_message(line: str) -> str | None:
    """The message of an engine ``error`` event, else None."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event.get("message") if isinstance(event, dict) and event.get("event") == "error" \
        else None


def _die_with_parent() -> None:
    """The task's process ends with the process that started it (Linux): a worker that
    dies with its machine's scheduler must not leave an engine writing the shot's
    frames while the retried task writes them too."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
