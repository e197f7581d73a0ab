"""Setting up the engine's Python from Blender: the self-check, the install commands,
finding an interpreter, and the background thread that runs them. No bpy, no torch."""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .job import engine_env, engine_root

SELF_CHECK = (
    "import importlib, json, sys, engine\n"
    "info = {'python': sys.version.split()[0], 'engine': engine.__version__}\n"
    "try:\n"
    "    import torch\n"
    "    info.update(torch=torch.__version__, cuda=torch.cuda.is_available(),\n"
    "                mps=bool(getattr(torch.backends, 'mps', None) and "
    "torch.backends.mps.is_available()))\n"
    "    if info['cuda']:\n"
    "        gpu = torch.cuda.get_device_properties(0)\n"
    "        info.update(gpu=gpu.name, gpu_memory_gb=round(gpu.total_memory / 2**30, 1))\n"
    "    elif info['mps']:\n"
    "        memory = getattr(torch.mps, 'recommended_max_memory', lambda: 0)()\n"
    "        info.update(gpu='Apple GPU', gpu_memory_gb=round(memory / 2**30, 1))\n"
    "    import diffusers\n"
    "    info['diffusers'] = diffusers.__version__\n"
    "except Exception as exc:\n"
    "    info['missing'] = f'{type(exc).__name__}: {exc}'\n"
    "def probe(key, path, module, function):\n"
    "    if not path:\n"
    "        return\n"
    "    try:\n"
    "        check = getattr(importlib.import_module(module), function)\n"
    "        info[key] = {'path': path, 'kind': check(path)}\n"
    "    except Exception as exc:\n"
    "        info[key] = {'path': path, 'error': str(exc)}\n"
    "probe('model', sys.argv[1], 'engine.models', 'model_kind')\n"
    "probe('depth_model', sys.argv[2], 'engine.depth', 'depth_model_kind')\n"
    "print(json.dumps(info))\n"
)


def self_check_command(python: str, model: str = "", depth_model: str = "") -> list[str]:
    """The self-check: versions, torch's device, and whether the models would load."""
    return [str(python), "-c", SELF_CHECK, model or "", depth_model or ""]


def check_report(python: str, model: str = "", depth_model: str = "",
                 timeout: float = 180.0) -> dict[str, Any]:
    """What the self-check found (see ``SELF_CHECK``), or ``{"error": why it did not run}``."""
    if not python or not Path(python).is_file():
        return {"error": f"engine Python not found: {python or '(not set)'}"}
    try:
        proc = subprocess.run(self_check_command(python, model, depth_model),
                              env=engine_env(), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"engine check failed: {exc}"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"engine check failed (exit {proc.returncode}): {tail}"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"engine check printed no result: {proc.stdout[-200:]!r}"}


def summary(report: dict[str, Any]) -> tuple[bool, str]:
    """(ok, one-line summary for the preferences) of a self-check report."""
    if "error" in report:
        return False, report["error"]
    if "missing" in report:
        return False, (f"engine {report['engine']} on Python {report['python']}: preview "
                       f"only, diffusion needs torch/diffusers ({report['missing']})")
    return True, (f"engine {report['engine']}, Python {report['python']}, torch "
                  f"{report['torch']}, diffusers {report['diffusers']}, "
                  f"{device_text(report)}")


def run_self_check(python: str, timeout: float = 180.0) -> tuple[bool, str]:
    """Run the engine self-check; (ok, one-line summary for the preferences)."""
    return summary(check_report(python, timeout=timeout))


def device_text(report: dict[str, Any]) -> str:
    """The device torch would pick ("CUDA — NVIDIA H200, 139.8 GB"), from a report."""
    if "torch" not in report:
        return "no torch"
    kind = "CUDA" if report.get("cuda") else "MPS" if report.get("mps") else ""
    if not kind:
        return "CPU only"
    memory = report.get("gpu_memory_gb")
    return f"{kind} — {report.get('gpu', 'GPU')}" + (f", {memory:g} GB" if memory else "")


def venv_python(venv: str | Path) -> Path:
    venv = Path(venv)
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


TORCH_INDEX = "https://download.pytorch.org/whl"
CUDA_WHEELS = "cu128"  # the CUDA build of the pinned torch on PyTorch's own index


@dataclass(frozen=True)
class InstallPlan:
    """Which torch build Install Engine downloads, from where, and about how much."""

    key: str
    label: str
    index_url: str | None  # None: pip's default index
    approx_mb: int  # everything pip downloads, roughly

    @property
    def size_text(self) -> str:
        return (f"≈ {round(self.approx_mb / 1000, 1):g} GB" if self.approx_mb >= 1000
                else f"≈ {self.approx_mb} MB")


# Approximate downloads (torch plus diffusers, transformers, OpenCV, SciPy…): rough
# orders of magnitude shown before the install starts, not measurements.
PLANS = {
    "cuda": InstallPlan("cuda", f"NVIDIA GPU: torch with CUDA ({CUDA_WHEELS})",
                        f"{TORCH_INDEX}/{CUDA_WHEELS}", 3000),
    "cpu": InstallPlan("cpu", "CPU only: torch without CUDA", f"{TORCH_INDEX}/cpu", 400),
    "macos": InstallPlan("macos", "macOS: torch with Metal (MPS on Apple Silicon)", None, 250),
}


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is installed (its ``nvidia-smi`` is on PATH): CUDA wheels can run."""
    return shutil.which("nvidia-smi") is not None


def install_plan(platform: str, machine: str, nvidia: bool) -> InstallPlan:
    """The torch build for a machine (``sys.platform``, ``platform.machine()``, whether
    an NVIDIA GPU is present): CUDA wheels for NVIDIA on Windows/Linux, the CPU wheels
    otherwise (the default index would give Linux a multi-GB CUDA build), macOS's own."""
    if platform == "darwin":
        return PLANS["macos"]
    if nvidia and (platform == "win32" or platform.startswith("linux")) and \
            machine.lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        return PLANS["cuda"]
    return PLANS["cpu"]


def install_commands(base_python: str, venv: str | Path, requirements: str | Path,
                     plan: InstallPlan | None = None) -> list[list[str]]:
    """Commands that create the engine venv and install its pinned requirements.

    torch goes first with its exact pin (from the requirements file), from the
    plan's index when it has one, so pip takes that build instead of resolving
    another; the requirements that follow find the pin already satisfied.
    """
    requirements = Path(requirements)
    py = str(venv_python(venv))
    cmds = [[str(base_python), "-m", "venv", str(venv)],
            [py, "-m", "pip", "install", "--upgrade", "pip"]]
    torch_pin = next((line.strip() for line in requirements.read_text().splitlines()
                      if line.strip().startswith("torch==")), None)
    if torch_pin:
        index = ["--index-url", plan.index_url] if plan and plan.index_url else []
        cmds.append([py, "-m", "pip", "install", torch_pin, *index])
    cmds.append([py, "-m", "pip", "install", "-r", str(requirements)])
    return cmds


class Installer:
    """Runs the engine check or install in a background thread, so Blender's UI stays
    responsive for the minutes a pip install takes; Blender polls ``take_result`` and
    draws ``tail`` (the last lines of output), ``step`` and the last ``report`` from a
    timer or ``draw()``. ``cancel`` stops a running install.
    """

    def __init__(self, tail_lines: int = 8) -> None:
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._thread: threading.Thread | None = None
        self._result: str | None = None
        self._proc: subprocess.Popen | None = None
        self._cancelled = False
        self.step: tuple[int, int] = (0, 0)  # command k of n of the running install
        self.report: dict[str, Any] | None = None  # the last self-check's findings

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def installing(self) -> bool:
        return self.busy() and self.step[1] > 0

    def tail(self) -> list[str]:
        """The last output lines of the latest install (shown in the preferences)."""
        return list(self._tail)

    def take_result(self) -> str | None:
        """The one-line outcome of a finished check or install, once; else None."""
        result, self._result = self._result, None
        return result

    def check(self, python: str, model: str = "", depth_model: str = "") -> None:
        """Start the self-check of ``python`` (and of the models it would load)."""
        def work() -> None:
            self.report = check_report(python, model, depth_model)
            self._result = summary(self.report)[1]

        self._start(work, "deforum-engine-check")

    def install(self, commands: list[list[str]], log_path: Path, python: Path) -> None:
        """Start running ``commands`` (output appended to ``log_path``), then self-check
        ``python``, the interpreter they installed."""
        def work() -> None:
            with open(log_path, "a", encoding="utf-8") as log:
                for k, cmd in enumerate(commands, 1):
                    self.step = (k, len(commands))
                    failure = self._run(cmd, log)
                    if failure is not None:
                        self._result = f"{failure}; log: {log_path}"
                        return
            self.report = check_report(str(python))
            ok, message = summary(self.report)
            self._result = ("Installed. " if ok else "Installed, but: ") + message

        self._tail.clear()
        self._cancelled = False
        self.step = (0, len(commands))
        self._start(work, "deforum-engine-install")

    def _run(self, cmd: list[str], log) -> str | None:
        """One install command, its output to the log and the tail; why it failed, if so."""
        self._tail.append("$ " + " ".join(cmd))
        log.write("$ " + " ".join(cmd) + "\n")
        if self._cancelled:
            return "Install cancelled"
        self._proc = proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True,
                                             stdin=subprocess.DEVNULL)
        if self._cancelled:  # cancelled while it was starting
            proc.terminate()
        for line in proc.stdout:
            log.write(line)
            self._tail.append(line.rstrip()[:120])
        code = proc.wait()
        self._proc = None
        if self._cancelled:
            return "Install cancelled"
        return f"Install failed (exit {code})" if code != 0 else None

    def cancel(self) -> None:
        """Stop a running install: the running pip is terminated, no later step starts."""
        self._cancelled = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def join(self) -> None:
        """Wait for the running check or install (Blender without a UI has no timers)."""
        if self._thread is not None:
            self._thread.join()

    def _start(self, work, name: str) -> None:
        def run() -> None:
            try:
                work()
            finally:
                self.step = (0, 0)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
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
