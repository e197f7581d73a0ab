"""The diffusion values of one frame: guidance, steps, sampler, model, CLIP skip, eta and
variation seed, from the webui's per-frame schedules.

Each value comes from its schedule when the webui's enable flag is on and from the
single setting (``steps``, ``sampler``, ``ddim_eta``, the model of ``model_path``) when
it is off; ``cfg_scale_schedule`` always applies, as in the webui (a file without it
holds its ``scale``).  Sampler and checkpoint schedules hold text: ``0: ("Euler a")``
keys, quotes optional, each value held until the next key.  Everything is checked when
the schedules are read, so a bad value stops the run before its first frame.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SettingsError, shown
from .schedules import _Compiler, _error, _frame_number, _split_keys
from .seeds import MAX_SEED
from .settings_table import BY_NAME


@dataclass(frozen=True)
class FrameParams:
    """What one frame is diffused with (``checkpoint`` None: the model of ``model_path``)."""

    cfg: float
    steps: int
    sampler: str
    ddim_eta: float
    clip_skip: int  # webui numbering: 1 = the text encoder's last layer
    checkpoint: str | None
    subseed: int | None
    subseed_strength: float

    def used(self, seed: int, model: str) -> dict[str, Any]:
        """The values a ``frame`` event reports, with the frame's seed and model file."""
        return {**asdict(self), "seed": int(seed), "checkpoint": self.checkpoint or model}


class TextSchedule:
    """A schedule of text values (sampler or checkpoint names): the latest key ≤ frame."""

    def __init__(self, text: str, *, key: str, max_frames: int, seed: int = 0) -> None:
        variables = {"max_f": max_frames - 1, "max_frames": max_frames, "s": seed}
        compile_ = _Compiler()
        keyed: dict[int, str] = {}
        with np.errstate(all="ignore"):
            for frame_text, value_text, _simple in _split_keys(text, key):
                frame = _frame_number(frame_text, key, text, variables, compile_)
                if frame is not None:
                    keyed[frame] = _unquoted(value_text)
        if not keyed:
            raise _error(key, text, "no keys found; expected e.g. 0: (\"Euler a\")")
        self.keys = sorted(keyed.items())

    def at(self, frame: int) -> str:
        index = bisect_right(self.keys, frame, key=lambda item: item[0]) - 1
        return self.keys[max(index, 0)][1]

    def values(self) -> list[str]:
        """Each distinct value, in key order."""
        return list(dict.fromkeys(value for _, value in self.keys))


def _unquoted(text: str) -> str:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def sampler_name(name: str, key: str = "sampler_schedule") -> str:
    """The engine's sampler for a name the webui or a notebook writes (any case)."""
    row = BY_NAME["sampler"]
    lookup = {c.lower(): c for c in row.choices}
    lookup.update({a.lower(): c for a, c in row.choice_aliases.items()})
    if name.strip().lower() not in lookup:
        raise SettingsError(f"{key}: sampler {shown(name)} is not one of "
                            + ", ".join(sorted(row.choice_aliases)), key=key, value=name)
    return lookup[name.strip().lower()]


def checkpoint_path(name: str, model_path: str) -> str:
    """The local file (or diffusers folder) of a ``checkpoint_schedule`` name: beside
    ``model_path`` (as the webui looks in its models folder), else as given.  Nothing is
    downloaded: a URL or a missing file is an error."""
    key = "checkpoint_schedule"
    if "://" in name:
        raise SettingsError(f"{key}: {shown(name)} is a URL; only local checkpoint files can "
                            "be scheduled", key=key, value=name)
    given = Path(name).expanduser()
    candidates = [given]
    if model_path and not given.is_absolute():
        candidates.insert(0, Path(model_path).expanduser().parent / name)
    for path in candidates:
        if name and path.exists():
            return str(path)
    raise SettingsError(f"{key}: checkpoint {shown(name)} not found (looked in "
                        + ", ".join(shown(str(p)) for p in candidates) + ")",
                        key=key, value=name)


class FrameSchedules:
    """Every frame's diffusion values, evaluated and checked once per run."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        s, self.frames = settings, max(1, int(settings["max_frames"]))
        self.settings = settings
        self.cfg = self._numbers("cfg_scale_schedule", True)
        self.steps = self._numbers("steps_schedule", s["enable_steps_scheduling"], 1)
        self.eta = self._numbers("ddim_eta_schedule", s["enable_ddim_eta_scheduling"], 0)
        self.clip_skip = self._numbers("clipskip_schedule", s["enable_clipskip_scheduling"], 1)
        subseeds = s["enable_subseed_scheduling"]
        self.subseed = self._numbers("subseed_schedule", subseeds)
        self.strength = self._numbers("subseed_strength_schedule", subseeds, 0, 1)
        self.sampler = self._texts("sampler_schedule", s["enable_sampler_scheduling"])
        self.samplers = {n: sampler_name(n) for n in self.sampler.values()} \
            if self.sampler else {}
        self.checkpoint = self._texts("checkpoint_schedule", s["enable_checkpoint_scheduling"])
        self.checkpoints = {n: checkpoint_path(n, s["model_path"])
                            for n in self.checkpoint.values()} if self.checkpoint else {}

    def _numbers(self, key: str, enabled: bool, low: float | None = None,
                 high: float | None = None) -> np.ndarray | None:
        """The schedule's value per frame, or None when its enable flag is off."""
        if not enabled:
            return None
        values = np.asarray(self.settings.schedule(key).values(self.frames), dtype=np.float64)
        bad = (values < low if low is not None else False) | \
            (values > high if high is not None else False)
        if np.any(bad):
            frame = int(np.argmax(bad))
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise SettingsError(f"{key}: {values[frame]:g} at frame {frame} is not valid; "
                                f"expected {span}", key=key, value=self.settings[key])
        return values

    def _texts(self, key: str, enabled: bool) -> TextSchedule | None:
        if not enabled:
            return None
        text = self.settings[key]
        if not text.strip():
            raise SettingsError(f"{key}: empty; expected e.g. 0: (\"…\") when "
                                f"{_flag(key)} is on", key=key, value=text)
        return TextSchedule(text, key=key, max_frames=self.frames,
                            seed=max(self.settings["seed"], 0))

    def at(self, frame: int) -> FrameParams:
        """The values of ``frame`` (frames past the schedules hold the last one)."""
        s, f = self.settings, min(max(frame, 0), self.frames - 1)
        subseed = None
        if self.subseed is not None:
            subseed = int(self.subseed[f])
            subseed = _random_subseed(s["seed"], f) if subseed == -1 else subseed % (MAX_SEED + 1)
        return FrameParams(
            cfg=float(self.cfg[f]),
            steps=int(self.steps[f]) if self.steps is not None else int(s["steps"]),
            sampler=self.samplers[self.sampler.at(f)] if self.sampler else s["sampler"],
            ddim_eta=float(self.eta[f]) if self.eta is not None else float(s["ddim_eta"]),
            clip_skip=int(self.clip_skip[f]) if self.clip_skip is not None else 1,
            checkpoint=self.checkpoints[self.checkpoint.at(f)] if self.checkpoint else None,
            subseed=subseed,
            subseed_strength=float(self.strength[f]) if self.strength is not None else 0.0)


def _flag(key: str) -> str:
    return "enable_" + key.replace("_schedule", "") + "_scheduling"


def _random_subseed(seed: int, frame: int) -> int:
    """A subseed of −1: random, but the same in every run with the same seed."""
    return int(np.random.default_rng((max(seed, 0), frame)).integers(0, MAX_SEED + 1))
