"""A render plan: the work of many shots as tasks that many machines can share.

    python -m engine.plan SETTINGS... -o plan.json [--outdir DIR] [--model PATH]
                          [--preview] [--seeds 1,2,3] [--prompts-file FILE]...
                          [--strengths 0.4,0.6] [--chunk N] [--threads N]

What parallelises, named honestly: every shot (and every variation of one)
is independent of the others; inside a 2D or 3D shot every frame is made
from the one before it, so such a shot is one sequential task.  Video
Input, Interpolation and still images make each frame on its own once frame
0 exists (which extracts the clip and records the settings): their frame 0
is a task, and the rest are chunks of frames that depend on it.  Scene
passes (depth, colour, flow renders) are Blender renders, tasks a shot
depends on (the add-on writes them; see ``addon/farm.py``).

The plan is JSON (``Plan.to_json``), version ``PLAN_VERSION``; ``read_plan``
checks every field and names the bad one.  Paths in it are absolute: the
output folder and the shots' settings files must be reachable, at the same
path, from every machine that runs a task (shared storage).  Each shot has a
fixed timestring, so a task run twice (a retry after a machine died) finds
the frames of its first try and continues them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import EXIT_SETTINGS, InputError, SettingsError, shown
from .output import batch_folder, write_atomic
from .paths import check_outdir, local_path, read_text, unusable
from .settings import (MAX_SETTINGS_BYTES, Settings, effective_settings, load_settings,
                       write_settings_file)

PLAN_VERSION = 1
SEQUENTIAL_MODES = ("2D", "3D")
TASK_KINDS = ("shot", "frames", "scene_pass")
DEFAULT_CHUNK = 16
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class PlanError(SettingsError):
    """A plan file (or a planner option) is malformed; ``key`` names the field (exit 2)."""


@dataclass(frozen=True)
class Shot:
    """One render: a settings file whose frames go to ``{outdir}/{batch_name}/{timestring}_*``."""

    id: str
    settings: str           # absolute path of the shot's settings file
    mode: str               # its animation_mode
    frames: int             # frame count (Video Input: estimated; its last chunk runs to the end)
    batch_name: str
    timestring: str         # fixed, so that a retried task continues the same frames


@dataclass(frozen=True)
class Task:
    """One unit of work for one machine; runs after the tasks named in ``after``.

    ``shot``: a whole sequential shot (resumes its frames when run again).
    ``frames``: frames ``first``…``last`` (None: to the end) of an independent shot.
    ``scene_pass``: ``command``, a Blender render that writes the shot's settings file.
    """

    id: str
    kind: str
    shot: str
    first: int | None = None
    last: int | None = None
    after: tuple[str, ...] = ()
    gpu: bool = False       # wants a GPU (diffusion) where the cluster has them
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The whole plan; ``tasks`` are in an order that runs every task after its ``after``."""

    outdir: str
    shots: tuple[Shot, ...]
    tasks: tuple[Task, ...]
    model: str | None = None
    preview: bool = False
    threads: int | None = None      # --threads of every engine run (None: the engine chooses)
    workdir: str = "."              # relative paths in settings files are relative to it
    version: int = PLAN_VERSION
    name: str = "plan"

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.shots if s.id == shot_id)

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise PlanError(f"task: {task_id!r} is not a task of this plan (tasks: "
                        f"{', '.join(t.id for t in self.tasks)})", key="task", value=task_id)

    def folder(self, shot: Shot) -> Path:
        """Where the shot's frames go."""
        return batch_folder(self.outdir, shot.batch_name, shot.timestring)

    def to_json(self) -> str:
        data = {"version": self.version, **{k: v for k, v in asdict(self).items()
                                            if k != "version"}}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- reading

_SHOT_FIELDS = {"id": str, "settings": str, "mode": str, "frames": int, "batch_name": str,
                "timestring": str}


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """The plan in ``path``, every field checked; PlanError names the first bad one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"plan: cannot read {path}: {exc.strerror}", key="plan",
                        value=str(path)) from None
    except ValueError as exc:
        raise PlanError(f"plan: {path} is not JSON ({exc})", key="plan", value=str(path)) from None
    return parse_plan(data)


def parse_plan(data: Any) -> Plan:
    """A plan from its JSON data; PlanError names the first bad field."""
    if not isinstance(data, dict):
        raise PlanError("plan: expected a JSON object", key="plan", value=type(data).__name__)
    if data.get("version") != PLAN_VERSION:
        raise PlanError(f"version: this engine reads plan version {PLAN_VERSION}, not "
                        f"{data.get('version')!r}", key="version", value=data.get("version"))
    outdir = _field(data, "outdir", str)
    if not os.path.isabs(outdir):
        raise PlanError(f"outdir: {shown(outdir)} must be an absolute path: the plan's tasks "
                        "run on other machines, in other folders", key="outdir", value=outdir)
    shots = tuple(_shot(s, f"shots[{i}]") for i, s in enumerate(_field(data, "shots", list)))
    tasks = tuple(_task(t, f"tasks[{i}]") for i, t in enumerate(_field(data, "tasks", list)))
    model = _field(data, "model", str, optional=True)
    threads = _field(data, "threads", int, optional=True)
    plan = Plan(outdir=outdir, shots=shots, tasks=tasks, model=model,
                preview=_field(data, "preview", bool, optional=True) or False,
                threads=threads, workdir=_field(data, "workdir", str, optional=True) or ".",
                name=_field(data, "name", str, optional=True) or "plan")
    _check_links(plan)
    return plan


def _field(data: Mapping[str, Any], key: str, kind: type, where: str = "",
           optional: bool = False) -> Any:
    name = f"{where}.{key}" if where else key
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PlanError(f"{name}: expected {kind.__name__}, got {value!r}"[:300], key=name,
                        value=value)
    return value


def _shot(data: Any, where: str) -> Shot:
    if not isinstance(data, dict):
        raise PlanError(f"{where}: expected an object", key=where, value=data)
    values = {k: _field(data, k, kind, where) for k, kind in _SHOT_FIELDS.items()}
    _check_id(values["id"], f"{where}.id")
    _check_id(values["timestring"], f"{where}.timestring")
    if values["frames"] < 1:
        raise PlanError(f"{where}.frames: must be at least 1, got {values['frames']}",
                        key=f"{where}.frames", value=values["frames"])
    return Shot(**values)


def _task(data: Any, where: str) -> Task:
    if not isinstance(data, dict):
        raise PlanError(f"{where}: expected an object", key=where, value=data)
    kind = _field(data, "kind", str, where)
    if kind not in TASK_KINDS:
        raise PlanError(f"{where}.kind: {kind!r} is not one of {', '.join(TASK_KINDS)}",
                        key=f"{where}.kind", value=kind)
    after = _field(data, "after", list, where, optional=True) or []
    command = _field(data, "command", list, where, optional=True) or []
    for name, items in (("after", after), ("command", command)):
        if not all(isinstance(x, str) for x in items):
            raise PlanError(f"{where}.{name}: expected a list of strings", key=f"{where}.{name}",
                            value=items)
    task = Task(id=_field(data, "id", str, where), kind=kind, shot=_field(data, "shot", str, where),
                first=_field(data, "first", int, where, optional=True),
                last=_field(data, "last", int, where, optional=True), after=tuple(after),
                gpu=bool(_field(data, "gpu", bool, where, optional=True)), command=tuple(command))
    _check_id(task.id, f"{where}.id")
    if kind == "frames" and (task.first is None or task.first < 0 or task.last is not None
                             and task.last < task.first):
        raise PlanError(f"{where}.first: a frames task needs 0 ≤ first ≤ last (last may be "
                        f"null: to the end), got {task.first}…{task.last}",
                        key=f"{where}.first", value=task.first)
    if kind == "scene_pass" and not command:
        raise PlanError(f"{where}.command: a scene pass needs its command", key=f"{where}.command",
                        value=command)
    return task


def _check_id(value: str, key: str) -> None:
    """Ids and timestrings become file and step names: plain names only."""
    if not _ID.fullmatch(value):
        raise PlanError(f"{key}: {value!r} must be 1–100 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit", key=key, value=value)


def _check_links(plan: Plan) -> None:
    """Unique ids, tasks of known shots, and ``after`` naming earlier tasks (no cycles)."""
    shots = {s.id for s in plan.shots}
    if len(shots) != len(plan.shots):
        raise PlanError("shots: two shots have the same id", key="shots", value=sorted(shots))
    seen: set[str] = set()
    for i, task in enumerate(plan.tasks):
        if task.id in seen:
            raise PlanError(f"tasks[{i}].id: {task.id!r} is used twice", key=f"tasks[{i}].id",
                            value=task.id)
        if task.shot not in shots:
            raise PlanError(f"tasks[{i}].shot: {task.shot!r} is not a shot of the plan",
                            key=f"tasks[{i}].shot", value=task.shot)
        missing = [a for a in task.after if a not in seen]
        if missing:
            raise PlanError(f"tasks[{i}].after: {missing[0]!r} is not a task listed before it",
                            key=f"tasks[{i}].after", value=missing[0])
        seen.add(task.id)


# ---------------------------------------------------------------- planning

@dataclass(frozen=True)
class Variation:
    """Changes to a shot's settings, and the suffix its id and batch name get."""

    label: str = ""
    changes: dict[str, Any] = field(default_factory=dict)


def variations(seeds: Sequence[int] = (), prompts: Sequence[tuple[str, dict]] = (),
               strengths: Sequence[float] = ()) -> list[Variation]:
    """Every combination of the seeds, prompt sets and strengths given (one without any)."""
    axes = [[(f"seed{s}", {"seed": s}) for s in seeds],
            [(f"prompts-{name}", {"animation_prompts": p}) for name, p in prompts],
            [(f"strength{v:g}", {"strength_schedule": f"0:({v:g})", "strength": v})
             for v in strengths]]
    axes = [axis for axis in axes if axis] or [[("", {})]]
    return [Variation("-".join(label for label, _ in combo if label),
                      {k: v for _, changes in combo for k, v in changes.items()})
            for combo in itertools.product(*axes)]


def frame_count(settings: Settings) -> int:
    """How many frames a shot makes (Video Input: an estimate from the clip or folder)."""
    mode = settings["animation_mode"]
    if mode == "Interpolation":
        from .modes.interpolation import interpolation_plan
        return len(interpolation_plan(settings)[1])
    if mode == "None":
        from .modes.stills import still_count
        return still_count(settings)
    if mode == "Video Input":
        return _video_frames(settings)
    return settings["max_frames"]


def _video_frames(settings: Settings) -> int:
    """Every ``extract_nth_frame``-th frame of the clip's span, from its header (an
    estimate: containers can miscount, so the shot's last chunk runs to the end)."""
    from .output import image_files
    from .video import video_source

    path = video_source(settings["video_init_path"], "video_init_path")
    if path.is_dir():
        total = len(image_files(path))
    else:
        import cv2

        capture = cv2.VideoCapture(str(path))
        opened = capture.isOpened() and capture.read()[0]
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        capture.release()
        if not opened:  # found now, not when a task on another machine starts the shot
            raise InputError(f"video_init_path: {shown(str(path))} could not be decoded as "
                             "a video", key="video_init_path", value=str(path))
    first, last = settings["extract_from_frame"], settings["extract_to_frame"]
    span = (total if last < 0 else min(last + 1, total)) - first
    return max(1, math.ceil(span / max(1, settings["extract_nth_frame"])))


def shot_tasks(shot: Shot, gpu: bool, chunk: int, after: tuple[str, ...] = ()) -> list[Task]:
    """A 2D/3D shot is one task; an independent shot is frame 0, then chunks after it."""
    if shot.mode in SEQUENTIAL_MODES:
        return [Task(shot.id, "shot", shot.id, after=after, gpu=gpu)]
    tasks = [Task(shot.id, "frames", shot.id, 0, 0, after=after, gpu=gpu)]
    starts = list(range(1, shot.frames, chunk)) or [1]
    for n, start in enumerate(starts):
        last = None if n == len(starts) - 1 else start + chunk - 1
        tasks.append(Task(f"{shot.id}.f{start:05d}", "frames", shot.id, start, last,
                          after=(shot.id,), gpu=gpu))
    return tasks


def with_scene_pass(plan: Plan, shot_ids: Sequence[str], command: Sequence[str]) -> Plan:
    """``plan`` with one scene-pass task (``command``, a Blender render of the files the
    shots' settings name) that the first task of each of ``shot_ids`` waits for."""
    from dataclasses import replace

    passes = Task(f"{shot_ids[0]}.passes", "scene_pass", shot_ids[0], command=tuple(command))
    tasks: list[Task] = []
    for task in plan.tasks:
        if task.id in shot_ids:
            tasks += [passes] if passes not in tasks else []
            tasks.append(replace(task, after=(*task.after, passes.id)))
        else:
            tasks.append(task)
    return replace(plan, tasks=tuple(tasks))


def unique_ids(stems: Sequence[str]) -> list[str]:
    """File stems as shot ids: plain characters, a number added where two are the same."""
    ids: list[str] = []
    for stem in stems:
        base = re.sub(r"[^A-Za-z0-9._-]", "-", stem).strip("-._")[:80] or "shot"
        name, n = base, 2
        while name in ids:
            name, n = f"{base}-{n}", n + 1
        ids.append(name)
    return ids


@dataclass(frozen=True)
class Request:
    """What ``python -m engine.plan`` was asked for."""

    settings: tuple[str, ...]
    output: str
    outdir: str = "output"
    model: str | None = None
    preview: bool = False
    variations: tuple[Variation, ...] = (Variation(),)
    chunk: int = DEFAULT_CHUNK
    threads: int | None = None
    timestring: str | None = None


def make_plan(request: Request) -> Plan:
    """Write each shot's settings file (beside the plan) and the plan; returns the plan.

    A shot's settings file is the effective settings of its source with its
    variation applied, so every machine renders exactly what was planned.
    """
    outdir = str(check_outdir(request.outdir).resolve())
    output = _plan_path(request)
    folder = output.parent / f"{output.stem}_shots"
    timestring = request.timestring or time.strftime("%Y%m%d%H%M%S")
    _check_id(timestring, "timestring")
    loaded = [load_settings(path) for path in request.settings]
    ids = unique_ids([f"{Path(p).stem}-{v.label}".rstrip("-") for p in request.settings
                      for v in request.variations])
    pairs = [(s, v) for s in loaded for v in request.variations]
    batches = ["-".join(x for x in (s["batch_name"], v.label) if x) for s, v in pairs]
    planned = []  # every shot's settings and frame count, all checked before any is written
    for shot_id, (source, variation), batch in zip(ids, pairs, batches):
        if batches.count(batch) > 1:  # shots never share a folder
            batch = f"{batch}-{shot_id}"
        settings = source.replace(**variation.changes, batch_name=batch)
        planned.append((shot_id, settings, frame_count(settings)))
    folder.mkdir(parents=True, exist_ok=True)
    shots, tasks = [], []
    for shot_id, settings, frames in planned:
        path = folder / f"{shot_id}.json"
        path.unlink(missing_ok=True)  # planned again: the new plan's settings
        write_settings_file(path, effective_settings(settings))
        shot = Shot(shot_id, str(path), settings["animation_mode"], frames,
                    settings["batch_name"], timestring)
        diffuses = not (request.preview or settings["preview_motion"]) and bool(
            request.model or settings["model_path"] or os.environ.get("DEFORUM_MODEL"))
        shots.append(shot)
        tasks += shot_tasks(shot, diffuses, request.chunk)
    model = request.model
    if model and Path(model).exists():
        model = str(Path(model).resolve())  # the tasks run elsewhere
    plan = Plan(outdir=outdir, shots=tuple(shots), tasks=tuple(tasks), model=model,
                preview=request.preview, threads=request.threads, workdir=os.getcwd(),
                name=output.stem)
    write_plan(plan, output)
    return plan


def _plan_path(request: Request) -> Path:
    """Where the plan goes: a file name, neither a folder nor one of its settings files."""
    why = unusable(request.output) or ("it is empty" if not request.output.strip() else None)
    output = Path(request.output).resolve() if why is None else None
    if output is not None and output.is_dir():
        why = "it is a folder"
    elif output is not None and output in {Path(p).resolve() for p in request.settings}:
        why = "it is one of the settings files the plan reads"
    if why:
        raise PlanError(f"output: {shown(request.output)} cannot be the plan file: {why}",
                        key="output", value=request.output)
    return output


def write_plan(plan: Plan, path: str | os.PathLike[str]) -> Path:
    """Write (or replace) the plan file atomically, after checking it reads back."""
    parse_plan(json.loads(plan.to_json()))
    return write_atomic(Path(path), plan.to_json().encode("utf-8"), replace=True)


def _int_list(key: str, text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PlanError(f"{key}: expected whole numbers separated by commas, got {text!r}",
                        key=key, value=text) from None


def _float_list(key: str, text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = [-1.0]
    if not all(0.0 <= v <= 1.0 for v in values):
        raise PlanError(f"{key}: expected numbers from 0 to 1 separated by commas, got "
                        f"{text!r}", key=key, value=text)
    return values


def _prompt_sets(paths: Sequence[str]) -> list[tuple[str, dict]]:
    """Each ``--prompts-file``: a JSON object frame → prompt (a shot's animation_prompts)."""
    sets = []
    for path in paths:
        try:
            data = json.loads(read_text(local_path(path, "prompts_file"), MAX_SETTINGS_BYTES,
                                        "prompts_file"))
        except SettingsError:  # refused by name already (a pipe, a file too large)
            raise
        except (OSError, ValueError) as exc:
            raise PlanError(f"prompts_file: cannot read {path}: {exc}", key="prompts_file",
                            value=path) from None
        if not isinstance(data, dict) or not data:
            raise PlanError(f"prompts_file: {path} must hold a JSON object frame → prompt",
                            key="prompts_file", value=path)
        sets.append((Path(path).stem, data))
    return sets


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.plan",
                                     description="Write a render plan for many machines.")
    parser.add_argument("settings", nargs="+", help="Deforum settings files, one shot each")
    parser.add_argument("-o", "--output", required=True, help="the plan file to write (JSON)")
    parser.add_argument("--outdir", default="output", help="shared output folder")
    parser.add_argument("--model", default=None, help="Stable Diffusion checkpoint")
    parser.add_argument("--preview", action="store_true", help="motion preview, no model")
    parser.add_argument("--seeds", default="", help="variations: seeds, e.g. 1,2,3")
    parser.add_argument("--prompts-file", action="append", default=[], dest="prompts_files",
                        help="variations: a JSON file of animation_prompts (repeatable)")
    parser.add_argument("--strengths", default="", help="variations: strengths, e.g. 0.5,0.65")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                        help=f"frames per task of an independent mode (default {DEFAULT_CHUNK})")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per engine run")
    parser.add_argument("--timestring", default=None, help="the shots' timestring (default: now)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.plan``: write the plan; exit 2 (no traceback) on bad input."""
    args = build_parser().parse_args(argv)
    try:
        for key in ("chunk", "threads"):
            if getattr(args, key) is not None and getattr(args, key) < 1:
                raise PlanError(f"{key}: must be at least 1, got {getattr(args, key)}", key=key,
                                value=getattr(args, key))
        found = variations(_int_list("seeds", args.seeds), _prompt_sets(args.prompts_files),
                           _float_list("strengths", args.strengths))
        plan = make_plan(Request(tuple(args.settings), args.output, args.outdir, args.model,
                                 args.preview, tuple(found), args.chunk, args.threads,
                                 args.timestring))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    sequential = sum(t.kind == "shot" for t in plan.tasks)
    print(f"plan {args.output}: {len(plan.shots)} shots, {len(plan.tasks)} tasks "
          f"({sequential} sequential 2D/3D shots, each one task)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
