"""The repository's modules import each other without cycles (``scripts/check_imports.py``)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check_imports.py"


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECKER), str(root)], capture_output=True,
                          text=True, timeout=60)


def test_no_import_cycles_in_the_repository():
    result = check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no import cycles among ")


def test_the_checker_finds_a_cycle_through_relative_and_function_level_imports(tmp_path):
    (tmp_path / "__init__.py").write_text("from . import pkg\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from . import a\n")
    (tmp_path / "pkg" / "a.py").write_text("from ..other import thing\n")
    (tmp_path / "other.py").write_text("def thing():\n    from .pkg import a\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("from pkg import a\nimport t\n")
    result = check(tmp_path)
    assert result.returncode == 1
    assert result.stdout.strip() == "import cycle: other -> pkg.a -> other"
