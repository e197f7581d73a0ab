"""RAFT optical flow from a local weights file, without torchvision.

RAFT (Teed and Deng, 2020) matches every pixel of one picture against every
pixel of the other at 1/8 of the size, then refines a flow field with a
recurrent unit that looks up those matches around its current guess.  The
network here is built so that its ``state_dict`` has exactly the names and
shapes of torchvision's ``raft_large`` and ``raft_small``: the file torchvision
downloads for them (e.g. ``raft_large_C_T_SKHT_V2-ff5fadd5.pth``), or a
``.safetensors`` copy, loads as it is, and which of the two it is comes from
its keys.  Inference follows sd-webui-deforum: pixels scaled to [−1, 1], 50
refinement steps, the last (upsampled) flow.  Pictures go in as RGB, the order
the weights were trained in.  RAFT needs sides that are multiples of 8 and at
least 128 pixels; smaller or odd sizes are padded by repeating the edges and the
flow is cropped back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError, SettingsError, shown
from .paths import local_path

KEY = "raft_model_path"
ITERATIONS = 50     # refinement steps per flow, as sd-webui-deforum runs torchvision's RAFT
SCALE = 8           # the network works at 1/8 of the picture's size
MIN_SIDE = 128      # the coarsest correlation level must keep 2 cells: 8 · 2 · 2³


@dataclass(frozen=True)
class Shape:
    """One RAFT variant's sizes: the feature and context encoders' widths, the correlation
    lookup, the update block's widths and whether the flow is upsampled by a learned mask."""

    features: tuple[int, ...]
    context: tuple[int, ...]
    bottleneck: bool                 # encoder blocks: bottleneck (small) or residual (large)
    context_norm: str | None         # "batch" (large) or none (small)
    radius: int
    corr_layers: tuple[int, ...]
    flow_layers: tuple[int, int]
    motion_out: int
    hidden: int
    gru_kernels: tuple[tuple[int, int], ...]
    head_hidden: int
    learned_upsampling: bool
    levels: int = 4


LARGE = Shape(features=(64, 64, 96, 128, 256), context=(64, 64, 96, 128, 256), bottleneck=False,
              context_norm="batch", radius=4, corr_layers=(256, 192), flow_layers=(128, 64),
              motion_out=128, hidden=128, gru_kernels=((1, 5), (5, 1)), head_hidden=256,
              learned_upsampling=True)
SMALL = Shape(features=(32, 32, 64, 96, 128), context=(32, 32, 64, 96, 160), bottleneck=True,
              context_norm=None, radius=3, corr_layers=(96,), flow_layers=(64, 32),
              motion_out=82, hidden=96, gru_kernels=((3, 3),), head_hidden=128,
              learned_upsampling=False)
SHAPES = {"large": LARGE, "small": SMALL}


def _norm(kind: str | None, channels: int) -> nn.Module | None:
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return None


def conv_unit(cin: int, cout: int, kernel: int, *, stride: int = 1, norm: str | None = None,
              relu: bool = True) -> nn.Sequential:
    """Convolution (biased, 'same' padding), then the norm and ReLU when asked: numbered
    children, so the weights are named ``0.weight``, ``1.running_mean``…"""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2)]
    norm_layer = _norm(norm, cout)
    if norm_layer is not None:
        layers.append(norm_layer)
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Block(nn.Module):
    """Two 3×3 units (residual) or 1×1, 3×3, 1×1 at a quarter width (bottleneck), added to
    the input, which is projected by a strided 1×1 unit when the block downsamples."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str | None,
                 bottleneck: bool) -> None:
        super().__init__()
        if bottleneck:
            inner = cout // 4
            self.convnormrelu1 = conv_unit(cin, inner, 1, norm=norm)
            self.convnormrelu2 = conv_unit(inner, inner, 3, stride=stride, norm=norm)
            self.convnormrelu3 = conv_unit(inner, cout, 1, norm=norm)
        else:
            self.convnormrelu1 = conv_unit(cin, cout, 3, stride=stride, norm=norm)
            self.convnormrelu2 = conv_unit(cout, cout, 3, norm=norm)
        self.downsample = (conv_unit(cin, cout, 1, stride=stride, norm=norm, relu=False)
                           if stride != 1 else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convnormrelu2(self.convnormrelu1(x))
        if hasattr(self, "convnormrelu3"):
            y = self.convnormrelu3(y)
        return F.relu(self.downsample(x) + y)


class Encoder(nn.Module):
    """A picture → features at 1/8 of its size: a 7×7 stride-2 unit, three pairs of
    blocks (the second and third pair halve the size again) and a 1×1 convolution."""

    def __init__(self, widths: tuple[int, ...], norm: str | None, bottleneck: bool) -> None:
        super().__init__()
        self.convnormrelu = conv_unit(3, widths[0], 7, stride=2, norm=norm)
        for n, stride in enumerate((1, 2, 2), start=1):
            cin, cout = widths[n - 1], widths[n]
            setattr(self, f"layer{n}", nn.Sequential(Block(cin, cout, stride, norm, bottleneck),
                                                     Block(cout, cout, 1, norm, bottleneck)))
        self.conv = nn.Conv2d(widths[3], widths[4], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convnormrelu(x)
        return self.conv(self.layer3(self.layer2(self.layer1(x))))


class MotionEncoder(nn.Module):
    """Correlation features and the current flow → motion features (the flow appended)."""

    def __init__(self, shape: Shape, corr_channels: int) -> None:
        super().__init__()
        self.convcorr1 = conv_unit(corr_channels, shape.corr_layers[0], 1)
        if len(shape.corr_layers) == 2:
            self.convcorr2 = conv_unit(shape.corr_layers[0], shape.corr_layers[1], 3)
        self.convflow1 = conv_unit(2, shape.flow_layers[0], 7)
        self.convflow2 = conv_unit(shape.flow_layers[0], shape.flow_layers[1], 3)
        self.conv = conv_unit(shape.corr_layers[-1] + shape.flow_layers[1], shape.motion_out - 2, 3)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        corr = self.convcorr1(corr)
        if hasattr(self, "convcorr2"):
            corr = self.convcorr2(corr)
        moved = self.convflow2(self.convflow1(flow))
        return torch.cat([self.conv(torch.cat([corr, moved], dim=1)), flow], dim=1)


class ConvGRU(nn.Module):
    """A gated recurrent unit whose gates are convolutions over the hidden state and input."""

    def __init__(self, hidden: int, inputs: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        pad = (kernel[0] // 2, kernel[1] // 2)
        self.convz = nn.Conv2d(hidden + inputs, hidden, kernel, padding=pad)
        self.convr = nn.Conv2d(hidden + inputs, hidden, kernel, padding=pad)
        self.convq = nn.Conv2d(hidden + inputs, hidden, kernel, padding=pad)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        both = torch.cat([h, x], dim=1)
        update = torch.sigmoid(self.convz(both))
        reset = torch.sigmoid(self.convr(both))
        candidate = torch.tanh(self.convq(torch.cat([reset * h, x], dim=1)))
        return h + update * (candidate - h)


class RecurrentBlock(nn.Module):
    """One GRU, or two in a row (a 1×5 then a 5×1 in the large model)."""

    def __init__(self, shape: Shape, inputs: int) -> None:
        super().__init__()
        for n, kernel in enumerate(shape.gru_kernels, start=1):
            setattr(self, f"convgru{n}", ConvGRU(shape.hidden, inputs, kernel))
        self.count = len(shape.gru_kernels)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for n in range(1, self.count + 1):
            h = getattr(self, f"convgru{n}")(h, x)
        return h


class FlowHead(nn.Module):
    """Hidden state → the step to add to the flow."""

    def __init__(self, hidden: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(hidden, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(h)))


class UpdateBlock(nn.Module):
    """One refinement step: motion features, the recurrent unit, the flow step."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        corr_channels = shape.levels * (2 * shape.radius + 1) ** 2
        self.motion_encoder = MotionEncoder(shape, corr_channels)
        context = shape.context[-1] - shape.hidden
        self.recurrent_block = RecurrentBlock(shape, shape.motion_out + context)
        self.flow_head = FlowHead(shape.hidden, shape.head_hidden)

    def forward(self, hidden: torch.Tensor, context: torch.Tensor, corr: torch.Tensor,
                flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the new hidden state, the step to add to ``flow``)."""
        motion = self.motion_encoder(flow, corr)
        hidden = self.recurrent_block(hidden, torch.cat([context, motion], dim=1))
        return hidden, self.flow_head(hidden)


class MaskPredictor(nn.Module):
    """Hidden state → per-pixel weights of the 3×3 coarse neighbours each of the 8×8 fine
    pixels blends (the large model's learned upsampling); scaled by ¼ as trained."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.convrelu = conv_unit(hidden, 256, 3)
        self.conv = nn.Conv2d(256, SCALE * SCALE * 9, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return 0.25 * self.conv(self.convrelu(h))


class Correlation:
    """Every pixel's feature dotted with every other's (scaled by 1/√channels), pooled into
    ``levels`` ever coarser levels; ``lookup`` reads a (2r+1)² window of each level around
    each pixel's current match."""

    def __init__(self, first: torch.Tensor, second: torch.Tensor, levels: int,
                 radius: int) -> None:
        batch, channels, h, w = first.shape
        volume = torch.einsum("bci,bcj->bij", first.flatten(2), second.flatten(2))
        volume = (volume / math.sqrt(channels)).reshape(batch * h * w, 1, h, w)
        self.levels = [volume]
        for _ in range(levels - 1):
            self.levels.append(F.avg_pool2d(self.levels[-1], 2, stride=2))
        steps = torch.arange(-radius, radius + 1, dtype=first.dtype, device=first.device)
        # The window's first axis steps x and its second y: the order the weights expect.
        self.window = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1)

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """Features (B, levels·(2r+1)², h, w) for matches ``coords`` (B, 2, h, w) in pixels."""
        batch, _, h, w = coords.shape
        centres = coords.permute(0, 2, 3, 1).reshape(batch * h * w, 1, 1, 2)
        found = []
        for level, volume in enumerate(self.levels):
            points = centres / 2 ** level + self.window
            size = points.new_tensor([volume.shape[-1] - 1, volume.shape[-2] - 1])
            sampled = F.grid_sample(volume, 2 * points / size - 1, mode="bilinear",
                                    align_corners=True)
            found.append(sampled.reshape(batch, h, w, -1))
        return torch.cat(found, dim=-1).permute(0, 3, 1, 2).contiguous()


def upsample(flow: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A 1/8-size flow at full size (in full-size pixels): each fine pixel a softmax-weighted
    blend of its 3×3 coarse neighbours when ``mask`` gives the weights, else bilinear."""
    batch, _, h, w = flow.shape
    if mask is None:
        return SCALE * F.interpolate(flow, size=(SCALE * h, SCALE * w), mode="bilinear",
                                     align_corners=True)
    weights = torch.softmax(mask.reshape(batch, 1, 9, SCALE, SCALE, h, w), dim=2)
    neighbours = F.unfold(SCALE * flow, 3, padding=1).reshape(batch, 2, 9, 1, 1, h, w)
    fine = (weights * neighbours).sum(dim=2)           # B, 2, 8, 8, h, w
    return fine.permute(0, 1, 4, 2, 5, 3).reshape(batch, 2, SCALE * h, SCALE * w)


def pixel_grid(batch: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """(B, 2, h, w): each cell's own (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    return torch.stack([xs, ys]).float()[None].expand(batch, -1, -1, -1)


class RaftNet(nn.Module):
    """The RAFT network of ``shape`` (LARGE or SMALL); ``forward`` gives the final flow."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape
        self.feature_encoder = Encoder(shape.features, "instance", shape.bottleneck)
        self.context_encoder = Encoder(shape.context, shape.context_norm, shape.bottleneck)
        self.update_block = UpdateBlock(shape)
        if shape.learned_upsampling:
            self.mask_predictor = MaskPredictor(shape.hidden)

    def forward(self, first: torch.Tensor, second: torch.Tensor,
                iterations: int = ITERATIONS) -> torch.Tensor:
        """Flow (B, 2, H, W) from ``first`` to ``second`` (B, 3, H, W in [−1, 1], sides
        multiples of 8 and at least 128)."""
        batch, _, height, width = first.shape
        features = self.feature_encoder(torch.cat([first, second]))
        corr = Correlation(*features.chunk(2), self.shape.levels, self.shape.radius)
        context = self.context_encoder(first)
        hidden, context = context.split([self.shape.hidden,
                                         context.shape[1] - self.shape.hidden], dim=1)
        hidden, context = torch.tanh(hidden), F.relu(context)
        start = pixel_grid(batch, height // SCALE, width // SCALE, first.device)
        coords = start
        for _ in range(iterations):
            hidden, step = self.update_block(hidden, context, corr.lookup(coords), coords - start)
            coords = coords + step
        mask = self.mask_predictor(hidden) if self.shape.learned_upsampling else None
        return upsample(coords - start, mask)


def _batch(image: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 RGB (or H×W grey) → (1, 3, H, W) float32 in [−1, 1]."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    pixels = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1)
    return (pixels.float() / 127.5 - 1.0)[None]


def _padding(side: int) -> tuple[int, int]:
    """Edge pixels to add before and after ``side`` to reach what RAFT can take."""
    extra = max(MIN_SIDE, -(-side // SCALE) * SCALE) - side
    return extra // 2, extra - extra // 2


class RaftFlow:
    """A loaded RAFT network: ``flow(first, second)`` as ``engine.flow.estimate`` gives it."""

    def __init__(self, net: RaftNet, kind: str, device: torch.device) -> None:
        self.net = net.to(device).eval()
        self.kind = kind        # "large" or "small"
        self.device = device

    def __call__(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """H×W×2 float32 (x, y): where each pixel of ``first`` is found in ``second``."""
        h, w = first.shape[:2]
        (top, bottom), (left, right) = _padding(h), _padding(w)
        pair = torch.cat([_batch(first), _batch(second)]).to(self.device)
        if top or bottom or left or right:
            pair = F.pad(pair, (left, right, top, bottom), mode="replicate")
        with torch.no_grad():
            flow = self.net(pair[:1], pair[1:])[0]
        flow = flow[:, top:top + h, left:left + w]
        return flow.permute(1, 2, 0).float().cpu().numpy()


def expected_keys(kind: str) -> dict[str, tuple[int, ...]]:
    """Weight name → shape for ``kind`` ("large" or "small"): torchvision's own layout."""
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        net = RaftNet(SHAPES[kind])
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or a plain state dict saved by ``torch.save``
    (read with ``weights_only``: a stranger's pickle runs no code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor)
                                                 for v in state.values()):
        raise ValueError("it holds no state dict of tensors")
    return dict(state)


def kind_of(state: Mapping[str, torch.Tensor]) -> str:
    """"large" or "small", whichever torchvision model has exactly these weight names."""
    for kind in SHAPES:
        if set(state) == set(expected_keys(kind)):
            return kind
    large = set(expected_keys("large"))
    missing, extra = sorted(large - set(state)), sorted(set(state) - large)
    example = f"no {missing[0]!r}" if missing else f"an unexpected {extra[0]!r}"
    raise ValueError(f"its {len(state)} tensors are not torchvision's raft_large or raft_small "
                     f"weights: {example}")


def load_raft(path: str, device: Any = "cpu") -> RaftFlow:
    """The RAFT network of the weights file ``path`` on ``device``; any problem with the file
    is a SettingsError naming ``raft_model_path`` and the path."""
    file = local_path(path, KEY).expanduser()
    if not file.is_file():
        raise InputError(f"{KEY}: file not found: {shown(path)}", key=KEY, value=path)
    try:
        state = read_weights(file)
        kind = kind_of(state)
        net = RaftNet(SHAPES[kind])
        net.load_state_dict(state)
    except Exception as exc:  # a corrupt or foreign file is the user's input, not a crash
        raise SettingsError(f"{KEY}: {shown(path)} cannot be loaded as RAFT weights "
                            f"({shown(str(exc), 300)}); "
                            "give the file torchvision's raft_large or raft_small weights "
                            "were saved to (.pth or .safetensors)", key=KEY, value=path) from None
    return RaftFlow(net, kind, torch.device(device))


# The one network a process holds: a warm engine reuses it while the file is unchanged.
_loaded: tuple[tuple[Any, ...], RaftFlow] | None = None
_active: RaftFlow | None = None


def use_raft(settings: Mapping[str, Any], chosen_by: str) -> RaftFlow:
    """Load ``raft_model_path`` on the run's device (``device``) and make it what
    ``active`` returns; ``chosen_by`` is the setting that asked for RAFT.  Called before
    any frame is written, so a missing or unloadable file stops the run cleanly."""
    global _loaded, _active
    path = settings[KEY]
    if not path:
        raise SettingsError(f"{KEY} is empty: {chosen_by} 'RAFT' needs the local weights file "
                            "of torchvision's raft_large or raft_small (.pth or .safetensors); "
                            f"set {KEY}, or use 'DIS Medium', 'DIS Fine' or 'Farneback'",
                            key=KEY, value=path)
    from .models import resolve_device
    device = resolve_device(settings["device"])
    file = local_path(path, KEY).expanduser()
    try:
        stat = file.stat()
        stamp: tuple[Any, ...] = (str(file.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    except OSError:
        stamp = ()
    if _loaded is None or not stamp or _loaded[0] != stamp:
        _loaded = _active = None
        _loaded = (stamp, load_raft(path, device))
    _active = _loaded[1]
    return _active


def active() -> RaftFlow:
    """The network ``use_raft`` set up for this run."""
    if _active is None:
        raise SettingsError(f"optical flow 'RAFT' was not set up: {KEY} is loaded when a run "
                            "that uses RAFT starts", key=KEY)
    return _active
