"""Setting up the engine's Python from Blender: the self-check, the install commands,
finding an interpreter, and the background thread that runs them. No bpy, no torch."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from .job import engine_env, engine_root

SELF_CHECK = (
    "import json, sys, engine\n"
    "info = {'python': sys.version.split()[0], 'engine': engine.__version__}\n"
    "try:\n"
    "    import torch, diffusers\n"
    "    info.update(torch=torch.__version__, diffusers=diffusers.__version__,\n"
    "                cuda=torch.cuda.is_available(),\n"
    "                mps=bool(getattr(torch.backends, 'mps', None) and "
    "torch.backends.mps.is_available()))\n"
    "except Exception as exc:\n"
    "    info['missing'] = f'{type(exc).__name__}: {exc}'\n"
    "print(json.dumps(info))\n"
)


def self_check_command(python: str) -> list[str]:
    return [str(python), "-c", SELF_CHECK]


def run_self_check(python: str, timeout: float = 180.0) -> tuple[bool, str]:
    """Run the engine self-check; (ok, one-line summary for the preferences)."""
    if not python or not Path(python).is_file():
        return False, f"engine Python not found: {python or '(not set)'}"
    try:
        proc = subprocess.run(self_check_command(python), env=engine_env(),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"engine check failed: {exc}"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return False, f"engine check failed (exit {proc.returncode}): {tail}"
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False, f"engine check printed no result: {proc.stdout[-200:]!r}"
    if "missing" in info:
        return False, (f"engine {info['engine']} on Python {info['python']}: preview only, "
                       f"diffusion needs torch/diffusers ({info['missing']})")
    devices = ", ".join(d for d in ("cuda", "mps") if info.get(d)) or "cpu only"
    return True, (f"engine {info['engine']}, Python {info['python']}, torch {info['torch']}, "
                  f"diffusers {info['diffusers']}, {devices}")


def venv_python(venv: str | Path) -> Path:
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_commands(base_python: str, venv: str | Path,
                     requirements: str | Path) -> list[list[str]]:
    """Commands that create the engine venv and install its pinned requirements.

    torch goes first with its exact pin (from the requirements file) so pip
    takes the platform's default wheel instead of resolving another build.
    """
    requirements = Path(requirements)
    py = str(venv_python(venv))
    cmds = [[str(base_python), "-m", "venv", str(venv)],
            [py, "-m", "pip", "install", "--upgrade", "pip"]]
    torch_pin = next((line.strip() for line in requirements.read_text().splitlines()
                      if line.strip().startswith("torch==")), None)
    if torch_pin:
        cmds.append([py, "-m", "pip", "install", torch_pin])
    cmds.append([py, "-m", "pip", "install", "-r", str(requirements)])
    return cmds


class Installer:
    """Runs the engine check or install in a background thread, so Blender's UI stays
    responsive for the minutes a pip install takes; Blender polls ``take_result`` and
    draws ``tail`` (the last lines of output) from a timer.
    """

    def __init__(self, tail_lines: int = 8) -> None:
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._thread: threading.Thread | None = None
        self._result: str | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def tail(self) -> list[str]:
        """The last output lines of the latest install (shown in the preferences)."""
        return list(self._tail)

    def take_result(self) -> str | None:
        """The one-line outcome of a finished check or install, once; else None."""
        result, self._result = self._result, None
        return result

    def check(self, python: str) -> None:
        """Start the self-check of ``python``."""
        def work() -> None:
            self._result = run_self_check(python)[1]

        self._start(work, "deforum-engine-check")

    def install(self, commands: list[list[str]], log_path: Path, python: Path) -> None:
        """Start running ``commands`` (output appended to ``log_path``), then self-check
        ``python``, the interpreter they installed."""
        def work() -> None:
            with open(log_path, "a", encoding="utf-8") as log:
                for cmd in commands:
                    self._tail.append("$ " + " ".join(cmd))
                    log.write("$ " + " ".join(cmd) + "\n")
                    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True,
                                            stdin=subprocess.DEVNULL)
                    for line in proc.stdout:
                        log.write(line)
                        self._tail.append(line.rstrip()[:120])
                    if proc.wait() != 0:
                        self._result = (f"Install failed (exit {proc.returncode}); "
                                        f"log: {log_path}")
                        return
            ok, message = run_self_check(str(python))
            self._result = ("Installed. " if ok else "Installed, but: ") + message

        self._tail.clear()
        self._start(work, "deforum-engine-install")

    def join(self) -> None:
        """Wait for the running check or install (Blender without a UI has no timers)."""
        if self._thread is not None:
            self._thread.join()

    def _start(self, work, name: str) -> None:
        self._thread = threading.Thread(target=work, name=name, daemon=True)
        self._thread.start()


def default_engine_python(root: Path | None = None,
                          extra: list[Path] | tuple[Path, ...] = ()) -> str:
    """A configured engine interpreter, if one can be found; else ''.

    Looked for: $DEFORUM_ENGINE_PYTHON, the ``.venv`` of a development
    checkout (the add-on folder is the repository), then ``extra`` (the venv
    that "Install engine" creates).
    """
    env = os.environ.get("DEFORUM_ENGINE_PYTHON")
    if env and Path(env).is_file():
        return env
    root = root or engine_root()
    for candidate in (venv_python(root / ".venv"), *(venv_python(p) for p in extra)):
        if candidate.is_file():
            return str(candidate)
    return ""


if __name__ == "__main__":  # manual check: python -m engine.client.install PYTHON
    print(run_self_check(sys.argv[1] if len(sys.argv) > 1 else sys.executable))
