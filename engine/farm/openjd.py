"""``python -m engine.farm openjd plan.json --out DIR``: the plan as an Open Job
Description job bundle — ``DIR/template.yaml``, ``DIR/parameter_values.yaml`` and
``DIR/plan.json`` (a copy of the plan, which the template names relative to itself).

Steps, each running ``python -m engine.farm task PLAN TASK`` (``task.run_task``)
per value of its task parameter, in dependency order:

- ``ScenePasses`` (only when a shot has them): the Blender renders, one task each;
- ``Shots``: one task per shot (``Shot``) — a whole 2D/3D shot, or frame 0 of an
  independent one;
- ``Frames`` (only when a shot has chunks): the remaining frame chunks (``Task``).

OpenJD dependencies are between steps, so every shot waits for all scene passes
and every chunk for all shots: coarser than the plan, never wrong.  Run a step
locally with ``openjd run DIR/template.yaml --step Shots --task-param Shot=ID``;
submit to AWS Deadline Cloud with ``deadline bundle submit DIR``.  The plan, its
settings files and the output folder must be at the same paths on the workers
(shared storage), as must ``EngineRoot`` and ``EnginePython`` (job parameters).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..output import write_atomic
from ..paths import check_outdir
from ..plan import Plan

SPEC = "jobtemplate-2023-09"
PLAN_COPY = "plan.json"  # beside the template: OpenJD joins relative paths to its folder


def _step(name: str, parameter: str, values: list[str], after: list[str],
          summary: str) -> dict[str, Any]:
    step: dict[str, Any] = {
        "name": name,
        "description": summary,
        "parameterSpace": {"taskParameterDefinitions": [
            {"name": parameter, "type": "STRING", "range": values}]},
        "script": {"actions": {"onRun": {
            "command": "{{Param.EnginePython}}",
            "args": ["-m", "engine.farm", "task", "{{Param.PlanFile}}",
                     f"{{{{Task.Param.{parameter}}}}}"]}}},
    }
    if after:
        step["dependencies"] = [{"dependsOn": a} for a in after]
    return step


def job_template(plan: Plan, python: str = sys.executable) -> dict[str, Any]:
    """The OpenJD job template (a dict) of ``plan``."""
    root = str(Path(__file__).resolve().parents[2])
    passes = [t.id for t in plan.tasks if t.kind == "scene_pass"]
    shots = [s.id for s in plan.shots]
    chunks = [t.id for t in plan.tasks if t.kind == "frames" and t.id not in shots]
    steps = []
    if passes:
        steps.append(_step("ScenePasses", "Task", passes, [], "Blender scene passes"))
    steps.append(_step("Shots", "Shot", shots, ["ScenePasses"] if passes else [],
                       "each 2D/3D shot whole (sequential), frame 0 of the others"))
    if chunks:
        steps.append(_step("Frames", "Task", chunks, ["Shots"],
                           "frame chunks of Video Input, Interpolation and still images"))
    return {
        "specificationVersion": SPEC,
        "name": f"Deforum {plan.name}",
        "parameterDefinitions": [
            {"name": "PlanFile", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
             "default": PLAN_COPY, "description": "the render plan (the bundle's copy)"},
            {"name": "EnginePython", "type": "STRING", "default": python,
             "description": "Python with the engine's requirements, on the workers"},
            {"name": "EngineRoot", "type": "STRING", "default": root,
             "description": "the folder that holds the engine package, on the workers"},
        ],
        "jobEnvironments": [{"name": "DeforumEngine", "variables": {
            "PYTHONPATH": "{{Param.EngineRoot}}", "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1"}}],
        "steps": steps,
    }


def export_bundle(plan: Plan, plan_path: str, out: str | Path) -> Path:
    """Write the job bundle folder ``out`` (template, parameter values and a copy of the
    plan); returns the template's path."""
    import yaml

    out = check_outdir(str(out), key="out")  # a folder, or one that can be made
    out.mkdir(parents=True, exist_ok=True)
    template = job_template(plan)
    write_atomic(out / PLAN_COPY, Path(plan_path).read_bytes(), replace=True)
    values = {"parameterValues": [
        {"name": p["name"], "value": str(out.resolve() / PLAN_COPY) if p["type"] == "PATH"
         else p["default"]} for p in template["parameterDefinitions"]]}
    path = write_atomic(out / "template.yaml", yaml.safe_dump(
        template, sort_keys=False, allow_unicode=True).encode("utf-8"), replace=True)
    write_atomic(out / "parameter_values.yaml", yaml.safe_dump(
        values, sort_keys=False, allow_unicode=True).encode("utf-8"), replace=True)
    return path
