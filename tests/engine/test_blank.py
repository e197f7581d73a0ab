"""reroll_blank_frames: a flat generated frame is diffused again with a new seed, stops the
run, or is kept."""

import io

import numpy as np
import pytest

from engine.blank import guard_blank, is_blank
from engine.errors import BlankFrame
from engine.modes.animation import animation_generate, render_animation
from engine.modes.common import CancelToken
from engine.output import frame_path, read_image
from engine.progress import Progress
from engine.settings import parse_settings

PICTURE = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
FLAT = np.zeros((16, 16, 3), np.uint8)


class Stub:
    """A diffusion whose first ``blanks`` results are black frames."""

    def __init__(self, blanks: int) -> None:
        self.blanks, self.seeds = blanks, []

    def __call__(self, init, *, seed, frame=0, **kwargs):
        self.seeds.append(seed)
        return FLAT.copy() if len(self.seeds) <= self.blanks else PICTURE.copy()


def settings(**values):
    return parse_settings({"W": 16, "H": 16, **values})


def test_flat_frames_of_any_colour_are_blank():
    assert is_blank(FLAT) and is_blank(np.full((4, 4, 3), 200, np.uint8))
    assert not is_blank(PICTURE)


def test_reroll_diffuses_again_with_the_next_seeds():
    stub = Stub(blanks=2)
    guarded = guard_blank(stub, settings(reroll_blank_frames="reroll"))
    out = guarded(PICTURE, seed=100, frame=3, strength=0.5)
    assert np.array_equal(out, PICTURE) and stub.seeds == [100, 101, 102]


def test_reroll_stops_the_run_after_the_patience():
    stub = Stub(blanks=99)
    guarded = guard_blank(stub, settings(reroll_blank_frames="reroll", reroll_patience=3))
    with pytest.raises(BlankFrame, match="frame 5 came out blank.*3 rerolls") as caught:
        guarded(PICTURE, seed=7, frame=5)
    assert stub.seeds == [7, 8, 9, 10] and caught.value.key == "reroll_blank_frames"


def test_interrupt_stops_at_the_first_blank_frame_and_ignore_keeps_it():
    stub = Stub(blanks=1)
    with pytest.raises(BlankFrame, match="interrupt"):
        guard_blank(stub, settings(reroll_blank_frames="interrupt"))(PICTURE, seed=1, frame=2)
    assert stub.seeds == [1]
    assert is_blank(guard_blank(Stub(blanks=1), settings())(PICTURE, seed=1))


def test_the_animation_loop_writes_the_rerolled_frame(tmp_path):
    s = settings(animation_mode="2D", max_frames=2, reroll_blank_frames="reroll", seed=5,
                 color_coherence="None", zoom="0:(1)", translation_x="0:(0)", angle="0:(0)")
    stub = Stub(blanks=1)  # frame 0 comes out black once
    generate = animation_generate(guard_blank(stub, s), s, None)
    written = render_animation(s, tmp_path, "ts", Progress(out=io.StringIO()),
                               CancelToken(), generate=generate)
    assert written == 2 and len(stub.seeds) == 3
    frame0 = read_image(frame_path(tmp_path, "ts", 0), (16, 16), "test")
    assert not is_blank(frame0)
