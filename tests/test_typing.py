"""The public API is typed: every callable that ``dasjax.__all__`` and ``analysis.__all__`` export is
fully annotated, and mypy accepts the API used as the docs use it (tests/typing/public_api.py,
settings in pyproject.toml's [tool.mypy]) and refuses the wrong calls marked there."""
import ast
import inspect
import subprocess
import sys

import pytest

from conftest import ROOT

import analysis
import dasjax


def unannotated(obj) -> list[str]:
    """The parameters of ``obj`` without an annotation, and "return" when its return type is
    missing; [] for what the rule exempts.

    The rule: a function needs every parameter (``*args`` / ``**kwargs`` included; ``self`` and
    ``cls`` not) and its return annotated.  A class needs its ``__init__``'s parameters annotated
    (a dataclass's: its fields), except where ``__init__`` is not written in Python for it: one
    inherited from a builtin (an exception class) or a Protocol's placeholder (a protocol is never
    instantiated)."""
    if inspect.isclass(obj):
        init = obj.__init__
        if not inspect.isfunction(init) or getattr(obj, "_is_protocol", False):
            return []
        sig, need_return = inspect.signature(init), False
    else:
        sig, need_return = inspect.signature(obj), True
    missing = [p.name for p in sig.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if need_return and sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def exported_callables():
    for package in (dasjax, analysis):
        for name in package.__all__:
            obj = getattr(package, name)
            if callable(obj) and not inspect.ismodule(obj):
                yield f"{package.__name__}.{name}", obj


def test_every_exported_callable_is_fully_annotated():
    found = dict(exported_callables())
    assert len(found) > 60 and "dasjax.search" in found and "analysis.load_results" in found
    missing = {name: m for name, obj in found.items() if (m := unannotated(obj))}
    assert missing == {}, "annotate these parameters / return types (tests/test_typing.py says the rule)"


def test_the_rule_sees_a_missing_annotation():
    def typed(a: int, *rest: str, **kw: float) -> None: ...
    def untyped(a, b: int = 0): ...

    class Exported:
        def __init__(self, a, b: int) -> None: ...

    assert unannotated(typed) == []
    assert unannotated(untyped) == ["a", "return"]
    assert unannotated(Exported) == ["a"]
    assert unannotated(dasjax.SearchResult) == [] and unannotated(dasjax.InverseProblem) == []
    assert unannotated(analysis.ResultsFormatError) == []


def test_a_type_checker_sees_the_lazily_loaded_analysis_names():
    """analysis loads its names on first use (PEP 562), which a type checker cannot follow: the
    ``if TYPE_CHECKING:`` imports of analysis/__init__.py must name each one from its module."""
    tree = ast.parse((ROOT / "analysis" / "__init__.py").read_text())
    block = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    assert len(block) == 1
    typed = {a.name: node.module for node in block[0].body if isinstance(node, ast.ImportFrom)
             for a in node.names}
    assert typed == analysis._SUBMODULE


def test_mypy_accepts_the_public_api_as_documented(request):
    """About 20 s with an empty cache, 1-2 s with pytest's (.pytest_cache/d/mypy)."""
    pytest.importorskip("mypy")
    cache = request.config.cache.mkdir("mypy") if getattr(request.config, "cache", None) else \
        request.getfixturevalue("tmp_path")                  # pytest -p no:cacheprovider
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                          "--cache-dir", str(cache), "--no-error-summary"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
