"""The tree shows the architecture: no import circles, benchmarks beside the product, not inside it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("gateway", "nlu_models", "knowledge_base", "connectors", "actions")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in (*PRODUCT, "bench"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """Modules a file imports (``from a import b`` names both ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    return {name: {d for d in _imports(path, module_level_only) if d in modules and d != name}
            for name, path in modules.items()}


def _unit(module: str) -> str:
    """A module's unit of the architecture: its sub-package (``gateway.learning``) or top-level module."""
    return ".".join(module.split(".")[:2])


def test_no_two_parts_of_the_product_import_each_other() -> None:
    # Lazy imports inside functions count too: they hide a circle, they do not remove it.
    edges = {(_unit(m), _unit(d)) for m, deps in _graph(module_level_only=False).items() for d in deps}
    circles = sorted({tuple(sorted(pair)) for pair in edges if pair[0] != pair[1] and pair[::-1] in edges})
    assert not circles, f"parts that import each other: {circles}"


def test_the_learning_loop_does_not_import_the_stack_runner() -> None:
    graph = _graph(module_level_only=False)
    offenders = [m for m, deps in graph.items() if m.startswith("gateway.learning") and "gateway.stack" in deps]
    assert not offenders


def test_benchmarks_live_in_bench_and_the_product_never_imports_them() -> None:
    modules = _modules()
    inside = [name for name in modules if name.split(".")[0] in PRODUCT and "bench" in name.split(".")[-1]]
    assert not inside, f"benchmarks inside product packages: {inside}"
    graph = _graph(module_level_only=False)
    users = [m for m, deps in graph.items() if m.split(".")[0] in PRODUCT and any(d.split(".")[0] == "bench" for d in deps)]
    assert not users, f"product modules importing benchmarks: {users}"
