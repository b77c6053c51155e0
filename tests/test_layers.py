"""Layers point one way: the package's modules import each other without a
circle, typing-only and function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sessions_dal"
# The public layer and above: nothing below may name them, even for typing.
UPPER = {"sessions_dal.cli", "sessions_dal.agents", "sessions_dal.repository",
         "sessions_dal.session", "sessions_dal"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the package, and the modules of the package it imports."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
                candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
                found.add(next(c for c in candidates if c in modules))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "sessions_dal"):
                found.add(node.module or "")
        graph[name] = found - {name}
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = imports()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                cycles.append(" -> ".join([*path, nxt]))
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its least name
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def test_lower_layers_never_name_the_public_classes_or_the_command_line() -> None:
    for name, targets in imports().items():
        if name in UPPER or name == "sessions_dal.__main__":
            continue
        assert not targets & UPPER, f"{name} imports {sorted(targets & UPPER)}"


def test_the_walk_sees_imports_of_every_kind() -> None:
    graph = imports()
    assert "sessions_dal.transfer" in graph["sessions_dal.repository"]
    assert "sessions_dal.backends" in graph["sessions_dal.repository"]
    assert "sessions_dal._search" in graph["sessions_dal._store"]  # for typing only
    assert "sessions_dal._store" in graph["sessions_dal.backends.sqlite"]  # `from ... import`


def _method_bodies(path: Path, cls: str) -> dict[str, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    return {f.name: ast.dump(ast.Module(body=f.body, type_ignores=[]))
            for f in node.body if isinstance(f, ast.FunctionDef)}


def test_no_method_is_written_alike_in_both_stores() -> None:
    # What both backends would write alike belongs in backends/_shared.py, once.
    backends = PACKAGE / "backends"
    for cls, other in [("PostgresStore", "SQLiteStore"), ("_Exporter", "_Exporter"),
                       ("_Importer", "_Importer")]:
        postgres = _method_bodies(backends / "postgres" / "store.py", cls)
        sqlite = _method_bodies(backends / "sqlite" / "store.py", other)
        assert len(postgres) > 1 and len(sqlite) > 1
        alike = sorted(name for name in postgres.keys() & sqlite.keys()
                       if postgres[name] == sqlite[name])
        assert alike == [], f"{cls}.{alike} has the same body in both stores"
