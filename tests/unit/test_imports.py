"""The layout's import rules, checked on the real modules: the CLI and the middleware start
without libtorrent, and no module of peerweb imports another that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "peerweb"


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["peerweb.cli", "peerweb.spike.middleware",
                                    "peerweb.http.control_client", "peerweb.content.pointer"])
def test_lean_modules_do_not_load_libtorrent(module: str) -> None:
    assert "libtorrent" not in loaded_after(f"import {module}")


def test_the_cli_does_not_load_aiohttp_until_a_command_needs_it() -> None:
    loaded = loaded_after("import peerweb.cli")
    assert not {m for m in loaded if m == "aiohttp" or m.startswith("aiohttp.")}


def test_only_the_swarm_imports_libtorrent() -> None:
    importers = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "libtorrent" or n.startswith("libtorrent.") for n in names):
                importers.add(path.relative_to(SRC).parts[0])
    assert importers == {"swarm"}


def _imports(path: Path) -> set[str]:
    """peerweb modules a file imports, as dotted names (relative imports resolved)."""
    package = ["peerweb", *path.relative_to(SRC).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _module_file(candidate) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("peerweb") and _module_file(m)}


def _module_file(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    file = SRC.joinpath(*parts).with_suffix(".py") if parts else SRC / "__init__.py"
    package = SRC.joinpath(*parts, "__init__.py")
    return file if file.exists() else package if package.exists() else None


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        name = ".".join(["peerweb", *[p for p in rel.parts if p != "__init__"]])
        graph[name] = _imports(path) - {name}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(name: str, trail: list[str]) -> bool:
        state[name] = 1
        for nxt in sorted(graph.get(name, ())):
            if state.get(nxt) == 1:
                cycle.extend([*trail, name, nxt])
                return True
            if nxt not in state and visit(nxt, [*trail, name]):
                return True
        state[name] = 2
        return False

    for name in sorted(graph):
        if name not in state and visit(name, []):
            break
    assert not cycle, " -> ".join(cycle)
