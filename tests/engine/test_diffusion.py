"""The diffusion engine with the tiny offline model, through the user's paths."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.diffusion import Diffusion, denoising_steps
from engine.errors import Cancelled
from engine.modes.animation import animation_generate
from engine.modes.common import CancelToken
from engine.samplers import SAMPLER_NAMES
from engine.settings import parse_settings

ROOT = Path(__file__).resolve().parents[2]


def run_engine(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def events(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def start_of(result):
    return next(e for e in events(result) if e["event"] == "start")


def write_settings(path, **values):
    base = dict(W=64, H=64, steps=6, scale=5, seed=42, sampler="euler", strength=0.65,
                animation_prompts={"0": "a red house", "4": "a blue lake --neg fog"})
    path.write_text(json.dumps({**base, **values}))
    return path


def png(path):
    import cv2
    return cv2.imread(str(path))[..., ::-1]


THREE_D = dict(animation_mode="3D", max_frames=9, diffusion_cadence=2,
               color_coherence="Match Frame 0 LAB", use_depth_warping=True,
               save_depth_maps=True, translation_z="0:(2)", rotation_3d_y="0:(1)",
               strength_schedule="0:(0.5)", noise_schedule="0:(0.02)")


def test_3d_cadence_depth_and_coherence_is_complete_and_deterministic(tmp_path, tiny_model,
                                                                      tiny_depth):
    settings = write_settings(tmp_path / "s.txt", **THREE_D, depth_model_path=str(tiny_depth))
    runs = []
    for _ in range(2):
        result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                            tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
        assert result.returncode == 0, result.stderr
        runs.append(start_of(result)["timestring"])
    folder = tmp_path / "out" / "StableFun"
    first, second = ([folder / f"{ts}_{i:05d}.png" for i in range(9)] for ts in runs)
    assert all(p.is_file() for p in first + second)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    depth_maps = sorted(folder.glob(f"{runs[0]}_depth_*.png"))
    assert [p.name for p in depth_maps] == [f"{runs[0]}_depth_{i:05d}.png" for i in range(9)]
    effective = json.loads((folder / f"{runs[0]}_settings.txt").read_text())
    assert effective["preview_motion"] is False and effective["model_path"] == str(tiny_model)


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_renders(pipes, sampler):
    settings = parse_settings({"W": 64, "H": 64, "steps": 4, "sampler": sampler,
                               "ddim_eta": 0.5 if sampler == "ddim" else 0.0})
    diffusion = Diffusion(pipes, settings, CancelToken())
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = diffusion(init, strength=0.25, seed=1, noise=0.02, prompt="a cat")
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - init).mean() > 1
    again = diffusion(init, strength=0.25, seed=1, noise=0.02, prompt="a cat")
    assert np.array_equal(out, again)


def test_a_prompt_that_stays_is_encoded_once_and_gives_the_pipelines_own_picture(pipes):
    settings = parse_settings({"W": 64, "H": 64, "steps": 4, "sampler": "euler"})
    init = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    encoder = pipes.txt2img.text_encoder
    calls, forward = [], encoder.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    encoder.forward = counting
    try:
        diffusion = Diffusion(pipes, settings, CancelToken())
        frames = [diffusion(init, strength=0.25, seed=f, noise=0.0, prompt="a cat", frame=f)
                  for f in range(4)]
        assert len(calls) == 2  # the prompt and the empty negative, once for four frames
        diffusion(init, strength=0.25, seed=9, noise=0.0, prompt="a dog", frame=4)
        assert len(calls) == 4  # a new prompt is encoded when it comes
    finally:
        encoder.forward = forward
    # The embeddings are the ones the pipeline makes from the text itself.
    import torch
    pipe = pipes.img2img
    pipe.scheduler = diffusion.scheduler
    pixels = torch.from_numpy(init).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    generator = torch.Generator("cpu").manual_seed(0)
    latents = pipe.vae.encode(pixels).latent_dist.sample(generator=generator) * \
        pipe.vae.config.scaling_factor
    own = pipe(image=latents, strength=(3 + 0.5) / 4, prompt="a cat", guidance_scale=7,
               num_inference_steps=4, generator=torch.Generator("cpu").manual_seed(0),
               output_type="np").images[0]
    embedded = dict(zip(("prompt_embeds", "negative_prompt_embeds"),
                        diffusion._embedded[(id(pipes), "a cat", None, 1)]))
    ours = pipe(image=latents, strength=(3 + 0.5) / 4, guidance_scale=7, num_inference_steps=4,
                generator=torch.Generator("cpu").manual_seed(0), output_type="np",
                **embedded).images[0]
    assert np.array_equal(own, ours)
    assert frames[0].shape == (64, 64, 3)


def test_txt2img_frame_zero_and_seed_changes_the_picture(pipes):
    diffusion = Diffusion(pipes, parse_settings({"W": 64, "H": 48, "steps": 3}), CancelToken())
    a = diffusion(None, strength=0.0, seed=1, noise=0.0, prompt="a cat")
    b = diffusion(None, strength=0.0, seed=2, noise=0.0, prompt="a cat")
    assert a.shape == (48, 64, 3) and not np.array_equal(a, b)


def test_zero_step_frames_pass_the_image_through(pipes):
    diffusion = Diffusion(pipes, parse_settings({"W": 64, "H": 64, "steps": 10}), CancelToken())
    init = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert denoising_steps(0.95, 10) == 0 and denoising_steps(0.8, 50) == 10
    assert diffusion(init, strength=0.95, seed=1, noise=0.5, prompt="x") is init


def test_mask_changes_only_the_white_area(pipes):
    settings = parse_settings({"W": 64, "H": 64, "steps": 6, "use_mask": True,
                               "overlay_mask": True, "mask_overlay_blur": 2})
    diffusion = Diffusion(pipes, settings, CancelToken())
    init = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[:, 32:] = 1.0
    out = diffusion(init, strength=0.3, seed=3, noise=0.0, prompt="a dog", mask=mask)
    assert np.array_equal(out[:, :32], init[:, :32])          # black: kept exactly
    assert np.abs(out[:, 40:].astype(int) - init[:, 40:]).mean() > 5  # white: diffused


def test_cancel_stops_within_a_step(pipes):
    cancel = CancelToken()
    diffusion = Diffusion(pipes, parse_settings({"W": 64, "H": 64, "steps": 50}), cancel)
    calls = []
    original = diffusion._step_callback

    def counting(*args, **kwargs):
        inner = original(*args, **kwargs)

        def callback(pipe, step, timestep, kw):
            calls.append(step)
            if step == 1:
                cancel.request()
            return inner(pipe, step, timestep, kw)
        return callback
    diffusion._step_callback = counting
    with pytest.raises(Cancelled):
        diffusion(None, strength=0.0, seed=1, noise=0.0, prompt="x")
    assert calls == [0, 1]


def keyframe_calls(settings) -> list[dict]:
    """The arguments the loop's generate passes to diffusion for keyframes 0, 2, 4, 6."""
    calls = []

    def fake(init, **kw):
        calls.append(kw)
        return init

    generate = animation_generate(fake, settings, None)
    for frame in (0, 2, 4, 6):
        generate(np.zeros((2, 2, 3), np.uint8), frame)
    return calls


def test_right_prompt_and_seed_on_the_right_frame():
    settings = parse_settings({"animation_mode": "2D", "max_frames": 7, "diffusion_cadence": 2,
                               "seed": 100, "seed_behavior": "iter",
                               "strength_schedule": "0:(0.5), 4:(0.7)",
                               "animation_prompts": {"0": "dawn", "4": "dusk --neg rain"}})
    calls = keyframe_calls(settings)
    assert [(c["prompt"], c["negative"], c["seed"]) for c in calls] == [
        ("dawn", "", 100), ("dawn", "", 101), ("dusk", "rain", 102), ("dusk", "rain", 103)]
    assert [c["strength"] for c in calls] == pytest.approx([0.65, 0.6, 0.7, 0.7])  # ramp 0.5 → 0.7


def test_resume_writes_what_an_uninterrupted_run_writes(tmp_path, tiny_model, tiny_depth):
    values = dict(THREE_D, max_frames=7, save_depth_maps=False, seed=-1,
                  depth_model_path=str(tiny_depth))
    settings = write_settings(tmp_path / "full.txt", **values)
    full = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                      tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
    assert full.returncode == 0, full.stderr
    ts = start_of(full)["timestring"]
    folder = tmp_path / "out" / "StableFun"
    # An interrupted run: frames 0–4 (mid-block for cadence 2) and its settings file.
    partial = tmp_path / "out" / "Partial"
    partial.mkdir()
    for i in range(5):
        shutil.copy(folder / f"{ts}_{i:05d}.png", partial / f"19990101000000_{i:05d}.png")
    shutil.copy(folder / f"{ts}_settings.txt", partial / "19990101000000_settings.txt")
    kept = (partial / "19990101000000_00004.png").stat().st_mtime_ns
    resume = write_settings(tmp_path / "resume.txt", **values, batch_name="Partial",
                            resume_from_timestring=True, resume_timestring="19990101000000")
    result = run_engine("--settings", resume, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert [e["index"] for e in events(result) if e["event"] == "frame"] == [5, 6]
    for i in range(7):
        assert (partial / f"19990101000000_{i:05d}.png").read_bytes() == \
            (folder / f"{ts}_{i:05d}.png").read_bytes(), i
    assert (partial / "19990101000000_00004.png").stat().st_mtime_ns == kept


class EventPipe:
    """JSON events read straight from a pipe's file descriptor: no hidden read-ahead, so
    what has not been read yet is still in the pipe."""

    def __init__(self, stream) -> None:
        self.fd = stream.fileno()
        self.partial = b""
        self.events: list[dict] = []  # read, not yet taken

    def _take(self, chunk: bytes) -> None:
        *whole, self.partial = (self.partial + chunk).split(b"\n")
        self.events += [json.loads(line) for line in whole if line.strip()]

    def _taken(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def until(self, predicate) -> list[dict]:
        seen: list[dict] = []
        while True:
            while self.events:
                seen.append(self.events.pop(0))
                if predicate(seen[-1]):
                    return seen
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError(f"the engine ended: {seen}")
            self._take(chunk)

    def drain(self) -> list[dict]:
        """Everything in the pipe now (the writer is stopped)."""
        os.set_blocking(self.fd, False)
        try:
            while True:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                self._take(chunk)
        finally:
            os.set_blocking(self.fd, True)
        return self._taken()

    def rest(self) -> list[dict]:
        """Everything until the writer closes the pipe."""
        while chunk := os.read(self.fd, 65536):
            self._take(chunk)
        return self._taken()


def stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "Tt"


def test_sigint_cancels_keeps_frames_and_exits_130(tmp_path, tiny_model):
    """The promise: after SIGINT no more than one denoising step, exit 130, frames kept.

    The engine is frozen (SIGSTOP) and its pipe emptied before the signal, so every
    event read afterwards came after it, however busy the machine is.
    """
    settings = write_settings(tmp_path / "s.txt", animation_mode="2D", max_frames=200,
                              steps=20, strength_schedule="0:(0.2)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "--settings", str(settings), "--enable_animation_mode",
         "--outdir", str(tmp_path / "out"), "--model", str(tiny_model), "--progress", "jsonl"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pipe = EventPipe(process.stdout)
    try:
        before = pipe.until(lambda e: e["event"] == "frame" and e["index"] == 1)
        process.send_signal(signal.SIGSTOP)
        while not stopped(process.pid):
            time.sleep(0.01)
        before += pipe.drain()
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGCONT)
        after = pipe.rest()
        assert process.wait(timeout=120) == 130
    finally:
        process.kill()
    assert [e["event"] for e in after].count("step") <= 1, after
    assert after[-1]["event"] == "cancelled"
    written = [e["path"] for e in before + after if e["event"] == "frame"]
    assert len(written) >= 2 and all(Path(p).is_file() for p in written)
    ts = next(e for e in before if e["event"] == "start")["timestring"]
    assert len(list((tmp_path / "out" / "StableFun").glob(f"{ts}_0*.png"))) == len(written)


def test_still_images_batch_and_names(tmp_path, tiny_model):
    settings = write_settings(tmp_path / "s.txt", n_batch=2, seed_behavior="iter",
                              prompts=["a tiny boat", "a green hill --neg snow"])
    result = run_engine("--settings", settings, "--outdir", tmp_path / "out", "--model",
                        tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_of(result)["timestring"]
    names = sorted(p.name for p in (tmp_path / "out" / "StableFun").glob(f"{ts}_0*.png"))
    assert names == [f"{ts}_00000_a_tiny_boat.png", f"{ts}_00001_a_tiny_boat.png",
                     f"{ts}_00002_a_green_hill.png", f"{ts}_00003_a_green_hill.png"]


def test_single_file_checkpoint_renders_like_the_folder(tmp_path, tiny_model):
    single = next(tiny_model.glob("*.safetensors"))
    settings = write_settings(tmp_path / "s.txt", animation_mode="2D", max_frames=2)
    outputs = []
    for model in ([tiny_model], [single, "--model-config", tiny_model]):
        result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                            tmp_path / "out", "--model", *model, "--progress", "jsonl")
        assert result.returncode == 0, result.stderr
        ts = start_of(result)["timestring"]
        outputs.append((tmp_path / "out" / "StableFun" / f"{ts}_00001.png").read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\x00" * 64])
def test_corrupt_model_exits_3_naming_the_path(tmp_path, content):
    model = tmp_path / "broken.safetensors"
    model.write_bytes(content)
    settings = write_settings(tmp_path / "s.txt", animation_mode="2D", max_frames=2)
    result = run_engine("--settings", settings, "--enable_animation_mode", "--outdir",
                        tmp_path / "out", "--model", model, "--progress", "jsonl")
    assert result.returncode == 3
    assert str(model) in result.stderr and "Traceback" not in result.stderr
    assert events(result)[-1]["event"] == "error"
    assert not list((tmp_path / "out").rglob("*.png"))


def test_still_images_from_a_folder_of_init_images(tmp_path, tiny_model):
    import cv2
    inits = tmp_path / "inits"
    inits.mkdir()
    for name in ("frame10.png", "frame2.png", "frame1.png"):
        cv2.imwrite(str(inits / name), np.full((64, 64, 3), 100, np.uint8))
    settings = write_settings(tmp_path / "s.txt", use_init=True, init_image=str(inits),
                              strength=0.5, filename_format="{timestring}_{index}_{seed}.png",
                              seed_behavior="fixed", prompts=["a boat"])
    result = run_engine("--settings", settings, "--outdir", tmp_path / "out", "--model",
                        tiny_model, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    ts = start_of(result)["timestring"]
    names = sorted(p.name for p in (tmp_path / "out" / "StableFun").glob(f"{ts}_0*.png"))
    assert names == [f"{ts}_0000{i}_42.png" for i in range(3)]


def test_noise_drawn_ahead_gives_the_frames_drawing_it_in_turn_gives(pipes, monkeypatch):
    """Each keyframe's noise is drawn on a worker while the one before diffuses."""
    import threading

    import engine.noise_ahead as noise_ahead

    settings = parse_settings({"W": 64, "H": 64, "steps": 4, "sampler": "euler"})
    init = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    threads, draw = [], noise_ahead.noise_field

    def recording(*args):
        threads.append(threading.current_thread().name.startswith("noise-ahead"))
        return draw(*args)

    monkeypatch.setattr(noise_ahead, "noise_field", recording)
    ahead, plain = (Diffusion(pipes, settings, CancelToken()) for _ in range(2))
    for frame, (seed, upcoming) in enumerate([(5, 6), (6, 7), (7, None)], start=1):
        kwargs = dict(strength=0.5, seed=seed, noise=0.3, prompt="a cat", frame=frame)
        assert np.array_equal(ahead(init, next_seed=upcoming, **kwargs), plain(init, **kwargs))
    assert threads.count(True) == 2  # frames 2 and 3 were drawn ahead


def test_each_keyframe_names_the_seed_of_the_next_noised_keyframe():
    settings = parse_settings({"animation_mode": "2D", "max_frames": 7, "diffusion_cadence": 2,
                               "seed": 100, "seed_behavior": "iter",
                               "noise_schedule": "0:(0.02), 3:(0.02), 4:(0), 5:(0.02)"})
    calls = keyframe_calls(settings)
    # Keyframe 4 has no noise to draw; 6 is the last.
    assert [c["next_seed"] for c in calls] == [101, None, 103, None]


@pytest.mark.parametrize("half", [False, True])
def test_frames_are_rounded_as_from_diffusers_numpy_output(half):
    import torch

    images = torch.rand((1, 3, 16, 24), generator=torch.Generator().manual_seed(0))
    images[0, 0, 0, :4] = torch.tensor([0.0, 1.0, 0.5, 2.5 / 255])
    images = images.half() if half else images
    as_numpy = images.permute(0, 2, 3, 1).float().numpy()  # diffusers' output_type "np"
    expected = np.clip(np.rint(as_numpy[0] * 255.0), 0, 255).astype(np.uint8)
    frame = Diffusion._to_uint8(None, images.clone())
    assert frame.flags.c_contiguous and np.array_equal(frame, expected)
    assert np.array_equal(Diffusion._to_uint8(None, images.clone(), on_device=True).numpy(),
                          expected)
