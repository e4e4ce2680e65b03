"""The import graph of ``genre_daemon``: no cycle, and dependencies point one way (down the layers).

Every import counts, wherever it stands: at module level, inside a function (a call-time import
hides a cycle, it does not remove it) and under ``TYPE_CHECKING``. Read with :mod:`ast`, so
nothing is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "genre_daemon"

# Lowest first. A module may import its own sub-package and anything on a lower layer, never a
# neighbour on its own layer or anything above it.
LAYERS: list[set[str]] = [
    {"genre_daemon", "errors", "atomic", "names", "resources"},
    {"path_template"},
    {"config", "audio", "tags"},
    {"system", "model"},
    {"filing"},
    {"learning"},
    {"engines"},
    {"filer"},
    {"web"},
    {"daemon"},
    {"importer"},
    {"commands"},
    {"cli"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (absolute or relative, at any depth of the code)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    mods = all_modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer(module: str) -> int:
    c = component(module)
    for i, names in enumerate(LAYERS):
        if c in names:
            return i
    raise AssertionError(f"{module}: its sub-package {c!r} is on no layer; add it to LAYERS")


def upward(g: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(g.items()):
        for dst in sorted(targets):
            if component(src) != component(dst) and layer(dst) >= layer(src):
                bad.append(f"{src} -> {dst}")
    return bad


def test_the_package_has_no_import_cycle() -> None:
    g = graph()
    assert len(g) > 40  # the whole package was read
    assert cycles(g) == []


def test_dependencies_point_down_the_layers() -> None:
    assert upward(graph()) == []


def test_every_sub_package_is_on_a_layer() -> None:
    for module in all_modules():
        layer(module)


@pytest.mark.parametrize("source, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle(source, expected) -> None:
    assert cycles(source) == expected


def test_a_function_level_import_counts(tmp_path: Path) -> None:
    pkg = tmp_path / "genre_daemon"
    pkg.mkdir()
    (pkg / "low.py").write_text("def f():\n    from genre_daemon.high import g\n    return g\n")
    (pkg / "high.py").write_text("from . import low\n")
    known = {"genre_daemon.low", "genre_daemon.high"}
    found = {
        "genre_daemon.low": imports_of("genre_daemon.low", pkg / "low.py", known),
        "genre_daemon.high": imports_of("genre_daemon.high", pkg / "high.py", known),
    }
    assert cycles(found) == [["genre_daemon.high", "genre_daemon.low"]]
