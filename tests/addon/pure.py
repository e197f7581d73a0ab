"""Import the add-on's pure modules without Blender.

The repository root is the add-on package, and its ``__init__`` imports bpy. Its
modules import each other relatively (``from ..engine.camera import …``), so they
are loaded as submodules of a stand-in package for the root whose ``__init__``
never runs. ``PACKAGE`` and ``ROOT`` let a subprocess do the same.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "deforum_pure"


def addon_module(name: str) -> ModuleType:
    """The add-on's module ``name`` (dotted, from the root: ``"addon.bake_math"``)."""
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(ROOT)]
        sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.{name}")
