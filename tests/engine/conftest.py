"""Session fixtures of the engine tests: the tiny random-weight models, written once and
loaded through the same paths a user's checkpoint takes."""

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from engine.tiny_model import write_tiny_model

    folder = tmp_path_factory.mktemp("tiny-sd")
    write_tiny_model(folder, single_file=True)
    return folder


@pytest.fixture(scope="session")
def tiny_depth(tmp_path_factory):
    from tests.engine.tiny_depth import write_tiny_depth_model

    return write_tiny_depth_model(tmp_path_factory.mktemp("tiny-dpt"), kind="dpt")


@pytest.fixture(scope="session")
def pipes(tiny_model):
    from engine.models import load_pipelines

    return load_pipelines(str(tiny_model), device="cpu")


@pytest.fixture(scope="session")
def tiny_raft(tmp_path_factory):
    from engine.tiny_model import write_tiny_raft

    return write_tiny_raft(tmp_path_factory.mktemp("tiny-raft") / "raft_small_tiny.pth")


@pytest.fixture(scope="session")
def tiny_controlnet(tmp_path_factory):
    from engine.tiny_model import main

    folder = tmp_path_factory.mktemp("tiny-controlnet")
    assert main(["--controlnet", str(folder), "--single-file"]) == 0
    return folder
