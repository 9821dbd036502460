"""The package's import graph: no cycles inside dasjax/ or analysis/; analysis never imports dasjax, and
dasjax loads only the results-folder format of analysis (analysis.files, the standard library only)
when it is imported, except its commands (dasjax/cli.py and the runners, dasjax/runners/), which also
write the analysis's tables, figures and reports; a function may import more when it is called
(``dasjax.load_results`` reads a folder with the analysis's loader).

An import under ``if TYPE_CHECKING:`` (for annotations only, never run) may close a cycle, but it
still counts for the two packages staying apart."""
import ast
import sys
from pathlib import Path

from conftest import ROOT


def _module(path: Path, pkg_root: Path) -> str:
    rel = path.relative_to(pkg_root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def type_checking_imports(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside an ``if TYPE_CHECKING:`` block (annotations only)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            found |= {id(n) for stmt in node.body for n in ast.walk(stmt)
                      if isinstance(n, (ast.Import, ast.ImportFrom))}
    return found


def import_graph(package: str, run_time: bool = False) -> dict[str, set[str]]:
    """module -> the modules of the same top-level package it imports (anywhere in the file,
    function-level imports included), from the source alone; ``run_time``: without the imports
    under ``if TYPE_CHECKING:``."""
    root = ROOT / package
    modules = {_module(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        deps = set()
        tree = ast.parse(path.read_text())
        skip = type_checking_imports(tree) if run_time else set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[:len(base) - node.level + 1]
                    mod = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                top = t.split(".")[0]
                if top in ("dasjax", "analysis"):
                    while t and t not in modules and t.split(".")[0] in ("dasjax", "analysis"):
                        t = t.rsplit(".", 1)[0] if "." in t else ""
                    if t or top != package:
                        deps.add(t or top)
        deps.discard(name)
        graph[name] = deps
    return graph


def import_time_nodes(tree: ast.AST):
    """Every node that runs when the module is imported: not the bodies of functions."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [c for c in ast.iter_child_nodes(node)
                 if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (the package __init__ is skipped: it gathers the API)."""
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if d not in graph or "." not in d:           # another package, or a package __init__
                continue
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state and "." in n:
            visit(n)
    return found


def test_no_import_cycles_and_the_two_packages_stay_apart():
    assert cycles(import_graph("dasjax", run_time=True)) == []
    assert cycles(import_graph("analysis", run_time=True)) == []
    analysis_graph = import_graph("analysis")
    assert not {d for deps in analysis_graph.values() for d in deps if d.split(".")[0] == "dasjax"}
    from_analysis = set()
    for path in (ROOT / "dasjax").rglob("*.py"):
        if path.name == "cli.py" or path.parent.name == "runners":    # the commands reach the analysis too
            continue
        for n in import_time_nodes(ast.parse(path.read_text())):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                     [n.module] if isinstance(n, ast.ImportFrom) and not n.level and n.module else [])
            from_analysis |= {m for m in names if m.split(".")[0] == "analysis"}
    assert from_analysis == {"analysis.files"}
    assert analysis_graph["analysis.files"] == set()
    tree = ast.parse((ROOT / "analysis" / "files.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
