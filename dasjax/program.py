"""The batched-program contract: what :func:`dasjax.batch.run_batched` runs.

A program is the work of ONE trial written as pure functions of its state, its key and its
hyperparameters; ``run_batched`` vmaps them over the trial axis, compiles them once per chunk
shape, shards the trials over the devices, checkpoints and resumes.  The search
(:class:`dasjax.search.SearchProgram`), the retraining (:class:`dasjax.train.RetrainProgram`),
DAS-single and the early-stopping search are programs; so is anything a user writes to this
contract.

``cache_key`` is required: it names the compiled program in the compile cache and the run in its
checkpoint fingerprint, so it must hold everything static that shapes the computation (the
config, the search algorithm and its options, the execution plan) and have a stable ``repr``.

:func:`guarded_step` is the one freeze-on-divergence rule every program's step uses: a trial
whose loss or new state is not finite keeps its last finite state, is marked not alive, and
reports NaN from then on, while its neighbours in the batch go on untouched.
"""
from __future__ import annotations

from typing import Any, Hashable, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from .hparams import HParams


@runtime_checkable
class BatchedProgram(Protocol):
    """One trial's work as pure functions (vmapped by :func:`dasjax.batch.run_batched`).

    Optional members: ``cfg`` (a :class:`dasjax.Config`; its ``space.matmul_precision`` applies
    while compiling) and ``finished(state) -> bool``: once it holds for every trial of a chunk the
    remaining epoch calls are skipped, so such a program must leave a finished trial's state
    unchanged and report NaN (integers: -1) as its epoch metrics.
    """

    epochs: int

    @property
    def cache_key(self) -> Hashable:
        """Everything static that shapes the compiled program (hashable, with a stable repr)."""

    def init(self, key: jax.Array, hp: HParams, *inputs: Any) -> Any:
        """The trial's initial state from its key, hyperparameters and per-trial inputs."""

    def epoch(self, state: Any, key: jax.Array, hp: HParams, epoch: jax.Array | None = None) -> tuple[Any, dict]:
        """One epoch: (new state, {metric name: array}); ``epoch`` is the unbatched epoch index."""

    def finalize(self, state: Any, key: jax.Array, hp: HParams) -> dict:
        """The trial's outputs: {name: array or pytree}."""


REQUIRED_MEMBERS = ("epochs", "cache_key", "init", "epoch", "finalize")


def check_program(program) -> None:
    """Raise TypeError naming what ``program`` lacks of the :class:`BatchedProgram` contract."""
    missing = [m for m in REQUIRED_MEMBERS if not hasattr(program, m)]
    if missing:
        raise TypeError(f"{type(program).__name__} is not a batched program: it lacks {missing} "
                        "(dasjax.program.BatchedProgram lists the contract)")
    try:
        hash(program.cache_key)
    except TypeError as e:
        raise TypeError(f"{type(program).__name__}.cache_key must be hashable: {e}") from None


def tree_all_finite(tree):
    """Whether every leaf of ``tree`` is finite (a scalar bool; True for an empty tree)."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def keep_if(ok, new, old):
    """Per-trial select of a whole state (``ok`` is a scalar bool inside vmap)."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(ok, n, o), new, old)


def guarded_step(state, new, losses: tuple, trees):
    """Freeze on divergence: ``(next state, losses)``.

    ``state`` / ``new``: the trial's state before and after one update, flax struct dataclasses
    with an int ``step`` and a bool ``alive``.  The update is kept when the trial was alive and
    every loss and every leaf of ``trees`` (the updated parameters) is finite; otherwise the
    trial keeps ``state``, counts the step and is marked not alive.  The losses come back NaN for
    a frozen trial."""
    ok = state.alive
    for loss in losses:
        ok = ok & jnp.isfinite(loss)
    ok = ok & tree_all_finite(trees)
    frozen = state.replace(step=state.step + 1, alive=jnp.asarray(False))
    return keep_if(ok, new, frozen), tuple(jnp.where(ok, loss, jnp.nan) for loss in losses)
