"""One diffused frame: noise → img2img (or txt2img) through diffusers → uint8 RGB.

Deforum's ``strength`` is how much of the init image to keep, so a frame runs
``(1 − strength)·steps`` denoising steps; with fewer than one step the
prepared image passes through untouched (no VAE round trip).  Noise
(``noise.noise_field``: white or Perlin-shaped, drawn on a worker thread while the
previous keyframe diffuses: ``noise_ahead``) is added to the [−1, 1] image
from a generator seeded by the frame's seed, then the VAE encodes it and
diffusers' img2img takes the latents, its initial noise scaled by the noise
multiplier.  Masks keep the black area
at the (re-noised) init latents on every step, and ``overlay_mask`` pastes the
original back after decoding.  A cancel request stops within one step.
Guidance, steps, sampler, model, CLIP skip, eta and variation seed are the
frame's (``frame_params``); what a frame used is kept for its progress event.
Enabled ControlNet units (``controlnet``) switch a frame to diffusers' ControlNet
pipelines when any of them acts on it.
The VAE works in tiles on large frames and in float32 where SDXL's overflows in fp16
(``vae``); a frame that runs out of memory names the setting to lower (``memory``).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoints import Checkpoints
from .clip_skip import skipped_embeddings
from .controlnet import make_controlnets
from .errors import Cancelled
from .frame_params import FrameParams, FrameSchedules
from .masks import overlay
from .memory import reports_out_of_memory
from .noise import initial_noise_scale
from .noise_ahead import NoiseAhead
from .samplers import make_scheduler
from .unet_compile import compile_unet
from .vae import full_precision, set_up_vae
from .variation import blended_img2img_noise, initial_noise

# The pipelines' names of the conditioning ``embed_prompt`` returns, in its order.
EMBEDDINGS = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
              "negative_pooled_prompt_embeds")
EMBEDDINGS_KEPT = 16  # prompts whose embeddings a run keeps (oldest dropped first)


def denoising_steps(strength: float, steps: int) -> int:
    """⌊(1 − strength)·steps⌋, computed without float error (0.2·50 is 10, not 9)."""
    return int(round((1.0 - min(max(strength, 0.0), 1.0)) * steps, 6))


class Diffusion:
    """Runs diffusion for the render loop with the settings' sampler and guidance."""

    def __init__(self, pipes: Any, settings: Mapping[str, Any], cancel: Any,
                 progress: Any = None, loaders: Any = None, folder: Path | None = None) -> None:
        self.progress = progress
        self.frame = 0  # the frame being diffused, for step events
        self.settings = settings
        self.cancel = cancel
        self.schedules = FrameSchedules(settings)
        self.models = Checkpoints(pipes, settings, loaders)
        self._schedulers: dict[tuple[int, str], Any] = {}
        self._used: tuple[int, dict[str, Any]] | None = None
        self._embedded: dict[tuple, tuple] = {}  # (model, prompt, negative, skip) → embeddings
        self._prepared: set[int] = set()
        self.params = self._select(self.schedules.at(0))
        self.control = make_controlnets(settings, pipes, folder, progress)
        self.ahead = NoiseAhead(settings, self._generator)

    def _select(self, params: FrameParams) -> FrameParams:
        """Make the frame's model and sampler current (a scheduler per model and sampler)."""
        self.pipes = self.models.get(params.checkpoint)
        self._prepare(self.pipes)
        key = (id(self.pipes), params.sampler)
        if key not in self._schedulers:
            config = self.pipes.img2img.scheduler.config
            self._schedulers[key] = make_scheduler(params.sampler, config)
        self.scheduler = self._schedulers[key]
        for pipe in (self.pipes.img2img, self.pipes.txt2img):
            if pipe.scheduler is not self.scheduler:  # diffusers re-registers its config
                pipe.scheduler = self.scheduler
        return params

    def _prepare(self, pipes: Any) -> None:
        """Once per model and run: the run's VAE tiling, and the compiled UNet if asked."""
        if id(pipes) in self._prepared:
            return
        self._prepared.add(id(pipes))
        set_up_vae(pipes, self.settings)
        skipped = compile_unet(pipes) if self.settings["compile_unet"] else None
        if skipped and self.progress is not None:
            self.progress.warning(skipped, key="compile_unet")

    def begin(self, frame: int, seed: int, values_of: int | None = None) -> FrameParams:
        """Make ``frame`` current with the values of frame ``values_of`` (default: itself)
        and keep them as what ``frame`` used."""
        self.frame = frame
        self.params = self._select(self.schedules.at(frame if values_of is None else values_of))
        self._used = (frame, self.params.used(seed, self.settings["model_path"]))
        return self.params

    def used_for(self, frame: int) -> dict[str, Any] | None:
        """What the latest diffusion of ``frame`` used (None if it was not the latest)."""
        if self._used is not None and self._used[0] == frame:
            return self._used[1]
        return None

    def _controlled(self, kind: str, pixels: Any) -> tuple[Any, dict[str, Any], Any]:
        """The frame's ``kind`` pipeline ("img2img"/"txt2img"), its ControlNet arguments and
        a context readying the ControlNets; the plain pipeline when no unit acts.  ``pixels``:
        the noised init (1×3×H×W in [−1, 1]), which loopback units take as control image."""
        pipe = getattr(self.pipes, kind)
        if self.control is None:
            return pipe, {}, nullcontext()
        init = None if pixels is None else \
            ((pixels[0] + 1.0) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0)
        control = self.control.at(self.frame, init, self.pipes, self.scheduler)
        if self._used is not None and self._used[0] == self.frame:
            self._used[1]["controlnet"] = control.used
        if not control.acting:
            return pipe, {}, nullcontext()
        return getattr(control, kind), control.pipe_arguments(kind), control.ready()

    # ------------------------------------------------------------------ helpers
    def _generator(self, seed: int):
        import torch
        return torch.Generator("cpu").manual_seed(int(seed))

    def _to_uint8(self, images: Any, on_device: bool = False) -> Any:
        """The pipeline's first image (``output_type`` "pt", 0…1) as uint8 H×W×3: a tensor
        on the pipeline's device when ``on_device``, else a host array.

        The host array is scaled in place and its byte planes interleaved into a C-contiguous
        array: diffusers' "np" output would be a strided view to scale through four fresh
        arrays.  Both round half to even, as NumPy's ``rint`` does."""
        import torch

        if on_device:
            scaled = images[0].permute(1, 2, 0).float() * 255.0
            return scaled.round_().clamp_(0, 255).to(torch.uint8)
        import cv2

        scaled = images[0].float().mul_(255.0).round_().clamp_(0, 255)
        planes = scaled.to(torch.uint8).cpu().numpy()  # bytes, not floats, come down
        return cv2.merge(list(planes))  # interleaved several times faster than by torch

    def _draw_ahead(self, seed: int | None) -> None:
        """Start drawing the noise field of the keyframe diffused next (seed ``seed``)."""
        if seed is not None:
            self.ahead.start(seed, (1, 3, self.settings["H"], self.settings["W"]))

    def _noised(self, init: Any, seed: int, noise: float) -> tuple[Any, Any]:
        """(``init`` as 1×3×H×W in [−1, 1] plus ``noise`` times the frame's noise field,
        the frame's generator after drawing the field); the field drawn ahead if it was."""
        import torch

        on_device = isinstance(init, torch.Tensor)
        # In place: the same arithmetic without fresh frame-sized temporaries.
        pixels = (init if on_device else torch.from_numpy(init)).permute(2, 0, 1)[None]
        pixels = pixels.float().div_(127.5).sub_(1.0)
        if not noise:
            return pixels, self._generator(seed)
        generator, field = self.ahead.take(seed, tuple(pixels.shape))
        if pixels.device.type == "cuda":  # pinned: the upload does not wait for the GPU
            field = field.pin_memory().to(pixels.device, non_blocking=True)
        pixels.add_(field.to(pixels.device).mul_(noise))
        return pixels, generator

    def _step_callback(self, mask_latents=None, init_latents=None, noise=None):
        """Cancel between steps; with a mask, hold the black area at the init."""
        def callback(pipe, step: int, timestep, kwargs: dict) -> dict:
            if self.cancel.requested:
                raise Cancelled("cancelled during diffusion")
            # img2img runs the tail of the scheduler's timesteps; ``step`` counts within it.
            timesteps = pipe.scheduler.timesteps[len(pipe.scheduler.timesteps)
                                                 - pipe.num_timesteps:]
            if self.progress is not None:
                self.progress.step(self.frame, step + 1, len(timesteps))
            if mask_latents is None:
                return kwargs
            latents = kwargs["latents"]
            if step + 1 < len(timesteps):
                next_t = timesteps[step + 1: step + 2]
                proper = pipe.scheduler.add_noise(init_latents, noise, next_t)
            else:
                proper = init_latents
            kwargs["latents"] = (1 - mask_latents) * proper + mask_latents * latents
            return kwargs
        return callback

    def _common(self, conditioning: dict[str, Any], seed: int) -> dict[str, Any]:
        """The frame's pipeline arguments; ``conditioning``: prompts or their embeddings.

        Prompts are embedded here, once per model, prompt and CLIP skip while they
        stay the same: a pipeline given the text would run the text encoder on
        every frame for the same result."""
        p = self.params
        if "prompt" in conditioning:
            key = (id(self.pipes), conditioning["prompt"], conditioning["negative_prompt"],
                   p.clip_skip)
            if key not in self._embedded:
                if len(self._embedded) >= EMBEDDINGS_KEPT:
                    self._embedded.pop(next(iter(self._embedded)))
                self._embedded[key] = embed_prompt(self.pipes, *key[1:])
            conditioning = dict(zip(EMBEDDINGS, self._embedded[key]))
        return dict(guidance_scale=p.cfg, num_inference_steps=p.steps, eta=p.ddim_eta,
                    generator=self._generator(seed), output_type="pt", **conditioning)

    @reports_out_of_memory
    def txt2img(self, conditioning: dict[str, Any], seed: int) -> np.ndarray:
        """A picture from noise with the current frame's values (see ``begin``); a
        variation seed starts it from blended noise."""
        import torch

        s, p = self.settings, self.params
        pipe, cn_args, ready = self._controlled("txt2img", None)
        args = self._common(conditioning, seed)
        if p.subseed is not None and p.subseed_strength > 0:
            scale = pipe.vae_scale_factor
            shape = (1, pipe.unet.config.in_channels, s["H"] // scale, s["W"] // scale)
            args["latents"] = initial_noise(shape, args["generator"], self.pipes.device,
                                            self.pipes.dtype, p.subseed, p.subseed_strength)
        with torch.no_grad(), ready:
            out = pipe(height=s["H"], width=s["W"], callback_on_step_end=self._step_callback(),
                       **args, **cn_args)
        return self._to_uint8(out.images)

    # ------------------------------------------------------------------ public
    @reports_out_of_memory
    def __call__(self, init: Any, *, strength: float, seed: int, noise: float,
                 prompt: str, negative: str = "", mask: np.ndarray | None = None,
                 frame: int = 0, noise_multiplier: float = 1.0,
                 values_of: int | None = None, next_seed: int | None = None) -> Any:
        """Diffuse one frame; ``init`` None means txt2img with full steps.  ``values_of``:
        the frame whose scheduled values it takes (default ``frame``).  ``next_seed``: the
        seed of the keyframe diffused next, whose noise field is drawn meanwhile on a
        worker thread (``noise_ahead``; the same numbers).  An ``init`` tensor
        (uint8 H×W×3 on the pipeline's device: the device-resident loop) is noised and
        encoded where it is and the frame comes back as such a tensor; the noise is drawn
        on the CPU generator as for an array, so a seed gives the same picture either way."""
        import torch

        s = self.settings
        self.begin(frame, seed, values_of)
        prompts = dict(prompt=prompt, negative_prompt=negative or None)
        if init is None:
            self._draw_ahead(next_seed)
            return self.txt2img(prompts, seed)

        steps = denoising_steps(strength, self.params.steps)
        if steps < 1:
            self._draw_ahead(next_seed)
            return init
        device, dtype = self.pipes.device, self.pipes.dtype
        on_device = isinstance(init, torch.Tensor)
        pixels, generator = self._noised(init, seed, noise)
        self._draw_ahead(next_seed)
        pipe, cn_args, ready = self._controlled("img2img", pixels)
        with torch.no_grad():
            with full_precision(self.pipes) as vae:
                # Its weights' dtype: diffusers' ``vae.dtype`` first walks every module
                # for casting hooks (none here), a third of a millisecond per frame.
                weights = next(vae.parameters()).dtype
                encoded = vae.encode(pixels.to(device=device, dtype=weights))
                latents = encoded.latent_dist.sample(generator=generator) * vae.config.scaling_factor
            latents = latents.to(dtype)
            callback_args: dict[str, Any] = {}
            if mask is not None:
                small = torch.nn.functional.interpolate(
                    torch.from_numpy(mask)[None, None], size=latents.shape[-2:], mode="area")
                callback_args = dict(
                    mask_latents=small.to(device=device, dtype=dtype), init_latents=latents,
                    noise=torch.randn(latents.shape, generator=self._generator(seed + 1)).to(
                        device=device, dtype=dtype))
            # +0.5 keeps diffusers' int(steps·strength) at exactly ``steps``.
            with ready, initial_noise_scale(pipe.scheduler, noise_multiplier), \
                    blended_img2img_noise(pipe.scheduler, self.params.subseed,
                                          self.params.subseed_strength):
                share = min((steps + 0.5) / self.params.steps, 1.0)
                out = pipe(image=latents, strength=share,
                           callback_on_step_end=self._step_callback(**callback_args),
                           **{**self._common(prompts, seed), "generator": generator,
                              "output_type": "pt"}, **cn_args)
        image = self._to_uint8(out.images, on_device)
        if mask is not None and s["overlay_mask"]:
            image = overlay(init, image, mask, s["mask_overlay_blur"])
        return image


def embed_prompt(pipes: Any, prompt: str, negative: str, clip_skip: int = 1) -> tuple:
    """Text conditioning (positive, negative[, pooled, negative pooled]) of one prompt;
    ``clip_skip`` counts as the webui does (1 = the text encoder's last layer)."""
    import torch

    pipe, skip = pipes.txt2img, (clip_skip - 1 if clip_skip > 1 else None)
    if skip and pipes.kind != "sdxl":
        return skipped_embeddings(pipes, prompt, negative, clip_skip)
    with torch.no_grad():
        if pipes.kind == "sdxl":
            return tuple(pipe.encode_prompt(prompt, device=pipes.device,
                                            num_images_per_prompt=1,
                                            do_classifier_free_guidance=True,
                                            negative_prompt=negative or None, clip_skip=skip))
        return tuple(pipe.encode_prompt(prompt, pipes.device, 1, True, negative or None))


def slerp(a: Any, b: Any, t: float) -> Any:
    """Spherical interpolation of each token vector (last axis); lerp where parallel."""
    import torch

    a32, b32 = a.float(), b.float()
    dot = (a32 / a32.norm(dim=-1, keepdim=True).clamp_min(1e-12) *
           b32 / b32.norm(dim=-1, keepdim=True).clamp_min(1e-12)).sum(-1, keepdim=True)
    omega = torch.arccos(dot.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-6
    wa = torch.where(parallel, 1 - t, torch.sin((1 - t) * omega) / torch.where(parallel, 1, sin))
    wb = torch.where(parallel, t, torch.sin(t * omega) / torch.where(parallel, 1, sin))
    return (wa * a32 + wb * b32).to(a.dtype)


def generate_from_embeddings(diffusion: Diffusion, embeddings: tuple, seed: int) -> np.ndarray:
    """txt2img from precomputed conditioning (Interpolation mode), with the values of the
    frame made current by ``diffusion.begin``."""
    return diffusion.txt2img(dict(zip(EMBEDDINGS, embeddings)), seed)
