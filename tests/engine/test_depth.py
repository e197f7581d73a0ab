"""Depth: normalisation, tiny local models, scene depth files, saving and source choice."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from engine.depth import (FAR_AWAY, DepthEstimator, FlatDepth, ModelDepth, SceneDepth,
                          depth_map_path, load_depth_model, make_depth_source, normalize_depth,
                          read_scene_depth, save_depth_map, write_scene_depth)
from engine.errors import InputError, ModelError
from engine.settings import parse_settings
from tests.engine.tiny_depth import write_tiny_depth_model

KINDS = ("dpt", "depth_anything")


def _picture(height=45, width=70, seed=0):
    """A smooth gradient with a bright square: something with structure to look at."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1)
    image[height // 4: height // 2, width // 4: width // 2] = 250
    noise = np.random.default_rng(seed).integers(0, 20, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=KINDS)
def tiny_model(request, tmp_path_factory):
    folder = write_tiny_depth_model(tmp_path_factory.mktemp(request.param), request.param)
    return request.param, folder


# --- normalisation -----------------------------------------------------------------

def test_inverse_depth_ramp_becomes_z_growing_where_raw_falls():
    raw = np.tile(np.linspace(10.0, 1.0, 200), (20, 1))  # nearest on the left
    z = normalize_depth(raw, inverse=True)
    assert z.dtype == np.float32 and z.shape == raw.shape
    assert np.all(np.diff(z, axis=1) >= 0) and z[0, -1] > z[0, 0]
    assert 1.0 <= z.min() and z.max() <= 2.0
    assert z[0, -1] == pytest.approx(2.0, abs=0.01) and z[0, 0] == pytest.approx(1.0, abs=0.01)


def test_forward_depth_keeps_its_order():
    raw = np.tile(np.linspace(1.0, 10.0, 200), (20, 1))
    z = normalize_depth(raw, inverse=False)
    assert np.all(np.diff(z, axis=1) >= 0)
    assert z[0, 0] == pytest.approx(1.0, abs=0.01) and z[0, -1] == pytest.approx(2.0, abs=1e-6)


def test_equalisation_spreads_a_skewed_map_evenly():
    raw = np.random.default_rng(1).random((128, 128)) ** 2  # six times more values near 0 than 1
    before, _ = np.histogram(raw, bins=10)
    assert before[0] > 5 * before[-1]
    counts, _ = np.histogram(normalize_depth(raw, inverse=True), bins=10, range=(1.0, 2.0))
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean()


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, array_shapes(min_dims=2, max_dims=2, max_side=40),
              elements=st.floats(-1e6, 1e6, width=32)), st.booleans())
def test_normalisation_is_numpys_histogram_and_interpolation(raw, inverse):
    """Equalisation gives, to the bit, what ``np.histogram`` and ``np.interp`` give."""
    values = raw.astype(np.float64)
    if values.max() > values.min():
        d = (values - values.min()) / (values.max() - values.min())
        counts, edges = np.histogram(d, bins=1024, range=(0.0, 1.0))
        d = np.interp(d, edges[:-1], np.cumsum(counts) / d.size)
        expected = (2.0 - d if inverse else 1.0 + d).astype(np.float32)
    else:
        expected = np.ones(raw.shape, dtype=np.float32)
    assert np.array_equal(normalize_depth(raw, inverse=inverse), expected)


@pytest.mark.parametrize("raw", [np.full((8, 9), 3.5), np.array([[1.0, np.nan], [2.0, 3.0]]),
                                 np.array([[1.0, np.inf], [2.0, 3.0]])])
def test_constant_or_invalid_maps_are_flat(raw):
    z = normalize_depth(raw, inverse=True)
    assert z.dtype == np.float32 and z.shape == raw.shape and np.all(z == 1.0)


# --- estimators ----------------------------------------------------------------------

def test_tiny_model_predicts_z_at_image_size(tiny_model):
    kind, folder = tiny_model
    estimator = load_depth_model(str(folder))
    assert isinstance(estimator, DepthEstimator) and estimator.kind == kind
    image = _picture()
    z = estimator.predict(image)
    assert z.shape == image.shape[:2] and z.dtype == np.float32
    assert 1.0 <= z.min() and z.max() <= 2.0 and z.std() > 0.1
    np.testing.assert_array_equal(z, estimator.predict(image))


def test_same_tiny_model_gives_same_depth(tiny_model, tmp_path):
    kind, folder = tiny_model
    again = write_tiny_depth_model(tmp_path / "again", kind)
    image = _picture(32, 48)
    np.testing.assert_array_equal(load_depth_model(str(folder)).predict(image),
                                  load_depth_model(str(again)).predict(image))


@pytest.mark.parametrize("kind", KINDS)
def test_folder_without_processor_gets_a_default_one(kind, tmp_path):
    folder = write_tiny_depth_model(tmp_path, kind, processor=False)
    assert not (folder / "preprocessor_config.json").exists()
    z = load_depth_model(str(folder)).predict(_picture(30, 50))
    assert z.shape == (30, 50) and 1.0 <= z.min() and z.max() <= 2.0


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(16, 90), st.integers(16, 90), st.just(3))),
       st.sampled_from([{}, {"keep_aspect_ratio": True, "ensure_multiple_of": 8},
                        {"size": {"height": 70, "width": 40}, "resample": 2},
                        {"do_rescale": False}, {"do_normalize": False}]))
def test_the_model_input_is_the_image_processors_to_the_bit(tiny_model, image, changes):
    """The model sees exactly what transformers' own processor would give it."""
    import torch

    estimator = load_depth_model(str(tiny_model[1]))
    processor = estimator.processor
    estimator.processor = type(processor).from_dict({**processor.to_dict(), **changes})
    given = estimator.processor(images=image, return_tensors="pt",
                                input_data_format="channels_last")["pixel_values"]
    ours = estimator._pixels_host(image)
    assert ours.dtype == given.dtype and ours.shape == given.shape
    assert torch.equal(ours, given)


def test_a_processor_that_pads_is_left_to_transformers(tiny_model):
    estimator = load_depth_model(str(tiny_model[1]))
    estimator.processor.do_pad = True
    assert estimator._pixels_host(_picture(30, 50)) is None
    z = estimator.predict(_picture(30, 50))
    assert z.shape == (30, 50) and 1.0 <= z.min() and z.max() <= 2.0


def test_predict_refuses_non_rgb_input(tiny_model):
    estimator = load_depth_model(str(tiny_model[1]))
    with pytest.raises(ValueError):
        estimator.predict(np.zeros((8, 8), np.uint8))


def _bad_folder(tmp_path, problem):
    folder = tmp_path / "model"
    if problem == "missing":
        return folder
    folder.mkdir()
    configs = {"no config": None, "not json": "{oops", "unknown": {"model_type": "bert"},
               "segmentation": {"model_type": "dpt",
                                "architectures": ["DPTForSemanticSegmentation"]}}
    if problem in configs:
        if configs[problem] is not None:
            text = configs[problem]
            (folder / "config.json").write_text(text if isinstance(text, str) else json.dumps(text))
        return folder
    write_tiny_depth_model(folder, "dpt")
    weights = folder / "model.safetensors"
    if problem == "corrupt weights":
        weights.write_bytes(b"\x00" * 64)
    else:  # no weights
        weights.unlink()
    return folder


@pytest.mark.parametrize("problem", ["missing", "no config", "not json", "unknown",
                                     "segmentation", "corrupt weights", "no weights"])
def test_bad_model_folders_are_model_errors_naming_the_path(problem, tmp_path):
    folder = _bad_folder(tmp_path, problem)
    with pytest.raises(ModelError, match="depth model") as info:
        load_depth_model(str(folder))
    assert str(folder) in str(info.value)


def test_checkpoint_without_the_depth_head_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = write_tiny_depth_model(tmp_path, "dpt")
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith("head.")},
              folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelError, match="weights missing"):
        load_depth_model(str(folder))


# --- scene depth ---------------------------------------------------------------------

def test_scene_depth_round_trip(tmp_path):
    depth = np.random.default_rng(2).uniform(0.5, 30.0, (12, 20)).astype(np.float32)
    path = write_scene_depth(tmp_path, 7, depth)
    assert path.name == "00007.npy"
    read = read_scene_depth(str(tmp_path), 7)
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, depth)
    np.testing.assert_allclose(read_scene_depth(str(tmp_path), 7, scale=2.0), depth * 2)


def test_scene_depth_resizes_without_blending(tmp_path):
    depth = np.where(np.arange(16)[None, :] < 8, 1.0, 100.0).repeat(8, axis=0)
    write_scene_depth(tmp_path, 0, depth)
    read = read_scene_depth(str(tmp_path), 0, (40, 20))
    assert read.shape == (20, 40) and set(np.unique(read)) == {1.0, 100.0}


def test_sixteen_bit_png_times_scale(tmp_path):
    import cv2

    millimetres = np.array([[500, 1000], [2500, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "00003.png"), millimetres)
    read = read_scene_depth(str(tmp_path), 3, scale=0.001)
    np.testing.assert_allclose(read, millimetres / 1000.0, rtol=1e-6)


def test_eight_bit_png_is_refused(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "00000.png"), np.full((4, 4), 9, np.uint8))
    with pytest.raises(InputError, match="16-bit") as info:
        read_scene_depth(str(tmp_path), 0)
    assert info.value.key == "depth_maps_path"


def test_exr_depth_is_read(tmp_path):
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    depth = np.random.default_rng(3).uniform(1.0, 50.0, (6, 9)).astype(np.float32)
    depth[0, 0] = np.inf
    ok, data = cv2.imencode(".exr", depth)
    assert ok
    (tmp_path / "00002.exr").write_bytes(data.tobytes())
    read = read_scene_depth(str(tmp_path), 2)
    assert read[0, 0] == FAR_AWAY
    np.testing.assert_array_equal(read.ravel()[1:], depth.ravel()[1:])


def test_npy_wins_over_png(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "00001.png"), np.full((4, 4), 7, np.uint16))
    write_scene_depth(tmp_path, 1, np.full((4, 4), 3.0))
    assert np.all(read_scene_depth(str(tmp_path), 1) == 3.0)


def test_missing_frame_names_depth_maps_path_frame_and_path(tmp_path):
    with pytest.raises(InputError) as info:
        read_scene_depth(str(tmp_path), 12)
    assert info.value.key == "depth_maps_path"
    assert "frame 12" in str(info.value) and str(tmp_path / "00012") in str(info.value)


def test_nan_scene_depth_is_refused(tmp_path):
    write_scene_depth(tmp_path, 0, np.array([[1.0, np.nan]]))
    with pytest.raises(InputError, match="NaN"):
        read_scene_depth(str(tmp_path), 0)


# --- saving --------------------------------------------------------------------------

def test_save_depth_map_is_8_bit_grey_and_never_overwrites(tmp_path):
    import cv2

    path = depth_map_path(tmp_path, "20240101120000", 3)
    assert path == tmp_path / "20240101120000_depth_00003.png"
    z = np.array([[1.0, 1.5], [2.0, 2.5]], np.float32)
    save_depth_map(path, z)
    grey = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert grey.dtype == np.uint8 and grey.ndim == 2
    np.testing.assert_array_equal(grey, [[0, 128], [255, 255]])
    with pytest.raises(FileExistsError):
        save_depth_map(path, np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), grey)


# --- choosing a source ---------------------------------------------------------------

def _settings(**changes):
    base = {"animation_mode": "3D", "use_depth_warping": True, "depth_source": "model",
            "depth_model_path": "", "depth_maps_path": "", "midas_weight": 0.3,
            "W": 64, "H": 48}
    return {**base, **changes}


@pytest.mark.parametrize("changes", [{"animation_mode": "2D"}, {"use_depth_warping": False},
                                     {"depth_source": "none"}])
def test_flat_unless_3d_with_depth_warping(changes):
    source, notices = make_depth_source(_settings(depth_model_path="/nowhere", **changes))
    assert isinstance(source, FlatDepth) and notices == []
    assert source.for_frame(1, _picture()) is None


def test_model_without_a_path_is_flat_with_a_notice():
    source, notices = make_depth_source(_settings())
    assert isinstance(source, FlatDepth)
    assert len(notices) == 1 and "depth_model_path" in notices[0]


def test_model_source_predicts_from_the_image(tiny_model):
    source, notices = make_depth_source(_settings(depth_model_path=str(tiny_model[1])))
    assert isinstance(source, ModelDepth)
    assert len(notices) == 1 and "midas_weight" in notices[0]
    image = _picture()
    np.testing.assert_array_equal(source.for_frame(5, image), source.for_frame(9, image))
    _, notices = make_depth_source(_settings(depth_model_path=str(tiny_model[1]),
                                             midas_weight=1.0))
    assert notices == []


def test_model_source_with_a_bad_path_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        make_depth_source(_settings(depth_model_path=str(tmp_path / "missing")))


def test_scene_source_reads_the_frame_being_rendered(tmp_path):
    for frame in (1, 2):
        write_scene_depth(tmp_path, frame, np.full((24, 32), float(frame)))
    source, notices = make_depth_source(_settings(depth_source="scene",
                                                  depth_maps_path=str(tmp_path)))
    assert isinstance(source, SceneDepth) and notices == []
    z = source.for_frame(2, _picture())
    assert z.shape == (48, 64) and np.all(z == 2.0)


@pytest.mark.parametrize("folder", ["", "missing"])
def test_scene_source_needs_a_folder(folder, tmp_path):
    path = str(tmp_path / folder) if folder else ""
    with pytest.raises(InputError) as info:
        make_depth_source(_settings(depth_source="scene", depth_maps_path=path))
    assert info.value.key == "depth_maps_path"


def test_real_settings_have_the_keys_it_reads(tmp_path):
    settings = parse_settings({"animation_mode": "3D", "depth_source": "scene",
                               "depth_maps_path": str(tmp_path), "W": 128, "H": 64})
    source, _ = make_depth_source(settings)
    assert isinstance(source, SceneDepth) and source.size == (128, 64)


def test_float16_scene_depth_gives_the_same_pinhole_warp(tmp_path):
    """What the add-on writes (float16, half the disk) warps like the float32 depth:
    every sample point within 0.01 px, the warped pixels within one grey level, and
    the disocclusion masks the same but for a few edge pixels."""
    from engine.warp import disocclusion_mask, grid_3d, warp_3d

    height, width = 48, 64
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    depth = 2.0 + 0.3 * x + 5.0 * np.sin(y / 7.0) ** 2  # 2 … 26 m, a slope and ripples
    depth[:8] = np.inf  # sky
    write_scene_depth(tmp_path / "full", 0, depth)
    write_scene_depth(tmp_path / "half", 0, depth, dtype=np.float16)
    full, half = (read_scene_depth(str(tmp_path / name), 0) for name in ("full", "half"))
    assert np.load(tmp_path / "half" / "00000.npy").dtype == np.float16
    assert (tmp_path / "half" / "00000.npy").stat().st_size < \
        0.55 * (tmp_path / "full" / "00000.npy").stat().st_size
    motion = dict(translation=(30.0, -10.0, 40.0), rotation=(1.0, -2.0, 0.5), fov=40.0,
                  warp_model="pinhole")
    grids = [grid_3d(height, width, d, **motion) for d in (full, half)]
    pixel = np.array([width / 2, height / 2])  # NDC → pixels
    assert np.abs((grids[0] - grids[1]) * pixel).max() < 0.01
    image = np.random.default_rng(5).integers(0, 256, (height, width, 3), dtype=np.uint8)
    warped = [warp_3d(image, d, **motion) for d in (full, half)]
    assert np.abs(warped[0].astype(int) - warped[1].astype(int)).max() <= 1
    masks = [disocclusion_mask(d, d, translation=(30.0, -10.0, 40.0),
                               rotation=(1.0, -2.0, 0.5), fov=40.0) for d in (full, half)]
    # only a few pixels on the masks' edges, where the 1 % tolerance decides, may flip
    assert (masks[0] != masks[1]).mean() < 0.005 and masks[0].any()
