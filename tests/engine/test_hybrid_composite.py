"""Hybrid compositing, the flow consistency mask and the hybrid clip's settings: what a
user sees in the frames, the saved extra frames and the run's messages."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.flow_consistency import UNRELIABLE, consistency_mask, reliable_flow
from engine.hybrid_composite import ExtraFrames, HybridComposite, extra_path
from engine.settings import parse_settings

from tests.engine.test_cli import events, read_rgb, run_engine, start_event, write_settings
from tests.engine.test_hybrid import STILL, clip_frame, texture, translation

SIZE = 96
DATA = Path(__file__).resolve().parents[1] / "data"
INTERIOR = (slice(20, -20), slice(20, -20))


def write_clip(folder, count):
    folder.mkdir()
    for k in range(count):
        cv2.imwrite(str(folder / f"{k:03d}.png"), clip_frame(k, translation)[..., ::-1])
    return folder


def render(out, clip, count, extra_args=(), **values):
    """The motion preview's frames of a still 2D camera guided by ``clip``."""
    out.mkdir(exist_ok=True)
    path = write_settings(out, W=SIZE, H=SIZE, max_frames=count,
                          **{**STILL, "video_init_path": str(clip), **values})
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", out,
                        "--progress", "jsonl", *extra_args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    ts = start_event(result)["timestring"]
    files = sorted(out.rglob(f"{ts}_[0-9]*.png"))
    return [read_rgb(f) for f in files], result


def video(k):
    return clip_frame(k, translation)


def differs(a, b):
    return float(np.abs(a.astype(int) - b.astype(int))[INTERIOR].mean())


# ------------------------------------------------------------------ composite modes

def test_normal_at_alpha_1_puts_the_video_frame_into_every_keyframe(tmp_path):
    clip = write_clip(tmp_path / "clip", 4)
    frames, _ = render(tmp_path / "out", clip, 4, hybrid_composite="Normal",
                       hybrid_comp_alpha_schedule="0:(1)",
                       hybrid_use_first_frame_as_init_image=False)
    for k in range(1, 4):
        assert differs(frames[k], video(k)) < 1.0, k
    assert differs(frames[0], video(0)) > 20  # frame 0 is the test card, not composited


def test_alpha_0_leaves_the_frames_as_without_compositing(tmp_path):
    clip = write_clip(tmp_path / "clip", 4)
    plain, _ = render(tmp_path / "plain", clip, 4, hybrid_motion="Affine")
    zero, _ = render(tmp_path / "zero", clip, 4, hybrid_motion="Affine",
                     hybrid_composite="Normal", hybrid_comp_alpha_schedule="0:(0)",
                     hybrid_comp_mask_type="Difference")
    assert all(np.array_equal(a, b) for a, b in zip(plain, zero))


def test_before_motion_composites_before_the_clip_moves_the_picture(tmp_path):
    """Before Motion: the video frame k is then carried by the clip's motion into k;
    Normal: it is composited after that motion, so frame k is video frame k itself."""
    clip = write_clip(tmp_path / "clip", 4)
    common = dict(hybrid_motion="Affine", hybrid_comp_alpha_schedule="0:(1)")
    normal, _ = render(tmp_path / "normal", clip, 4, hybrid_composite="Normal", **common)
    before, _ = render(tmp_path / "before", clip, 4, hybrid_composite="Before Motion", **common)
    for k in range(1, 4):
        assert differs(normal[k], video(k)) < 1.0
        assert differs(before[k], video(k)) > 3.0  # moved on by one step of the clip
        assert differs(before[k], video(k + 1)) < 6.0


def test_after_generation_composites_the_generated_frame(tmp_path):
    clip = write_clip(tmp_path / "clip", 4)
    frames, _ = render(tmp_path / "out", clip, 4, hybrid_composite="After Generation",
                       hybrid_comp_alpha_schedule="0:(0.5)",
                       hybrid_use_first_frame_as_init_image=False)
    # The preview's "generation" keeps its init: each frame is half the last, half the video.
    for k in range(1, 4):
        half = np.rint((frames[k - 1].astype(float) + video(k)) / 2)
        assert np.abs(frames[k] - half).max() <= 1, k


# ------------------------------------------------------------------ masks

def composite(tmp_path, **values):
    """A HybridComposite of a flat grey clip frame, saving its extra frames in tmp_path."""
    settings = parse_settings({"W": 8, "H": 8, "max_frames": 2, "hybrid_composite": "Normal",
                               "hybrid_comp_alpha_schedule": "0:(1)", **values})
    clip = np.full((8, 8, 3), 100, np.uint8)
    return HybridComposite(settings, lambda frame: clip, lambda image: image[..., 0] / 255.0,
                           ExtraFrames(tmp_path, "T")), clip


def picture_with_square():
    picture = np.full((8, 8, 3), 100, np.uint8)
    picture[2:5, 2:5] = 250
    return picture


def saved_mask(tmp_path):
    return cv2.imread(str(extra_path(tmp_path, "T", "mask", 1)), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("inverse", [False, True])
def test_difference_mask_is_where_video_and_animation_differ(tmp_path, inverse):
    mixer, clip = composite(tmp_path, hybrid_comp_mask_type="Difference",
                            hybrid_comp_mask_inverse=inverse)
    picture = picture_with_square()
    result = mixer(picture, 1)
    mask = saved_mask(tmp_path)
    square = np.zeros((8, 8), bool)
    square[2:5, 2:5] = True
    inside, outside = (255 - 150, 255) if inverse else (150, 0)
    assert (mask[square] == inside).all() and (mask[~square] == outside).all()
    # White keeps the animation, black takes the video.
    assert (result[~square] == 100).all()
    expected = (250 * inside + 100 * (255 - inside)) / 255
    assert np.abs(result[square].astype(float) - expected).max() <= 1
    assert extra_path(tmp_path, "T", "comp", 1).exists()
    assert extra_path(tmp_path, "T", "prev", 1).exists()


def test_blend_mask_mixes_the_two_greys(tmp_path):
    mixer, _ = composite(tmp_path, hybrid_comp_mask_type="Blend",
                         hybrid_comp_mask_blend_alpha_schedule="0:(0.25)")
    mixer(picture_with_square(), 1)
    mask = saved_mask(tmp_path)
    assert mask[3, 3] == int(250 + 0.25 * (100 - 250)) and mask[0, 0] == 100


def test_depth_mask_is_the_previous_frame_depth_far_white(tmp_path):
    mixer, _ = composite(tmp_path, hybrid_comp_mask_type="Depth")
    previous = np.zeros((8, 8, 3), np.uint8)
    previous[:, 4:] = 200   # the fake depth: the right half is far
    mixer(picture_with_square(), 1, previous=previous)
    mask = saved_mask(tmp_path)
    assert (mask[:, 4:] == 255).all() and (mask[:, :4] == 0).all()


def test_contrast_and_auto_contrast_shape_the_mask(tmp_path):
    flat, _ = composite(tmp_path / "flat", hybrid_comp_mask_type="Difference",
                        hybrid_comp_mask_contrast_schedule="0:(0)")
    (tmp_path / "flat").mkdir()
    flat(picture_with_square(), 1)
    assert np.ptp(saved_mask(tmp_path / "flat")) == 0  # contrast 0: one grey
    (tmp_path / "auto").mkdir()
    auto, _ = composite(tmp_path / "auto", hybrid_comp_mask_type="Difference",
                        hybrid_comp_mask_auto_contrast=True)
    auto(picture_with_square(), 1)
    mask = saved_mask(tmp_path / "auto")
    assert mask.max() == 255 and mask.min() == 0  # 150 stretched to white


def test_video_depth_mask_in_a_2d_run_saves_the_video_depth(tmp_path, tiny_depth):
    clip = write_clip(tmp_path / "clip", 3)
    _, result = render(tmp_path / "out", clip, 3, hybrid_composite="Normal",
                       hybrid_comp_mask_type="Video Depth", depth_model_path=str(tiny_depth),
                       hybrid_comp_save_extra_frames=True)
    ts = start_event(result)["timestring"]
    folder = next((tmp_path / "out").rglob("hybridframes"))
    for k in (1, 2):
        depth = cv2.imread(str(folder / f"{ts}_vid_depth_{k:05d}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(folder / f"{ts}_mask_{k:05d}.png"), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(depth, mask) and np.ptp(depth) > 0
        assert (folder / f"{ts}_comp_{k:05d}.png").exists()


def test_depth_masks_without_a_depth_model_are_refused_naming_the_key(tmp_path):
    clip = write_clip(tmp_path / "clip", 3)
    path = write_settings(tmp_path, W=SIZE, H=SIZE, max_frames=3, **STILL,
                          video_init_path=str(clip), hybrid_composite="Normal",
                          hybrid_comp_mask_type="Depth")
    result = run_engine("--settings", path, "--enable_animation_mode", "--outdir", tmp_path,
                        "--progress", "jsonl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = [e for e in events(result) if e["event"] == "error"][0]
    assert error["key"] == "hybrid_comp_mask_type" and "depth_model_path" in error["message"]


# ------------------------------------------------------------------ flow consistency

def test_consistency_mask_is_negative_where_the_flow_does_not_come_back():
    forward = np.zeros((20, 20, 2), np.float32)
    forward[..., 0] = 2.0
    backward = -forward.copy()
    backward[5:10, 8:14, 0] = 6.0   # where these pixels land, the way back is wrong
    mask = consistency_mask(forward, backward)
    bad = np.zeros((20, 20), bool)
    bad[5:10, 6:12] = True           # the pixels that land in the bad area
    assert (mask[bad] == UNRELIABLE).all() and (mask[~bad] == 1.0).all()


def test_reliable_flow_holds_back_pixels_that_appear_from_nowhere():
    """A square jumps onto a textured background: its old place is uncovered."""
    first = texture(64, seed=1)
    second = first.copy()
    second[20:40, 30:50] = first[20:40, 10:30]
    plain_flow, mask = reliable_flow(first, second, "DIS Fine", 0)
    assert (mask == 1.0).mean() > 0.7 and (mask < 0).any()
    assert (np.abs(plain_flow[mask < 0]) <= np.abs(plain_flow).max()).all()


def test_consistency_in_a_run_saves_the_flow_and_its_mask(tmp_path):
    clip = write_clip(tmp_path / "clip", 3)
    _, result = render(tmp_path / "out", clip, 3, hybrid_motion="Optical Flow",
                       hybrid_flow_method="DIS Medium", hybrid_flow_consistency=True,
                       hybrid_comp_save_extra_frames=True)
    ts = start_event(result)["timestring"]
    folder = next((tmp_path / "out").rglob("hybridframes"))
    assert (folder / f"{ts}_flow_00001.png").exists()
    assert (folder / f"{ts}_flow_mask_00002.png").exists()


# ------------------------------------------------------------------ the clip's settings

def test_the_clip_sets_the_frame_count_and_the_first_init(tmp_path):
    clip = write_clip(tmp_path / "clip", 5)
    frames, _ = render(tmp_path / "out", clip, 9, hybrid_motion="Affine",
                       extract_from_frame=1, extract_to_frame=3)
    assert len(frames) == 3  # clip frames 1, 2 and 3
    assert differs(frames[0], video(1)) < 1.0
    recorded = json.loads(next((tmp_path / "out").rglob("*_settings.txt")).read_text())
    assert recorded["max_frames"] == 3 and recorded["use_init"] is True


def test_human_masks_are_a_warning_not_an_error(tmp_path):
    clip = write_clip(tmp_path / "clip", 2)
    _, result = render(tmp_path / "out", clip, 2, hybrid_composite="Normal",
                       hybrid_generate_human_masks="PNGs")
    warned = [e for e in events(result) if e["event"] == "warning"
              and e.get("key") == "hybrid_generate_human_masks"]
    assert len(warned) == 1


# ------------------------------------------------------------------ resume and webui files

@pytest.mark.parametrize("coherence", ["Match Frame 0 LAB", "Video Input"])
def test_a_resumed_hybrid_run_writes_what_an_uninterrupted_run_writes(tmp_path, coherence):
    clip = write_clip(tmp_path / "clip", 7)
    values = dict(hybrid_motion="Optical Flow", hybrid_flow_method="DIS Medium",
                  hybrid_composite="Normal", hybrid_comp_alpha_schedule="0:(0.5)",
                  color_coherence=coherence, color_coherence_video_every_N_frames=3,
                  diffusion_cadence=2, angle="0:(2)", batch_name="Full")
    full, result = render(tmp_path / "out", clip, 7, **values)
    ts = start_event(result)["timestring"]
    partial = tmp_path / "out" / "Partial"
    partial.mkdir()
    stamp = "19990101000000"
    for i in range(5):
        shutil.copy(tmp_path / "out" / "Full" / f"{ts}_{i:05d}.png",
                    partial / f"{stamp}_{i:05d}.png")
    shutil.copy(tmp_path / "out" / "Full" / f"{ts}_settings.txt", partial / f"{stamp}_settings.txt")
    resumed, result = render(tmp_path / "out", clip, 7, **{**values, "batch_name": "Partial"},
                             resume_from_timestring=True, resume_timestring=stamp)
    assert [e["index"] for e in events(result) if e["event"] == "frame"] == [5, 6]
    assert all(np.array_equal(a, b) for a, b in zip(full, resumed))


def test_webui_file_with_hybrid_flow_and_compositing_runs_with_nothing_unimplemented(tmp_path):
    clip = write_clip(tmp_path / "clip", 3)
    data = json.loads((DATA / "webui_defaults.txt").read_text())
    data.update(W=64, H=64, video_init_path=str(clip), optical_flow_cadence="DIS Medium",
                hybrid_motion="Optical Flow", hybrid_flow_method="DIS Medium",
                hybrid_composite="Normal", hybrid_comp_mask_type="Difference")
    path = tmp_path / "webui.txt"
    path.write_text(json.dumps(data))
    result = run_engine("--settings", path, "--enable_animation_mode", "--preview",
                        "--outdir", tmp_path, "--progress", "jsonl")
    assert result.returncode == 0, result.stderr
    assert events(result)[-1]["written"] == 3
    notes = [e["message"] for e in events(result) if e["event"] == "warning"
             and "not implemented" in e["message"]]
    named = [k for note in notes for k in note.split(": ", 1)[1].split(", ")]
    assert not [k for k in named if k.startswith("hybrid_") or "flow" in k], named


def test_compositing_in_3d_from_a_video_file_uses_its_extracted_frames(tmp_path):
    folder = write_clip(tmp_path / "clip", 3)
    movie = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(movie), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SIZE, SIZE))
    for k in range(3):
        writer.write(cv2.imread(str(folder / f"{k:03d}.png")))
    writer.release()
    frames, _ = render(tmp_path / "out", movie, 3, animation_mode="3D",
                       hybrid_composite="Normal", hybrid_comp_alpha_schedule="0:(1)")
    extracted = sorted((tmp_path / "out").rglob("inputframes/*.jpg"))
    assert len(extracted) == 3
    for k in (1, 2):
        assert differs(frames[k], read_rgb(extracted[k])) < 1.0


def test_extract_range_of_a_video_file_and_a_bad_range(tmp_path):
    from engine.errors import InputError
    from engine.video import extract_video
    movie = tmp_path / "count.avi"
    writer = cv2.VideoWriter(str(movie), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for k in range(6):
        writer.write(np.full((32, 32, 3), 40 * k, np.uint8))
    writer.release()
    _, frames, _ = extract_video(str(movie), tmp_path / "frames", 2, overwrite=True,
                                 key="video_init_path", first=1, last=4)
    assert [int(cv2.imread(str(f))[0, 0, 0] / 40 + 0.5) for f in frames] == [2, 4]
    with pytest.raises(InputError) as info:
        extract_video(str(movie), tmp_path / "other", 1, overwrite=True,
                      key="video_init_path", first=3, last=3)
    assert info.value.key == "extract_to_frame"


def test_a_diffused_3d_run_with_every_hybrid_feature(tmp_path, tiny_model, tiny_depth):
    """Model, depth model, hybrid flow with consistency, a Depth mask after generation."""
    clip = write_clip(tmp_path / "clip", 4)
    values = dict(W=64, H=64, max_frames=4, **{**STILL, "animation_mode": "3D"},
                  video_init_path=str(clip), depth_model_path=str(tiny_depth), steps=4,
                  seed=7, diffusion_cadence=2, hybrid_motion="Optical Flow",
                  hybrid_flow_method="DIS Medium", hybrid_flow_consistency=True,
                  hybrid_composite="After Generation", hybrid_comp_mask_type="Depth",
                  hybrid_comp_mask_equalize="Both", hybrid_comp_save_extra_frames=True)
    out = {}
    for alpha in ("0", "1"):
        path = write_settings(tmp_path, **values, hybrid_comp_alpha_schedule=f"0:({alpha})")
        result = run_engine("--settings", path, "--enable_animation_mode", "--outdir",
                            tmp_path / alpha, "--model", tiny_model, "--progress", "jsonl")
        assert result.returncode == 0, result.stderr
        ts = start_event(result)["timestring"]
        out[alpha] = [read_rgb(f) for f in sorted((tmp_path / alpha).rglob(f"{ts}_0*.png"))]
        assert len(out[alpha]) == 4
        assert next((tmp_path / alpha).rglob(f"{ts}_mask_00002.png"))
    assert np.array_equal(out["0"][0], out["1"][0])   # frame 0 is never composited
    assert differs(out["0"][2], out["1"][2]) > 1.0    # keyframe 2 took the video


def test_compositing_the_init_image_needs_no_clip(tmp_path):
    card = tmp_path / "card.png"
    cv2.imwrite(str(card), texture(SIZE, seed=3))
    frames, _ = render(tmp_path / "out", "", 3, hybrid_composite="Normal",
                       hybrid_use_init_image=True, init_image=str(card),
                       hybrid_comp_alpha_schedule="0:(1)")
    assert len(frames) == 3 and differs(frames[2], read_rgb(card)) < 1.0


def test_video_input_coherence_takes_the_clip_s_colours(tmp_path):
    """A hybrid run matches each keyframe to the clip's frame (here: a reddened clip)."""
    clip = tmp_path / "clip"
    clip.mkdir()
    for k in range(3):
        red = video(k).astype(int)
        red[..., 0] = np.minimum(red[..., 0] + 90, 255)
        cv2.imwrite(str(clip / f"{k:03d}.png"), red.astype(np.uint8)[..., ::-1])
    common = dict(hybrid_motion="Affine", hybrid_use_first_frame_as_init_image=False)
    matched, result = render(tmp_path / "on", clip, 3, color_coherence="Video Input", **common)
    plain, _ = render(tmp_path / "off", clip, 3, **common)
    redness = [float(f[..., 0].mean() - f[..., 2].mean()) for f in matched]
    assert min(redness) > 40 and max(float(f[..., 0].mean() - f[..., 2].mean())
                                     for f in plain) < 20
    assert not [e for e in events(result) if e.get("key") == "color_coherence"]
