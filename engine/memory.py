"""Running out of memory: recognise it on every device and say which setting to lower.

CUDA raises ``torch.OutOfMemoryError``; Apple MPS and the CPU allocator raise a plain
``RuntimeError`` ("MPS backend out of memory", "DefaultCPUAllocator: can't allocate
memory"); NumPy raises ``MemoryError``.  Each becomes one clear error that names the
setting to change, so a run ends at once with its written frames kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import BlankFrame, ModelError, OutOfMemory

# What the allocators of torch, cuBLAS and cuDNN say when an allocation fails.
_MESSAGES = ("out of memory", "can't allocate memory", "STATUS_ALLOC_FAILED")
_REASON_LIMIT = 200

Method = TypeVar("Method", bound=Callable[..., Any])


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (not one of the engine's own errors that
    merely quotes one)."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, (ModelError, BlankFrame)) or not isinstance(exc, RuntimeError):
        return False
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or any(m in str(exc) for m in _MESSAGES)


def _reason(exc: BaseException) -> str:
    """The allocator's first line (it says how much it tried to allocate), bounded."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= _REASON_LIMIT else text[:_REASON_LIMIT - 1] + "…"


def frame_error(exc: BaseException, settings: Mapping[str, Any], frame: int | None = None,
                device: Any = None, tiled: bool | None = None) -> OutOfMemory | None:
    """The ``OutOfMemory`` to raise for ``exc`` while rendering, or None when ``exc`` is
    something else.  It names W/H first (the size drives memory), then ``vae_tiling``
    where tiling was not in use, then ``half_precision`` where it is off on CUDA."""
    if not is_out_of_memory(exc):
        return None
    width, height = settings["W"], settings["H"]
    where = f"frame {frame}" if frame is not None else "a frame"
    on = f" on {device}" if device is not None else ""
    cures = [f"lower the resolution (W, H: now {width}×{height})"]
    if not tiled and settings.get("vae_tiling") != "on":
        cures.append("set vae_tiling to on")
    if getattr(device, "type", None) == "cuda" and not settings.get("half_precision", True):
        cures.append("turn half_precision on")
    if settings.get("compile_unet"):
        cures.append("turn compile_unet off")
    return OutOfMemory(f"W: out of memory rendering {where}{on} ({_reason(exc)}): "
                       f"{', or '.join(cures)}; frames already written are kept",
                       key="W", value=width)


def loading_error(exc: BaseException, path: str, device: Any, half: bool) -> ModelError | None:
    """The ``ModelError`` to raise when loading ``path`` ran out of memory, else None; on a
    GPU it names ``half_precision`` (fp16 halves the weights) or, already in fp16,
    ``device``; on the CPU, ``model_path``."""
    if not is_out_of_memory(exc):
        return None
    if getattr(device, "type", "cpu") == "cpu":
        key, cure = "model_path", "use a smaller model"
    elif half:
        key, cure = "device", "set device to cpu (slow) or use a smaller model"
    else:
        key, cure = "half_precision", "turn half_precision on (fp16 halves the weights)"
    return ModelError(f"not enough memory on {device} to load model {path} "
                      f"({_reason(exc)}): {cure}, or close other programs using it",
                      key=key, value=path)


def release_cached_memory() -> None:
    """Hand the CUDA cache back after a failure so a warm engine's next job (and Blender)
    starts with the memory free; a no-op elsewhere."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def reports_out_of_memory(method: Method) -> Method:
    """Make a ``Diffusion`` method raise ``OutOfMemory`` naming its frame when memory runs out.

    The error is raised after the handler has ended, so the failed frame's tensors (held
    by the traceback) are freed before the cache is handed back.
    """
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            pipes = self.pipes
            error = frame_error(exc, self.settings, self.frame, pipes.device,
                                getattr(pipes.img2img.vae, "use_tiling", False))
            if error is None:
                raise
        release_cached_memory()
        raise error
    return wrapper  # type: ignore[return-value]
