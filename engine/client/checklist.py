"""The first-run checklist: what the engine self-check found, as lines an artist can act
on (engine Python, engine version, torch device, model, depth model). Pure: it reads a
cached self-check report, so the preferences and the main panel draw it without waiting.
No bpy, no torch."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .install import device_text
from .job import engine_root

OK, TODO, OPTIONAL, PENDING = "ok", "todo", "optional", "pending"

MODEL_KINDS = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "SDXL"}

MODEL_GUIDANCE = (
    "Model formats: a Stable Diffusion 1.x, 2.x or SDXL base checkpoint as one "
    ".safetensors or .ckpt file, or a diffusers folder (the one holding model_index.json).",
    "Where: the Stable Diffusion 1.5 or SDXL checkpoints people share on model hubs and "
    "community sites; download with your browser and point Model at the file.",
    "Speed at 512×512: minutes per frame on a CPU, about a second per frame on a recent "
    "NVIDIA GPU (Apple Silicon sits in between).",
)


@dataclass(frozen=True)
class Item:
    """One checklist line: its state, what was found, and what to do next."""

    name: str
    state: str  # OK | TODO | OPTIONAL | PENDING
    text: str
    todo: str = ""

    @property
    def green(self) -> bool:
        return self.state in (OK, OPTIONAL)


def addon_version(root: Path | None = None) -> str:
    """The add-on's version from its manifest (the engine's when there is none)."""
    try:
        with open((root or engine_root()) / "blender_manifest.toml", "rb") as handle:
            return str(tomllib.load(handle)["version"])
    except (OSError, ValueError, KeyError):
        from engine import __version__
        return __version__


def _model_item(report: dict[str, Any] | None, key: str, path: str, *,
                optional: bool) -> Item:
    """The model (or depth model) line: set, checked, and of a kind the engine loads."""
    name = "Depth model" if optional else "Model"
    if not path:
        if optional:
            return Item(name, OPTIONAL, "none (optional)",
                        "3D without scene depth estimates flat depth; set Depth Model to a "
                        "local DPT or Depth Anything folder for real depth")
        return Item(name, TODO, "none set: Render Deforum makes a motion preview",
                    "set Model to a Stable Diffusion checkpoint (see Model guidance)")
    found = (report or {}).get(key)
    if found is None or found.get("path") != path:
        return Item(name, PENDING, f"{Path(path).name}: not checked yet", "press Check Again")
    if "error" in found:
        fix = ("choose a local DPT or Depth Anything folder" if optional else
               "choose an SD 1.x/2.x/SDXL .safetensors/.ckpt file or a diffusers folder")
        return Item(name, TODO, found["error"], fix)
    kind = MODEL_KINDS.get(found["kind"], found["kind"])
    return Item(name, OK, f"{Path(path).name} ({kind})")


def _engine_items(report: dict[str, Any] | None, version: str) -> list[Item]:
    """Engine version and torch device lines (pending until a check has run)."""
    if report is None:
        return [Item("Engine version", PENDING, "not checked yet", "press Check Again"),
                Item("Device", PENDING, "not checked yet", "press Check Again")]
    if "error" in report:
        return [Item("Engine version", TODO, report["error"],
                     "press Install Engine, or set Engine Python to a working interpreter"),
                Item("Device", PENDING, "unknown until the engine runs")]
    items = [Item("Engine version", OK, f"engine {report['engine']}")
             if report["engine"] == version else
             Item("Engine version", TODO,
                  f"engine {report['engine']} but add-on {version}",
                  "press Install Engine again so the engine matches this add-on")]
    if "missing" in report:
        found = f"{device_text(report)}, but " if "torch" in report else ""
        items.append(Item("Device", TODO, f"{found}{report['missing']}: motion preview only",
                          "press Install Engine"))
    elif report.get("cuda") or report.get("mps"):
        items.append(Item("Device", OK, device_text(report)))
    else:
        items.append(Item("Device", OK, "CPU only: minutes per frame",
                          "an NVIDIA GPU with CUDA (or Apple Silicon) is far faster"))
    return items


def checklist(report: dict[str, Any] | None, *, python: str, model: str,
              depth_model: str, version: str | None = None) -> list[Item]:
    """The checklist of a cached self-check ``report`` (None: none has run yet)."""
    if python and Path(python).is_file():
        first = Item("Engine Python", OK, python)
    else:
        first = Item("Engine Python", TODO, f"not found: {python or '(not set)'}",
                     "press Install Engine, or set Engine Python")
    return [first, *_engine_items(report, version or addon_version()),
            _model_item(report, "model", model, optional=False),
            _model_item(report, "depth_model", depth_model, optional=True)]


def all_green(items: list[Item]) -> bool:
    return all(item.green for item in items)
