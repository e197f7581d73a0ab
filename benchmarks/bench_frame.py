"""Per-stage time of one rendered 3D frame: where does a frame's time go?

Runs the real render loop (``engine.modes.animation.render_animation`` with the real
diffusion step) and times each stage by wrapping the functions the loop calls:
depth, warp, colour, noise + latent preparation, VAE encode, UNet, VAE decode
and file I/O.  Prints ms per diffused frame and the share of everything except
UNet + VAE (target on GPU: ≤ 5 %).

    python benchmarks/bench_frame.py                  # tiny model, 512², CPU
    python benchmarks/bench_frame.py --real-size --device cuda   # SD 1.5-size UNet/VAE
                                                      # (random weights, fp16) + real-size DPT
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


TIMES: dict[str, float] = defaultdict(float)


def _sync(device) -> None:
    import torch
    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def timed(name: str, fn, device="cpu"):
    def wrapper(*args, **kwargs):
        _sync(device)
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _sync(device)
            TIMES[name] += time.perf_counter() - started
    return wrapper


def real_size_pipelines(device: str, half: bool):
    """SD 1.5-shaped pipelines with random weights from the shipped configs."""
    import torch
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from engine.models import Pipelines, shipped_config

    folder = shipped_config("sd15")
    dtype = torch.float16 if half else torch.float32
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    img2img = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
        unet=unet, scheduler=PNDMScheduler.from_pretrained(folder / "scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    img2img.to(device=device, dtype=dtype)
    img2img.set_progress_bar_config(disable=True)
    txt2img = StableDiffusionPipeline.from_pipe(img2img)
    return Pipelines(img2img, txt2img, "sd1", torch.device(device), dtype, "random SD 1.5")


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
    parser.add_argument("--real-size", action="store_true")
    return parser.parse_args()


def models(args: argparse.Namespace, scratch: Path):
    """(pipelines, depth estimator, label) of the size asked for."""
    from engine.depth import load_depth_model
    from engine.models import load_pipelines
    from tests.engine.tiny_depth import write_tiny_depth_model

    half = args.device == "cuda"
    if args.real_size:
        pipes = real_size_pipelines(args.device, half)
        depth_dir = real_size_depth(scratch / "dpt")
        label = f"SD 1.5-size UNet/VAE (random, {'fp16' if half else 'fp32'}) + DPT-Large-size"
    else:
        from engine.tiny_model import write_tiny_model

        pipes = load_pipelines(str(write_tiny_model(scratch / "tiny")), device=args.device)
        depth_dir = write_tiny_depth_model(scratch / "dpt", kind="dpt")
        label = "tiny SD-1.x model + tiny DPT"
    return pipes, load_depth_model(str(depth_dir), device=pipes.device, half=half), label


def wrap_stages(pipes, animation, torch) -> None:
    """Time what the loop calls, by stage."""
    device = pipes.device
    pipe = pipes.img2img
    pipe.unet.forward = timed("UNet", pipe.unet.forward, device)
    pipe.vae.encode = timed("VAE encode", pipe.vae.encode, device)
    pipe.vae.decode = timed("VAE decode", pipe.vae.decode, device)
    pipe.text_encoder.forward = timed("text encoder", pipe.text_encoder.forward, device)
    animation.match_colors = timed("colour", animation.match_colors)
    animation.write_png = timed("file I/O", animation.write_png)
    warp = animation.Motion.warp
    animation.Motion.warp = lambda self, *a, **k: timed("warp", warp)(self, *a, **k)
    torch.randn = timed("noise", torch.randn)  # the init noise (and any sampler noise)


def print_table(args: argparse.Namespace, label: str, device, threads: int,
                total: float) -> None:
    frames = args.frames
    steps = int(round((1 - args.strength) * args.steps, 6))
    print(f"{label}; {args.size}×{args.size}, {steps} of {args.steps} euler steps per frame, "
          f"device {device}, {threads} threads; ms per frame (mean of {frames})")
    print(f"{'stage':<16}{'ms/frame':>10}{'share':>8}")
    order = ["depth", "warp", "colour", "noise", "VAE encode", "text encoder", "UNet",
             "VAE decode", "file I/O"]
    accounted = 0.0
    for name in order:
        ms = TIMES[name] / frames * 1000
        accounted += TIMES[name]
        print(f"{name:<16}{ms:>10.1f}{TIMES[name] / total:>8.1%}")
    other = total - accounted
    print(f"{'other (loop)':<16}{other / frames * 1000:>10.1f}{other / total:>8.1%}")
    print(f"{'total':<16}{total / frames * 1000:>10.1f}{1:>8.1%}")
    core = TIMES["UNet"] + TIMES["VAE encode"] + TIMES["VAE decode"]
    print(f"share of everything except UNet + VAE: {(total - core) / total:.1%}")


def main() -> None:
    args = parse_args()

    import torch

    import engine.modes.animation as animation
    from engine.depth import ModelDepth
    from engine.diffusion import Diffusion
    from engine.modes.common import CancelToken
    from engine.progress import Progress
    from engine.settings import parse_settings

    scratch = Path(tempfile.mkdtemp(prefix="bench-frame-"))
    pipes, estimator, label = models(args, scratch)
    settings = parse_settings({
        "animation_mode": "3D", "W": args.size, "H": args.size, "max_frames": args.frames + 1,
        "diffusion_cadence": 1, "steps": args.steps, "sampler": "euler", "seed": 1,
        "strength_schedule": f"0:({args.strength})", "color_coherence": "Match Frame 0 LAB",
        "translation_z": "0:(2)", "rotation_3d_y": "0:(0.5)", "noise_schedule": "0:(0.02)",
        "animation_prompts": {"0": "a lighthouse on a cliff at sunset"}})
    randn = torch.randn
    wrap_stages(pipes, animation, torch)
    cancel = CancelToken()
    generate = animation.animation_generate(Diffusion(pipes, settings, cancel), settings, None)
    depth_fn = timed("depth", ModelDepth(estimator).for_frame, pipes.device)
    folder = scratch / "frames"
    folder.mkdir()

    # Frame 0 (txt2img) warms up and is not counted.
    first = generate(None, 0)
    TIMES.clear()
    started = time.perf_counter()
    state = animation.ResumeState(1, first, None)
    animation.render_animation(settings, folder, "bench", Progress(log=open(os.devnull, "w")),
                               cancel, generate=generate, depth=depth_fn, resume=state)
    total = time.perf_counter() - started
    torch.randn = randn
    print_table(args, label, pipes.device, torch.get_num_threads(), total)


if __name__ == "__main__":
    main()
