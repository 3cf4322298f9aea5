"""The package's import graph has no cycles, and every module imports on its own.

A cycle works until someone moves an import from a function to the top of a
module, then fails at import time far from that edit. So every import counts
here: at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "erasure"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The erasure modules ``name`` imports anywhere in its source (``from erasure.x import y``
    counts ``erasure.x.y`` when that is a module, else ``erasure.x``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles_and_only_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"b"}}) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [["a", "b"], ["c", "d"]]


def test_the_import_reader_sees_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from erasure.config import Config\n"
        "def f():\n    from erasure import audit\n    import erasure.state\n"
        "from erasure.parse import headers\n"
    )
    assert imports_of("erasure.x", source) >= {"erasure.config", "erasure.audit", "erasure.state", "erasure.parse.headers"}


def test_no_module_imports_itself_back_through_another() -> None:
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    assert cycles(graph) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith(("erasure.migrations", "erasure.__main__"))))  # Alembic loads those; __main__ runs the CLI
def test_each_module_imports_first_in_a_fresh_interpreter(name: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, check=False,
                            cwd=PACKAGE.parent, timeout=120)
    assert result.returncode == 0, result.stderr
