"""The shape of the code a newcomer relies on (issue 19): no import cycle between two
modules, lazy imports inside functions included (import-linter's contracts in
pyproject.toml keep the packages' layers; this keeps the modules'), and no module over
400 lines outside the migrations."""

from __future__ import annotations

from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[1] / "digest"


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import one another (Tarjan's strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph.find_modules_directly_imported_by(module)):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_two_modules_import_each_other() -> None:
    graph = grimp.build_graph("digest", cache_dir=None, exclude_type_checking_imports=True)
    assert len(graph.modules) > 100  # the whole package was read
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_made_by_a_lazy_import() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a", line_number=40, line_contents="x")
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_no_module_is_over_400_lines_outside_the_migrations() -> None:
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}
