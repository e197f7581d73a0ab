"""Interpolation: morph between prompts by interpolating their text embeddings.

``interpolate_key_frames = true``: between prompt keys a < b, frames a … b−1
get t = (f − a)/(b − a).  ``false``: ``interpolate_x_frames`` in-betweens for
every consecutive pair, key numbers ignored.  Both end with one frame on the
last prompt.  Deforum's original code renders only the last pair of prompts;
here every pair is rendered.  The seed is the same for every frame, and the
embeddings (positive and negative) are interpolated per token with slerp.
Guidance, steps, sampler, eta, model, CLIP skip and variation seed follow the
per-frame schedules, frame by frame, as in the other modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import SettingsError
from ..schedules import PromptSchedule
from ..settings import Settings
from .common import Mode, render_sequence

Plan = list[tuple[int, int, float]]  # per output frame: (index of prompt A, of B, t)


class Interpolation(Mode):
    """``animation_mode`` Interpolation; the frame count follows the prompts."""

    independent_frames = True

    def prepare(self, settings: Settings) -> Settings:
        # The frame count is recorded in the settings file, so it is fixed here.
        settings = settings.replace(max_frames=len(interpolation_plan(settings)[1]))
        if settings["seed_behavior"] != "fixed":
            self.job.progress.warning(
                "Interpolation keeps one seed for every frame: seed_behavior "
                f"{settings['seed_behavior']!r} is ignored", key="seed_behavior")
        return settings

    def start(self, settings: Settings, diffusion: Any | None, mask: np.ndarray | None) -> int:
        self.count, self.make = interpolation_generate(diffusion, settings)
        self.used = diffusion.used_for
        return settings["max_frames"]

    def render(self) -> int:
        return render_sequence(self.count, self.make, self.job, self.used)


def interpolation_plan(settings: Mapping[str, Any]) -> tuple[list[int], Plan]:
    """(sorted prompt keys, per output frame: (index of A, index of B, t))."""
    prompts = PromptSchedule(settings["animation_prompts"], max_frames=settings["max_frames"],
                             seed=max(settings["seed"], 0))
    keys = prompts.keys
    if len(keys) < 2:
        raise SettingsError("animation_prompts: Interpolation needs at least two prompts",
                            key="animation_prompts", value=settings["animation_prompts"])
    plan: Plan = []
    for i in range(len(keys) - 1):
        if settings["interpolate_key_frames"]:
            span = keys[i + 1] - keys[i]
            plan += [(i, i + 1, j / span) for j in range(span)]
        else:
            x = settings["interpolate_x_frames"]
            plan += [(i, i + 1, j / (x + 1)) for j in range(x + 1)]
    plan.append((len(keys) - 1, len(keys) - 1, 0.0))
    return keys, plan


def interpolation_generate(diffusion: Any,
                           settings: Settings) -> tuple[int, Callable[[int], np.ndarray]]:
    """(frame count, ``make(frame)``) rendering the interpolation plan with one fixed seed.

    Each frame takes its own guidance, steps, sampler, eta, model and CLIP skip from the
    per-frame schedules; a prompt's embedding is made once per model and CLIP skip.
    """
    from ..diffusion import embed_prompt, generate_from_embeddings, slerp

    keys, plan = interpolation_plan(settings)
    prompts = settings.prompts()
    seed = settings["seed"]
    embedded: dict[tuple[str | None, int, int], tuple] = {}

    def embedding(index: int, params: Any) -> tuple:
        key = (params.checkpoint, params.clip_skip, index)
        if key not in embedded:
            embedded[key] = embed_prompt(diffusion.pipes, *prompts.at(keys[index]),
                                         params.clip_skip)
        return embedded[key]

    def generate(frame: int) -> np.ndarray:
        a, b, t = plan[frame]
        params = diffusion.begin(frame, seed)
        mixed = tuple(slerp(x, y, t) for x, y in zip(embedding(a, params),
                                                      embedding(b, params)))
        return generate_from_embeddings(diffusion, mixed, seed)
    return len(plan), generate
