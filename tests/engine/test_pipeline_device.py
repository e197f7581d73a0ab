"""Pipelines remember their execution device: the answer diffusers gives, asked once and
again after each move."""

import torch

from engine.pipeline_device import remember_device


class Pipeline:
    """Stands in for a diffusers pipeline: counts its device look-ups."""

    def __init__(self):
        self.where, self.lookups = torch.device("cpu"), 0

    @property
    def _execution_device(self):
        self.lookups += 1
        return self.where

    def to(self, where):
        self.where = torch.device(where)
        return self


def test_the_device_is_looked_up_once_and_again_after_a_move():
    pipe = remember_device(Pipeline())
    assert [pipe._execution_device for _ in range(3)] == [torch.device("cpu")] * 3
    assert pipe.lookups == 1
    assert pipe.to("meta") is pipe
    assert pipe._execution_device == torch.device("meta") and pipe.lookups == 2


def test_the_class_keeps_its_name_and_type():
    pipe = remember_device(Pipeline())
    assert isinstance(pipe, Pipeline) and type(pipe).__name__ == "Pipeline"
    assert type(remember_device(pipe)) is type(pipe)  # remembered once
    assert type(remember_device(Pipeline())) is type(pipe)  # one subclass per class


def test_loaded_pipelines_remember_where_they_are(pipes):
    for pipe in (pipes.img2img, pipes.txt2img):
        assert pipe._execution_device == pipes.device
        assert type(pipe).__name__ in ("StableDiffusionImg2ImgPipeline",
                                       "StableDiffusionPipeline")
