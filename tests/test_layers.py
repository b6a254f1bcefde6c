"""The package's layers (ARCHITECTURE.md): a module imports only from its own layer or the layers below it.

Checked with ``ast`` over every file of ``selfsup/``, late (in-function) imports included, so an upward import
added anywhere fails here. No exceptions are listed."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "selfsup"

# lowest first; the first part of the module path below selfsup/ (a package or a top-level module)
LAYERS = [
    ["errors", "registry"],
    ["ops"],
    ["config", "coercion", "space"],
    ["data"],
    ["augment"],
    ["backbones", "heads", "decoders", "losses"],
    ["methods"],
    ["train"],
    ["eval"],
    ["api"],
    ["experiments"],
    ["benchmark"],
    ["cli", "__main__", "__init__"],
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "selfsup":
                found += [(node.lineno, f"selfsup.{alias.name}") for alias in node.names]
            elif node.module.startswith("selfsup."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("selfsup.")]
    return found


def test_every_module_is_in_a_layer() -> None:
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert tops - set(RANK) == set(), "add the new module or package to LAYERS (and ARCHITECTURE.md)"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = "__init__" if relative == Path("__init__.py") else relative.parts[0].removesuffix(".py")
    upward = [f"line {line}: {module} ({layer_of(module)} is above {own})" for line, module in imports(path)
              if RANK[layer_of(module)] > RANK[own]]
    assert not upward, f"{relative} imports from a layer above its own: " + "; ".join(upward)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The test itself can fail: a config module importing the methods is reported."""
    module = tmp_path / "config.py"
    module.write_text("def f():\n    from selfsup.methods import get_method\n")
    assert [layer_of(m) for _, m in imports(module)] == ["methods"] and RANK["methods"] > RANK["config"]


def module_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (``from selfsup.x import name`` is an edge to the module
    ``selfsup.x.name`` where that is one, else to ``selfsup.x``; late imports included)."""
    def name_of(path: Path) -> str:
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in package.rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    edges.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
        graph[module] = {edge for edge in edges if edge in modules and edge != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
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


def test_no_module_imports_in_a_circle() -> None:
    assert cycles(module_graph(PACKAGE)) == []


def test_the_circle_check_finds_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "selfsup"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "catalog.py").write_text("from selfsup.data.folders import read_folder\n")
    (package / "data" / "folders.py").write_text("def f():\n    from selfsup.data.catalog import DATASETS\n")
    assert cycles(module_graph(package)) == [["selfsup.data.catalog", "selfsup.data.folders"]]
