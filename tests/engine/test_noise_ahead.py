"""Noise drawn ahead: a keyframe gets the very numbers, and its generator the very state,
that drawing them in the loop gives, whichever keyframes ask in whichever order."""

import pytest
import torch

from engine.noise import noise_field
from engine.noise_ahead import KEPT, NoiseAhead
from engine.settings import parse_settings

SHAPE = (1, 3, 24, 32)


def seeded(seed):
    return torch.Generator("cpu").manual_seed(int(seed))


def inline(seed, settings):
    """The field and the generator's next draws as the loop makes them."""
    generator = seeded(seed)
    field = noise_field(SHAPE, generator, settings)
    return field, torch.randn((1, 4, 3, 4), generator=generator)


def assert_as_inline(pair, seed, settings):
    generator, field = pair
    expected, after = inline(seed, settings)
    assert torch.equal(field, expected)
    assert torch.equal(torch.randn((1, 4, 3, 4), generator=generator), after)


@pytest.mark.parametrize("noise_type", ["uniform", "perlin"])
def test_a_field_drawn_ahead_leaves_the_generator_as_drawing_it_now_does(noise_type):
    settings = parse_settings({"noise_type": noise_type})
    ahead = NoiseAhead(settings, seeded)
    ahead.start(7, SHAPE)
    assert_as_inline(ahead.take(7, SHAPE), 7, settings)


def test_a_seed_not_drawn_ahead_is_drawn_at_once_and_the_early_one_still_waits():
    settings = parse_settings({})
    ahead = NoiseAhead(settings, seeded)
    ahead.start(7, SHAPE)
    assert_as_inline(ahead.take(8, SHAPE), 8, settings)  # a reroll's seed, say
    assert_as_inline(ahead.take(7, SHAPE), 7, settings)
    assert_as_inline(ahead.take(7, SHAPE), 7, settings)  # taken once: drawn again


def test_another_shape_is_not_mistaken_for_the_one_drawn_ahead():
    settings = parse_settings({})
    ahead = NoiseAhead(settings, seeded)
    ahead.start(7, (1, 3, 8, 8))
    assert_as_inline(ahead.take(7, SHAPE), 7, settings)


def test_only_the_newest_fields_wait():
    settings = parse_settings({})
    ahead = NoiseAhead(settings, seeded)
    for seed in range(KEPT + 2):
        ahead.start(seed, SHAPE)
    for seed in reversed(range(KEPT + 2)):
        assert_as_inline(ahead.take(seed, SHAPE), seed, settings)
