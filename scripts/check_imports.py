"""Fail on import cycles among the repository's own modules.

A cycle between the add-on's modules makes what an import finds depend on which
module Blender happens to load first (a half-initialised module, an
AttributeError at registration), so the layout keeps the graph acyclic. This
script parses every module with ``ast`` (nothing is imported or executed),
resolves relative and absolute imports, module-level and inside functions, to
repository modules, and prints each cycle (exit 1) or a one-line all-clear
(exit 0). ``tests/``, ``benchmarks/`` and virtual environments are not part of
the add-on and are skipped.

    python scripts/check_imports.py [ROOT]
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

SKIPPED = {"tests", "benchmarks", "__pycache__"}

Module = tuple[str, ...]  # dotted parts; () is the add-on's own __init__.py at the root


def modules(root: Path) -> dict[Module, Path]:
    """Every ``.py`` file under ``root`` by module name (a package by its ``__init__``)."""
    found: dict[Module, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(p in SKIPPED or p.startswith(".") for p in parts[:-1]):
            continue
        name = parts[:-1] if parts[-1] == "__init__.py" else (*parts[:-1], path.stem)
        found[name] = path
    return found


def _package(name: Module, path: Path) -> Module:
    return name if path.name == "__init__.py" else name[:-1]


def _longest_known(target: Module, known: dict[Module, Path]) -> Module | None:
    """The most specific repository module that ``target`` names (``a.b.func`` → ``a.b``)."""
    for end in range(len(target), 0, -1):
        if target[:end] in known:
            return target[:end]
    return None


def imports(name: Module, path: Path, known: dict[Module, Path]) -> set[Module]:
    """Repository modules that ``name`` imports anywhere in its file."""
    tops = {m[0] for m in known if m}
    found: set[Module] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = tuple(alias.name.split("."))
                if target[0] in tops and (hit := _longest_known(target, known)):
                    found.add(hit)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package(name, path)
                if node.level - 1 > len(package):
                    continue  # beyond the top package: not ours
                base = package[:len(package) - (node.level - 1)]
            else:
                base = ()
                if not node.module or node.module.split(".")[0] not in tops:
                    continue
            base = (*base, *node.module.split(".")) if node.module else base
            for alias in node.names:
                if (*base, alias.name) in known:  # `from pkg import submodule`
                    found.add((*base, alias.name))
                elif base in known:  # a name defined in the module (or package __init__)
                    found.add(base)
    found.discard(name)  # `from . import x` of a name the package defines itself
    return found


def graph(root: Path) -> dict[Module, set[Module]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[Module, set[Module]]) -> Iterator[list[Module]]:
    """One cycle per strongly connected component that has one (Tarjan's algorithm)."""
    index: dict[Module, int] = {}
    low: dict[Module, int] = {}
    stack: list[Module] = []
    on_stack: set[Module] = set()
    components: list[list[Module]] = []

    def visit(node: Module) -> None:  # recursion depth is bounded by the module count
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    for component in components:
        if len(component) > 1:
            yield _path_back(min(component), set(component), edges)


def _path_back(start: Module, members: set[Module], edges: dict[Module, set[Module]]) -> list[Module]:
    """A shortest import path from ``start`` back to itself inside its component."""
    previous: dict[Module, Module] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(edges[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError("a strongly connected component without a cycle")


def display(name: Module) -> str:
    return ".".join(name) or "__init__"


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    edges = graph(root)
    found = list(cycles(edges))
    for cycle in found:
        print("import cycle: " + " -> ".join(display(m) for m in cycle))
    if found:
        return 1
    print(f"no import cycles among {len(edges)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
