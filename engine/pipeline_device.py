"""Pipelines that remember where they run instead of searching for it on every call.

At each call a diffusers pipeline finds its execution device by walking every
module of every component for offloading hooks, then asking the components
where they sit: about 1.5 ms of the main thread per frame with the tiny test
model, and the hook search alone takes 1 ms over an SD 1.5 UNet's 700 modules,
spent between the frame's networks.  Nothing here offloads, so the answer
changes only when the pipeline is moved: a remembering pipeline asks diffusers
once and again after each ``to()``, and gets diffusers' own answer.
"""

from __future__ import annotations

from typing import Any, TypeVar

Pipe = TypeVar("Pipe")
_CLASSES: dict[type, type] = {}  # a pipeline class → its remembering subclass


class _RememberedDevice:
    """Put before a pipeline's class: its ``_execution_device`` kept until the next ``to()``."""

    @property
    def _execution_device(self) -> Any:
        device = self.__dict__.get("_remembered_device")
        if device is None:
            device = self.__dict__["_remembered_device"] = super()._execution_device
        return device

    def to(self, *args: Any, **kwargs: Any) -> Any:
        self.__dict__.pop("_remembered_device", None)
        return super().to(*args, **kwargs)


def remember_device(pipe: Pipe) -> Pipe:
    """``pipe`` made to remember its execution device (its class becomes a subclass of
    the same name, so checks and saved configs see the class they know)."""
    cls = type(pipe)
    if not isinstance(pipe, _RememberedDevice):
        if cls not in _CLASSES:
            _CLASSES[cls] = type(cls.__name__, (_RememberedDevice, cls),
                                 {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
        pipe.__class__ = _CLASSES[cls]
    return pipe
