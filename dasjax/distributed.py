"""One run over several processes and hosts, through JAX's distributed runtime.

Started as N processes (``srun``, ``mpirun``, or N local processes with ``--coordinator HOST:PORT
--num-processes N --process-id I``), every process runs the same script: :func:`initialize`
joins them, the trial axis of each compiled chunk is sharded over one mesh of every process's
devices (:func:`dasjax.compiled.trial_mesh`), and each chunk's outputs are gathered to every
process (:func:`to_host`), so all processes hold the same results.  Only the writer (process 0)
writes files and prints progress (:func:`is_writer`); the others compute and read.

Every process must see the same results folder (a shared file system on a cluster), because a
resumed run reads its checkpoints there on every process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

ENV_COORDINATOR = "DASJAX_COORDINATOR"
ENV_NUM_PROCESSES = "DASJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "DASJAX_PROCESS_ID"


@dataclass(frozen=True)
class ProcessGroup:
    """How this process joins the others: an explicit coordinator, or ``auto`` (SLURM / Open MPI
    detected by JAX: coordinator, count and id come from the scheduler's environment)."""
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False


def _int_or_none(name: str, value) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be an integer") from None


def _under_scheduler(environ) -> str | None:
    """The launcher that started several processes of this job, if any."""
    if _int_or_none("SLURM_NTASKS", environ.get("SLURM_NTASKS")) and int(environ["SLURM_NTASKS"]) > 1 \
            and "SLURM_STEP_ID" in environ:
        return "SLURM"
    if _int_or_none("OMPI_COMM_WORLD_SIZE", environ.get("OMPI_COMM_WORLD_SIZE")) and \
            int(environ["OMPI_COMM_WORLD_SIZE"]) > 1:
        return "Open MPI"
    return None


def process_group(coordinator=None, num_processes=None, process_id=None, environ=None) -> ProcessGroup | None:
    """The process group the flags, else ``$DASJAX_COORDINATOR`` / ``$DASJAX_NUM_PROCESSES`` /
    ``$DASJAX_PROCESS_ID``, else a SLURM or Open MPI launch ask for; None for a single process."""
    environ = os.environ if environ is None else environ
    coordinator = coordinator or environ.get(ENV_COORDINATOR) or None
    n = _int_or_none("--num-processes", num_processes if num_processes is not None
                     else environ.get(ENV_NUM_PROCESSES))
    pid = _int_or_none("--process-id", process_id if process_id is not None else environ.get(ENV_PROCESS_ID))
    if coordinator is None and n is None and pid is None:
        return ProcessGroup(auto=True) if _under_scheduler(environ) else None
    if coordinator is None or n is None or pid is None:
        raise ValueError("a multi-process run needs all three of --coordinator HOST:PORT, --num-processes N "
                         f"and --process-id I (or ${ENV_COORDINATOR}, ${ENV_NUM_PROCESSES}, ${ENV_PROCESS_ID}); "
                         "under srun or mpirun give none of them")
    if ":" not in coordinator:
        raise ValueError(f"--coordinator={coordinator!r} must be HOST:PORT")
    if n < 1 or not 0 <= pid < n:
        raise ValueError(f"--process-id={pid} must be in [0, --num-processes={n})")
    return None if n == 1 else ProcessGroup(coordinator, n, pid)


_joined: list = []        # the group this process joined (a process joins once; run_all.py runs several tables)


def initialize(group: ProcessGroup | None, timeout_s: int = 300, heartbeat_s: int = 60) -> None:
    """Join the process group (a no-op for None, or when this process joined it already).  Must run
    before JAX computes anything.  ``timeout_s`` bounds the wait for every process to arrive; a
    process that stops answering for ``heartbeat_s`` seconds makes the others stop with an error
    instead of waiting forever."""
    if group is None or group in _joined:
        return
    if _joined:
        raise RuntimeError(f"this process already joined {_joined[0]}; it cannot join {group}")
    import jax
    if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
        # collectives between CPU processes (the gather of every chunk's outputs)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kw = dict(initialization_timeout=int(timeout_s), heartbeat_timeout_seconds=int(heartbeat_s))
    if group.auto:
        jax.distributed.initialize(**kw)
        _joined.append(group)
    else:
        jax.distributed.initialize(coordinator_address=group.coordinator, num_processes=group.num_processes,
                                   process_id=group.process_id, **kw)
    _joined.append(group)


def process_count() -> int:
    import jax
    return jax.process_count()


def is_writer() -> bool:
    """Whether this process writes files and prints progress: process 0 (every single-process run)."""
    import jax
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (a no-op for one process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def writer_says(ok: bool) -> bool:
    """The writer's ``ok`` on every process (e.g. whether it accepted the results folder), so that
    all stop together when it refuses.  Every process must call it."""
    if process_count() == 1:
        return bool(ok)
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.int32(bool(ok))))


def to_host(x) -> np.ndarray:
    """A (possibly process-spanning) array as one numpy array, the same on every process.  Every
    process must call it for a spanning array (it is a collective)."""
    import jax
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def tree_to_host(tree):
    """:func:`to_host` over a pytree; typed PRNG keys come back as keys."""
    import jax

    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            if x.is_fully_addressable:
                return x
            return jax.random.wrap_key_data(to_host(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        return to_host(x)
    return jax.tree_util.tree_map(leaf, tree)
