"""pytest plugin (loaded by pytest.ini): collect the repository root as a plain folder.

The root is also the Blender add-on package, whose ``__init__.py`` imports bpy;
pytest would otherwise import it as a package before running any test.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collect_directory(path: Path, parent: pytest.Collector):
    if path.resolve() == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
