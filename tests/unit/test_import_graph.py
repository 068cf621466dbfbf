"""The engine's imports flow one way: no module of the package (groundwork, groundwork.tasks, groundwork.checks)
imports, at any depth, one that imports it back (lazy imports and those for type checking count too: a cycle
there is a cycle in the design). And one namespace: nothing imports tasks/ or checks/ by their folder names."""

import ast
from pathlib import Path

from tests.conftest import PROJECT

PACKAGES = ("groundwork", "groundwork.tasks", "groundwork.checks")
# What must not be imported by name: the repository's folders that ship inside the package, and the lab's.
FOREIGN = ("tasks", "checks", "lab", "bench", "promises")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT / package.replace(".", "/")).glob("*.py")):
            found[package if path.name == "__init__.py" else f"{package}.{path.stem}"] = path
    return found


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def imports(path: Path, known: set[str]) -> set[str]:
    edges = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            # `from package import module` loads the package first, then the module
            edges |= {n for n in names if n in known}
        elif isinstance(node, ast.Import):
            edges |= {a.name for a in node.names if a.name in known}
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                found.append(sorted(group))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_import_graph_has_no_cycle():
    found = modules()
    graph = {name: imports(path, set(found)) - {name} for name, path in found.items()}
    assert sum(len(e) for e in graph.values()) > 50  # the graph was read
    assert cycles(graph) == []


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_package_imports_only_its_own_namespace():
    """An installed wheel has no top-level tasks or checks (nor the lab): an import of one would fail there."""
    strays = {f"{name}: {n}" for name, path in modules().items() for n in imported_names(path)
              if n.split(".")[0] in FOREIGN}
    assert strays == set()
