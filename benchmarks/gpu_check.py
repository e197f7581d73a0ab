"""GPU check of the device-resident loop, memory and precision: fp16 SD 1.5 and SDXL
through the engine on CUDA.

First the device-resident loop against the NumPy loop (how many grey levels its frames
differ by on this GPU, one copy to the host per frame), and a 3D run with depth in the
engine's own process (exit 0, every frame).  Then SD 1.5-size and SDXL-size diffusers
folders with random weights (fp16, from the shipped configs: nothing is downloaded)
render a 3-frame 2D run each at 512² and 1024² through the engine's own run and loader;
per run it prints the VAE's dtype when it encoded and decoded (float32 for SDXL, whose
VAE overflows in fp16; float16 for SD 1.5), whether every decoded frame is finite and
every written frame non-black, VAE tiling, and peak GPU memory.  Then the out-of-memory
path: with this process capped to a few GB above what the model holds, a 4096² SD 1.5
run with vae_tiling off must stop with exit code 2 and a message naming W, H and
vae_tiling, not hang.  Exits 1 when a check fails or there is no CUDA device.

    python benchmarks/gpu_check.py --models /tmp/models   # on a CUDA machine (≈ 2–4 min)
    python benchmarks/gpu_check.py --tiny --device cpu   # the script itself, tiny models
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GIB = 1024 ** 3
OOM_HEADROOM = 4 * GIB  # what the capped process may allocate beyond the loaded model
OOM_SIZE = 4096


def write_random_model(kind: str, folder: Path, device: str) -> Path:
    """A full-size random-weight fp16 pipeline folder from the shipped config ``kind``."""
    import torch
    from diffusers import (AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from diffusers.schedulers import EulerDiscreteScheduler
    from transformers import (CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection,
                              CLIPTokenizer)

    from engine.models import shipped_config

    config = shipped_config(kind)
    with torch.device(device):  # random init on the GPU: seconds, not minutes
        torch.manual_seed(0)
        parts = {
            "unet": UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(config / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")),
        }
        if kind == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(config / "text_encoder_2"))
    parts = {name: part.to(dtype=torch.float16) for name, part in parts.items()}
    parts["tokenizer"] = CLIPTokenizer.from_pretrained(config / "tokenizer")
    parts["scheduler"] = EulerDiscreteScheduler.from_pretrained(config / "scheduler")
    if kind == "sdxl":
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(config / "tokenizer_2")
        pipe = StableDiffusionXLPipeline(**parts)
    else:
        pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    del pipe, parts
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return folder


def write_tiny(kind: str, folder: Path) -> Path:
    from engine.tiny_model import write_tiny_model, write_tiny_sdxl

    return write_tiny_sdxl(folder) if kind == "sdxl" else write_tiny_model(folder)


class Watched:
    """The engine's caching loader, watching the VAE of what it loads: its dtype at each
    encode and decode, and whether each decoded frame is finite."""

    def __init__(self) -> None:
        from engine.server import CachedLoaders

        self.loaders = CachedLoaders()
        self.calls: list[tuple[str, str, bool]] = []
        self.tiled: list[bool] = []
        self._watched: set[int] = set()

    def __getattr__(self, name: str):
        return getattr(self.loaders, name)

    def pipelines(self, *args):
        pipes = self.loaders.pipelines(*args)
        if id(pipes) not in self._watched:
            self._watched.add(id(pipes))
            self._watch(pipes.img2img.vae)
        return pipes

    def _watch(self, vae) -> None:
        import torch

        encode, decode = vae.encode, vae.decode

        def watched_encode(x, *a, **k):
            self.calls.append(("encode", str(vae.dtype).removeprefix("torch."), True))
            return encode(x, *a, **k)

        def watched_decode(z, *a, **k):
            dtype = str(vae.dtype).removeprefix("torch.")  # as it decodes (SDXL: upcast)
            out = decode(z, *a, **k)
            sample = out[0] if isinstance(out, tuple) else out.sample
            self.calls.append(("decode", dtype, bool(torch.isfinite(sample).all())))
            self.tiled.append(bool(vae.use_tiling))
            return out

        vae.encode, vae.decode = watched_encode, watched_decode


def render(model: Path, size: int, out: Path, loaders: Watched, extra: dict) -> dict:
    """One 3-frame 2D run through ``engine.cli.run``: exit code, message, events, peak."""
    import torch

    from engine.cli import build_parser, run
    from engine.errors import ModelError, SettingsError
    from engine.progress import Progress

    out.mkdir(parents=True, exist_ok=True)
    settings = out / f"settings-{size}.json"
    settings.write_text(json.dumps({"animation_mode": "2D", "max_frames": 3, "W": size,
                                    "H": size, "steps": 6, "seed": 1, "sampler": "euler",
                                    "strength_schedule": "0:(0.5)", **extra}))
    args = build_parser().parse_args(["--settings", str(settings), "--enable_animation_mode",
                                      "--outdir", str(out), "--model", str(model)])
    events = io.StringIO()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    loaders.calls.clear()
    loaders.tiled.clear()
    started = time.perf_counter()
    try:
        code, message = run(args, Progress(jsonl=True, out=events, log=io.StringIO()),
                            loaders=loaders), ""
    except (SettingsError, ModelError) as exc:
        code, message = exc.exit_code, str(exc)
    seen = [json.loads(line) for line in events.getvalue().splitlines()]
    return {"code": code, "message": message, "seconds": time.perf_counter() - started,
            "frames": [e["path"] for e in seen if e["event"] == "frame"],
            "peak_gib": torch.cuda.max_memory_allocated() / GIB if cuda else None}


def frame_checks(kind: str, result: dict, loaders: Watched, half: bool) -> list[tuple[str, bool]]:
    """What one normal run must show: exit 0, 3 frames, the right VAE dtype, finite and
    non-black frames."""
    import cv2

    want = "float32" if (kind == "sdxl" or not half) else "float16"
    dtypes = {dtype for _, dtype, _ in loaders.calls}
    means = [float(cv2.imread(path).mean()) for path in result["frames"]]
    return [("exit 0", result["code"] == 0), ("3 frames written", len(result["frames"]) == 3),
            (f"VAE ran in {want} (saw {sorted(dtypes)})", dtypes == {want}),
            ("decoded frames finite", all(finite for _, _, finite in loaders.calls)),
            (f"frames non-black (mean {min(means, default=0):.1f}…)",
             bool(means) and min(means) > 2.0)]


def oom_check(model: Path, out: Path, loaders: Watched) -> list[tuple[str, bool]]:
    """A 4096² run without tiling in a process capped near the loaded model's memory."""
    import torch

    cap = min(1.0, (torch.cuda.memory_allocated() + OOM_HEADROOM)
              / torch.cuda.get_device_properties(0).total_memory)
    torch.cuda.set_per_process_memory_fraction(cap)
    try:
        result = render(model, OOM_SIZE, out, loaders, {"vae_tiling": "off"})
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    text = result["message"]
    print(f"  out of memory at {OOM_SIZE}² (capped at {cap:.1%} of the GPU): exit "
          f"{result['code']} in {result['seconds']:.1f} s: {text[:300]}")
    return [("exit 2", result["code"] == 2),
            ("names W, H and vae_tiling", "(W, H: now" in text and "vae_tiling to on" in text),
            ("names the frame", "frame 0" in text)]


def loop_check(device: str, scratch: Path) -> list[tuple[str, bool]]:
    """The device-resident loop on ``device`` against the NumPy loop on the CPU, as the CPU
    test compares them (8 frames of 3D and of 2D, LAB colour coherence, contrast, a stand-in
    diffusion).  A GPU's float kernels may round differently from the CPU's and matching
    carries a level from frame to frame, so the difference is printed; a gross one, or more
    than one copy to the host per frame, fails."""
    import numpy as np

    from engine.frames import NumpyFrames, TorchFrames
    from tests.engine.test_frames import FRAMES, render

    checks = []
    for mode in ("3D", "2D"):
        frames = TorchFrames(device)
        ours = render(scratch / f"{mode}-{device}", frames, mode, contrast_schedule="0:(0.97)")
        want = render(scratch / f"{mode}-numpy", NumpyFrames(), mode,
                      contrast_schedule="0:(0.97)")
        diff = [np.abs(a.astype(int) - b) for a, b in zip(want, ours, strict=True)]
        print(f"  {mode} on {device} vs NumPy: max {max(int(d.max()) for d in diff)} grey "
              f"levels, mean {np.mean([d.mean() for d in diff]):.3f}")
        checks += [(f"{mode}: one copy to the host per frame", frames.transfers == FRAMES),
                   (f"{mode}: mean difference under 2 grey levels",
                    float(np.mean([d.mean() for d in diff])) < 2.0)]
    return checks


def engine_process_check(device: str, scratch: Path) -> list[tuple[str, bool]]:
    """A 3D run with a depth model, in the engine's own process as the add-on starts it
    (``python -m engine``, tiny models): it must write every frame and exit 0, also as the
    process ends."""
    import subprocess

    from engine.tiny_model import write_tiny_model
    from tests.engine.tiny_depth import write_tiny_depth_model

    model = write_tiny_model(scratch / "tiny-process")
    depth = write_tiny_depth_model(scratch / "tiny-depth", kind="dpt")
    settings = scratch / "process-3d.json"
    settings.write_text(json.dumps({
        "animation_mode": "3D", "max_frames": 6, "W": 256, "H": 256, "steps": 6, "seed": 1,
        "sampler": "euler", "strength_schedule": "0:(0.5)", "translation_z": "0:(2)",
        "color_coherence": "Match Frame 0 LAB", "depth_model_path": str(depth),
        "save_depth_maps": True}))
    out = scratch / "process-out"
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "engine", "--settings", str(settings),
         "--enable_animation_mode", "--outdir", str(out), "--model", str(model),
         "--device", device], cwd=ROOT, capture_output=True, text=True, timeout=120)
    frames = [f for f in out.rglob("*_0000?.png") if "depth" not in f.name]
    print(f"  engine process, 3D with depth on {device}: exit {done.returncode}, "
          f"{len(frames)} frames; {done.stderr.strip()[-1500:]}")
    return [("engine process exits 0", done.returncode == 0),
            ("engine process writes 6 frames", len(frames) == 6)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["sd15", "sdxl"], choices=("sd15", "sdxl"))
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models (checks the script)")
    parser.add_argument("--models", type=Path, help="folder keeping the random-weight models "
                        "between runs (default: a scratch folder)")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda or 'none'}); nothing was checked")
        return 1
    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        print(f"{props.name}, {props.total_memory / GIB:.0f} GiB, torch {torch.__version__}")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"device-resident loop on {args.device}:")
        try:
            failed += report(loop_check(args.device, Path(tmp)))
        except Exception:  # the other checks still run
            traceback.print_exc()
            failed += report([("the device-resident loop runs", False)])
        failed += report(engine_process_check(args.device, Path(tmp)))
        for kind in args.kinds:
            folder = (args.models or Path(tmp)) / (f"tiny-{kind}" if args.tiny else kind)
            started = time.perf_counter()
            if (folder / "model_index.json").exists():
                model = folder
            else:
                model = write_tiny(kind, folder) if args.tiny else write_random_model(
                    kind, folder, args.device)
            print(f"{kind}: random-weight model ready in {time.perf_counter() - started:.0f} s")
            loaders = Watched()
            for size in args.sizes:
                result = render(model, size, Path(tmp) / "out", loaders, {"device": args.device})
                peak = f"{result['peak_gib']:.2f} GiB" if result["peak_gib"] is not None else "n/a"
                print(f"  {size}²: {result['seconds']:.1f} s, peak {peak}, VAE tiled "
                      f"{sorted(set(loaders.tiled))}, VAE calls {loaders.calls[:2]}… "
                      f"{result['message'][:300]}")
                failed += report(frame_checks(kind, result, loaders, args.device == "cuda"))
            if kind == "sd15" and args.device == "cuda":
                failed += report(oom_check(model, Path(tmp) / "out", loaders))
            del loaders
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    print("gpu_check: all checks passed" if not failed else f"gpu_check: {failed} failed")
    return 1 if failed else 0


def report(checks: list[tuple[str, bool]]) -> int:
    """Print each check; the number that failed."""
    for name, ok in checks:
        print(f"    {'ok  ' if ok else 'FAIL'} {name}")
    return sum(not ok for _, ok in checks)


if __name__ == "__main__":
    sys.exit(main())
