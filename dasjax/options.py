"""Config fields a registered component brings with it: a user's problem, search space or op.

A component declares its options as a frozen dataclass whose every field has a default (and
whose ``__post_init__`` may refuse bad values).  The config carries the overrides as sorted
``(name, value)`` pairs, ``problem_options``, ``space_options`` and ``op_options`` (keys
``"<op>.<name>"``), checks them against the declaration when it is built, and saves them with
the rest of the config; ``--set problem_options.width=3`` reaches them from the shell.  The
component reads its values with :func:`problem_options`, :func:`space_options` or
:func:`op_options`::

    @dataclasses.dataclass(frozen=True)
    class MaskOptions:
        keep: float = 0.5                       # share of samples observed

    dasjax.register_problem("inpainting", Inpainting, options=MaskOptions)
    cfg = dasjax.make_config(problem="inpainting", problem_options={"keep": 0.3})
    # inside Inpainting(cfg): dasjax.problem_options(cfg).keep == 0.3

This module imports nothing from dasjax, so the config checks options without importing the
modules that register components.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config, ProblemConfig, SpaceConfig

# (kind, name) -> the options dataclass a component declared; kind: "problem", "space" or "op"
_DECLARED: dict[tuple[str, str], type] = {}
_FIELD = {"problem": "problem_options", "space": "space_options", "op": "op_options"}


def declare(kind: str, name: str, options: type | None) -> None:
    """Record that component ``name`` of ``kind`` takes ``options`` (None: takes none)."""
    check_declaration(kind, name, options)
    if options is None:
        _DECLARED.pop((kind, name), None)
    else:
        _DECLARED[(kind, name)] = options


def check_declaration(kind: str, name: str, options: type | None) -> None:
    """Refuse an options type that is not a dataclass whose fields all have valid defaults."""
    if kind not in _FIELD:
        raise ValueError(f"kind {kind!r} must be one of {sorted(_FIELD)}")
    if options is None:
        return
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise TypeError(f"{kind} {name!r}: options must be a dataclass type, got {options!r}")
    no_default = [f.name for f in dataclasses.fields(options)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if no_default:
        raise ValueError(f"{kind} {name!r}: every option needs a default; {no_default} have none")
    options()                                   # the defaults must pass the options' own checks


def as_pairs(value, field_name: str) -> tuple:
    """A dict {name: value} or (name, value) pairs -> sorted pairs (the config's hashable form)."""
    items = value.items() if isinstance(value, dict) else [tuple(p) for p in value]
    if any(len(p) != 2 or not isinstance(p[0], str) for p in items):
        raise ValueError(f"{field_name}={value!r} must be a dict {{option: value}} or (name, value) pairs")
    return tuple(sorted((str(k), _hashable(v)) for k, v in items))


def _hashable(value):
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def coerce(owner: str, name: str, value, default):
    """``value`` in the type of the option's default (a float option stores floats, an integer
    option integers), or ValueError naming ``owner``."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{owner}: option {name}={value!r} must be a finite number")
    if isinstance(default, int):
        if float(value) != int(value):
            raise ValueError(f"{owner}: option {name}={value!r} must be an integer")
        return int(value)
    return float(value)


def build(kind: str, name: str, overrides: dict) -> Any:
    """The options of component ``name``: its declared defaults with ``overrides`` on top
    (None when it declares none and nothing is overridden).  Unknown names raise ValueError
    naming the closest ones."""
    owner = f"{kind} {name!r}"
    options = _DECLARED.get((kind, name))
    if options is None:
        if overrides:
            raise ValueError(f"{_FIELD[kind]}: {owner} declares no options, got {sorted(overrides)} "
                             f"(declare them with the options= argument of its registration)")
        return None
    fields = {f.name: f for f in dataclasses.fields(options)}
    defaults = options()
    for key in overrides:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"{_FIELD[kind]}: {owner} has no option {key!r}{hint} (its options: {sorted(fields)})")
    values = {k: coerce(f"{_FIELD[kind]}: {owner}", k, v, getattr(defaults, k)) for k, v in overrides.items()}
    try:
        return options(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{_FIELD[kind]}: {owner}: {err}") from None


def split_op_pairs(pairs) -> dict[str, dict]:
    """``op_options`` pairs ("<op>.<name>", value) -> {op: {name: value}}."""
    out: dict[str, dict] = {}
    for key, value in pairs:
        op, dot, option = key.partition(".")
        if not dot or not op or not option:
            raise ValueError(f"op_options key {key!r} must look like '<op>.<option>', e.g. 'shrink.threshold'")
        out.setdefault(op, {})[option] = value
    return out


def problem_options(problem_cfg: ProblemConfig | Config) -> Any:
    """The options of the problem a ``ProblemConfig`` (or a whole config) names."""
    cfg = problem_cfg if hasattr(problem_cfg, "problem_options") else problem_cfg.problem
    return build("problem", cfg.name, dict(cfg.problem_options))


def space_options(space_cfg: SpaceConfig | Config) -> Any:
    """The options of the space a ``SpaceConfig`` (or a whole config) names."""
    cfg = space_cfg if hasattr(space_cfg, "space_options") else space_cfg.space
    return build("space", cfg.space, dict(cfg.space_options))


def op_options(space_cfg: SpaceConfig | Config, op: str) -> Any:
    """The options of op ``op`` under a ``SpaceConfig`` (what ``OpInputs.cfg`` holds) or a whole config."""
    cfg = space_cfg if hasattr(space_cfg, "op_options") else space_cfg.space
    return build("op", op, split_op_pairs(cfg.op_options).get(op, {}))
