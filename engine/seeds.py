"""Seeds per diffused frame, following Deforum's ``seed_behavior`` options."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_SEED = 2**32 - 1


def seed_sequence(seed: int, behavior: str, count: int, *, iter_n: int = 1,
                  schedule: Sequence[float] | None = None,
                  frames: Sequence[int] | None = None) -> list[int]:
    """Seeds of the first ``count`` diffused frames.

    ``frames`` are their frame numbers (needed for ``schedule``, where −1 means a
    random seed).  Random choices come from a generator seeded by ``seed`` so
    two runs with the same settings render the same frames.
    """
    rng = np.random.default_rng(seed)
    seeds: list[int] = []
    current, internal = seed, 0
    for k in range(count):
        if behavior == "schedule":
            value = int(schedule[frames[k]]) if schedule is not None and frames is not None else -1
            seeds.append(int(rng.integers(0, MAX_SEED + 1)) if value == -1 else value % (MAX_SEED + 1))
            continue
        seeds.append(current % (MAX_SEED + 1))
        if behavior == "iter":
            if internal % iter_n == 0:
                current += 1
            internal += 1
        elif behavior == "ladder":
            current += 2 if internal == 0 else -1
            internal = 1 - internal
        elif behavior == "alternate":
            current += 1 if internal == 0 else -1
            internal = 1 - internal
        elif behavior == "random":
            current = int(rng.integers(0, MAX_SEED + 1))
        # "fixed": unchanged
    return seeds
