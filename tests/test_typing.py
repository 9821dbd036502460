"""The public API is typed: every callable that ``dasjax.__all__`` and ``analysis.__all__`` export is
fully annotated, and so is every public method of an exported class, and mypy accepts the API used
as the docs use it (tests/typing/public_api.py, settings in pyproject.toml's [tool.mypy]) and
refuses the wrong calls marked there."""
import ast
import functools
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


OUR_PACKAGES = ("dasjax", "analysis")


def public_methods(cls, packages: tuple[str, ...] = OUR_PACKAGES) -> dict[str, object]:
    """The public methods of ``cls`` that our own code defines, by ``module.qualname`` (where the
    annotation goes): {"dasjax.problems.Problem.forward": <function>, ...}.

    Public: the name does not start with "_" (dunders included: ``__init__`` is the class's own
    rule, the others are protocol plumbing).  A method: a plain function, the function of a
    classmethod or staticmethod, a property's getter / setter / deleter, a cached_property's
    function: a property is read like a method that takes nothing, so its value's type is
    annotated too.  Defined in our code: the function's ``__module__`` is in dasjax or analysis,
    wherever in the MRO it sits (a base of ours that is not exported counts: its methods are the
    class's; ``packages`` says which are ours); what comes from builtins, the standard library or
    third-party bases (tuple's ``count``, flax.struct's ``replace``, Protocol and dataclass
    machinery) is skipped."""
    found = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (classmethod, staticmethod)):
            functions = [raw.__func__]
        elif isinstance(raw, property):
            functions = [raw.fget, raw.fset, raw.fdel]
        elif isinstance(raw, functools.cached_property):
            functions = [raw.func]
        else:
            functions = [raw]
        for fn in functions:
            if inspect.isfunction(fn) and fn.__module__.split(".")[0] in packages:
                found[f"{fn.__module__}.{fn.__qualname__}"] = fn
    return found


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


def exported_methods() -> dict[str, object]:
    return {qualname: fn for _, obj in exported_callables() if inspect.isclass(obj)
            for qualname, fn in public_methods(obj).items()}


def test_every_public_method_of_an_exported_class_is_fully_annotated():
    """Every public method our code defines on an exported class (see :func:`public_methods`:
    methods, class- and staticmethods, properties) has its parameters and return annotated."""
    found = exported_methods()
    assert len(found) > 60 and {
        "dasjax.problems.InverseProblem.forward", "dasjax.problems.Problem.sample", "dasjax.problems.Problem.matrix",
        "dasjax.stages.SearchResult.to_dataframe", "dasjax.hparams.HParamSet.replace",
        "dasjax.config.Config.replace", "dasjax.config.Config.from_dict", "dasjax.program.BatchedProgram.cache_key",
        "analysis.tables.Table.to_markdown"} <= set(found)
    assert not any(".__" in name or name.startswith(("flax.", "typing.", "builtins.")) for name in found)
    missing = {name: m for name, fn in found.items() if (m := unannotated(fn))}
    assert missing == {}, "annotate these methods' parameters / return types (tests/test_typing.py says the rule)"


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


def test_the_method_walker_sees_a_missing_annotation():
    class Base:
        def inherited(self, a): ...

    class Exported(Base, tuple):
        def typed(self, a: int) -> int: ...
        def untyped(self, a, b: int = 0) -> None: ...
        @classmethod
        def make(cls, a) -> "Exported": ...
        @staticmethod
        def helper(a: int): ...
        @property
        def size(self): ...
        @functools.cached_property
        def total(self) -> int: ...
        def _private(self, a): ...

    found = {name.rsplit(".", 1)[1]: fn for name, fn in public_methods(Exported, (Exported.__module__,)).items()}
    assert set(found) == {"inherited", "typed", "untyped", "make", "helper", "size", "total"}
    missing = {name: m for name, fn in found.items() if (m := unannotated(fn))}
    assert missing == {"inherited": ["a", "return"], "untyped": ["a"], "make": ["a"], "helper": ["return"],
                       "size": ["return"]}
    assert set(public_methods(analysis.Edge)) == set()        # a NamedTuple: tuple's count / index are not ours


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
