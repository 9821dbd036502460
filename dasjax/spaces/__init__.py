"""Search spaces, registered by name.

A space is an object with the :class:`SearchSpace` interface, built by ``factory(space_config,
problem, share_f=..., plan=...)`` (``plan``: the :class:`dasjax.plan.ExecutionPlan` to hand to its
:class:`dasjax.ops.OpLayer`).  :func:`register_space` makes ``SpaceConfig(space=name)`` valid and
:func:`make_space` build it; search, retraining and the baselines use nothing else of a space.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from .. import options as component_options
from ..plan import plan_for
from ..registry import SPACES
from .cell import CellSpace
from .sequential import SequentialSpace

if TYPE_CHECKING:
    from ..config import Config
    from ..plan import ExecutionPlan
    from ..problems import InverseProblem


@runtime_checkable
class SearchSpace(Protocol):
    """What search, retraining, evaluation and the results use of a search space.

    ``weights`` are softmax(alpha) in the supernet and a one-hot architecture in a discrete
    network, so one ``apply`` serves both (and architectures batch together)."""
    kind: str                     # the registered name
    ops: tuple[str, ...]          # alpha's columns (the candidates of every row)
    layer: Any                    # the OpLayer of one row (its n_slots / f_slots: F sharing)
    problem: Any                  # the InverseProblem

    @property
    def arch_shape(self) -> tuple[int, int]: ...                    # (rows, candidates)
    def init(self, key): ...                                         # -> (params, state)
    def init_alpha(self, key): ...
    def weights(self, alpha): ...                                    # alpha -> mixing weights
    def apply(self, params, state, weights, batch, key, train: bool): ...   # -> (x_hat, state)
    def discretize(self, alpha): ...                                 # -> one-hot (rows, candidates)
    def random_architecture(self, key): ...
    def fixed_architecture(self, op: str): ...                       # every row uses op
    def arch_string(self, one_hot) -> str: ...
    def parse_arch(self, text: str): ...


def register_space(name: str, factory: Callable[..., Any], replace: bool = False,
                   options: type | None = None) -> None:
    """Make ``SpaceConfig(space=name)`` build ``factory(space_config, problem, share_f=..., plan=...)``.
    ``options``: a dataclass of the space's own config fields, set with ``space_options`` and read
    with :func:`dasjax.space_options` (:mod:`dasjax.options`)."""
    if not callable(factory):
        raise ValueError(f"space {name!r}: the factory must be callable, got {factory!r}")
    component_options.check_declaration("space", name, options)
    SPACES.add(name, factory, replace=replace)
    component_options.declare("space", name, options)


def unregister_space(name: str) -> None:
    SPACES.remove(name)
    component_options.declare("space", name, None)


def space_names() -> tuple[str, ...]:
    return SPACES.names()


SPACES.add("sequential", SequentialSpace, builtin=True)
SPACES.add("cell", CellSpace, builtin=True)


def _takes_plan(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return True
    return any(p.name == "plan" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def make_space(cfg: Config, problem: InverseProblem, share_f: bool = False, plan: ExecutionPlan | None = None,
               n_devices: int = 1) -> SearchSpace:
    """The search space named by ``cfg.space.space``, from the registry.  ``plan``: the
    :class:`dasjax.plan.ExecutionPlan` its layers compute with (None: :func:`dasjax.plan.plan_for`
    ``cfg`` with its trials on ``n_devices`` devices)."""
    plan = plan_for(cfg, n_devices) if plan is None else plan
    factory = SPACES.get(cfg.space.space)
    # a factory written before spaces took a plan (no plan= parameter) still works: its layers then
    # use the defaults for this backend, one trial per device
    kw = {"plan": plan} if _takes_plan(factory) else {}
    space = factory(cfg.space, problem, share_f=share_f, **kw)
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space {cfg.space.space!r}: the factory returned {type(space).__name__}, which lacks "
                        "part of the SearchSpace interface (dasjax.spaces.SearchSpace)")
    return space


__all__ = ["CellSpace", "SequentialSpace", "SPACES", "SearchSpace", "make_space", "register_space",
           "space_names", "unregister_space"]
