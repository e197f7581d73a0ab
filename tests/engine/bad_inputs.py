"""Bad input the engine CLI must refuse cleanly, one case per class found in the wild.

Shared by ``tests/engine/test_bad_input.py`` (asserts) and
``benchmarks/bench_reliability.py`` (counts).  Each case runs the real CLI in
its own process, in a fresh folder, and the outcome records what a user would
see: the exit code, the JSON ``error`` event, a traceback on stderr, and every
path the failed run left behind anywhere in that folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EXIT_MODEL, EXIT_SETTINGS
from engine.settings_table import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"W": 64, "H": 64, "max_frames": 2}
ANIMATION = ("--enable_animation_mode", "--preview")
# argv cannot carry a NUL byte (execve refuses it); a warm engine's JSON argv can, so
# those cases call ``engine.cli.main`` with the list, in a process of their own.
MAIN = "import sys; from engine.cli import main; sys.exit(main({argv}))"


@dataclass(frozen=True)
class Case:
    """One bad input: the settings file, the arguments and what the CLI must answer.

    ``{tmp}`` in a settings value or an argument is the case's folder; the
    output folder is ``{tmp}/out``, made only by ``prepare`` where a case needs it.
    """

    name: str
    key: str                       # the setting the error must name
    settings: dict[str, Any] | str  # the file's JSON object, or its raw text
    args: tuple[str, ...] = ANIMATION
    code: int = EXIT_SETTINGS
    outdir: str = "{tmp}/out"
    settings_path: str = "{tmp}/settings.txt"
    prepare: Callable[[Path], None] | None = None
    argv_nul: bool = False         # run through main() (an argument holds a NUL byte)


@dataclass
class Outcome:
    """What one run of a case did."""

    code: int
    error: dict[str, Any] | None   # the last JSON event, when it is an error
    traceback: bool
    stray: list[str] = field(default_factory=list)  # paths the failed run left behind
    stderr: str = ""

    def problems(self, case: Case) -> list[str]:
        """Every way this outcome falls short of a clean refusal (empty: it is clean)."""
        found = []
        if self.code != case.code:
            found.append(f"exit {self.code}, expected {case.code}")
        if self.error is None or self.error.get("key") != case.key:
            found.append(f"error event {self.error}, expected key {case.key!r}")
        elif case.key not in self.error.get("message", ""):
            found.append(f"message does not name {case.key}: {self.error['message']!r}")
        if self.traceback:
            found.append("traceback on stderr")
        found.extend(f"left behind: {path}" for path in self.stray)
        return found


def _fill(value: Any, tmp: Path) -> Any:
    return value.replace("{tmp}", str(tmp)) if isinstance(value, str) else value


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_case(case: Case, tmp: Path) -> Outcome:
    """Run ``case`` in the empty folder ``tmp``; nothing new may appear there."""
    settings_path = Path(_fill(case.settings_path, tmp))
    if "\x00" not in str(settings_path):
        text = case.settings if isinstance(case.settings, str) else json.dumps(
            {k: _fill(v, tmp) for k, v in case.settings.items()})
        settings_path.write_text(text, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(tmp)
    before = _tree(tmp)
    argv = ["--settings", str(settings_path), "--outdir", _fill(case.outdir, tmp),
            "--progress", "jsonl", *(_fill(a, tmp) for a in case.args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("DEFORUM_MODEL", None)
    if case.argv_nul:  # the NUL byte travels in the program text: argv cannot hold one
        command = [sys.executable, "-c", MAIN.format(argv=repr(argv))]
    else:
        command = [sys.executable, "-m", "engine", *argv]
    result = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True,
                            timeout=120)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    error = lines[-1] if lines and lines[-1].get("event") == "error" else None
    return Outcome(result.returncode, error, "Traceback" in result.stderr,
                   sorted(_tree(tmp) - before), result.stderr)


def _file(name: str, data: bytes = b"not an image") -> Callable[[Path], None]:
    def prepare(tmp: Path) -> None:
        (tmp / name).write_bytes(data)
    return prepare


def _empty_batch_folder(tmp: Path) -> None:
    (tmp / "out" / "StableFun").mkdir(parents=True)


def _nul_in_path_settings() -> list[Case]:
    """Every path setting of the table, each with a NUL byte (open() raises on it)."""
    return [Case(f"nul_in_{s.name}", s.name,
                 {**SMALL, "animation_mode": "2D", s.name: "{tmp}/a\x00b"})
            for s in SETTINGS if s.type == "path"]


CASES: tuple[Case, ...] = (
    Case("deep_nesting", "settings", "[" * 100_000),
    Case("integer_400_digits", "W", '{"W": ' + "9" * 400 + "}"),
    Case("integer_5000_digits", "W", '{"W": ' + "9" * 5000 + "}"),
    Case("outdir_under_a_file", "outdir", {**SMALL, "animation_mode": "2D"},
         outdir="{tmp}/file/x", prepare=_file("file")),
    Case("outdir_is_a_file", "outdir", {**SMALL, "animation_mode": "2D"},
         outdir="{tmp}/file", prepare=_file("file")),
    Case("outdir_empty", "outdir", {**SMALL, "animation_mode": "2D"}, outdir=""),
    Case("outdir_nul", "outdir", {**SMALL, "animation_mode": "2D"}, outdir="{tmp}/o\x00ut",
         argv_nul=True),
    Case("settings_path_nul", "settings", {}, settings_path="{tmp}/settings\x00.txt",
         argv_nul=True),
    Case("cancel_file_nul", "cancel_file", {**SMALL, "animation_mode": "2D"},
         args=(*ANIMATION, "--cancel-file", "{tmp}/stop\x00"), argv_nul=True),
    Case("batch_name_300_chars", "batch_name", {**SMALL, "animation_mode": "2D",
                                                "batch_name": "b" * 300}),
    Case("batch_name_a_path", "batch_name", {**SMALL, "animation_mode": "2D",
                                             "batch_name": "../escape"}),
    Case("batch_name_lone_surrogate", "batch_name",
         '{"animation_mode": "2D", "W": 64, "H": 64, "max_frames": 2, "batch_name": "\\ud800"}'),
    *_nul_in_path_settings(),
    Case("still_prompts_not_text", "still_prompts", {**SMALL, "prompts": [1, {"a": 2}]},
         args=("--model", "{tmp}/no-model")),
    Case("animation_prompts_not_text", "animation_prompts",
         {**SMALL, "animation_prompts": {"0": 5, "1": ["x"]}}, args=("--model", "{tmp}/no-model")),
    Case("negative_prompts_not_text", "negative_prompts",
         {**SMALL, "negative_prompts": {"0": {"a": 1}}}, args=("--model", "{tmp}/no-model")),
    Case("model_not_found", "model_path", {**SMALL, "animation_mode": "2D"},
         args=("--enable_animation_mode", "--model", "{tmp}/no-model"), code=EXIT_MODEL),
    Case("init_image_missing", "init_image", {**SMALL, "animation_mode": "2D", "use_init": True,
                                              "init_image": "{tmp}/missing.png"}),
    Case("init_image_unreadable", "init_image",
         {**SMALL, "animation_mode": "2D", "use_init": True, "init_image": "{tmp}/bad.png"},
         prepare=_file("bad.png")),
    Case("soundtrack_missing", "soundtrack_path",
         {**SMALL, "animation_mode": "2D", "add_soundtrack": "File",
          "soundtrack_path": "{tmp}/missing.mp3"}, args=(*ANIMATION, "--video")),
    Case("mask_file_missing_in_preview", "mask_file",
         {**SMALL, "animation_mode": "2D", "use_mask": True, "mask_file": "{tmp}/missing.png"}),
    Case("resume_without_frames", "resume_timestring",
         {**SMALL, "animation_mode": "2D", "resume_from_timestring": True,
          "resume_timestring": "20200101000000"}, prepare=_empty_batch_folder),
    Case("resume_timestring_a_path", "resume_timestring",
         {**SMALL, "animation_mode": "2D", "resume_from_timestring": True,
          "resume_timestring": "../20200101000000"}, prepare=_empty_batch_folder),
    Case("video_init_missing", "video_init_path",
         {**SMALL, "animation_mode": "Video Input", "video_init_path": "{tmp}/missing.mp4"}),
)
