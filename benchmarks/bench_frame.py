"""Per-stage time of rendered 3D frames: where does a frame's time go, and how much of
it is the loop's own work on the main thread?

Runs the real render loop (``engine.modes.animation.render_animation`` with the real
diffusion step) and times each stage by wrapping the functions the loop calls: the depth
network and the depth estimate's processing around it (image processor, resizing,
equalisation: the loop's work), warp, colour, noise, VAE encode, UNet, the sampler's step,
VAE decode, the rest of diffusers' pipeline call and file I/O (each stage's time excludes
the stages it calls).
Loops take turns rep by rep in one process (A B, B A, …) after a short warm-up each:

- previous: pictures on the host, every PNG encoded and written before the next frame
  starts (``NumpyFrames``, ``Writer(background=False)``);
- today: the engine's own choice of picture backend (on CUDA the pictures stay on the
  device) and the background writer;
- untimed: today's loop without the stage timers, whose GPU syncs stop the CPU from
  queuing work ahead; its overhead is estimated as its frame time less the networks'
  time of today's timed runs.  Run on CUDA only by default: on the CPU the timers
  sync nothing, and the estimate would be run-to-run noise in the networks' time.

A stage counts where it runs: the main thread's columns are the frame's critical path;
the writer thread's file I/O is listed apart, and so is the wait for the last writes
once the loop is done (once per run, not per frame).  Prints ms per diffused frame
(median over reps), frames per second (that wait included), the main thread's time
outside UNet + VAE + the depth network and its share of the frame (CPU target: at most
10 ms at 512²; GPU target: at most 5 % of the frame), and on CUDA the peak GPU memory.

    python benchmarks/bench_frame.py                  # tiny model, 512², CPU
    python benchmarks/bench_frame.py --real-size --device cuda   # SD 1.5-size UNet/VAE
                                                      # (random weights, fp16) + DPT-Large-size
    python benchmarks/bench_frame.py --real-size sdxl --size 1024 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


TIMES: dict[str, float] = defaultdict(float)
LOOPS = {"previous": "previous: host pictures, sequential writes",
         "today": "today: engine's picture backend (GPU on CUDA), background writer",
         "untimed": "today without stage timers (no syncs)"}


def _sync(device) -> None:
    import torch
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


_NESTED = threading.local()  # per thread: time spent in timed calls inside the open ones
TIMING = {"on": True}  # off: the wrapped stages run as they are (no GPU syncs)


def timed(name: str, fn, device="cpu"):
    """``fn`` timed into ``TIMES[name]`` on the main thread, ``TIMES["writer: " + name]``
    on any other (the background writer); a stage's time excludes the timed stages it
    calls (the pipeline's own work excludes its UNet calls)."""
    def wrapper(*args, **kwargs):
        if not TIMING["on"]:
            return fn(*args, **kwargs)
        open_calls = _NESTED.__dict__.setdefault("open", [])
        _sync(device)
        started = time.perf_counter()
        open_calls.append(0.0)
        try:
            return fn(*args, **kwargs)
        finally:
            _sync(device)
            spent = time.perf_counter() - started
            inner = open_calls.pop()
            if open_calls:
                open_calls[-1] += spent
            main = threading.current_thread() is threading.main_thread()
            TIMES[name if main else f"writer: {name}"] += spent - inner
    return wrapper


def random_model(kind: str, models: Path, device: str) -> Path:
    """The ``kind`` (sd15/sdxl) random-weight fp16 model folder under ``models``, written
    once (shipped configs, nothing downloaded) and reused by later runs."""
    from gpu_check import write_random_model

    folder = models / kind
    if not (folder / "model_index.json").exists():
        write_random_model(kind, folder, device)
    return folder


def real_size_depth(folder: Path) -> Path:
    """A DPT-Large-shaped depth model (random weights) saved for the user's loading path."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    model = DPTForDepthEstimation(DPTConfig(hidden_size=1024, num_hidden_layers=24,
                                            num_attention_heads=16, intermediate_size=4096,
                                            neck_hidden_sizes=[256, 512, 1024, 1024],
                                            backbone_out_indices=[5, 11, 17, 23], image_size=384))
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 384, "width": 384}).save_pretrained(folder)
    return folder


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=5, help="frames rendered (cadence 1)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--strength", type=float, default=0.65)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--real-size", nargs="?", const="sd15", choices=("sd15", "sdxl"),
                        help="full-size random-weight UNet/VAE (sd15 or sdxl) and DPT-Large")
    parser.add_argument("--models", type=Path, help="folder keeping the random-weight "
                        "models between runs (default: a scratch folder)")
    parser.add_argument("--reps", type=int, default=2, help="runs of each loop, alternated")
    parser.add_argument("--loops", nargs="+", choices=tuple(LOOPS),
                        help="which loops to run (default all three on CUDA, else the first two)")
    args = parser.parse_args()
    if args.loops is None:
        args.loops = list(LOOPS) if args.device.startswith("cuda") else ["previous", "today"]
    return args


def models(args: argparse.Namespace, scratch: Path):
    """(pipelines, depth estimator, label) of the size asked for, loaded the user's way."""
    from engine.depth import load_depth_model
    from engine.models import load_pipelines
    from tests.engine.tiny_depth import write_tiny_depth_model

    half = args.device == "cuda"
    if args.real_size:
        folder = args.models or scratch
        model = random_model(args.real_size, folder, args.device)
        depth_dir = folder / "dpt-large"
        if not (depth_dir / "config.json").exists():
            real_size_depth(depth_dir)
        name = "SD 1.5" if args.real_size == "sd15" else "SDXL"
        label = f"{name}-size UNet/VAE (random, {'fp16' if half else 'fp32'}) + DPT-Large-size"
    else:
        from engine.tiny_model import write_tiny_model

        model = write_tiny_model(scratch / "tiny")
        depth_dir = write_tiny_depth_model(scratch / "dpt", kind="dpt")
        label = "tiny SD-1.x model + tiny DPT"
    pipes = load_pipelines(str(model), device=args.device)
    return pipes, load_depth_model(str(depth_dir), device=pipes.device, half=half), label


def wrap_stages(pipes, common, frames, torch) -> None:
    """Time what the loop calls, by stage (the warp and colour matching of either picture
    backend)."""
    device = pipes.device
    pipe = pipes.img2img
    pipe.unet.forward = timed("UNet", pipe.unet.forward, device)
    pipe.vae.encode = timed("VAE encode", pipe.vae.encode, device)
    pipe.vae.decode = timed("VAE decode", pipe.vae.decode, device)
    pipe.text_encoder.forward = timed("text encoder", pipe.text_encoder.forward, device)
    for backend in (frames.NumpyFrames, frames.TorchFrames):
        backend.warp = timed("warp", backend.warp, device)
        backend.match = timed("colour", backend.match, device)
    common.write_png = timed("file I/O", common.write_png)
    torch.randn = timed("noise", torch.randn)  # the init noise (and any sampler noise)


def wrap_pipeline(diffusion, pipes) -> None:
    """Time the sampler's step and the pipeline call's own work (what is not its UNet,
    VAE or sampler)."""
    sampler = type(diffusion.scheduler)
    sampler.step = timed("sampler step", sampler.step, pipes.device)
    pipeline = type(pipes.img2img)
    pipeline.__call__ = timed("pipeline's own work", pipeline.__call__, pipes.device)


STAGES = ["depth network", "depth pre/post-processing", "warp", "colour", "noise", "VAE encode",
          "text encoder", "UNet", "sampler step", "VAE decode", "pipeline's own work",
          "file I/O"]
NETWORKS = ("depth network", "VAE encode", "UNet", "VAE decode")


def rows(label: str, runs: list[dict[str, float]], frames: int) -> list[list[str]]:
    """Table rows of one loop: each stage's main-thread ms per frame (median over reps),
    the writer thread's, the loop's own remainder, the total and fps."""
    def ms(values: list[float]) -> str:
        return f"{1000 * statistics.median(values) / frames:.1f}"

    out = [[label, stage, ms([r.get(stage, 0.0) for r in runs])] for stage in STAGES]
    out.append([label, "other (loop, main thread)",
                ms([r["total"] - sum(r.get(stage, 0.0) for stage in STAGES) for r in runs])])
    out.append([label, "outside UNet + VAE + depth network (main thread)",
                ms([r["total"] - sum(r.get(stage, 0.0) for stage in NETWORKS) for r in runs])])
    share = statistics.median((r["total"] - sum(r.get(stage, 0.0) for stage in NETWORKS))
                              / r["total"] for r in runs)
    out.append([label, "  its share of the frame", f"{100 * share:.1f} %"])
    out.append([label, "total per frame", ms([r["total"] for r in runs])])
    out.append([label, "writer thread: file I/O (overlapped)",
                ms([r.get("writer: file I/O", 0.0) for r in runs])])
    out.append([label, "waiting for the last writes after the loop (ms, once per run)",
                f"{1000 * statistics.median(r['last writes'] for r in runs):.1f}"])
    fps = statistics.median(frames / (r["total"] + r["last writes"]) for r in runs)
    out.append([label, "frames per second", f"{fps:.2f}"])
    if "peak GiB" in runs[0]:
        out.append([label, "peak GPU memory (GiB)", f"{max(r['peak GiB'] for r in runs):.2f}"])
    return out


def untimed_rows(untimed: list[dict[str, float]], today: list[dict[str, float]],
                 frames: int) -> list[list[str]]:
    """Rows of today's loop run without the stage timers, whose GPU syncs keep the CPU
    from queuing work ahead: its frame time, and the overhead estimated as that time
    less the networks' time measured in today's timed runs."""
    label = LOOPS["untimed"]
    total = statistics.median(r["total"] for r in untimed)
    networks = statistics.median(sum(r.get(stage, 0.0) for stage in NETWORKS) for r in today)
    fps = statistics.median(frames / (r["total"] + r["last writes"]) for r in untimed)
    return [[label, "total per frame", f"{1000 * total / frames:.1f}"],
            [label, "outside UNet + VAE + depth network (this total − the timed networks)",
             f"{1000 * (total - networks) / frames:.1f}"],
            [label, "  its share of the frame", f"{100 * (total - networks) / total:.1f} %"],
            [label, "frames per second", f"{fps:.2f}"]]


def bench_settings(args: argparse.Namespace, frames: int):
    """The measured run: 3D, cadence 1, LAB colour coherence, a little noise."""
    from engine.settings import parse_settings

    return parse_settings({
        "animation_mode": "3D", "W": args.size, "H": args.size, "max_frames": frames + 1,
        "diffusion_cadence": 1, "steps": args.steps, "sampler": "euler", "seed": 1,
        "strength_schedule": f"0:({args.strength})", "color_coherence": "Match Frame 0 LAB",
        "translation_z": "0:(2)", "rotation_3d_y": "0:(0.5)", "noise_schedule": "0:(0.02)",
        "animation_prompts": {"0": "a lighthouse on a cliff at sunset"}})


def main() -> None:
    args = parse_args()

    import torch

    import engine.frames as frames
    import engine.modes.animation as animation
    import engine.modes.common as common
    from engine.depth import ModelDepth
    from engine.diffusion import Diffusion, denoising_steps
    from engine.progress import Progress
    from engine.writer import Writer
    from timing import take_turns

    scratch = Path(tempfile.mkdtemp(prefix="bench-frame-"))
    pipes, estimator, label = models(args, scratch)
    settings, warm_up = (bench_settings(args, n) for n in (args.frames, min(3, args.frames)))
    randn = torch.randn
    wrap_stages(pipes, common, frames, torch)
    cancel = common.CancelToken()
    diffusion = Diffusion(pipes, settings, cancel)
    wrap_pipeline(diffusion, pipes)
    generate = animation.animation_generate(diffusion, settings, None)
    estimator.model.forward = timed("depth network", estimator.model.forward, pipes.device)
    # The image processor, resizing and equalisation around the network are the loop's work.
    depth_fn = timed("depth pre/post-processing", ModelDepth(estimator).for_frame, pipes.device)
    first = generate(None, 0)  # frame 0 (txt2img) warms up and is not counted
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.loops}
    folders = iter(range(1_000_000))

    def loop(name: str, run_settings, kept: bool = True):
        """One run of the previous loop (pictures on the host, each file written before
        the next frame) or of today's (device-resident on CUDA, background writer)."""
        def run() -> float:
            folder = scratch / f"frames-{next(folders)}"
            folder.mkdir()
            TIMES.clear()
            TIMING["on"] = name != "untimed"
            cuda = pipes.device.type == "cuda"
            torch.cuda.reset_peak_memory_stats() if cuda else None
            started = time.perf_counter()
            # The run ends when its last file is on disk: the writer is closed inside the
            # timing (and no write is left running when the process exits).  That wait
            # comes once per run, so it is counted apart from the frames' time.
            with open(os.devnull, "w") as log, \
                    Writer(background=name != "previous") as writer:
                animation.render_animation(
                    run_settings, folder, "bench", Progress(log=log), cancel,
                    generate=generate, depth=depth_fn, resume=animation.ResumeState(1, first, None),
                    writer=writer, frames=frames.NumpyFrames() if name == "previous"
                    else frames.choose_frames(pipes.device, run_settings))
                looped = time.perf_counter()
            ended = time.perf_counter()
            peak = {"peak GiB": torch.cuda.max_memory_allocated() / 1024 ** 3} if cuda else {}
            if kept:
                runs[name].append({**TIMES, "total": looped - started,
                                   "last writes": ended - looped, **peak})
            return ended - started
        return run

    for name in args.loops:  # one-off costs (lazy kernels, colour tables) stay out of the reps
        loop(name, warm_up, kept=False)()
    take_turns({name: loop(name, settings) for name in args.loops}, args.reps, warmup=0)
    torch.randn = randn
    report(args, runs, f"{label}; {args.size}×{args.size}, "
           f"{denoising_steps(args.strength, args.steps)} of {args.steps} euler steps per "
           f"frame, device {pipes.device}")


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, float]]],
           what: str) -> None:
    """The table of every loop run, then today's without timers."""
    from timing import print_table

    table = [row for name in args.loops if name != "untimed"
             for row in rows(LOOPS[name], runs[name], args.frames)]
    if "untimed" in args.loops and "today" in args.loops:
        table += untimed_rows(runs["untimed"], runs["today"], args.frames)
    print_table(f"{what}; ms per frame (median of {args.reps} reps of {args.frames} frames "
                "after a short warm-up, the loops taking turns)",
                ["loop", "stage", "ms/frame"], table)


if __name__ == "__main__":
    main()
