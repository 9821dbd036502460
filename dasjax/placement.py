"""Where and how many trials run at once: devices, chunks and memory, with per-backend defaults.

These are read when a run starts (:func:`dasjax.batch.run_batched`), never while a program is
traced.  The measurements behind the CPU defaults are in docs/performance.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax

from .compiled import trial_mesh
from .plan import ExecutionPlan, plan_for


def on_cpu(backend: str | None = None) -> bool:
    """Whether ``backend`` (None: JAX's default backend) is the CPU."""
    return (jax.default_backend() if backend is None else backend) == "cpu"


def resolve_devices(devices: int | None, n_trials: int) -> int:
    """Devices to shard the trial axis over: ``None`` = every local device, never more than trials;
    a number = exactly that many (fewer trials are padded, so a run cut into small pieces, as an
    adaptive run is, keeps the placement of the whole); in a multi-process run every device of
    every process (the chunk is padded to fill them)."""
    if jax.process_count() > 1:
        n = jax.device_count()
        trial_mesh(n if devices is None else int(devices))   # validates
        return n
    if devices is not None:
        trial_mesh(int(devices))            # validates against the local devices
        return int(devices)
    return max(1, min(jax.local_device_count(), n_trials))


@dataclass(frozen=True)
class Placement:
    """Where a program's trials run, decided once per program (:func:`place`) and handed to both
    the search space, whose execution plan depends on whether trials sit side by side, and
    :func:`dasjax.batch.run_batched`, which shards the chunks over ``devices``."""
    devices: int                    # devices the trial axis is sharded over
    trials_at_once: int | None      # trials a device runs at the same time (None: all of its trials)
    plan: ExecutionPlan             # how the layers compute, for this placement


def place(cfg, n_trials: int) -> Placement:
    """The placement of ``n_trials`` trials of a program of config ``cfg`` (its ``run`` section)."""
    devices = resolve_devices(cfg.run.devices, n_trials)
    at_once = default_trials_at_once() if cfg.run.trials_at_once is None else int(cfg.run.trials_at_once)
    return Placement(devices, at_once, plan_for(cfg, devices))


def device_memory_bytes() -> int | None:
    """Memory of one local accelerator as its allocator reports it (None on the CPU)."""
    if on_cpu():
        return None
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # pragma: no cover - backend without memory stats
        return None
    return int(stats["bytes_limit"]) if "bytes_limit" in stats else None


def fit_chunk(chunk: int, peak_bytes: int, budget_bytes: int | None, n_devices: int) -> int:
    """The largest chunk (a multiple of ``n_devices``) whose per-device peak fits ``budget_bytes``,
    from XLA's estimate ``peak_bytes`` for ``chunk`` trials (memory grows linearly with trials)."""
    if not budget_bytes or peak_bytes <= budget_bytes:
        return chunk
    per_trial = peak_bytes * n_devices / chunk          # the estimate is per device: chunk / n_devices trials
    fit = int(budget_bytes // per_trial) * n_devices
    return max(n_devices, min(chunk, fit))


def default_chunk_size(n_trials: int, n_devices: int = 1, at_once: int | None = None,
                       backend: str | None = None) -> int:
    """Trials per call of the compiled program when the config leaves it open.

    On an accelerator: all of them (:func:`run_batched` then shrinks the chunk if XLA's memory
    estimate does not fit).  On the CPU: ``at_once`` trials per device (``n_devices``; at_once
    None counts as 1), so every core runs its own trial(s) and the chunks follow one another.  A
    device's trials mapped one after another inside the program (``lax.map``, what a larger chunk
    gives) run slower per trial than the same trials in separate calls (docs/performance.md).
    ``backend``: None for JAX's default backend."""
    if not on_cpu(backend):
        return n_trials
    return min(n_trials, n_devices * (at_once or 1))


def padded_chunk(n_trials: int, n_devices: int, at_once: int | None, chunk_size: int | None = None) -> int:
    """Trials per call of the compiled program: ``chunk_size`` (None: :func:`default_chunk_size`),
    at most ``n_trials``, rounded up to a multiple of ``n_devices`` (the padding never changes results)."""
    chunk = chunk_size if chunk_size is not None else default_chunk_size(n_trials, n_devices, at_once)
    chunk = max(1, min(int(chunk), n_trials))
    return -(-chunk // n_devices) * n_devices


def default_trials_at_once(backend: str | None = None) -> int | None:
    """Trials each device runs at the same time when the config leaves it open (the measurements
    behind it: docs/performance.md).

    On the CPU, vmapping trials is slower per trial than one trial at a time: the step is
    memory-bound and T trials' activations stop fitting in a core's cache.  So each device (one per core, :mod:`dasjax._devices`) runs one trial at a
    time; with the default chunk (:func:`default_chunk_size`) that is one trial per device per
    call.  On an accelerator (None) all of a device's trials run at once.
    """
    return 1 if on_cpu(backend) else None


