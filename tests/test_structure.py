"""The code's layout rules: no import cycles, layers that point one way, small files.

The import graph is read from the source with :mod:`ast` (nothing is
imported), so a lazy import inside a function counts as much as one at the
top: it runs too, only later. Names that ``chalicelib.lazy.lazy("...")``
loads by string are not seen; they name domain modules from ``app.py`` and
the handlers, which point the allowed way.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "benchmarks", "chalicelib", "infra", "localcloud", "ops")
MAX_LINES = 400

# package -> packages it must never import.
FORBIDDEN = {
    "chalicelib": {"chalice", "localcloud", "infra", "ops"},
    "ops": {"localcloud"},
}


def source_files() -> dict[str, Path]:
    """Every project module outside tests/, by dotted name (a package by its own name)."""
    files = {"app": ROOT / "app.py"}
    for package in PACKAGES[1:]:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def imported_names(module: str, path: Path) -> Iterable[str]:
    """Every absolute dotted name ``module`` imports, anywhere in the file.

    ``from a import b`` yields ``a.b``, which :func:`resolve` maps to module
    ``a.b`` or, when b is a name defined in a, to ``a``; relative imports are
    made absolute. The parent packages Python initialises on the way are not
    edges: a package's ``__init__`` that re-exports a submodule is no cycle.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                # A module's level 1 is its package; a package's is itself.
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop]
                base = ".".join(anchor + ([base] if base else []))
            yield from (f"{base}.{alias.name}" for alias in node.names)


def resolve(name: str, modules: set[str]) -> str | None:
    """The project module that importing ``name`` loads last (its longest module prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (never itself)."""
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = {resolve(name, modules) for name in imported_names(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages[top] |= {t.split(".")[0] for t in targets} - {top}
    return packages


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    found = source_files()
    # A broken walk would make every check below pass vacuously.
    assert {"app", "chalicelib.batch", "ops.events", "localcloud.runtime.streams"} <= set(found)
    return found


@pytest.fixture(scope="module")
def graph(files) -> dict[str, set[str]]:
    return import_graph(files)


def test_no_import_cycle_between_top_level_packages(graph):
    assert cycles(package_graph(graph)) == []


def test_no_import_cycle_between_modules(graph):
    assert cycles(graph) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_what_its_layer_forbids(files, package):
    offending = []
    for module, path in files.items():
        if module.split(".")[0] != package:
            continue
        for name in imported_names(module, path):
            if name.split(".")[0] in FORBIDDEN[package]:
                offending.append(f"{module} imports {name}")
    assert offending == []


def test_no_file_outside_tests_is_over_the_line_limit(files):
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in files.values()
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_the_cycle_finder_sees_a_cycle_through_a_lazy_relative_import(tmp_path):
    # GIVEN a package whose two modules import each other, one inside a function
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from . import a\n")
    files = {
        name: package / f"{name.split('.')[-1] if '.' in name else '__init__'}.py"
        for name in ("pkg", "pkg.a", "pkg.b")
    }
    # WHEN the graph is built THEN the cycle is found, and nothing else
    assert cycles(import_graph(files)) == [frozenset({"pkg.a", "pkg.b"})]


# What declaring, provisioning and describing a stack may load: not Chalice
# (only packaging needs it) and not Powertools (the functions' runtime), so
# that ops and the local cloud read the stack without either.
LIGHT_MODULES = ("infra.stack", "infra.provision", "infra.outputs", "infra.iam", "ops.target")


def test_declaring_and_provisioning_load_neither_chalice_nor_powertools():
    probe = (
        "import importlib, sys\n"
        f"for name in {LIGHT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'chalice', 'aws_lambda_powertools'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
