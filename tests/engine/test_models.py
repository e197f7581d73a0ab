"""Model loading: diffusers folders, LDM single files, shipped configs, tokenizer, and clear errors."""

import json
import os
import pickle
import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine import models, tiny_model  # noqa: E402
from engine.errors import ModelError  # noqa: E402

CONFIGS = Path(models.__file__).parent / "model_configs"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return tiny_model.write_tiny_model(tmp_path_factory.mktemp("tiny"), single_file=True)


@pytest.fixture(scope="module")
def folder_pipes(tiny_dir):
    return models.load_pipelines(str(tiny_dir), device="cpu")


@pytest.fixture(scope="module")
def single_file_pipes(tiny_dir):
    return models.load_pipelines(str(tiny_dir / tiny_model.SINGLE_FILE_NAME), config=str(tiny_dir), device="cpu")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_folder_loads_as_sd1_in_float32_with_shared_components(folder_pipes, tiny_dir):
    pipes = folder_pipes
    assert (pipes.kind, pipes.device.type, pipes.dtype, pipes.path) == ("sd1", "cpu", torch.float32, str(tiny_dir))
    assert type(pipes.img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(pipes.txt2img).__name__ == "StableDiffusionPipeline"
    for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert getattr(pipes.txt2img, name) is getattr(pipes.img2img, name), name
    assert pipes.img2img.safety_checker is None and pipes.txt2img.safety_checker is None
    assert pipes.img2img.unet.dtype == torch.float32
    assert pipes.img2img._progress_bar_config == {"disable": True}
    assert pipes.txt2img._progress_bar_config == {"disable": True}


def test_single_file_equals_folder_bit_for_bit(folder_pipes, single_file_pipes):
    assert single_file_pipes.kind == "sd1"
    for name in ("unet", "vae", "text_encoder"):
        want = getattr(folder_pipes.img2img, name).state_dict()
        got = getattr(single_file_pipes.img2img, name).state_dict()
        assert want.keys() == got.keys(), name
        for key, tensor in want.items():
            assert torch.equal(tensor, got[key]), f"{name}.{key}"
    assert single_file_pipes.img2img.tokenizer("a cat").input_ids == [49406, 320, 2368, 49407]


def test_single_file_uses_the_original_ldm_layout(tiny_dir):
    from safetensors import safe_open

    with safe_open(str(tiny_dir / tiny_model.SINGLE_FILE_NAME), "pt") as handle:
        keys = set(handle.keys())
        q = handle.get_slice("first_stage_model.encoder.mid.attn_1.q.weight").get_shape()
    assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}
    for key in ("model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.time_embed.0.weight",
                "model.diffusion_model.input_blocks.3.0.op.weight",
                "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight",
                "model.diffusion_model.middle_block.2.in_layers.0.weight",
                "model.diffusion_model.output_blocks.2.2.conv.weight", "model.diffusion_model.out.2.bias",
                "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight",
                "first_stage_model.encoder.norm_out.weight",
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"):
        assert key in keys, key
    assert q == [32, 32, 1, 1]


def test_tiny_txt2img_and_img2img_run(folder_pipes):
    gen = torch.Generator().manual_seed(0)
    image = folder_pipes.txt2img("a cat", num_inference_steps=2, height=64, width=64, generator=gen).images[0]
    assert image.size == (64, 64)
    again = folder_pipes.img2img("a dog", image=image, strength=0.5, num_inference_steps=4,
                                 generator=torch.Generator().manual_seed(0)).images[0]
    assert again.size == (64, 64)


def test_loading_never_touches_the_network(tiny_dir, no_network):
    pipes = models.load_pipelines(str(tiny_dir / tiny_model.SINGLE_FILE_NAME), config=str(tiny_dir))
    assert pipes.kind == "sd1"
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_half_on_cpu_falls_back_to_float32(tiny_dir):
    pipes = models.load_pipelines(str(tiny_dir), device="cpu", half=True)
    assert pipes.dtype == torch.float32 and pipes.img2img.unet.dtype == torch.float32


def test_tiny_sdxl_folder_loads_as_sdxl(tmp_path):
    assert tiny_model.main([str(tmp_path / "xl"), "--sdxl"]) == 0
    pipes = models.load_pipelines(str(tmp_path / "xl"), device="cpu")
    assert pipes.kind == "sdxl"
    assert type(pipes.txt2img).__name__ == "StableDiffusionXLPipeline"
    assert pipes.txt2img.text_encoder_2 is pipes.img2img.text_encoder_2
    assert pipes.img2img.tokenizer_2.pad_token == "!"
    image = pipes.txt2img("a cat", num_inference_steps=1, height=64, width=64,
                          generator=torch.Generator().manual_seed(0)).images[0]
    assert image.size == (64, 64)


# --- tokenizer -------------------------------------------------------------------------------

def test_shipped_tokenizer_is_clip_bpe():
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(CONFIGS / "sd15" / "tokenizer")
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (49406, 49407, 49407)
    padded = tok("x " * 100, padding="max_length", truncation=True, max_length=77).input_ids
    assert len(padded) == 77 and padded[-1] == 49407
    sd2 = CLIPTokenizer.from_pretrained(CONFIGS / "sd2" / "tokenizer")
    assert sd2.pad_token == "!" and sd2.pad_token_id == 0
    assert sd2("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_shipped_vocab_follows_the_merges():
    folder = CONFIGS / "sd15" / "tokenizer"
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merges = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    by_id = sorted(vocab, key=vocab.get)
    symbols = tiny_model._byte_symbols()
    assert len(by_id) == 49408 and len(merges) == 48894 and list(vocab.values()) == list(range(49408))
    assert by_id[:512] == symbols + [s + "</w>" for s in symbols]
    assert by_id[512:-2] == ["".join(m.split()) for m in merges]
    assert by_id[-2:] == ["<|startoftext|>", "<|endoftext|>"]
    for other in tiny_model.shipped_tokenizer_folders():
        assert (other / "vocab.json").read_bytes() == (folder / "vocab.json").read_bytes(), other
        assert (other / "merges.txt").read_bytes() == (folder / "merges.txt").read_bytes(), other
    assert (folder / "LICENSE").is_file()


# --- shipped configs -------------------------------------------------------------------------

def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name, unet_params, text_params", [
    ("sd15", 859_520_964, 123_060_480),
    ("sd2", 865_910_724, 340_387_840),
    ("sd2_base", 865_910_724, 340_387_840),
    ("sdxl", 2_567_463_684, 123_060_480),
])
def test_shipped_configs_build_the_known_architectures(name, unet_params, text_params):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    folder = CONFIGS / name
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        assert (_count(unet), _count(vae), _count(text)) == (unet_params, 83_653_863, text_params)
        if name == "sdxl":
            text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
            assert _count(text_2) == 694_659_840
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == ("v_prediction" if name == "sd2" else "epsilon")
    assert models._folder_kind(folder) == {"sd15": "sd1", "sd2": "sd2", "sd2_base": "sd2", "sdxl": "sdxl"}[name]


# --- detection from checkpoint keys (expanded tensors keep the files tiny) --------------------

def _fake_ckpt(path, shapes, **extra):
    state = {k: torch.zeros(()).expand(*s) for k, s in shapes.items()}
    torch.save({"state_dict": state, **extra}, path)
    return path


U = "model.diffusion_model."
CROSS = U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


@pytest.mark.parametrize("file, shapes, extra, expected", [
    ("v1-5.ckpt", {U + "input_blocks.0.0.weight": (320, 4, 3, 3), CROSS: (320, 768)}, {}, "sd15"),
    ("v2-1_768.ckpt", {U + "input_blocks.0.0.weight": (320, 4, 3, 3), CROSS: (320, 1024)}, {}, "sd2"),
    ("v2-1_512.ckpt", {U + "input_blocks.0.0.weight": (320, 4, 3, 3), CROSS: (320, 1024)}, {}, "sd2_base"),
    ("sd2.ckpt", {U + "input_blocks.0.0.weight": (320, 4, 3, 3), CROSS: (320, 1024)},
     {"global_step": 875000}, "sd2_base"),
    ("xl.ckpt", {U + "input_blocks.0.0.weight": (320, 4, 3, 3), U + "label_emb.0.0.weight": (1280, 2816)},
     {}, "sdxl"),
])
def test_checkpoint_type_is_detected_from_keys(tmp_path, file, shapes, extra, expected):
    assert models.detect_checkpoint(_fake_ckpt(tmp_path / file, shapes, **extra)) == expected


def test_inpainting_checkpoint_is_refused_by_name(tmp_path):
    shapes = {U + "input_blocks.0.0.weight": (320, 9, 3, 3), CROSS: (320, 768)}
    path = _fake_ckpt(tmp_path / "inpaint.ckpt", shapes)
    with pytest.raises(ModelError, match="inpainting") as err:
        models.load_pipelines(str(path))
    assert str(path) in str(err.value)


# --- errors name the path --------------------------------------------------------------------

class _Trap:
    """Unpickling this would create a file: loading must refuse instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_inputs(tmp_path, tiny_dir):
    data = (tiny_dir / tiny_model.SINGLE_FILE_NAME).read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(os.urandom(4096))
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    empty_ckpt = tmp_path / "empty.ckpt"
    empty_ckpt.touch()
    no_index = tmp_path / "no_index"
    (no_index / "unet").mkdir(parents=True)
    unrelated = tmp_path / "unrelated.safetensors"
    from safetensors.torch import save_file
    save_file({"encoder.weight": torch.zeros(2, 2), "decoder.bias": torch.zeros(2)}, unrelated)
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": _Trap(tmp_path / "pwned")}, f, protocol=2)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    return {
        "truncated safetensors": (truncated, None),
        "random-bytes ckpt": (noise, None),
        "empty safetensors": (empty, None),
        "empty ckpt": (empty_ckpt, None),
        "missing path": (tmp_path / "nowhere.safetensors", None),
        "folder without model_index.json": (no_index, None),
        "unrelated keys": (unrelated, None),
        "unrelated keys with config": (unrelated, str(tiny_dir)),
        "pickled code": (evil, None),
        "not a model file": (text, None),
        "missing config folder": (tiny_dir / tiny_model.SINGLE_FILE_NAME, str(tmp_path / "no_config")),
        "config without model_index.json": (tiny_dir / tiny_model.SINGLE_FILE_NAME, str(no_index)),
        "config of another architecture": (tiny_dir / tiny_model.SINGLE_FILE_NAME, "sd15"),
    }


def test_bad_models_raise_model_error_naming_the_path(tmp_path, tiny_dir):
    for case, (path, config) in _bad_inputs(tmp_path, tiny_dir).items():
        with pytest.raises(ModelError) as err:
            models.load_pipelines(str(path), config=config, device="cpu")
        message = str(err.value)
        named = str(path) if config in (None, "sd15", str(tiny_dir)) else config
        assert named in message, f"{case}: {message}"
        assert err.value.exit_code == 3
    assert not (tmp_path / "pwned").exists()


def test_missing_weights_are_reported_not_left_empty(tmp_path, tiny_dir):
    from safetensors.torch import load_file, save_file

    state = load_file(tiny_dir / tiny_model.SINGLE_FILE_NAME)
    del state["cond_stage_model.transformer.text_model.final_layer_norm.weight"]
    path = tmp_path / "partial.safetensors"
    save_file(state, path)
    with pytest.raises(ModelError, match="final_layer_norm") as err:
        models.load_pipelines(str(path), config=str(tiny_dir))
    assert str(path) in str(err.value)


# --- devices ---------------------------------------------------------------------------------

def test_resolve_device():
    assert models.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert models.resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(ModelError, match="cuda"):
            models.resolve_device("cuda")
    with pytest.raises(ModelError, match="tpu-ish"):
        models.resolve_device("tpu-ish")


def test_self_check_says_whether_a_model_would_load_without_loading_it(tiny_dir, tmp_path):
    """The set-up checklist's model line: a diffusers folder is recognised from its
    configs; a file of another kind is named with what would work."""
    import sys

    from engine.client.install import check_report
    assert models.model_kind(tiny_dir) == "sd1"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    with pytest.raises(ModelError, match=r"\.safetensors"):
        models.model_kind(notes)
    report = check_report(sys.executable, str(tiny_dir), str(tmp_path))
    assert report["model"] == {"path": str(tiny_dir), "kind": "sd1"}
    assert "config.json" in report["depth_model"]["error"]


@pytest.mark.parametrize("single_file", [False, True])
def test_half_precision_loads_every_component_in_float16(tmp_path, single_file):
    """What CUDA runs: the pipelines' dtype is that of every weight (the loader is asked
    directly, as load_pipelines keeps the CPU in float32)."""
    import torch

    from engine.models import _load
    from engine.tiny_model import write_tiny_model

    folder = Path(write_tiny_model(tmp_path / "tiny", single_file=single_file))
    checkpoint = next(folder.glob("*.safetensors")) if single_file else None
    pipes = _load(folder, checkpoint, "sd15", torch.device("cpu"), True, str(folder))
    assert pipes.dtype == torch.float16
    for name in ("unet", "vae", "text_encoder"):
        for pipe in (pipes.img2img, pipes.txt2img):
            assert {p.dtype for p in getattr(pipe, name).parameters()} == {torch.float16}, name


def test_attention_runs_through_pytorch_scaled_dot_product_kernels(pipes, tmp_path):
    """UNet and VAE attention of SD 1.x and SDXL: PyTorch's SDPA kernels (flash or
    memory-efficient on CUDA), never the naive softmax(QKᵀ)V that stores the whole matrix."""
    from engine.tiny_model import write_tiny_sdxl

    sdxl = models.load_pipelines(str(write_tiny_sdxl(tmp_path / "xl")), device="cpu")
    for loaded in (pipes, sdxl):
        for part in (loaded.img2img.unet, loaded.img2img.vae):
            kinds = {type(p).__name__ for p in part.attn_processors.values()}
            assert kinds == {"AttnProcessor2_0"}, (loaded.kind, type(part).__name__)
