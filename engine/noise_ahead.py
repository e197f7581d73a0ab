"""The next keyframe's noise field, drawn on a worker thread while this keyframe diffuses.

A keyframe's noise field (``noise.noise_field``) depends only on its seed, the
frame's shape and the noise settings, and it is the first thing drawn from the
generator seeded for that keyframe.  So it can be drawn early: the worker seeds
a generator, draws the field and hands both over, and the keyframe then goes on
with that very generator (the VAE's latent sample, diffusers' noise), which is in
exactly the state drawing the field in the loop would have left.  A keyframe
whose seed or shape was not drawn ahead (a reroll, a redo's throw-away seed)
draws its own at once; the early draws wait for theirs, the oldest dropped
beyond ``KEPT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .noise import noise_field

Key = tuple[int, tuple[int, ...]]  # (seed, shape)
KEPT = 2  # fields drawn ahead and not yet taken (a redo's keyframe asks twice)


class NoiseAhead:
    """Fields drawn ahead, up to ``KEPT``; ``generator(seed)`` makes a keyframe's generator."""

    def __init__(self, settings: Mapping[str, Any], generator: Callable[[int], Any]) -> None:
        self._settings = settings
        self._generator = generator
        self._pending: dict[Key, Future] = {}
        self._worker: ThreadPoolExecutor | None = None

    def start(self, seed: int, shape: tuple[int, ...]) -> None:
        """Begin drawing the field of ``seed`` and ``shape`` unless it is under way."""
        key = (int(seed), tuple(shape))
        if key in self._pending:
            return
        if len(self._pending) >= KEPT:
            self._pending.pop(next(iter(self._pending)))
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="noise-ahead")
        self._pending[key] = self._worker.submit(self.draw, *key)

    def take(self, seed: int, shape: tuple[int, ...]) -> tuple[Any, Any]:
        """(generator seeded with ``seed`` after drawing the field, the field of ``shape``):
        the pair drawn ahead when it is this one, else drawn now."""
        pending = self._pending.pop((int(seed), tuple(shape)), None)
        return self.draw(seed, shape) if pending is None else pending.result()

    def draw(self, seed: int, shape: tuple[int, ...]) -> tuple[Any, Any]:
        """A fresh generator for ``seed`` and the field drawn first from it."""
        generator = self._generator(seed)
        return generator, noise_field(tuple(shape), generator, self._settings)
