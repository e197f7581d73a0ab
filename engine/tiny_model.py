"""A tiny random-weight SD-1.x pipeline, so tests and CI run the real diffusion code without weights.

`python -m engine.tiny_model DIR [--single-file]` writes it in diffusers format (and, with
`--single-file`, also as an original LDM/CompVis checkpoint `DIR/tiny-sd15.safetensors`);
`--sdxl` writes a tiny SDXL-shaped pipeline instead (diffusers format only).
`python -m engine.tiny_model --controlnet DIR [--sdxl] [--single-file]` writes a random-weight
ControlNet that fits the tiny (SDXL) model, for `cn_N_model` (and, with `--single-file`, also as
an original-layout `DIR/tiny-controlnet.safetensors`).
`python -m engine.tiny_model --raft FILE` writes random RAFT weights shaped like torchvision's
raft_small (about a million numbers; `.pth`, or `.safetensors` by the name), for `raft_model_path`.
`python -m engine.tiny_model --clip-vocab SOURCE` regenerates the shipped CLIP tokenizer files from
OpenAI's `bpe_simple_vocab_16e6.txt.gz` (or the `clip-anytorch` wheel that contains it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import zipfile
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).parent / "model_configs"
SD15_TOKENIZER = CONFIGS / "sd15" / "tokenizer"
SINGLE_FILE_NAME = "tiny-sd15.safetensors"
CONTROLNET_FILE_NAME = "tiny-controlnet.safetensors"

# CLIP's BPE table: the first line is a header, then 49152 - 256 - 2 merges are used.
_MERGE_COUNT = 49152 - 256 - 2
_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins CLIP's byte-level BPE uses for raw bytes, in vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def clip_bpe_tables(source: str | Path) -> tuple[list[str], list[str]]:
    """(vocabulary, merges) exactly as CLIP builds them from its gzipped BPE file or the wheel holding it."""
    source = Path(source)
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith("bpe_simple_vocab_16e6.txt.gz"))
            raw = wheel.read(name)
    else:
        raw = source.read_bytes()
    merges = gzip.decompress(raw).decode("utf-8").split("\n")[1:_MERGE_COUNT + 1]
    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + _SPECIAL
    return vocab, merges


def write_clip_vocab(source: str | Path, folders: list[Path]) -> None:
    """Write vocab.json + merges.txt (Hugging Face layout) into each tokenizer folder."""
    vocab, merges = clip_bpe_tables(source)
    vocab_text = json.dumps({token: i for i, token in enumerate(vocab)}, ensure_ascii=False)
    merges_text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vocab.json").write_text(vocab_text, encoding="utf-8")
        (folder / "merges.txt").write_text(merges_text, encoding="utf-8")


def shipped_tokenizer_folders() -> list[Path]:
    """Every tokenizer folder of the shipped configs (each must hold the vocabulary to be self-contained)."""
    return sorted(p.parent for p in CONFIGS.glob("*/tokenizer*/tokenizer_config.json"))


# --- diffusers -> original LDM key layout -------------------------------------------------------

_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
                  ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_UNET_FIXED = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet_to_ldm(rest: str) -> str:
    """Rename a diffusers ResnetBlock2D parameter to the LDM ResBlock name."""
    for new, old in _RESNET_TO_LDM:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    raise ValueError(f"unexpected resnet parameter {rest!r}")


def unet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """UNet2DConditionModel weights in the `model.diffusion_model.*` layout (SD 1.x/2.x style UNets)."""
    per_block = config["layers_per_block"]
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    out: dict[str, Any] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in _UNET_FIXED:
            new = f"{_UNET_FIXED[module]}.{param}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = 1 + block * (per_block + 1) + layer
            new = f"input_blocks.{index}.0.{_resnet_to_ldm(rest)}" if kind == "resnets" \
                else f"input_blocks.{index}.1.{rest}"
        elif m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
            new = f"input_blocks.{(int(m[1]) + 1) * (per_block + 1)}.0.op.{m[2]}"
        elif m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"middle_block.{2 * int(m[1])}.{_resnet_to_ldm(m[2])}"
        elif m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
            new = f"middle_block.1.{m[1]}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
            block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
            index = block * (per_block + 1) + layer
            new = f"output_blocks.{index}.0.{_resnet_to_ldm(rest)}" if kind == "resnets" \
                else f"output_blocks.{index}.1.{rest}"
        elif m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
            block = int(m[1])
            slot = 2 if up_has_attention[block] else 1
            new = f"output_blocks.{block * (per_block + 1) + per_block}.{slot}.conv.{m[2]}"
        else:
            raise ValueError(f"no LDM name for UNet parameter {key!r}")
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """AutoencoderKL weights in the `first_stage_model.*` layout (attention projections as 1x1 convs)."""
    levels = len(config["up_block_types"])
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out")
        if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key):
            new = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
            new = f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key):
            new = f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
            new = f"{m[1]}.mid.attn_1.{_VAE_ATTN[m[2]]}.{m[3]}"
            if m[2] != "group_norm" and m[3] == "weight":
                value = value[:, :, None, None]
        new = new.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + new] = value
    return out


def controlnet_to_ldm(state: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """ControlNetModel weights in the original `control_model.*` layout: the UNet encoder's
    names, plus zero_convs, middle_block_out and input_hint_block for its own layers."""
    own: dict[str, Any] = {}
    encoder: dict[str, Any] = {}
    hint_blocks = len(config["conditioning_embedding_out_channels"]) * 2 - 2
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if m := re.fullmatch(r"controlnet_down_blocks\.(\d+)", module):
            own[f"zero_convs.{m[1]}.0.{param}"] = value
        elif module == "controlnet_mid_block":
            own[f"middle_block_out.0.{param}"] = value
        elif m := re.fullmatch(r"controlnet_cond_embedding\.(conv_in|conv_out|blocks\.(\d+))", module):
            index = 0 if m[1] == "conv_in" else 2 * (hint_blocks + 1) if m[1] == "conv_out" \
                else 2 * (int(m[2]) + 1)
            own[f"input_hint_block.{index}.{param}"] = value
        else:
            encoder[key] = value
    unet = unet_to_ldm(encoder, {**config, "up_block_types": ()})
    return {"control_model." + k.removeprefix("model.diffusion_model."): v
            for k, v in {**unet, **own}.items()}


def clip_to_ldm(state: dict[str, Any]) -> dict[str, Any]:
    """CLIPTextModel weights in the `cond_stage_model.transformer.text_model.*` layout."""
    out = {}
    for key, value in state.items():
        inner = key if key.startswith("text_model.") else "text_model." + key
        out["cond_stage_model.transformer." + inner] = value
    return out


# --- the tiny model ---------------------------------------------------------------------------

_TINY_BLOCKS = dict(block_out_channels=(32, 64), layers_per_block=2, sample_size=64,
                    in_channels=4, out_channels=4,
                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
TINY_UNET = dict(_TINY_BLOCKS, cross_attention_dim=32, attention_head_dim=8)
TINY_SDXL_UNET = dict(_TINY_BLOCKS, attention_head_dim=(2, 4), use_linear_projection=True,
                      transformer_layers_per_block=(1, 2), addition_embed_type="text_time",
                      addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32,
                      cross_attention_dim=64)


def _tiny_vae() -> Any:
    """Four levels so vae_scale_factor is 8 (512 px <-> 64 latent), as in real SD VAEs."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16, 32, 32), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, layers_per_block=1, sample_size=512, scaling_factor=0.18215)


def _tiny_clip_config() -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
        pad_token_id=49407, projection_dim=32)


def build_tiny_pipeline(seed: int = 0) -> Any:
    """The tiny SD-1.x StableDiffusionPipeline with random weights from ``seed`` (deterministic;
    another seed is another model, e.g. for a checkpoint schedule)."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET)
    vae = _tiny_vae()
    text_encoder = CLIPTextModel(_tiny_clip_config())
    tokenizer = CLIPTokenizer.from_pretrained(SD15_TOKENIZER)
    scheduler = PNDMScheduler.from_pretrained(CONFIGS / "sd15", subfolder="scheduler")
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def write_tiny_sdxl(directory: str | Path) -> Path:
    """Write a tiny random-weight SDXL-shaped pipeline (two text encoders, text_time embedding), diffusers format."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**TINY_SDXL_UNET)
    pipe = StableDiffusionXLPipeline(
        vae=_tiny_vae(), unet=unet,
        text_encoder=CLIPTextModel(_tiny_clip_config()),
        text_encoder_2=CLIPTextModelWithProjection(_tiny_clip_config()),
        tokenizer=CLIPTokenizer.from_pretrained(CONFIGS / "sdxl" / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(CONFIGS / "sdxl" / "tokenizer_2"),
        scheduler=EulerDiscreteScheduler.from_pretrained(CONFIGS / "sdxl", subfolder="scheduler"))
    directory = Path(directory)
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


def write_tiny_model(directory: str | Path, single_file: bool = False, seed: int = 0) -> Path:
    """Write the tiny pipeline (weights from ``seed``) in diffusers format (and optionally as
    an LDM single file); return the folder."""
    from safetensors.torch import save_file

    directory = Path(directory)
    pipe = build_tiny_pipeline(seed)
    pipe.save_pretrained(directory, safe_serialization=True)
    if single_file:
        state = {
            **unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config),
            **vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config),
            **clip_to_ldm(pipe.text_encoder.state_dict()),
        }
        save_file({k: v.contiguous() for k, v in state.items()}, directory / SINGLE_FILE_NAME)
    return directory


def build_tiny_controlnet(sdxl: bool = False, seed: int = 0) -> Any:
    """A random-weight ControlNetModel shaped for the tiny (or tiny SDXL) UNet.

    A real ControlNet starts training from zero convolutions, so its residuals are zero
    until trained; here those layers get small random weights too, so that the tiny
    ControlNet visibly steers a frame and tests can tell it acted."""
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(seed)
    net = ControlNetModel.from_unet(UNet2DConditionModel(**(TINY_SDXL_UNET if sdxl else TINY_UNET)))
    zero_convs = [*net.controlnet_down_blocks, net.controlnet_mid_block,
                  net.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zero_convs:
            torch.nn.init.normal_(conv.weight, std=0.3)
            torch.nn.init.normal_(conv.bias, std=0.3)
    return net


def write_tiny_controlnet(directory: str | Path, sdxl: bool = False, seed: int = 0,
                          single_file: bool = False) -> Path:
    """Write the tiny ControlNet in diffusers format (config.json + safetensors), the layout
    ``cn_N_model`` folders have, and optionally as one original-layout file
    ``DIR/tiny-controlnet.safetensors``; returns the folder."""
    from safetensors.torch import save_file

    directory = Path(directory)
    net = build_tiny_controlnet(sdxl, seed)
    net.save_pretrained(directory, safe_serialization=True)
    if single_file:
        state = controlnet_to_ldm(net.state_dict(), net.config)
        save_file({k: v.contiguous() for k, v in state.items()},
                  directory / CONTROLNET_FILE_NAME)
    return directory


def write_tiny_raft(path: str | Path, seed: int = 0) -> Path:
    """Random-weight raft_small weights at ``path`` (a state dict; safetensors when the name
    ends in .safetensors), so RAFT flow runs in tests without downloaded weights."""
    import torch

    from .output import atomic_path
    from .raft import SMALL, RaftNet

    path = Path(path)
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in RaftNet(SMALL).state_dict().items()}
    with atomic_path(path, replace=True) as temp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file
            save_file(state, str(temp))
        else:
            torch.save(state, str(temp))
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: write the tiny model, or regenerate the shipped tokenizer vocabulary."""
    parser = argparse.ArgumentParser(prog="python -m engine.tiny_model", description=__doc__.split("\n")[0])
    parser.add_argument("dir", nargs="?", help="output folder for the tiny diffusers pipeline")
    parser.add_argument("--sdxl", action="store_true", help="write a tiny SDXL-shaped pipeline instead")
    parser.add_argument("--single-file", action="store_true",
                        help=f"also write DIR/{SINGLE_FILE_NAME} (with --controlnet: "
                             f"{CONTROLNET_FILE_NAME}) in the original LDM key layout")
    parser.add_argument("--clip-vocab", metavar="SOURCE",
                        help="bpe_simple_vocab_16e6.txt.gz or a clip-anytorch wheel: rewrite the shipped "
                             "vocab.json/merges.txt in engine/model_configs")
    parser.add_argument("--controlnet", metavar="DIR",
                        help="write a tiny random-weight ControlNet for the tiny model "
                             "(with --sdxl: for the tiny SDXL model) to DIR")
    parser.add_argument("--raft", metavar="FILE",
                        help="write random raft_small-shaped RAFT weights to FILE (.pth or .safetensors)")
    args = parser.parse_args(argv)
    if args.raft:
        print(write_tiny_raft(args.raft))
    if args.controlnet:
        print(write_tiny_controlnet(args.controlnet, sdxl=args.sdxl, single_file=args.single_file))
    if args.clip_vocab:
        write_clip_vocab(args.clip_vocab, shipped_tokenizer_folders())
    if args.dir:
        written = write_tiny_sdxl(args.dir) if args.sdxl else write_tiny_model(args.dir, args.single_file)
        print(written)
    elif not (args.clip_vocab or args.raft or args.controlnet):
        parser.error("give DIR, --controlnet DIR, --raft FILE and/or --clip-vocab")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
