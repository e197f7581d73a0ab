"""A plan on a Ray cluster of one head and two worker nodes on loopback (separate node
processes), with one worker node killed (SIGKILL) mid-shot: the plan completes and
every frame is there once, whole and byte-identical to the plan run on one machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.farm_helpers import SHOT_2D, engine_env, frames, make_plan, write_settings

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
from ray.cluster_utils import Cluster  # noqa: E402

PAUSED_FRAME = 5  # the killed shot stops halfway through writing this frame
FAST_FAILURE = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                "health_check_failure_threshold": 3}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _node_pids(node) -> set[int]:
    """Every process a Ray node started, and their children (workers, engines)."""
    pids = {info.process.pid for infos in node.all_processes.values() for info in infos}
    return {p.pid for pid in pids for p in _tree(pid)} | pids


def _node_of(pid: int, nodes) -> object:
    """The worker node whose process tree holds ``pid``."""
    for node in nodes:
        if pid in _node_pids(node):
            return node
    raise AssertionError(f"process {pid} belongs to no worker node")


def _kill_node(node) -> None:
    """The machine dies: SIGKILL to every process of the node at once."""
    for pid in _node_pids(node):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_for(path: Path, process, seconds: float = 300) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"no engine paused (plan exit {process.poll()}): "
                         f"{process.stderr.read() if process.poll() is not None else ''}")


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_a_plan_survives_a_worker_node_killed_mid_shot(tmp_path, tiny_model, monkeypatch):
    shot = write_settings(tmp_path, "shot", SHOT_2D)
    options = ("--model", str(tiny_model), "--seeds", "1,2")
    reference = make_plan(tmp_path, [shot], "one", *options)
    # the one-machine run goes on while the cluster starts
    local = subprocess.Popen([sys.executable, "-m", "engine.farm", "local", str(reference)],
                             cwd=tmp_path, env=engine_env(), stderr=subprocess.PIPE, text=True)
    plan = make_plan(tmp_path, [shot], "ray", *options)
    pause = tmp_path / "paused-engine.pid"
    # The nodes' processes (and so the engines) inherit these: the first engine to write
    # the frame pauses halfway through it until the test kills its node.
    monkeypatch.setenv("DEFORUM_TEST_PAUSE_IN_WRITE", str(PAUSED_FRAME))
    monkeypatch.setenv("DEFORUM_TEST_PAUSE_ONCE", str(pause))
    cluster = Cluster(initialize_head=True, connect=False, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "_system_config": FAST_FAILURE})
    started: set[int] = set()
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        driver = subprocess.Popen(
            [sys.executable, "-m", "engine.farm", "ray", str(plan), "--address",
             cluster.address], cwd=tmp_path, text=True, stderr=subprocess.PIPE,
            env=engine_env())
        engine = _wait_for(pause, driver)
        victim = _node_of(engine, workers)
        started = {pid for node in (cluster.head_node, *workers) for pid in _node_pids(node)}
        _kill_node(victim)
        _, errors = driver.communicate(timeout=600)
        assert driver.returncode == 0, errors
    finally:
        for node in list(cluster.worker_nodes):
            cluster.remove_node(node, allow_graceful=False)
        cluster.shutdown()
    deadline = time.monotonic() + 30
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(started), "Ray processes left running"

    _, errors = local.communicate(timeout=600)
    assert local.returncode == 0, errors
    expected = frames(tmp_path / "one-out")
    assert len(expected) == 2 * 8
    got = frames(tmp_path / "ray-out")
    assert got.keys() == expected.keys()  # every frame once, none missing, none extra
    assert got == expected  # byte-identical, so whole and decodable as the reference is
    assert not list((tmp_path / "ray-out").rglob(".*.tmp-*"))  # the killed write's is gone
    tries = (tmp_path / "ray.nodes.jsonl").read_text().splitlines()
    assert len(tries) == 3  # two shots, one of them tried again after its node died


@pytest.mark.parametrize("options, message", [
    (("--address", "not an address"), "address: 'not an address' is not host:port"),
    (("--address", "127.0.0.1:1"), "address: cannot reach the Ray cluster at '127.0.0.1:1'"),
    (("--address", "127.0.0.1:1", "--retries", "-1"), "retries: must be 0 or more, got -1"),
])
def test_a_cluster_that_cannot_be_used_is_refused_at_once_by_name(tmp_path, options, message):
    plan = make_plan(tmp_path, [write_settings(tmp_path, "wide", SHOT_2D)], "farm", "--preview")
    done = subprocess.run([sys.executable, "-m", "engine.farm", "ray", str(plan), *options],
                          cwd=tmp_path, env=engine_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: {message}" in done.stderr
