"""Blender's end of the engine protocol (``engine.client``), without Blender."""

import sys
from pathlib import Path

from engine.client.install import Installer, install_commands
from engine.client.job import engine_command, engine_env

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
