"""The device-resident loop (``engine.frames``): the torch backend, forced onto CPU tensors,
writes what the NumPy/OpenCV loop writes, within the stated grey levels, and copies each
written frame to the host exactly once."""

import io

import cv2
import numpy as np
import pytest
import torch

from engine.color import match_colors
from engine.color_device import match_colors_tensor
from engine.frames import NumpyFrames, TorchFrames, blockers, choose_frames
from engine.modes.animation import render_animation
from engine.modes.common import CancelToken
from engine.output import frame_path, read_image
from engine.progress import Progress
from engine.settings import parse_settings
from engine.warp import warp_2d, warp_2d_tensor

W, H, FRAMES = 64, 48, 8
# Largest difference (grey levels) of torch frames on CPU tensors from the NumPy ones, as
# measured: none.  The 3D grid is the same code, the 2D warp redoes OpenCV's integer
# arithmetic and colour conversions are OpenCV's own bytes.  (Histogram matching feeds
# each keyframe's colours into the next, so a single level anywhere grows into tens
# within a few frames: anything but exact would show.)
BOUND = 0
MOTION = {"3D": dict(translation_z="0:(3)", rotation_3d_y="0:(1.5)", translation_x="0:(1)"),
          "2D": dict(angle="0:(2)", zoom="0:(1.03)", translation_x="0:(1.5)",
                     translation_y="0:(-0.7)")}
DEPTH = np.linspace(1.0, 2.0, W, dtype=np.float32)[None, :].repeat(H, 0)


def textured() -> np.ndarray:
    """A smooth colourful picture with a few hard edges, like a diffused frame."""
    rng = np.random.default_rng(3)
    image = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (W, H),
                       interpolation=cv2.INTER_CUBIC)
    image[10:20, 30:44] = (250, 40, 10)
    return image


def generate(init, frame, uncovered=None):
    """A stand-in diffusion that changes the picture's colours (so matching has work)."""
    if init is None:
        return textured()
    if isinstance(init, np.ndarray):
        return np.clip(init.astype(np.int16) + (14, -6, 3), 0, 255).astype(np.uint8)
    shift = torch.tensor((14, -6, 3), device=init.device)
    return (init.short() + shift).clamp(0, 255).to(torch.uint8)


def render(folder, frames, mode="3D", **values):
    settings = parse_settings({"animation_mode": mode, "W": W, "H": H, "max_frames": FRAMES,
                               **MOTION[mode], **values})
    folder.mkdir()
    written = render_animation(settings, folder, "ts", Progress(out=io.StringIO()),
                               CancelToken(), generate=generate,
                               depth=lambda frame, image: DEPTH, frames=frames)
    assert written == FRAMES
    return [read_image(frame_path(folder, "ts", i), (W, H), "frame") for i in range(FRAMES)]


def difference(tmp_path, mode, **values):
    device = TorchFrames("cpu")
    numpy_frames = render(tmp_path / "numpy", NumpyFrames(), mode, **values)
    torch_frames = render(tmp_path / "torch", device, mode, **values)
    assert device.transfers == FRAMES  # one copy to the host per written frame
    return max(int(np.abs(a.astype(int) - b).max())
               for a, b in zip(numpy_frames, torch_frames, strict=True))


@pytest.mark.parametrize("cadence", [1, 3])
@pytest.mark.parametrize("coherence", ["LAB", "HSV", "RGB"])
def test_torch_3d_frames_are_the_numpy_frames(tmp_path, cadence, coherence):
    assert difference(tmp_path, "3D", diffusion_cadence=cadence, color_coherence=coherence,
                      contrast_schedule="0:(0.97)") <= BOUND


@pytest.mark.parametrize("cadence", [1, 3])
@pytest.mark.parametrize("border", ["replicate", "wrap"])
@pytest.mark.parametrize("coherence", ["LAB", "HSV", "RGB"])
def test_torch_2d_frames_are_the_numpy_frames(tmp_path, cadence, border, coherence):
    assert difference(tmp_path, "2D", diffusion_cadence=cadence, border=border,
                      color_coherence=coherence, contrast_schedule="0:(1.02)") <= BOUND


def test_greyscale_and_no_coherence_match_too(tmp_path):
    assert difference(tmp_path, "3D", diffusion_cadence=2, color_coherence="None",
                      color_force_grayscale=True) <= BOUND


def test_the_2d_warp_is_opencvs():
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    for motion in (dict(angle=3, zoom=1.04, translation_x=2.3, translation_y=-1.7),
                   dict(angle=-10, zoom=0.9, translation_x=-7.5, translation_y=3.3,
                        border="wrap"),
                   dict(angle=1, zoom=1.01, translation_x=0, translation_y=0,
                        perspective_flip=(3, 5, 2, 53))):
        ours = warp_2d_tensor(torch.from_numpy(image), **motion).numpy()
        assert np.array_equal(ours, warp_2d(image, **motion)), motion


@pytest.mark.parametrize("mode", ["LAB", "RGB", "HSV"])
def test_colour_matching_in_torch_is_opencvs(mode):
    rng = np.random.default_rng(5)
    image = textured()
    reference = cv2.resize(rng.integers(0, 200, (5, 5, 3), dtype=np.uint8), (W, H))
    ours = match_colors_tensor(torch.from_numpy(image), torch.from_numpy(reference), mode)
    assert np.array_equal(ours.numpy(), match_colors(image, reference, mode))


def test_the_backend_follows_the_device_and_the_features():
    plain = parse_settings({"animation_mode": "3D"})
    assert choose_frames("cpu", plain).name == "numpy"
    assert choose_frames("cuda", plain).name == "torch"
    assert choose_frames("mps", plain).name == "torch"
    for change, name in ((dict(optical_flow_cadence="DIS Medium"), "optical_flow_cadence"),
                         (dict(hybrid_motion="Optical Flow"), "hybrid_motion"),
                         (dict(amount_schedule="0:(0.2)"), "amount_schedule"),
                         (dict(use_mask=True), "use_mask"),
                         (dict(diffusion_redo=1), "diffusion_redo")):
        settings = parse_settings({"animation_mode": "3D", **change})
        assert blockers(settings) == [name]
        assert choose_frames("cuda", settings).name == "numpy"


def test_torch_frames_with_a_depth_model_save_every_depth_map(tmp_path, tiny_depth):
    from engine.depth import ModelDepth, depth_map_path, load_depth_model, save_depth_map

    estimator = load_depth_model(str(tiny_depth))
    settings = parse_settings({"animation_mode": "3D", "W": W, "H": H, "max_frames": 5,
                               "diffusion_cadence": 2, **MOTION["3D"]})
    device = TorchFrames("cpu")
    render_animation(settings, tmp_path, "ts", Progress(out=io.StringIO()), CancelToken(),
                     generate=generate, depth=ModelDepth(estimator).for_frame, frames=device,
                     on_depth=lambda f, z: save_depth_map(depth_map_path(tmp_path, "ts", f), z))
    assert device.transfers == 5
    assert all(frame_path(tmp_path, "ts", i).exists() for i in range(5))
    assert all(depth_map_path(tmp_path, "ts", f).exists() for f in range(4))


@pytest.mark.parametrize("kind", ["dpt", "depth_anything"])
def test_depth_from_a_tensor_is_the_processors(tmp_path, kind):
    """The model's input made on the device is PIL's within a grey level; z agrees
    closely (histogram equalisation can move a value between bins)."""
    from engine.depth import load_depth_model
    from tests.engine.tiny_depth import write_tiny_depth_model

    estimator = load_depth_model(str(write_tiny_depth_model(tmp_path, kind)))
    image = textured()
    given = estimator.processor(images=image, return_tensors="pt",
                                input_data_format="channels_last")["pixel_values"]
    ours = estimator._pixels_tensor(torch.from_numpy(image))
    std = torch.tensor(estimator.processor.image_std)[None, :, None, None]
    assert ((given - ours).abs() * std * 255).max() <= 1.01
    z = estimator.predict_tensor(torch.from_numpy(image)).numpy()
    assert np.abs(z - estimator.predict(image)).mean() < 0.01


def test_depth_normalisation_on_a_tensor_is_the_arrays():
    from engine.depth import normalize_depth, normalize_depth_tensor

    raw = np.random.default_rng(2).normal(size=(H, W)).astype(np.float32)
    for inverse in (True, False):
        assert np.abs(normalize_depth_tensor(torch.from_numpy(raw), inverse=inverse).numpy()
                      - normalize_depth(raw, inverse=inverse)).max() < 1e-6
    flat = normalize_depth_tensor(torch.full((H, W), 3.0), inverse=True)
    broken = normalize_depth_tensor(torch.tensor([[1.0, float("nan")]]), inverse=True)
    assert bool((flat == 1).all()) and bool((broken == 1).all())


def test_a_tensor_init_diffuses_to_the_arrays_picture(pipes):
    from engine.diffusion import Diffusion

    settings = parse_settings({"W": W, "H": H, "steps": 6, "noise_type": "perlin"})
    diffusion = Diffusion(pipes, settings, CancelToken())
    init = textured()
    on_host = diffusion(init, strength=0.5, seed=7, noise=0.1, prompt="a boat")
    on_device = diffusion(torch.from_numpy(init), strength=0.5, seed=7, noise=0.1,
                          prompt="a boat")
    assert isinstance(on_device, torch.Tensor) and on_device.dtype == torch.uint8
    assert np.array_equal(on_device.numpy(), on_host)


def test_a_diffused_run_writes_the_same_frames_either_way(tmp_path, pipes):
    from engine.blank import guard_blank
    from engine.diffusion import Diffusion
    from engine.modes.animation import animation_generate

    settings = parse_settings({"animation_mode": "3D", "W": W, "H": H, "max_frames": 5,
                               "diffusion_cadence": 2, "steps": 4, "strength": 0.5, "seed": 42,
                               "color_coherence": "LAB", **MOTION["3D"],
                               "strength_schedule": "0:(0.5)", "noise_schedule": "0:(0.05)"})
    written = {}
    for name, frames in (("numpy", NumpyFrames()), ("torch", TorchFrames("cpu"))):
        diffusion = Diffusion(pipes, settings, CancelToken())
        folder = tmp_path / name
        folder.mkdir()
        render_animation(settings, folder, "ts", Progress(out=io.StringIO()), CancelToken(),
                         generate=animation_generate(guard_blank(diffusion, settings),
                                                     settings, None),
                         depth=lambda frame, image: DEPTH, frames=frames)
        written[name] = [frame_path(folder, "ts", i).read_bytes() for i in range(5)]
    assert written["numpy"] == written["torch"]


def test_a_resumed_torch_run_writes_what_an_uninterrupted_one_writes(tmp_path):
    import shutil

    from engine.modes.animation import resume_state

    values = dict(diffusion_cadence=2, color_coherence="LAB", contrast_schedule="0:(0.97)")
    render(tmp_path / "whole", TorchFrames("cpu"), "3D", **values)
    part = tmp_path / "part"
    part.mkdir()
    for index in range(5):  # killed while writing the third block
        shutil.copy(frame_path(tmp_path / "whole", "ts", index), part)
    settings = parse_settings({"animation_mode": "3D", "W": W, "H": H, "max_frames": FRAMES,
                               **MOTION["3D"], **values})
    device = TorchFrames("cpu")
    render_animation(settings, part, "ts", Progress(out=io.StringIO()), CancelToken(),
                     generate=generate, depth=lambda frame, image: DEPTH,
                     resume=resume_state(settings, part, "ts"), frames=device)
    assert device.transfers == FRAMES - 5  # frames kept on disk are not copied again
    for index in range(FRAMES):
        assert frame_path(part, "ts", index).read_bytes() == \
            frame_path(tmp_path / "whole", "ts", index).read_bytes(), index
