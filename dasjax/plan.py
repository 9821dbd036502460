"""The execution plan: how a program computes on this backend, resolved once before it is traced.

Some choices only change speed and memory, and their best value depends on the backend and on
whether trials run side by side on several CPU cores: the backward pass of the CNN F, its row
blocks, and whether the F slots of a layer are separate calls or one vmapped call.  The run
settings (:class:`dasjax.config.RunConfig`) hold them, with "auto" for "per backend".
:func:`make_plan` turns them into concrete values once; the plan is passed to the search space
(and its :class:`dasjax.ops.OpLayer`), and it is part of every compiled program's cache key.
Nothing reads a module-level flag or the default backend while a program is traced, so a test can
trace the accelerator plan on a CPU by building it with ``backend="gpu"``.

The measurements behind the "auto" values are in docs/performance.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax

F_BACKWARDS = ("fused", "fused_f", "autodiff")
F_SLOT_CALLS = ("loop", "vmap")


@dataclass(frozen=True)
class ExecutionPlan:
    """Concrete execution choices of one compiled program (no "auto" left).

    f_backward: F's backward pass: "fused" (the wide part hand-written, :func:`dasjax.ops.relu_mlp`),
      "fused_f" (all of F hand-written) or "autodiff" (JAX's own); the same gradients up to float
      rounding.  "fused" and "fused_f" have no forward-mode rule (``jax.jvp`` through F).
    f_block_rows: rows of F's wide activation handled at a time (0: all at once).
    f_slot_calls: "loop" = one F call per slot of a layer, "vmap" = one batched call for all slots.
    backend, side_by_side: what the choices were resolved for (kept for the record and the cache key).
    """
    f_backward: str = "fused"
    f_block_rows: int = 0
    f_slot_calls: str = "loop"
    backend: str = "cpu"
    side_by_side: bool = False

    def __post_init__(self):
        if self.f_backward not in F_BACKWARDS:
            raise ValueError(f"f_backward={self.f_backward!r} is not allowed; choose one of {list(F_BACKWARDS)}")
        if self.f_slot_calls not in F_SLOT_CALLS:
            raise ValueError(f"f_slot_calls={self.f_slot_calls!r} is not allowed; choose one of {list(F_SLOT_CALLS)}")
        if isinstance(self.f_block_rows, bool) or not isinstance(self.f_block_rows, int) or self.f_block_rows < 0:
            raise ValueError(f"f_block_rows={self.f_block_rows!r} must be an integer >= 0 (0: no blocks)")


def auto_f_backward(backend: str, side_by_side: bool) -> str:
    """On the CPU "fused_f" for trials side by side on several cores (row blocks keep XLA's memory
    per trial small; docs/performance.md), else "fused"; "autodiff" on accelerators (with which
    the GPU benchmarks were made)."""
    if backend != "cpu":
        return "autodiff"
    return "fused_f" if side_by_side else "fused"


def auto_f_block_rows(backend: str, side_by_side: bool, width: int) -> int:
    """400 * 64 / width rows (a ~100 KB block of the activation, which stays in a core's cache) for
    trials side by side on several CPU cores, else 0 (no blocks)."""
    return max(1, 400 * 64 // int(width)) if (backend == "cpu" and side_by_side) else 0


def auto_f_slot_calls(backend: str) -> str:
    """"loop" on the CPU (a vmap over slots gives every matmul of F a batch dimension, and XLA's
    CPU backend runs batched matmuls on a slower path), "vmap" on accelerators (one kernel)."""
    return "loop" if backend == "cpu" else "vmap"


def make_plan(run=None, width: int = 64, *, backend: str | None = None, side_by_side: bool = False) -> ExecutionPlan:
    """Resolve the run settings' execution choices (``run``: a :class:`dasjax.config.RunConfig`, or
    None for its defaults) for ``backend`` (None: JAX's default backend, read now) and for trials that
    run side by side on several devices or not.  ``width``: the CNN width (for the row blocks)."""
    backend = jax.default_backend() if backend is None else str(backend)
    f_backward = getattr(run, "f_backward", "auto")
    rows = getattr(run, "f_block_rows", "auto")
    slots = getattr(run, "f_slot_calls", "auto")
    return ExecutionPlan(
        f_backward=auto_f_backward(backend, side_by_side) if f_backward == "auto" else f_backward,
        f_block_rows=auto_f_block_rows(backend, side_by_side, width) if rows == "auto" else int(rows),
        f_slot_calls=auto_f_slot_calls(backend) if slots == "auto" else slots,
        backend=backend, side_by_side=bool(side_by_side))


def plan_for(cfg, n_devices: int = 1, backend: str | None = None) -> ExecutionPlan:
    """The plan of a program of config ``cfg`` whose trials are sharded over ``n_devices`` devices."""
    return make_plan(cfg.run, cfg.space.width, backend=backend, side_by_side=int(n_devices) > 1)
