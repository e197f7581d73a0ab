"""Submit to Farm: the scene's shots as a render plan (``engine.plan``), run on a Ray
cluster or on this machine in the background, or exported as an Open Job Description
bundle; Collect puts the finished shots' frames in the VSE as strips.

Shots: one per camera-marker range of the scene (a marker starts a shot that runs to
the next marker; no markers: the whole range), or one per scene of the file that has
a camera. Each shot's settings are composed exactly as Render Deforum composes them
(camera bake included); variations (seeds, alternative prompts) multiply the shots.
A shot with scene passes (scene depth, flow, scene renders) gets a scene-pass task the
farm runs first: Blender renders them headless from the saved .blend
(``addon/batch.py --passes-only JOB``) into the folders the shot's settings name.
The plan goes to ``<output folder>/farm/<name>.json``; ``<name>.blender.json`` beside
it says which scene and frame each shot's strip starts at.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bpy

from ..engine.client import job
from ..engine.farm.status import frames_done
from ..engine import plan as engine_plan
from ..engine.plan import Plan, read_plan, with_scene_pass
from ..engine.output import frame_path, write_atomic
from . import bake, compose, prefs, runner, vse

BACKENDS = ("RAY", "LOCAL", "OPENJD")
FARM_FOLDER = "farm"
POLL_SECONDS = 2.0


@dataclass
class Submission:
    """A plan running in the background (``python -m engine.farm ray|local``)."""

    plan_path: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def finished(self) -> bool:
        return self.process.poll() is not None


ACTIVE: Submission | None = None


def shot_ranges(scene) -> list[tuple[str, int, int]]:
    """(label, first, last) scene frames of each shot: marker to the next marker."""
    first, last = scene.frame_start, scene.frame_end
    starts = sorted({m.frame for m in scene.timeline_markers if first <= m.frame <= last})
    if not starts:
        return [("", first, last)]
    if starts[0] != first:
        starts.insert(0, first)
    ends = [s - 1 for s in starts[1:]] + [last]
    return [(f"f{a}", a, b) for a, b in zip(starts, ends)]


def farm_scenes(context) -> list:
    """The scenes to plan: this one, or every scene with a camera to follow (Shots: Scenes):
    the Deforum Camera field's, a marker's or the active one."""
    if context.scene.deforum.farm_shots == "SCENES":
        return [s for s in bpy.data.scenes if bake.followed_camera(s) is not None]
    return [context.scene]


def _compose_range(context, scene, first: int, last: int) -> compose.Composed:
    """Render Deforum's job for scene frames first…last (the scene's range is restored)."""
    saved = scene.frame_start, scene.frame_end
    try:
        scene.frame_start, scene.frame_end = first, last
        return compose.compose_job(context, scene)
    finally:
        scene.frame_start, scene.frame_end = saved


def pass_command(composed: compose.Composed, first: int, last: int, model: str,
                 saved: bool) -> list[str]:
    """The farm's scene-pass task: Blender renders the job's passes from the file as
    saved on disk (``saved``: the file has a path)."""
    if not saved:
        raise compose.RunError("this shot needs scene passes (scene depth, flow or renders), "
                               "which the farm renders from the .blend as saved: save the "
                               "file, then Submit to Farm again")
    command = [bpy.app.binary_path or "blender", "-b", bpy.data.filepath, "--python",
               str(job.engine_root() / "addon" / "batch.py"), "--", "--frames",
               f"{first}-{last}", "--output", str(composed.outdir), "--passes-only",
               composed.stem]
    return command + (["--preview"] if composed.preview else ["--model", model] if model else [])


def _sources(context, folder: Path) -> tuple[list[Path], list[dict], compose.Composed]:
    """Each shot's composed settings file in ``folder`` and where its strip goes (with
    its scene-pass command, if it has passes)."""
    model = prefs.model_path(prefs.get(context))
    saved = bool(bpy.data.filepath)  # (is_dirty stays set after a save in background runs)
    paths, places, composed = [], [], None
    for scene in farm_scenes(context):
        for label, first, last in shot_ranges(scene):
            composed = _compose_range(context, scene, first, last)
            data = json.loads(composed.settings_path.read_text(encoding="utf-8"))
            name = "-".join(x for x in (scene.name, label) if x)
            data["batch_name"] = "-".join(x for x in (data["batch_name"], label) if x)
            path = folder / f"{name}.json"
            _write_json(path, data)
            paths.append(path)
            places.append({"scene": vse.scene_id(scene), "start": first,
                           "batch": data["batch_name"], "passes": pass_command(composed, first, last, model, saved)
                           if composed.scene_passes else None})
    return paths, places, composed


def _write_json(path: Path, data) -> None:
    """A plan's JSON file, whole or not at all (a re-submit replaces it)."""
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"),
                 replace=True)


def _variation_options(settings, folder: Path) -> list[str]:
    """``--seeds`` and one ``--prompts-file`` per alternative prompt (from frame 0)."""
    options = ["--seeds", settings.farm_seeds.replace(" ", "")] if settings.farm_seeds.strip() \
        else []
    alternatives = [p.strip() for p in settings.farm_prompts.split("|") if p.strip()]
    for n, prompt in enumerate(alternatives, 1):
        path = folder / f"prompts{n}.json"
        _write_json(path, {"0": prompt})
        options += ["--prompts-file", str(path)]
    return options


def write_plan(context) -> Path:
    """Compose every shot and write the plan with the engine's planner; its path.

    Raises ``compose.RunError`` with a message naming what to fix.
    """
    settings = context.scene.deforum
    addon_prefs = prefs.get(context)
    outdir = compose.output_dir(context.scene, addon_prefs)
    name = time.strftime("plan-%Y%m%d-%H%M%S")
    folder = outdir / FARM_FOLDER / f"{name}_sources"
    folder.mkdir(parents=True, exist_ok=True)
    paths, places, composed = _sources(context, folder)
    plan_path = outdir / FARM_FOLDER / f"{name}.json"
    command = [composed.python, "-m", "engine.plan", *map(str, paths), "-o", str(plan_path),
               "--outdir", str(composed.outdir), *_variation_options(settings, folder)]
    model = prefs.model_path(addon_prefs)
    command += ["--preview"] if composed.preview else ["--model", model] if model else []
    done = subprocess.run(command, capture_output=True, text=True,
                          env=job.engine_env(job.engine_root()), cwd=str(outdir))
    if done.returncode != 0:
        raise compose.RunError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                               else f"engine.plan failed (exit {done.returncode})")
    plan = read_plan(plan_path)
    runs = max(1, len(plan.shots) // len(paths))  # shots per source: its variations
    for n, place in enumerate(places):
        if place["passes"]:  # one pass task for all variations of the range
            ids = [s.id for s in plan.shots[n * runs:(n + 1) * runs]]
            plan = with_scene_pass(plan, ids, place["passes"])
    engine_plan.write_plan(plan, plan_path)
    sidecar = {"shots": {shot.id: places[n // runs] for n, shot in enumerate(plan.shots)}}
    _write_json(plan_path.with_suffix(".blender.json"), sidecar)
    settings.farm_plan = str(plan_path)
    return plan_path


def start(context, plan_path: Path) -> Submission | str:
    """Run the plan with the chosen backend: a Submission, or (OpenJD) a message."""
    global ACTIVE
    settings = context.scene.deforum
    python = prefs.engine_python(prefs.get(context))
    env = job.engine_env(job.engine_root())
    if settings.farm_backend == "OPENJD":
        out = Path(bpy.path.abspath(settings.farm_bundle)) if settings.farm_bundle \
            else plan_path.with_name(plan_path.stem + "_openjd")
        done = subprocess.run([python, "-m", "engine.farm", "openjd", str(plan_path), "--out",
                               str(out)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise compose.RunError(done.stderr.strip() or "openjd export failed")
        return f"OpenJD bundle in {out} (submit: deadline bundle submit {out})"
    backend = ["ray", str(plan_path), "--address", settings.farm_address or "auto"] \
        if settings.farm_backend == "RAY" else ["local", str(plan_path)]
    log_path = plan_path.with_suffix(".log")
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([python, "-m", "engine.farm", *backend], env=env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   cwd=str(plan_path.parent))
    ACTIVE = Submission(plan_path, process, log_path)
    bpy.app.timers.register(poll, first_interval=POLL_SECONDS)
    return ACTIVE


def poll() -> float | None:
    """Timer: when the farm finishes while Blender is open, collect its shots."""
    run = ACTIVE
    if run is None:
        return None
    if not run.finished:
        return POLL_SECONDS
    scene = bpy.context.scene
    if run.process.returncode == 0 and scene is not None:
        placed, _ = collect(bpy.context, run.plan_path)
        runner.inform(scene, f"Deforum: farm done, {placed} shots collected")
    elif scene is not None:
        runner.fail(scene, f"Deforum: farm failed (exit {run.process.returncode}); "
                           f"log: {run.log_path}")
    return None


def _shot_frames(plan: Plan, shot) -> list[str]:
    """The shot's frames on disk, in order, when every frame is there; else []."""
    paths = [frame_path(plan.folder(shot), shot.timestring, k) for k in range(shot.frames)]
    if frames_done(plan, shot) < shot.frames or not all(p.exists() for p in paths):
        return []
    return [str(p) for p in paths]


def collect(context, plan_path: Path) -> tuple[int, int]:
    """Put each finished shot in its scene's sequencer; (shots placed, shots not done).

    The variations of one range are takes of one owner: the last placed is on top,
    the others muted below it, to compare.
    """
    plan = read_plan(plan_path)
    places = json.loads(plan_path.with_suffix(".blender.json").read_text())["shots"]
    placed = waiting = 0
    for shot in plan.shots:
        place = places.get(shot.id)
        scene = vse.find_scene(place["scene"]) if place else None
        paths = _shot_frames(plan, shot)
        if scene is None or not paths:
            waiting += 1
            continue
        target = vse.strips_scene(context, scene)
        vse.place_strip(target, paths, name=shot.id, start=place["start"],
                        owner=vse.owner_key(scene, place["batch"]),
                        info={vse.TAKE: f"{plan_path}#{shot.id}",
                              "deforum_timestring": shot.timestring,
                              "deforum_settings": shot.settings,
                              "deforum_batch_folder": str(plan.folder(shot))})
        placed += 1
    return placed, waiting
