"""Trial batching: run a single-trial program over T trials as one compiled program.

A *program* (:class:`dasjax.search.SearchProgram`, :class:`dasjax.train.RetrainProgram`)
is three pure single-trial functions: ``init(key, hp, *inputs)``, ``epoch(state, key, hp)``
and ``finalize(state, key, hp)``.  :func:`run_batched` vmaps each over the leading trial
axis, compiles it ahead of time (so compile time is measured), and runs a Python loop
over epochs (``epochs_per_call`` epochs fused per call) with a progress bar between calls.

The trial axis may be split into chunks of ``chunk_size`` trials run one after another;
the last chunk is padded with copies of its first trial, so one compiled program serves
every chunk.  Trials are independent, so chunking never changes results.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class BatchOutput:
    final: dict                    # name -> (T, ...) numpy
    metrics: dict                  # name -> (T, epochs, ...) numpy
    wall_time_s: float             # total, compile included
    compile_time_s: float
    n_trials: int
    chunk_size: int
    memory: dict = field(default_factory=dict)   # XLA's estimate for one epoch call


def _take(tree, idx):
    return jax.tree_util.tree_map(lambda x: x[idx], tree)


def _pad_index(start: int, stop: int, size: int) -> np.ndarray:
    idx = np.arange(start, stop)
    if len(idx) < size:
        idx = np.concatenate([idx, np.full(size - len(idx), idx[0])])
    return idx


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


class _Compiled:
    """AOT-compiled vmapped init / epoch / finalize of one program for one chunk shape."""

    def __init__(self, program, keys, hp, inputs, epochs_per_call, fast_compile=False):
        t0 = time.perf_counter()
        # init runs once: LLVM optimisation of its unrolled PRNG code costs seconds and buys nothing
        cheap = {"xla_backend_optimization_level": 0}
        opts = cheap if fast_compile else {}
        n_in = len(inputs)

        def init(k, h, *xs):
            return program.init(k, h, *xs)

        def epochs(state, k, h):
            def one(s, _):
                return program.epoch(s, k, h)
            return jax.lax.scan(one, state, None, length=epochs_per_call)

        self.init = jax.jit(jax.vmap(init, in_axes=(0, 0) + (0,) * n_in)).lower(keys, hp, *inputs).compile(
            compiler_options=cheap)
        state_shape = jax.eval_shape(jax.vmap(init, in_axes=(0, 0) + (0,) * n_in), keys, hp, *inputs)
        self.epochs = jax.jit(jax.vmap(epochs), donate_argnums=0).lower(state_shape, keys, hp).compile(
            compiler_options=opts)
        self.finalize = jax.jit(jax.vmap(program.finalize)).lower(state_shape, keys, hp).compile(
            compiler_options=opts)
        self.compile_time_s = time.perf_counter() - t0
        self.memory = memory_stats(self.epochs)


_CACHE: dict = {}
_CACHE_SIZE = 16


def _compiled_for(program, keys, hp, inputs, epochs_per_call, fast_compile) -> _Compiled:
    """Compiled programs are reused across calls with the same static description and shapes."""
    shapes = jax.tree_util.tree_map(lambda x: (x.shape, str(x.dtype)), (keys, hp, tuple(inputs)))
    key = (getattr(program, "cache_key", id(program)), str(shapes), epochs_per_call, fast_compile)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _Compiled(program, keys, hp, inputs, epochs_per_call, fast_compile)
    return _CACHE[key]


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="epoch", leave=False, disable=None,
                dynamic_ncols=True, file=sys.stderr)


def run_batched(program, keys, hp, inputs=(), *, n_epochs=None, chunk_size=None,
                epochs_per_call=1, progress=True, desc="trials", log=None,
                fast_compile=False) -> BatchOutput:
    """Run ``program`` for every trial; returns stacked final outputs and per-epoch metrics.

    keys: typed PRNG keys (T,); hp: HParams with (T,) leaves; inputs: extra per-trial arrays
    (leading axis T) passed to ``init`` (e.g. the architectures to retrain).
    """
    T = int(keys.shape[0])
    for name, leaf in [("hparams", l) for l in jax.tree_util.tree_leaves(hp)] + \
                      [("inputs", l) for l in jax.tree_util.tree_leaves(tuple(inputs))]:
        if leaf.shape[:1] != (T,):
            raise ValueError(f"{name}: trial-axis length {leaf.shape[:1]} does not match {T} seeds")
    n_epochs = int(n_epochs if n_epochs is not None else program.epochs)
    chunk = T if chunk_size is None else max(1, min(int(chunk_size), T))
    k = max(1, min(int(epochs_per_call), n_epochs))
    if n_epochs % k:
        k = 1  # keep one compiled epoch call for every call
    calls = n_epochs // k

    t_start = time.perf_counter()
    compiled = None
    finals, metrics = [], []
    bar = _progress(calls * k * ((T + chunk - 1) // chunk), desc, progress)
    quiet_log = log if log is not None else (print if progress and bar is not None and bar.disable else None)
    for c0 in range(0, T, chunk):
        idx = _pad_index(c0, min(c0 + chunk, T), chunk)
        ck, chp, cin = keys[idx], _take(hp, idx), tuple(_take(x, idx) for x in inputs)
        if compiled is None:
            compiled = _compiled_for(program, ck, chp, cin, k, fast_compile)
        state = compiled.init(ck, chp, *cin)
        per_call = []
        for _ in range(calls):
            state, m = compiled.epochs(state, ck, chp)
            per_call.append(m)
            if bar is not None:
                bar.update(k)
        fin = compiled.finalize(state, ck, chp)
        n_real = min(c0 + chunk, T) - c0
        finals.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:n_real], fin))
        if per_call:
            # each m: (chunk, k, ...) -> concatenate calls along the epoch axis
            metrics.append({name: np.concatenate([np.asarray(m[name])[:n_real] for m in per_call], axis=1)
                            for name in per_call[0]})
        if quiet_log is not None:
            quiet_log(f"[{desc}] trials {min(c0 + chunk, T)}/{T} done, "
                      f"{time.perf_counter() - t_start:.1f}s elapsed")
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t_start
    final = {name: np.concatenate([f[name] for f in finals]) for name in finals[0]}
    metric = {name: np.concatenate([m[name] for m in metrics]) for name in metrics[0]} if metrics else {}
    return BatchOutput(final=final, metrics=metric, wall_time_s=wall,
                       compile_time_s=compiled.compile_time_s, n_trials=T, chunk_size=chunk,
                       memory=compiled.memory)


def trial_keys(seeds) -> jax.Array:
    """One typed key per trial seed: trial i's key depends on its seed alone."""
    seeds = np.asarray(list(seeds), dtype=np.int64)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError("seeds must be a non-empty 1D sequence of integers")
    if (seeds < 0).any() or (seeds >= 2 ** 32).any():
        raise ValueError("seeds must be integers in [0, 2**32)")
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
