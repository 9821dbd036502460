"""Candidate operations as records, registered by name.

An :class:`Operation` says what an op computes from its inputs (:class:`OpInputs`) and what it
needs: a CNN F of its own, a step size tau, the data-term gradient A^T(Ax - y), parameters of its
own.  :class:`dasjax.ops.OpLayer` evaluates any registered op, so a new op is one
:func:`register_op` call in user code::

    import jax.numpy as jnp
    from dasjax.operations import Operation, register_op

    def soft_threshold(inp):                   # x - tau * g, then shrink towards 0 by lam
        z = inp.x - inp.step * inp.data_grad
        lam = jnp.abs(inp.params["lam"])
        return jnp.sign(z) * jnp.maximum(jnp.abs(z) - lam, 0.0)

    register_op(Operation("ista", soft_threshold, label="ISTA", step=True, needs_data_grad=True,
                          init=lambda key, cfg, problem: {"lam": jnp.asarray(0.01)},
                          preserves_zero=False))

    cfg = dasjax.make_config(op_set=("lg", "net", "ista"))

The paper's five ops (lg, net, roll, noise, and the cell space's zero) are registered below in
the same way, in the shared :class:`dasjax.registry.Registry` ``OPS``.  This module imports
nothing else from dasjax, so the config can validate op names against the registry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp

from . import options as component_options
from .registry import OPS

if TYPE_CHECKING:
    from .config import SpaceConfig


@dataclass(frozen=True)
class OpInputs:
    """What an op's ``apply`` receives.  Fields an op did not ask for are None."""
    x: Any                 # the layer's input (B, *S)
    y: Any                 # the measurement (B, *M)
    data_grad: Any         # A^T(Ax - y) (needs_data_grad; detached under grad_term="detached")
    cnn: Any               # F(x), the op's CNN applied to x (uses_cnn)
    step: Any              # the step size tau (step)
    params: Any            # the op's own parameters (init), else None
    key: Any               # a PRNG key for this layer and trial
    train: bool            # train mode (BN batch statistics) or eval mode
    cfg: Any               # the SpaceConfig
    problem: Any           # the inverse problem


@dataclass(frozen=True)
class Operation:
    """A candidate operation of a layer or cell edge.

    ``apply(OpInputs) -> out`` with out shaped like x.  ``step``: False (no step size), True (a
    learnable step size initialised at ``SpaceConfig.tau_init``), or the name of a boolean
    SpaceConfig field saying whether it is learnable.  ``cnn_trainable``: None (the CNN is always
    trained) or the name of a boolean SpaceConfig field.  ``init(key, cfg, problem) -> pytree``:
    the op's own parameters, trained with theta.  ``preserves_zero``: the op maps an all-zero
    input to zero (the analysis uses it to find dead cell states).  ``options``: a dataclass of the
    op's own config fields, set with ``op_options={"<op>.<name>": value}`` and read in ``apply``
    with ``dasjax.op_options(inputs.cfg, "<op>")`` (:mod:`dasjax.options`)."""
    name: str
    apply: Callable[[OpInputs], Any]
    label: str = ""
    color: str | None = None
    uses_cnn: bool = False
    step: bool | str = False
    needs_data_grad: bool = False
    init: Callable[[Any, Any, Any], Any] | None = None
    cnn_trainable: str | None = None
    preserves_zero: bool = False
    options: type | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"op name {self.name!r} must be a Python identifier (it is written into "
                             "architecture strings such as 'lg-net')")
        if not callable(self.apply):
            raise ValueError(f"op {self.name!r}: apply must be callable, got {self.apply!r}")
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def step_learnable(self, cfg: SpaceConfig) -> bool:
        return bool(getattr(cfg, self.step)) if isinstance(self.step, str) else bool(self.step)

    def cnn_trained(self, cfg: SpaceConfig) -> bool:
        return True if self.cnn_trainable is None else bool(getattr(cfg, self.cnn_trainable))


def register_op(op: Operation, replace: bool = False) -> Operation:
    """Add ``op`` to the registry (``replace=True`` to redefine a name).  Returns it."""
    if isinstance(op, Operation):
        component_options.check_declaration("op", op.name, op.options)
    OPS.register(op, Operation, replace=replace)
    component_options.declare("op", op.name, op.options)
    return op


def unregister_op(name: str) -> None:
    """Remove a user op (the built-in ones cannot be removed)."""
    OPS.remove(name)
    component_options.declare("op", name, None)


def get_op(name: str) -> Operation:
    return OPS.get(name)


def op_names() -> tuple[str, ...]:
    """Every registered op, built-in ones first."""
    return OPS.names()


def op_metadata(names) -> dict[str, dict]:
    """Label, colour and zero preservation of each op, as written into results folders (the
    analysis, which never imports dasjax, reads them from there)."""
    return {n: {"label": get_op(n).label, "color": get_op(n).color, "preserves_zero": get_op(n).preserves_zero}
            for n in names}


# --- the paper's operations -----------------------------------------------------------------------
def roll(x, shift: int, axes: str):
    """The roll layer on a batch x (B, *S) (``SpaceConfig.roll_axes``): "signal" rolls the signal
    axes, "all" every axis including the batch axis (sample i receives sample i - shift's signal),
    "flat" the flattened batch (``torch.roll(x, shift)`` without dims).  Within one trial's batch
    only, so trials stay independent."""
    if axes == "signal":
        return jnp.roll(x, shift, axis=tuple(range(1, x.ndim)))
    if axes == "all":
        return jnp.roll(x, shift, axis=tuple(range(x.ndim)))
    if axes == "flat":
        return jnp.roll(x.reshape(-1), shift).reshape(x.shape)
    raise ValueError(f"roll_axes={axes!r} is not allowed")  # pragma: no cover - validated in the config


def _learnable_gradient(inp: OpInputs):
    """x - tau A^T(Ax - y) - tau F(x): a gradient step with a learnt correction."""
    return inp.x - inp.step * inp.data_grad - inp.step * inp.cnn


def _noise(inp: OpInputs):
    """A gradient step with white Gaussian noise (``noise_layer_std``, ``noise_eval``, ``noise_form``)."""
    cfg = inp.cfg
    if not (inp.train or cfg.noise_eval):
        return inp.x - inp.step * inp.data_grad
    noise = cfg.noise_layer_std * jax.random.normal(inp.key, inp.x.shape)
    if cfg.noise_form == "gradient":           # a noisy gradient: tau scales the noise
        return inp.x - inp.step * (inp.data_grad + noise)
    return inp.x - inp.step * inp.data_grad + noise


BUILTIN_OPS = (
    Operation("lg", _learnable_gradient, label="Learn. Grad", color="#1f77b4", uses_cnn=True,
              step="tau_learnable", needs_data_grad=True, cnn_trainable="lg_train_f"),
    Operation("net", lambda inp: inp.cnn, label="Net", color="#ff7f0e", uses_cnn=True),
    Operation("roll", lambda inp: roll(inp.x, inp.cfg.roll_shift, inp.cfg.roll_axes), label="Roll",
              color="#d62728", preserves_zero=True),
    Operation("noise", _noise, label="Noise", color="#9467bd", step="noise_tau_learnable", needs_data_grad=True),
    Operation("zero", lambda inp: jnp.zeros_like(inp.x), label="Zero", color="#bbbbbb", preserves_zero=True),
)
BUILTIN_OPS = {op.name: op for op in BUILTIN_OPS}
for _op in BUILTIN_OPS.values():
    OPS.add(_op.name, _op, builtin=True)
