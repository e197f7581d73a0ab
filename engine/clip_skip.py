"""CLIP skip for SD 1.x/2.x text encoders: the prompt read from an earlier layer.

The webui's CLIP skip n takes the text encoder's n-th layer from the end, then its
final layer norm, for the prompt and the negative prompt alike.  It is done here
rather than through diffusers' ``clip_skip``, whose SD path reaches the layer norm
through an attribute that current transformers' ``CLIPTextModel`` no longer has.
"""

from __future__ import annotations

from typing import Any


def _encode(pipe: Any, text: str, clip_skip: int, device: Any) -> Any:
    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    tokens = tokenizer(text, padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    mask = tokens.attention_mask.to(device) \
        if getattr(encoder.config, "use_attention_mask", False) else None
    out = encoder(tokens.input_ids.to(device), attention_mask=mask, output_hidden_states=True)
    norm = getattr(encoder, "text_model", encoder).final_layer_norm
    return norm(out.hidden_states[-clip_skip]).to(dtype=encoder.dtype, device=device)


def skipped_embeddings(pipes: Any, prompt: str, negative: str, clip_skip: int) -> tuple:
    """(positive, negative) conditioning of an SD 1.x/2.x model with CLIP skip
    ``clip_skip`` (webui numbering: 1 = the last layer)."""
    import torch

    with torch.no_grad():
        return (_encode(pipes.txt2img, prompt, clip_skip, pipes.device),
                _encode(pipes.txt2img, negative or "", clip_skip, pipes.device))
