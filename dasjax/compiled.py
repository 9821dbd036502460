"""Compilation: a single-trial program, vmapped over a chunk of trials and compiled ahead of time.

:class:`CompiledProgram` holds the compiled ``init`` / ``epochs`` / ``finalize`` calls of one
program for one chunk shape, its trial axis sharded over a 1D device mesh (:func:`trial_mesh`)
and, within a device, ``at_once`` trials vmapped together and the groups mapped one after another
(``lax.map``).  :func:`compiled_for` keeps the last compiled programs, keyed by the program's
``cache_key`` (which holds its config and its :class:`dasjax.plan.ExecutionPlan`) and the shapes.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np


def memory_stats(compiled) -> dict:
    """XLA's own memory analysis of a compiled call (bytes), where the backend provides it."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # pragma: no cover - backend without analysis
        return {}
    if m is None:  # pragma: no cover
        return {}
    keys = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
            "alias_size_in_bytes", "generated_code_size_in_bytes")
    out = {k: int(getattr(m, k, 0)) for k in keys}
    out["peak_estimate_bytes"] = (out["argument_size_in_bytes"] + out["output_size_in_bytes"]
                                  + out["temp_size_in_bytes"] - out["alias_size_in_bytes"])
    return out


class CompiledProgram:
    """AOT-compiled vmapped init / epoch / finalize of one program for one chunk shape."""

    def __init__(self, program, keys, hp, inputs, epochs_per_call, fast_compile=False, n_devices=1,
                 at_once=None):
        t0 = time.perf_counter()
        self.n_devices = int(n_devices)
        self.n_trials = int(keys.shape[0])          # per call (a chunk), padding included
        n_local = self.n_trials // self.n_devices
        # trials each device runs at once (vmapped); None: all of its share, one vmap
        self.at_once = None if at_once is None or int(at_once) >= n_local else int(at_once)
        self.mesh = trial_mesh(self.n_devices) if self.n_devices > 1 else None
        cfg = getattr(program, "cfg", None)
        precision = cfg.space.matmul_precision if cfg is not None else "float32"
        with jax.default_matmul_precision(None if precision == "default" else precision):
            self._build(program, keys, hp, inputs, epochs_per_call, fast_compile)
        self.compile_time_s = time.perf_counter() - t0
        self.memory = memory_stats(self._epochs)

    def _build(self, program, keys, hp, inputs, epochs_per_call, fast_compile):
        # init runs once: LLVM optimisation of its unrolled PRNG code costs seconds and buys nothing
        cheap = {"xla_backend_optimization_level": 0}
        opts = cheap if fast_compile else {}
        n_in = len(inputs)

        def init(k, h, *xs):
            return program.init(k, h, *xs)

        def epochs(state, k, h, e0):
            # e0 (the epoch index at the start of the call) is NOT vmapped, so a program can branch on
            # it with lax.cond without executing both branches for every trial
            def one(s, i):
                return program.epoch(s, k, h, epoch=e0 + i)
            return jax.lax.scan(one, state, jnp.arange(epochs_per_call))

        batched_epochs = jax.vmap(epochs, in_axes=(0, 0, 0, None))
        if self.at_once is not None:
            batched_epochs = self._mapped(epochs, getattr(program, "finished", None))

        if self.mesh is None:
            jit_kw = dict(init={}, epochs={}, finalize={})
        else:   # the trial axis split over the mesh: every leaf's leading axis, e0 replicated
            sh = self.trial_sharding
            rep = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
            jit_kw = dict(init=dict(in_shardings=(sh,) * (2 + n_in), out_shardings=sh),
                          epochs=dict(in_shardings=(sh, sh, sh, rep), out_shardings=sh),
                          finalize=dict(in_shardings=(sh, sh, sh), out_shardings=sh))
        self.init = jax.jit(jax.vmap(init, in_axes=(0, 0) + (0,) * n_in), **jit_kw["init"]).lower(
            keys, hp, *inputs).compile(compiler_options=cheap)
        state_shape = jax.eval_shape(jax.vmap(init, in_axes=(0, 0) + (0,) * n_in), keys, hp, *inputs)
        e0 = jax.ShapeDtypeStruct((), jnp.int32)
        compiled = jax.jit(batched_epochs, donate_argnums=0, **jit_kw["epochs"]).lower(
            state_shape, keys, hp, e0).compile(compiler_options=opts)
        self._epochs = compiled
        self.epochs = lambda state, k, h, epoch=0: compiled(state, k, h, self._scalar(epoch))
        self.finalize = jax.jit(jax.vmap(program.finalize), **jit_kw["finalize"]).lower(
            state_shape, keys, hp).compile(compiler_options=opts)
        self.finished = None
        if hasattr(program, "finished"):
            fin_kw = {} if self.mesh is None else dict(in_shardings=(self.trial_sharding,))
            self.finished = jax.jit(jax.vmap(program.finished), **fin_kw).lower(state_shape).compile(
                compiler_options=cheap)

    def _mapped(self, epochs, finished):
        """The epoch call over a chunk whose trials run ``at_once`` at a time on each device, one group
        after another (``lax.map``) inside the one compiled program.  With one trial at a time, a trial
        the program reports ``finished`` is skipped (``lax.cond``): its state stays as it is and its
        metrics are the program's "finished" values (NaN; integers -1), as the program itself would
        return them."""
        m = self.at_once

        def local(state, k, h, e0):
            def one(args):
                s, kk, hh = args
                run = lambda: epochs(s, kk, hh, e0)  # noqa: E731
                if finished is None or m > 1:
                    return run()
                fill = jax.tree_util.tree_map(lambda sd: jnp.full(sd.shape, _fill_value(sd.dtype), sd.dtype),
                                              jax.eval_shape(run)[1])
                return jax.lax.cond(finished(s), lambda: (s, fill), run)
            return jax.lax.map(one, (state, k, h), batch_size=None if m == 1 else m)

        if self.mesh is None:
            return local
        spec = jax.sharding.PartitionSpec(TRIAL_AXIS)
        # each device maps over its own slice of the trial axis: no communication.  check_vma=False:
        # single-trial programs start scan carries from constants, which the varying-axis type check
        # rejects; with no collectives in the program there is nothing for it to protect
        return jax.shard_map(local, mesh=self.mesh, in_specs=(spec, spec, spec, jax.sharding.PartitionSpec()),
                             out_specs=spec, check_vma=False)

    @property
    def trial_sharding(self):
        return None if self.mesh is None else jax.sharding.NamedSharding(
            self.mesh, jax.sharding.PartitionSpec(TRIAL_AXIS))

    def _scalar(self, epoch):
        e = jnp.asarray(epoch, jnp.int32)
        if self.mesh is not None:
            e = place(e, jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec()))
        return e

    def put(self, tree):
        """Place per-trial inputs on the mesh (a no-op on one device)."""
        return tree if self.mesh is None else jax.tree_util.tree_map(lambda x: place(x, self.trial_sharding), tree)


def place(x, sharding):
    """``x`` (the same value on every process) as an array with ``sharding``.  Within one process
    that is ``jax.device_put``; a sharding over several processes' devices is built from each
    process's own shards (typed PRNG keys through their key data)."""
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(place(jax.random.key_data(x), sharding), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _fill_value(dtype):
    """The epoch metric of a finished trial (see ``program.finished``): NaN; integers -1; booleans False."""
    if np.issubdtype(dtype, np.floating):
        return np.nan
    if np.issubdtype(dtype, np.bool_):
        return False
    return -1


_CACHE: dict = {}
_CACHE_SIZE = 16


def compiled_for(program, keys, hp, inputs, epochs_per_call, fast_compile, n_devices=1,
                  at_once=None) -> CompiledProgram:
    """Compiled programs are reused across calls with the same ``cache_key`` and shapes."""
    from .program import check_program
    check_program(program)
    shapes = jax.tree_util.tree_map(lambda x: (x.shape, str(x.dtype)), (keys, hp, tuple(inputs)))
    key = (program.cache_key, str(shapes), epochs_per_call, fast_compile, n_devices, at_once)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = CompiledProgram(program, keys, hp, inputs, epochs_per_call, fast_compile, n_devices, at_once)
    return _CACHE[key]


TRIAL_AXIS = "trials"


def trial_mesh(n_devices: int) -> jax.sharding.Mesh:
    """A 1D mesh over the first ``n_devices`` local devices, its one axis named ``trials``; in a
    multi-process run (:mod:`dasjax.distributed`) over every process's devices."""
    if jax.process_count() > 1:
        devs = jax.devices()
        if n_devices != len(devs):
            raise ValueError(f"devices={n_devices}: a run over {jax.process_count()} processes shards its trials "
                             f"over all {len(devs)} devices of all processes (leave devices unset)")
        return jax.sharding.Mesh(np.array(devs), (TRIAL_AXIS,))
    devs = jax.local_devices()
    if not 1 <= n_devices <= len(devs):
        raise ValueError(f"devices={n_devices}: this process sees {len(devs)} local device(s) "
                         f"({devs[0].platform}); on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N "
                         "(set before importing jax) makes N host devices")
    return jax.sharding.Mesh(np.array(devs[:n_devices]), (TRIAL_AXIS,))


