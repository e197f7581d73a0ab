"""What the artist reads before the first render: the first-run checklist, the model
guidance, Install Engine's plan and progress, and the one line that says what Render
Deforum will make (diffusion with which model on which device, or a motion preview).

Drawn from cached results only (the self-check runs in a background thread), so a
draw never waits. Everything arrives as arguments: no import of the preferences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..engine.client import checklist, install
from ..engine.settings_table import PREVIEW_MODES

ICONS = {checklist.OK: "CHECKMARK", checklist.OPTIONAL: "INFO",
         checklist.TODO: "ERROR", checklist.PENDING: "TIME"}
DEVICES = {"cuda": "CUDA", "mps": "Apple MPS", "cpu": "CPU"}


def device_name(device: str, report: dict[str, Any] | None) -> str:
    """The device a render will use: the preference, or what "auto" found in the check."""
    if device != "auto":
        return DEVICES.get(device, device)
    if not report or "torch" not in report:
        return "auto device"
    if report.get("cuda") or report.get("mps"):
        kind = "CUDA" if report.get("cuda") else "Apple MPS"
        return f"{kind} ({report['gpu']})" if report.get("gpu") else kind
    return "CPU"


def what_renders(model: str, preview_ticked: bool, device: str,
                 report: dict[str, Any] | None, mode: str = "3D") -> str:
    """"Diffusion — ⟨model⟩ on ⟨device⟩", "Motion preview — ⟨why⟩", or, for a mode with
    no motion to preview, what it needs first ("Needs …")."""
    if (not model or preview_ticked) and mode not in PREVIEW_MODES:
        return (f"Needs a model — {mode} has no motion to preview" if not model else
                f"Needs Preview Motion off — {mode} has no motion to preview")
    if not model:
        return "Motion preview — no model set"
    if preview_ticked:
        return "Motion preview — Preview Motion is ticked"
    if not Path(model).exists():  # a stat per draw: the render would refuse it
        return f"Needs a model — {Path(model).name} not found"
    return f"Diffusion — {Path(model).name} on {device_name(device, report)}"


def draw_checklist(layout, items: list[checklist.Item], *, busy: bool) -> None:
    """One row per check, each with what to do next; a Check Again button."""
    box = layout.box()
    box.label(text="Set-up" + (" (checking…)" if busy else ""))
    for item in items:
        col = box.column(align=True)
        col.label(text=f"{item.name}: {item.text}", icon=ICONS[item.state])
        if item.todo:
            col.label(text=("    " if item.state == checklist.OK else "    → ") + item.todo)
    row = box.row()
    row.enabled = not busy
    row.operator("deforum.check_engine", text="Check Again", icon="FILE_REFRESH")


def draw_model_guidance(layout) -> None:
    box = layout.box()
    box.label(text="Model guidance", icon="QUESTION")
    for paragraph in checklist.MODEL_GUIDANCE:
        for line in _wrap(paragraph, 90):
            box.label(text=line)


def draw_install(layout, installer: install.Installer, plan: install.InstallPlan) -> None:
    """Install Engine with what it downloads; while it runs, step k/n, the log tail, Cancel."""
    col = layout.column(align=True)
    if installer.installing():
        k, n = installer.step
        col.label(text=f"Installing the engine: step {k}/{n}", icon="IMPORT")
        col.operator("deforum.cancel_install", icon="CANCEL")
    else:
        col.label(text=f"Install Engine downloads {plan.label}, {plan.size_text}")
    for line in installer.tail():  # drawn from memory, nothing fallible
        col.label(text=line)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])
