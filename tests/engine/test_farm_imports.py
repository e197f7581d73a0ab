"""Ray and the OpenJD tools are an optional extra: only ``engine/farm`` may import them,
and only when a backend needs them; what the add-on imports of the farm needs numpy alone."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = {"ray", "openjd", "yaml"}

BLOCKER = """
import sys
blocked = set(sys.argv[1].split(','))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in blocked:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import importlib
for module in sys.argv[2:]:
    importlib.import_module(module)
print('ok')
"""


def _imports_with(blocked: set[str], *modules: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, ",".join(sorted(blocked)), *modules],
                          cwd=ROOT, capture_output=True, text=True)


def test_the_farm_modules_load_without_ray_or_openjd():
    done = _imports_with(OPTIONAL, "engine.cli", "engine.plan", "engine.farm.__main__",
                         "engine.farm.local", "engine.farm.task", "engine.farm.ray_backend",
                         "engine.farm.openjd")
    assert done.returncode == 0, done.stderr


def test_what_the_addon_imports_of_the_farm_needs_numpy_alone():
    heavy = OPTIONAL | {"torch", "cv2", "diffusers", "transformers", "PIL", "scipy", "bpy"}
    done = _imports_with(heavy, "engine.plan", "engine.farm.status")
    assert done.returncode == 0, done.stderr


def test_only_the_farm_package_imports_the_optional_extra():
    offenders = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in {"tests", "benchmarks", ".venv"} or parts[:2] == ("engine", "farm"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in OPTIONAL]
    assert offenders == []
