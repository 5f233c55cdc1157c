"""Import hygiene: a fast CLI start-up, lazy package re-exports, no import cycle inside ``optical``."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "optical"
HEAVY = ("torch", "transformers", "sentence_transformers", "accelerate", "faiss", "matplotlib", "scipy")


def _heavy_modules_after(code: str) -> list[str]:
    """The heavy top-level packages a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_importing_the_cli_loads_no_heavy_library():
    assert _heavy_modules_after("import optical.cli") == []


def test_cli_help_loads_no_heavy_library():
    """``optical --help`` builds every subcommand's parser: the subcommand modules must import
    the package API inside their handlers (or import only light modules at module level)."""
    assert _heavy_modules_after("import optical.cli\noptical.cli.build_parser()") == []


# -- lazy re-exports ----------------------------------------------------------------------------

LAZY_PACKAGES = (
    "optical.data",
    "optical.models",
    "optical.ot",
    "optical.losses",
    "optical.train",
    "optical.eval",
    "optical.study",
)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_exports_every_public_name(package):
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_importing_a_package_imports_none_of_its_submodules(package):
    probe = f"import sys, {package}\nprint(sorted(m for m in sys.modules if m.startswith('{package}.')))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_reexported_function_wins_over_its_same_named_submodule():
    """``optical.eval.evaluate`` is a module and a function; the package gives the function
    whichever is imported first (as the eager ``__init__`` did)."""
    probe = (
        "import optical.eval.evaluate\n"
        "from optical.eval import evaluate\n"
        "from optical.eval.evaluate import evaluate as function\n"
        "assert evaluate is function, evaluate\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_sinkhorn_module_is_private_and_the_function_public():
    from optical.ot import OTResult, sinkhorn
    from optical.ot._sinkhorn import sinkhorn as defined

    assert sinkhorn is defined and callable(sinkhorn) and OTResult.__module__ == "optical.ot._sinkhorn"


# -- no import cycle --------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_statements(body: list[ast.stmt]):
    """Import statements executed when the module is imported: at module level, in class bodies
    and in if/try/with blocks, but not in function bodies nor under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _import_time_statements(block)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _import_time_statements(node.body)


def _lazy_exports(package: str) -> dict[str, str]:
    """name -> defining module of a package ``__init__`` that re-exports with ``optical._lazy.attach``."""
    path = MODULES.get(package)
    if path is None or path.name != "__init__.py":
        return {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach" and len(node.args) == 2:
            mapping = ast.literal_eval(node.args[1])
            return {name: module for module, names in mapping.items() for name in names}
    return {}


def _every_import_statement(body: list[ast.stmt]):
    """Every import statement of a module: also those in function bodies and under ``if TYPE_CHECKING:``."""
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def _imports_of(module: str, statements=_import_time_statements) -> set[str]:
    """The ``optical`` modules that ``module`` imports directly, by the import ``statements`` counted."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in statements(ast.parse(path.read_text(encoding="utf-8")).body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        targets.add(base)
        lazy = _lazy_exports(base)
        for alias in node.names:
            if f"{base}.{alias.name}" in MODULES:
                targets.add(f"{base}.{alias.name}")
            elif alias.name in lazy:
                targets.add(lazy[alias.name])  # the attribute access imports its module right away
    return {target for target in targets if target in MODULES and target != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_inside_optical():
    graph = {module: _imports_of(module) for module in MODULES}
    assert {"optical", "optical.errors"} <= graph["optical.cli"]  # `from optical import __version__`
    assert "optical.data.bitext" in graph["optical.train.trainer"]  # seen through the lazy optical.data
    cycles = _cycles(graph)
    described = [" <-> ".join(component) for component in cycles]
    assert not cycles, "import cycles (module-level imports): " + "; ".join(described)


def test_no_import_cycle_even_through_deferred_imports():
    """A deferred import (in a function, or for type checking only) breaks a cycle at import time but not the
    dependency: two modules that need each other are one module split in two. Layers depend one way."""
    graph = {module: _imports_of(module, _every_import_statement) for module in MODULES}
    assert "optical.train.precision" in graph["optical.train.config"]  # imported inside a method
    described = [" <-> ".join(component) for component in _cycles(graph)]
    assert not described, "import cycles (counting deferred imports): " + "; ".join(described)
