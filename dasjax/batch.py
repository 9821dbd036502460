"""Trial batching: run a single-trial program over T trials as one compiled program.

A *program* (:class:`dasjax.search.SearchProgram`, :class:`dasjax.train.RetrainProgram`)
is three pure single-trial functions: ``init(key, hp, *inputs)``, ``epoch(state, key, hp)``
and ``finalize(state, key, hp)``.  :func:`run_batched` vmaps each over the leading trial
axis, compiles it ahead of time (so compile time is measured), and runs a Python loop
over epochs (``epochs_per_call`` epochs fused per call).  Between calls it runs hooks
(:mod:`dasjax.loop_hooks`): the progress bar or log lines, the checkpoints, and the user's own.

The trial axis may be split into chunks of ``chunk_size`` trials run one after another;
the last chunk is padded with copies of its first trial, so one compiled program serves
every chunk.  Within a chunk the trials are sharded over the local devices (on a CPU,
``import dasjax`` makes one device per core), and each device runs ``trials_at_once`` of its
trials at a time (vmapped), the next group after it inside the same program (``lax.map``).
By default (:func:`default_chunk_size`) a chunk on an accelerator is all trials; on a CPU it is
one group of ``trials_at_once`` trials per device, so each core runs its own trial and no
``lax.map`` is needed (faster on a CPU: docs/performance.md, "Chunks, memory and devices").

The pieces live in their own modules: compilation and its cache (:mod:`dasjax.compiled`), where
trials run and how many at once (:mod:`dasjax.placement`), checkpoints (:mod:`dasjax.checkpoints`), what runs
between calls (:mod:`dasjax.loop_hooks`); this module is the chunk and epoch loop.
Trials are independent, so none of this changes results.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .checkpoints import fingerprint, flatten_named, load_checkpoint, save_checkpoint, unflatten_named  # noqa: F401
from .compiled import (TRIAL_AXIS, CompiledProgram, compiled_for, memory_stats,  # noqa: F401
                       trial_mesh, _CACHE, _fill_value)
from .distributed import is_writer, to_host
from .logs import say as log_line
from .loop_hooks import (AfterSave, Checkpointer, LogLines, LoopInfo, LoopPoint, ProgressBar, call_hooks,
                         concat_metrics)
from .placement import (default_chunk_size, default_trials_at_once, device_memory_bytes,  # noqa: F401
                        fit_chunk, on_cpu, padded_chunk, resolve_devices)


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


def _finished_fill(v: np.ndarray) -> np.ndarray:
    return np.full_like(v, _fill_value(v.dtype))


def _builtin_hooks(progress, log, checkpoint, fp, on_checkpoint) -> tuple[list, Callable | None]:
    """The checkpoint, progress and log hooks a run_batched call asks for, and the function its
    one-off messages (resume, memory fit) go to."""
    hooks: list = []
    if checkpoint:
        hooks.append(Checkpointer(checkpoint, fp))
    progress = progress and is_writer()            # a multi-process run reports once, from the writer
    if not is_writer():
        log = None
    bar = progress and log is None and sys.stderr.isatty()
    say = log if log is not None else (log_line if progress and not bar else None)
    if bar:
        hooks.append(ProgressBar())
    elif say is not None:
        hooks.append(LogLines(say, checkpointing=bool(checkpoint)))
    if checkpoint and on_checkpoint is not None:
        hooks.append(AfterSave(on_checkpoint))
    return hooks, say


def run_batched(program, keys, hp, inputs=(), *, n_epochs=None, chunk_size=None,
                epochs_per_call=1, progress=True, desc="trials", log=None,
                fast_compile=False, checkpoint=None, checkpoint_every=5,
                on_checkpoint=None, devices=None, memory_fraction=0.9, trials_at_once=None,
                hooks=(), placement=None) -> BatchOutput:
    """Run ``program`` for every trial; returns stacked final outputs and per-epoch metrics.

    keys: typed PRNG keys (T,); hp: HParams with (T,) leaves; inputs: extra per-trial arrays
    (leading axis T) passed to ``init`` (e.g. the architectures to retrain).
    checkpoint: a file path; the full state is saved there every ``checkpoint_every`` epochs and
    a rerun with identical inputs resumes from it, with the same numbers as an uninterrupted run.
    on_checkpoint(c0, epochs_done) is called after each save (tests use it to simulate a kill).
    devices: local devices to split each chunk's trials over (None = all; 1 = no sharding); the
    chunk is rounded up to a multiple of it and padded, which never changes results.
    With ``chunk_size=None`` the chunk is :func:`default_chunk_size`: on an accelerator all trials,
    shrunk to fit when XLA's memory estimate exceeds ``memory_fraction`` of the device memory; on a
    CPU one group of ``trials_at_once`` trials per device.
    trials_at_once: trials each device runs at the same time (vmapped); a chunk's other trials on
    that device run one group after another inside the same program (``lax.map``).  None: per
    backend (:func:`default_trials_at_once`: 1 on the CPU, all on accelerators).  Results do not
    depend on it.
    hooks: objects with any of :class:`dasjax.loop_hooks.LoopHook`'s methods, called between the
    compiled calls after the built-in checkpoint, progress and log hooks.
    placement: a :class:`dasjax.placement.Placement` (:func:`dasjax.placement.place`), the one the
    program's space was built for; it replaces ``devices`` and ``trials_at_once``.

    A program may define ``finished(state) -> bool`` (one trial): once it holds for every trial of a
    chunk, the chunk's remaining epoch calls are skipped.  Such a program must leave a finished
    trial's state unchanged and report NaN (integers: -1) as its epoch metrics, which is what the
    skipped calls are filled with, so results do not depend on the chunking.
    """
    T = int(keys.shape[0])
    for name, leaf in [("hparams", l) for l in jax.tree_util.tree_leaves(hp)] + \
                      [("inputs", l) for l in jax.tree_util.tree_leaves(tuple(inputs))]:
        if leaf.shape[:1] != (T,):
            raise ValueError(f"{name}: trial-axis length {leaf.shape[:1]} does not match {T} seeds")
    n_epochs = int(n_epochs if n_epochs is not None else program.epochs)
    if placement is not None:
        n_dev, at_once = resolve_devices(placement.devices, T), placement.trials_at_once
    else:
        n_dev = resolve_devices(devices, T)
        at_once = default_trials_at_once() if trials_at_once is None else int(trials_at_once)
    if at_once is not None and at_once < 1:
        raise ValueError(f"trials_at_once={trials_at_once} must be a positive integer or None")
    chunk = padded_chunk(T, n_dev, at_once, chunk_size)
    k = max(1, min(int(epochs_per_call), n_epochs))
    if n_epochs % k:
        k = 1  # keep one compiled epoch call for every call
    calls = n_epochs // k
    every = max(1, int(checkpoint_every) // k)      # calls between checkpoints / log lines

    t_start = time.perf_counter()

    def compile_for(size):
        i0 = _pad_index(0, min(size, T), size)
        return compiled_for(program, keys[i0], _take(hp, i0), tuple(_take(x, i0) for x in inputs), k,
                             fast_compile, n_dev, at_once)

    compiled = compile_for(chunk)
    budget = device_memory_bytes()
    if chunk_size is None and budget:
        fit = fit_chunk(chunk, compiled.memory.get("peak_estimate_bytes", 0), memory_fraction * budget, n_dev)
        if fit < chunk:
            if (log is not None or progress) and is_writer():
                (log or log_line)(f"[{desc}] {chunk} trials need ~{compiled.memory['peak_estimate_bytes'] / 2**30:.1f} "
                                      f"GiB per device (budget {memory_fraction * budget / 2**30:.1f} GiB): "
                                      f"chunks of {fit}")
            chunk = fit
            compiled = compile_for(chunk)
    fp = fingerprint(program, keys, hp, inputs, n_epochs, chunk) if checkpoint else None
    all_hooks, say = _builtin_hooks(progress, log, checkpoint, fp, on_checkpoint)
    all_hooks += list(hooks)
    done_final: dict = {}
    done_metrics: dict = {}
    ckpt = None
    if checkpoint:
        idx0 = _pad_index(0, min(chunk, T), chunk)
        like = jax.eval_shape(jax.vmap(program.init), keys[idx0], _take(hp, idx0),
                              *(_take(x, idx0) for x in inputs))
        ckpt = load_checkpoint(checkpoint, fp, like)
        if ckpt:
            done_final, done_metrics = dict(ckpt[2]["done_final"]), dict(ckpt[2]["done_metrics"])
            if say and "rechunked" in ckpt[0]:
                say(f"[{desc}] resuming from {checkpoint}: {len(next(iter(done_final.values()), []))}/{T} "
                    f"trials finished; it was written with chunks of {ckpt[0]['rechunked']} trials, this run "
                    f"uses {chunk} (another device or process count), so the running chunk starts over")
            elif say:
                say(f"[{desc}] resuming from {checkpoint}: {len(next(iter(done_final.values()), []))}/{T} "
                    f"trials finished, chunk at trial {ckpt[0]['c0']} at epoch {ckpt[0]['epochs_done']}")
    n_done = len(next(iter(done_final.values()), []))
    resume_call = ckpt[0]["epochs_done"] // k if ckpt and ckpt[0]["c0"] == n_done else 0
    info = LoopInfo(desc=desc, n_trials=T, n_epochs=n_epochs, chunk=chunk, epochs_per_call=k, calls=calls,
                    every=every, n_done=n_done, start_call=resume_call, t_start=t_start)
    call_hooks(all_hooks, "start", info)
    for c0 in range(n_done, T, chunk):
        n_real = min(c0 + chunk, T) - c0
        idx = _pad_index(c0, c0 + n_real, chunk)
        ck, chp, cin = compiled.put((keys[idx], _take(hp, idx), tuple(_take(x, idx) for x in inputs)))
        state = compiled.init(ck, chp, *cin)
        per_call: list = []
        start_call = 0
        if c0 == n_done and resume_call > 0:
            _, state, groups = ckpt
            state = compiled.put(state)
            start_call = resume_call
            per_call = [{n: v[:, i * k:(i + 1) * k] for n, v in groups["metrics"].items()}
                        for i in range(start_call)]
        for call in range(start_call, calls):
            if per_call and compiled.finished is not None and \
                    to_host(compiled.finished(state))[:n_real].all():
                # every trial of the chunk is done (early-stopping programs): the remaining calls would
                # leave the state unchanged and report the program's "finished" metrics (NaN / -1)
                per_call += [{n: _finished_fill(v) for n, v in per_call[-1].items()}
                             for _ in range(call, calls)]
                call_hooks(all_hooks, "chunk_skipped", info, LoopPoint(c0, n_real, call * k))
                break
            state, m = compiled.epochs(state, ck, chp, call * k)
            per_call.append({n: to_host(v) for n, v in m.items()})
            point = LoopPoint(c0, n_real, (call + 1) * k, state=state)
            call_hooks(all_hooks, "after_call", info, point)
            if (call + 1) % every == 0 and call + 1 < calls:
                point.metrics, point.done_final, point.done_metrics = concat_metrics(per_call), done_final, done_metrics
                call_hooks(all_hooks, "save_point", info, point)
        fin = flatten_named(compiled.finalize(state, ck, chp))
        for name, v in fin.items():
            v = to_host(v)[:n_real]
            done_final[name] = v if name not in done_final else np.concatenate([done_final[name], v])
        if per_call:
            for name in per_call[0]:
                v = np.concatenate([m_[name][:n_real] for m_ in per_call], axis=1)
                done_metrics[name] = v if name not in done_metrics else np.concatenate([done_metrics[name], v])
        call_hooks(all_hooks, "chunk_done", info, LoopPoint(c0, n_real, calls * k, done_final=done_final,
                                                            done_metrics=done_metrics))
    call_hooks(all_hooks, "end", info)
    wall = time.perf_counter() - t_start
    return BatchOutput(final=done_final, metrics=done_metrics, wall_time_s=wall,
                       compile_time_s=compiled.compile_time_s if compiled else 0.0, n_trials=T,
                       chunk_size=chunk, memory=compiled.memory if compiled else {})


def trial_keys(seeds) -> jax.Array:
    """One typed key per trial seed: trial i's key depends on its seed alone."""
    seeds = np.asarray(list(seeds), dtype=np.int64)
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError("seeds must be a non-empty 1D sequence of integers")
    if (seeds < 0).any() or (seeds >= 2 ** 32).any():
        raise ValueError("seeds must be integers in [0, 2**32)")
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, dtype=jnp.uint32))
