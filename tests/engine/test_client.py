"""Blender's end of the engine protocol (``engine.client``), without Blender."""

import sys
import time
from pathlib import Path

from engine.client.install import Installer, install_commands
from engine.client.job import DONE, FAILED, EngineJob, engine_command, engine_env

ROOT = Path(__file__).resolve().parents[2]


def test_engine_commands_are_composed_as_documented(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# pins\ntorch==2.13.0\nnumpy==1.26.4\n")
    cmds = install_commands("/usr/bin/python3.11", tmp_path / "venv", req)
    py = str(tmp_path / "venv" / "bin" / "python")
    assert cmds == [["/usr/bin/python3.11", "-m", "venv", str(tmp_path / "venv")],
                    [py, "-m", "pip", "install", "--upgrade", "pip"],
                    [py, "-m", "pip", "install", "torch==2.13.0"],
                    [py, "-m", "pip", "install", "-r", str(req)]]
    cmd = engine_command("py", "s.json", "/out", preview=True, cancel_file="/out/c")
    assert cmd == ["py", "-m", "engine", "--settings", "s.json", "--enable_animation_mode",
                   "--outdir", "/out", "--progress", "jsonl", "--preview",
                   "--cancel-file", "/out/c"]
    env = engine_env()
    assert Path(env["PYTHONPATH"]) == ROOT and (ROOT / "engine" / "cli.py").is_file()


def test_installer_runs_commands_in_a_thread_keeps_the_tail_and_reports_once(tmp_path):
    log = tmp_path / "install.log"
    installer = Installer(tail_lines=2)
    installer.install([[sys.executable, "-c", "print('one'); print('two')"]], log,
                      Path(sys.executable))
    installer.join()
    assert not installer.busy()
    assert installer.tail() == ["one", "two"]
    assert installer.take_result().startswith("Installed")
    assert installer.take_result() is None
    installer.install([[sys.executable, "-c", "raise SystemExit(3)"]], log, Path("/none"))
    installer.join()
    assert installer.take_result() == f"Install failed (exit 3); log: {log}"
    assert "$ " in log.read_text()


def _torch_command(platform: str, machine: str, nvidia: bool, tmp_path) -> list[str]:
    from engine.client.install import install_plan
    req = tmp_path / "requirements.txt"
    req.write_text("torch==2.13.0\nnumpy==1.26.4\n")
    cmds = install_commands("py", tmp_path / "venv", req,
                            install_plan(platform, machine, nvidia))
    (torch,) = [c for c in cmds if "torch==2.13.0" in c]
    assert cmds[-1][-2:] == ["-r", str(req)]  # the rest after torch, from the pins
    return torch[torch.index("install") + 1:]


def test_install_plan_windows_with_nvidia_takes_cuda_wheels_from_pytorch(tmp_path):
    from engine.client.install import install_plan
    assert _torch_command("win32", "AMD64", True, tmp_path) == [
        "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128"]
    assert install_plan("win32", "AMD64", True).size_text == "≈ 3 GB"


def test_install_plan_linux_with_nvidia_takes_cuda_wheels_from_pytorch(tmp_path):
    assert _torch_command("linux", "x86_64", True, tmp_path) == [
        "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cu128"]


def test_install_plan_without_nvidia_takes_the_small_cpu_wheels(tmp_path):
    from engine.client.install import install_plan
    for platform, machine in (("linux", "x86_64"), ("win32", "AMD64")):
        assert _torch_command(platform, machine, False, tmp_path) == [
            "torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert install_plan("linux", "x86_64", False).size_text == "≈ 400 MB"


def test_install_plan_macos_takes_the_default_wheel(tmp_path):
    from engine.client.install import install_plan
    assert _torch_command("darwin", "arm64", False, tmp_path) == ["torch==2.13.0"]
    assert install_plan("darwin", "arm64", False).index_url is None


def test_installer_cancel_terminates_the_running_command_and_runs_no_more(tmp_path):
    log = tmp_path / "install.log"
    marker = tmp_path / "second-ran"
    installer = Installer()
    installer.install([[sys.executable, "-c", "print('started', flush=True); "
                        "import time; time.sleep(60)"],
                       [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]],
                      log, Path(sys.executable))
    while "started" not in installer.tail():
        assert installer.busy()
        time.sleep(0.05)
    assert installer.installing() and installer.step == (1, 2)
    installer.cancel()
    installer.join()
    assert installer.take_result() == f"Install cancelled; log: {log}"
    assert not marker.exists() and installer.step == (0, 0)


def test_checklist_says_what_to_do_next(tmp_path):
    from engine.client.checklist import all_green, checklist
    python = sys.executable
    model = str(tmp_path / "sd15.safetensors")
    report = {"python": "3.11", "engine": "0.1.0", "torch": "2.13.0", "diffusers": "0.42",
              "cuda": True, "mps": False, "gpu": "NVIDIA H200", "gpu_memory_gb": 139.8,
              "model": {"path": model, "kind": "sd1"}}
    items = checklist(report, python=python, model=model, depth_model="", version="0.1.0")
    assert [(i.name, i.state) for i in items] == [
        ("Engine Python", "ok"), ("Engine version", "ok"), ("Device", "ok"),
        ("Model", "ok"), ("Depth model", "optional")]
    assert items[2].text == "CUDA — NVIDIA H200, 139.8 GB"
    assert "Stable Diffusion 1.x" in items[3].text and all_green(items)
    older = checklist(report, python=python, model=model, depth_model="", version="0.2.0")
    assert "Install Engine" in older[1].todo and not all_green(older)
    unset = checklist({**report, "cuda": False, "model": None}, python="", model="",
                      depth_model="", version="0.1.0")
    assert unset[0].state == "todo" and "Install Engine" in unset[0].todo
    assert unset[2].text.startswith("CPU only")
    assert "motion preview" in unset[3].text and "Model" in unset[3].todo
    bad = {**report, "model": {"path": model, "error": "unsupported model"}}
    item = checklist(bad, python=python, model=model, depth_model="", version="0.1.0")[3]
    assert item.state == "todo" and ".safetensors" in item.todo
    assert checklist(None, python=python, model=model, depth_model="")[3].state == "pending"


def _fake_engine(tmp_path, script: str) -> EngineJob:
    """A job whose 'engine' is ``script``: it prints progress events, then ends its way."""
    job = EngineJob([sys.executable, "-c", script], tmp_path / "engine.log")
    job.run_blocking(poll_interval=0.05)
    return job


def test_a_crash_after_the_engine_reported_done_keeps_the_job_done(tmp_path):
    done = _fake_engine(tmp_path, (
        "import json, os, sys\n"
        "print(json.dumps({'event': 'frame', 'index': 0, 'path': 'f.png', 'done': 1}))\n"
        "print(json.dumps({'event': 'done', 'frames': 1}))\n"
        "sys.stdout.flush(); os.abort()"))
    assert done.state == DONE and done.done == 1
    assert "shutting down" in done.warnings[-1]
    crashed = _fake_engine(tmp_path, (
        "import json, os, sys\n"
        "print(json.dumps({'event': 'frame', 'index': 0, 'path': 'f.png', 'done': 1}))\n"
        "sys.stdout.flush(); os.abort()"))
    assert crashed.state == FAILED and "killed" in crashed.error
