"""Tiny random-weight depth models, saved like real ones, for fast offline tests."""

from __future__ import annotations

from pathlib import Path

# Small enough to build in well under a second and predict in milliseconds.
_WIDTH = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37)
_NECK = dict(neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16)


def write_tiny_depth_model(dir: str | Path, kind: str = "dpt", *,
                           processor: bool = True, seed: int = 0) -> Path:
    """Save a tiny DPT or Depth Anything model (+ image processor) into ``dir``; return it.

    Weights are random but seeded, so every call writes the same model.
    """
    import torch
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTConfig,
                              DPTForDepthEstimation, DPTImageProcessorPil, Dinov2Config)

    folder = Path(dir)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if kind == "dpt":
            config = DPTConfig(**_WIDTH, **_NECK, image_size=64, patch_size=16,
                               backbone_out_indices=[0, 1, 2, 3], use_auxiliary_head=False)
            model = DPTForDepthEstimation(config)
            # MiDaS 3 in transformers (Intel/dpt-*) takes a square input.
            image_processor = DPTImageProcessorPil(
                size={"height": 64, "width": 64}, keep_aspect_ratio=False, do_pad=False,
                resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        elif kind == "depth_anything":
            backbone = Dinov2Config(**_WIDTH, image_size=56, patch_size=14,
                                    out_features=["stage1", "stage2", "stage3", "stage4"],
                                    reshape_hidden_states=False)
            config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32,
                                         patch_size=14, head_hidden_size=8, **_NECK)
            model = DepthAnythingForDepthEstimation(config)
            image_processor = DPTImageProcessorPil(
                size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                do_pad=False, resample=3, image_mean=[0.485, 0.456, 0.406],
                image_std=[0.229, 0.224, 0.225])
        else:
            raise ValueError(f"kind must be 'dpt' or 'depth_anything', got {kind!r}")
    model.save_pretrained(folder)
    if processor:
        image_processor.save_pretrained(folder)
    return folder
