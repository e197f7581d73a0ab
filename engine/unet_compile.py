"""``compile_unet``: torch.compile the UNet for long CUDA runs.

Compiling costs time before the first frame (``benchmarks/bench_compile.py`` measures how
much, and the gain per frame) and gains on every denoising step after, so it pays off
only over many frames.  It compiles in place, so
the img2img and txt2img pipelines, which share the UNet, both run the compiled one, and
a warm engine's cached model stays compiled.  The default mode is used: "reduce-overhead"
records CUDA graphs, whose reused output buffers clash with the step callback that edits
the latents between steps.  Elsewhere than CUDA the UNet runs as it is, with a warning.
"""

from __future__ import annotations

from typing import Any


def compile_unet(pipes: Any) -> str | None:
    """Compile the pipelines' UNet once; returns why it was skipped, or None."""
    if pipes.device.type != "cuda":
        return (f"compile_unet: skipped on {pipes.device.type}: torch.compile speeds up the "
                "UNet on CUDA only here; the UNet runs uncompiled")
    import torch

    unet = pipes.img2img.unet
    if not is_compiled(unet):
        # A backend that cannot compile here (no Triton, an old GPU) falls back to the
        # uncompiled UNet with a logged warning instead of failing the frame.
        torch._dynamo.config.suppress_errors = True
        unet.compile()
    return None


def is_compiled(unet: Any) -> bool:
    """Whether ``compile_unet`` compiled this UNet."""
    return getattr(unet, "_compiled_call_impl", None) is not None
