"""The package's shape (docs/architecture.md), read from its source with `ast`: no import cycle between its
modules (imports inside functions count), no module over 700 lines, at most 16 modules at the package root,
one module that opens tars, and the layer rules (stages never import executors; nothing below the build loop
imports a command; the readers never import the build loop)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ltxa_data"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def _imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at module level or inside functions."""
    mods = _modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("ltxa_data")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                if base.startswith("ltxa_data"):
                    names = [f"{base}.{a.name}" for a in node.names]
            for n in names:
                t = owner(n)
                if t and t != m and not t.startswith(m + "."):
                    edges[m].add(t)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                return [*stack[stack.index(t):], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_deferred_imports_included() -> None:
    assert _cycle(_imports()) is None, f"import cycle: {' -> '.join(_cycle(_imports()) or [])}"


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_module_sizes_and_the_package_root() -> None:
    long = {m: n for m, f in _modules().items() if (n := len(f.read_text().splitlines())) > 700}
    assert not long, f"modules over 700 lines: {long}"
    root = [f.name for f in PACKAGE.glob("*.py") if f.name != "__init__.py"]
    assert len(root) <= 16, f"{len(root)} modules at the package root: {sorted(root)}"


def test_one_module_opens_tars() -> None:
    users = sorted(m for m, f in _modules().items()
                   if any((isinstance(n, ast.Import) and any(a.name == "tarfile" for a in n.names))
                          or (isinstance(n, ast.ImportFrom) and n.module == "tarfile")
                          for n in ast.walk(ast.parse(f.read_text()))))
    assert users == ["ltxa_data.shard_format"], users


def test_the_layer_rules() -> None:
    edges = _imports()

    def under(m: str, *prefixes: str) -> bool:
        return any(m == p or m.startswith(p + ".") for p in prefixes)

    stages_to_executors = [(m, t) for m, ts in edges.items() for t in ts
                           if under(m, "ltxa_data.stages") and under(t, "ltxa_data.executors")]
    assert not stages_to_executors, stages_to_executors
    commands = ("ltxa_data.commands", "ltxa_data.cli")
    to_commands = [(m, t) for m, ts in edges.items() for t in ts if under(t, *commands) and not under(m, *commands)]
    assert not to_commands, to_commands
    readers_to_build_loop = [(m, t) for m, ts in edges.items() for t in ts
                             if under(m, "ltxa_data.reporting", "ltxa_data.corpus", "ltxa_data.evaluation")
                             and t == "ltxa_data.pipeline"]
    assert not readers_to_build_loop, readers_to_build_loop
    # The report shows the evals' results; the eval never writes the report itself (the command does).
    evaluation_to_reporting = [(m, t) for m, ts in edges.items() for t in ts
                               if under(m, "ltxa_data.evaluation") and under(t, "ltxa_data.reporting")]
    assert not evaluation_to_reporting, evaluation_to_reporting
    executors_to_stages = [(m, t) for m, ts in edges.items() for t in ts
                           if under(m, "ltxa_data.executors") and under(t, "ltxa_data.stages")]
    assert not executors_to_stages, executors_to_stages
