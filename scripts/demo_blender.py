"""The main demo: Blender (the bpy module, headless) → Deforum for Blender → VSE.

    .venv/bin/python scripts/demo_blender.py [--out DIR] [--model PATH] [--frames N]

Builds a small scene in an empty file (ground, a few coloured objects, a sun, a keyframed camera
that dollies in and pans), then presses the add-on's "Render Deforum"
(deforum.render, the blocking execute() path) with the scene's own depth (the
warp follows the real camera) and its first frame, rendered with Cycles, as
the init image. Without a model the engine renders the motion preview; with
--model (or $DEFORUM_MODEL) it diffuses. It prints a line per frame as the scene
depth and the engine's frames arrive; the preview tints magenta what the camera
uncovers, where a model would paint (preview_tint). Writes, under OUT/BlenderDemo/: the
frames, the effective settings, an mp4, and deforum_demo.blend whose VSE holds
the strip. The add-on is enabled as an extension from a temporary repository
and a temporary Blender user folder, so the user's Blender config is untouched.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = "bl_ext.deforum_demo.deforum_blender"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "output"), help="output folder")
    parser.add_argument("--model", default=os.environ.get("DEFORUM_MODEL", ""),
                        help="Stable Diffusion checkpoint (default: none → motion preview)")
    parser.add_argument("--engine-python", default=sys.executable,
                        help="Python that runs the engine (default: this one)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="512x384", help="render size WxH")
    return parser.parse_args()


def material(bpy, name: str, rgb: tuple[float, float, float]):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # before Blender 5.0 (where use_nodes is deprecated)
        mat.use_nodes = True
    bsdf = mat.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
        bsdf.inputs["Roughness"].default_value = 0.5
    mat.diffuse_color = (*rgb, 1.0)
    return mat


def build_scene(bpy, frames: int, size: tuple[int, int]):
    scene = bpy.context.scene
    scene.name = "Deforum Demo"
    scene.frame_start, scene.frame_end = 1, frames
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.fps = 12

    def add(kind: str, name: str, loc, rgb, **kw):
        getattr(bpy.ops.mesh, f"primitive_{kind}_add")(location=loc, **kw)
        obj = bpy.context.active_object
        obj.name = name
        obj.data.materials.append(material(bpy, name, rgb))
        return obj

    add("plane", "Ground", (0, 4, 0), (0.35, 0.45, 0.3), size=40)
    add("cube", "Temple", (0, 6, 1), (0.8, 0.7, 0.55), size=2)
    add("cylinder", "PillarL", (-2.2, 5, 1.5), (0.85, 0.85, 0.8), radius=0.3, depth=3)
    add("cylinder", "PillarR", (2.2, 5, 1.5), (0.85, 0.85, 0.8), radius=0.3, depth=3)
    add("uv_sphere", "Moon", (3.5, 12, 4), (0.9, 0.85, 0.4), radius=1.2)
    add("cone", "Tree", (-4, 9, 1.5), (0.15, 0.5, 0.2), radius1=1.2, depth=3)
    add("ico_sphere", "Rock", (1.5, 2.5, 0.4), (0.45, 0.4, 0.45), radius=0.5)

    bpy.ops.object.light_add(type="SUN", location=(0, 0, 10), rotation=(0.7, 0.2, 0.6))
    bpy.context.active_object.data.energy = 3.0
    world = bpy.data.worlds.new("Sky")
    world.color = (0.45, 0.6, 0.85)
    if world.node_tree is None:  # before Blender 5.0
        world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    if background is not None:
        background.inputs["Color"].default_value = (0.45, 0.6, 0.85, 1.0)
    scene.world = world

    data = bpy.data.cameras.new("Camera")
    cam = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    data.lens = 32
    # A slow dolly in with a gentle pan to the right and a little rise.
    keys = ((1, (0.0, -6.0, 1.6), (math.radians(84), 0, 0)),
            (frames // 2, (0.4, -5.3, 1.75), (math.radians(85), 0, math.radians(-3))),
            (frames, (0.9, -4.6, 1.9), (math.radians(86), 0, math.radians(-7))))
    for frame, loc, rot in keys:
        cam.location, cam.rotation_euler = loc, rot
        cam.keyframe_insert("location", frame=frame)
        cam.keyframe_insert("rotation_euler", frame=frame)
    scene.frame_set(1)
    return scene, cam


def use_cycles(scene) -> None:
    """The scene's look: Cycles on the CPU with few samples (the init frame renders with it)."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 16
    if hasattr(scene.cycles, "use_denoising"):
        scene.cycles.use_denoising = False


def configure(bpy, scene, args, out: Path) -> None:
    """The demo's preferences, settings and prompts: a 3D run with scene depth."""
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.engine_python = args.engine_python
    prefs.model_path = args.model
    settings = scene.deforum
    settings.output_dir = str(out)
    settings.batch_name = "BlenderDemo"
    settings.animation_mode = "3D"
    settings.depth_source = "scene"  # (the Blender default) true depth, pinhole warp
    settings.init_from_scene = True  # frame 1 rendered with Cycles starts the run
    settings.strength = 0.65
    settings.seed = "1234"
    settings.diffusion_cadence = 2
    settings.make_video = True
    for frame, prompt, negative in ((1, "a sunlit temple in a misty forest, highly "
                                        "detailed", "blurry"),
                                    (args.frames // 2, "the same temple at dusk, "
                                                      "lanterns glowing", "blurry")):
        row = settings.prompts.add()
        row.frame, row.prompt, row.negative = frame, prompt, negative


def report(bpy, scene, preview: bool) -> int:
    """Save the .blend beside the frames and print where everything is; the exit code."""
    sed = scene.deforum.sequencer_scene.sequence_editor  # the takes' own scene
    strips = list(sed.strips if hasattr(sed, "strips") else sed.sequences)
    (strip,) = [s for s in strips if s.get("deforum_owner")]
    folder = Path(strip["deforum_batch_folder"])
    timestring = strip["deforum_timestring"]
    movie = folder / f"{timestring}.mp4"
    blend = folder / "deforum_demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    print(f"demo: strip {strip.name!r}: {len(strip.elements)} frames from frame "
          f"{strip.frame_final_start}, channel {strip.channel}")
    print(f"demo: frames  {folder}/{timestring}_00000.png …")
    print(f"demo: movie   {movie} ({'ok' if movie.is_file() else 'MISSING'})")
    print(f"demo: blend   {blend}")
    print(f"demo: settings {strip['deforum_settings']}")
    if preview:
        print("demo: motion preview: magenta marks what the camera uncovers, where a model "
              "would paint (setting preview_tint)")
    return 0 if movie.is_file() and blend.is_file() else 1


def main() -> int:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # in order with Blender's own output
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="deforum-demo-"))
    os.environ["BLENDER_USER_RESOURCES"] = str(tmp / "user")
    import bpy  # noqa: E402  (after BLENDER_USER_RESOURCES)
    import addon_utils  # noqa: E402

    # An empty file (no default cube, camera or light); factory settings reset the
    # preferences too, so this comes before the add-on is enabled.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    repo_dir = tmp / "extensions"
    repo_dir.mkdir()
    (repo_dir / "deforum_blender").symlink_to(ROOT, target_is_directory=True)
    repo = bpy.context.preferences.extensions.repos.new(
        name="deforum_demo", module="deforum_demo", custom_directory=str(repo_dir),
        source="USER")
    addon_utils.enable(ADDON, default_set=True)
    try:
        t0 = time.monotonic()
        scene, _cam = build_scene(bpy, args.frames, (width, height))
        use_cycles(scene)
        print(f"demo: scene built in {time.monotonic() - t0:.1f}s")

        configure(bpy, scene, args, out)

        print(f"demo: rendering {args.frames} frames: the camera's depth, then the engine "
              f"({'diffusion' if args.model else 'motion preview, no model'})")
        t1 = time.monotonic()
        result = bpy.ops.deforum.render()
        print(f"demo: deforum.render → {result} in {time.monotonic() - t1:.1f}s: "
              f"{scene.deforum.status}")
        if result != {"FINISHED"}:
            return 1
        return report(bpy, scene, preview=not args.model)
    finally:
        # Removing the repository disables its add-on (disabling first makes Blender
        # print "not enabled" when the repository goes).
        bpy.context.preferences.extensions.repos.remove(repo)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
