"""Scheduled checkpoints: each model file loaded once, through the same loader as
``model_path``, with a bound on how many are held in memory.

The run's own model always stays (the job holds it); at most ``keep − 1`` others are
kept besides it, the least recently used one dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ModelError

KEEP = 2  # pipelines held at once, the run's own model included


class Checkpoints:
    """Pipelines by checkpoint path, loaded on first use."""

    def __init__(self, main: Any, settings: Mapping[str, Any], loaders: Any = None,
                 keep: int = KEEP) -> None:
        self.main, self.settings, self.keep = main, settings, keep
        self.loaders = loaders
        self.loaded: OrderedDict[str, Any] = OrderedDict()

    def _is_main(self, path: str) -> bool:
        main = getattr(self.main, "path", None)
        return main is not None and Path(main).expanduser().resolve() == \
            Path(path).expanduser().resolve()

    def get(self, path: str | None) -> Any:
        """The pipelines of ``path`` (None or the run's model: the run's own pipelines)."""
        if path is None or self._is_main(path):
            return self.main
        if path in self.loaded:
            self.loaded.move_to_end(path)
            return self.loaded[path]
        while self.loaded and len(self.loaded) >= self.keep - 1:
            self.loaded.popitem(last=False)
        self.loaded[path] = self._load(path)
        return self.loaded[path]

    def _load(self, path: str) -> Any:
        """Through the run's loaders (a warm engine's cache) or, without, ``load_pipelines``."""
        s = self.settings
        try:
            if self.loaders is not None:
                return self.loaders.pipelines(path, None, s["device"], s["half_precision"])
            from .models import load_pipelines
            return load_pipelines(path, device=s["device"], half=s["half_precision"])
        except ModelError as exc:
            raise ModelError(f"checkpoint_schedule: {exc}", key="checkpoint_schedule",
                             value=path) from exc
