"""One XLA host device per CPU core, so that trials run side by side on a multi-core CPU.

JAX's CPU backend is one device by default, and one trial's step cannot keep several cores
busy (its operations are small and memory-bound; docs/performance.md).  With one host device
per core, :func:`dasjax.batch.run_batched` shards the trial axis over the cores, each core
running its own trials one after another.  The number of host devices must be chosen before
JAX starts its CPU backend, so ``import dasjax`` sets it (``jax_num_cpu_devices``) unless:

* ``$DASJAX_CPU_DEVICES`` says otherwise (``auto``, the default: the usable cores; an integer N:
  N devices; ``1``: JAX's single CPU device, as without dasjax);
* the user chose already (``XLA_FLAGS=--xla_force_host_platform_device_count=N`` or
  ``jax.config.update("jax_num_cpu_devices", N)``);
* JAX's backends are already running (something computed before ``import dasjax``).

On a machine with GPUs this only adds CPU devices, which dasjax does not use.
"""
from __future__ import annotations

import os

ENV = "DASJAX_CPU_DEVICES"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def requested_cpu_devices(env: str | None = None) -> int:
    """The host-device count ``$DASJAX_CPU_DEVICES`` asks for (``auto``: the usable cores)."""
    raw = (os.environ.get(ENV, "auto") if env is None else env).strip().lower()
    if raw in ("", "auto"):
        return usable_cores()
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${ENV}={raw!r}: expected 'auto' or a positive integer")
    return n


def configure_cpu_devices() -> int | None:
    """Give JAX's CPU backend one device per core; returns the count set, or None if left alone."""
    import jax

    n = requested_cpu_devices()
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None
    chosen = getattr(jax.config, "jax_num_cpu_devices", None)
    if chosen is None:        # a JAX without the option (0.5.0, the floor): the XLA flag, read at backend start
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={n}").strip()
        return n
    if chosen >= 0:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:      # backends already initialised: keep what JAX has
        return None
    return n
