"""The engine's layering rules, checked on the code itself (docs/ARCHITECTURE.md):

* the pure modules import no I/O or logging library; config (with config_file and credentials),
  which reads glancesync.conf, and image, which reads backup CSV files, use only the file system
  (``os``/``io``), never the network or logging (credentials reaches clouds.yaml only through
  clouds, which imports openstacksdk lazily);
* no module of the engine package except the facades takes a ``warn``/``logger`` argument or
  configures logging (only the shells do);
* nothing in the engine package imports from a layer above it (``facades`` import no
  engine-side module but the value/config ones).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fiwareglancesync" / "glancesync"
PURE = ("ami", "condition", "obsolete", "plan", "region", "selection", "status")
FILE_READERS = ("config", "config_file", "credentials", "image")
IO_LIBRARIES = {"logging", "os", "io", "socket", "requests", "urllib", "http", "subprocess", "threading",
                "keystoneauth1", "glanceclient", "keystoneclient", "sqlalchemy", "flask", "shutil", "tempfile"}
# What a facade may use of the engine package: values, configuration, errors, keystone rules.
FACADE_MAY_IMPORT = {"image", "region", "config", "errors", "keystone", "facades", "condition", "identity"}


@functools.lru_cache(maxsize=None)
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def imports(path: Path) -> set[str]:
    """Top-level names of absolute imports, and ``.x`` names of relative ones (``..image`` -> ``.image``)."""
    names = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                module = (node.module or "").split(".")[0]
                names |= {"." + module} if module else {"." + alias.name for alias in node.names}
            else:
                names.add(node.module.split(".")[0])
    return names


def engine_modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_no_io_library(module):
    assert imports(PACKAGE / f"{module}.py") & IO_LIBRARIES == set()


@pytest.mark.parametrize("module", FILE_READERS)
def test_file_readers_use_only_the_file_system(module):
    assert imports(PACKAGE / f"{module}.py") & IO_LIBRARIES <= {"os", "io"}


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_warn_or_logger_parameters_and_no_logging_configuration(path):
    for node in ast.walk(tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            params = [a.arg for a in node.args.args + node.args.kwonlyargs]
            assert not {"warn", "logger", "log"} & set(params), f"{path.name}:{node.lineno} {node.name}{params}"
        if isinstance(node, ast.Attribute) and node.attr in ("basicConfig", "addHandler", "setLevel", "dictConfig"):
            pytest.fail(f"{path.name}:{node.lineno} configures logging ({node.attr})")


FACADES = PACKAGE / "facades"


@pytest.mark.parametrize("path", sorted(FACADES.rglob("*.py")), ids=lambda p: str(p.relative_to(FACADES)))
def test_facades_import_nothing_from_the_engine_layers_above_them(path):
    relative = {name[1:] for name in imports(path) if name.startswith(".") and name != "."}
    own = {p.stem for p in FACADES.rglob("*.py")} | {p.parent.name for p in FACADES.rglob("__init__.py")}
    assert relative <= FACADE_MAY_IMPORT | own, relative


# ---------------------------------------------------------------- no import circle
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its body, lazy imports too).
    ``from package import name`` counts as an import of ``package.name`` when that is a module,
    else of the package; migrations (Alembic scripts) are left out."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py") if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names if alias.name in paths}
            elif isinstance(node, ast.ImportFrom):
                parent = base[:len(base) - node.level + 1] if node.level else []
                prefix = ".".join(parent + ([node.module] if node.module else []))
                for alias in node.names:
                    target = f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in paths else prefix
                    if target in paths and target != name:
                        deps.add(target)
        graph[name] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert "fiwareglancesync.app.state" in graph and graph["fiwareglancesync.app.state"]
    assert circles(graph) == []
