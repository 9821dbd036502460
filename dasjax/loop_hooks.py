"""Hooks of the chunk and epoch loop (:func:`dasjax.batch.run_batched`).

The loop compiles a program once and calls it epoch after epoch, chunk after chunk; everything
else it does between calls is a hook: the progress bar, the log lines, the checkpoints.  A user
adds their own (a metrics logger, a plot that updates, an abort rule) by passing an object with
any of :class:`LoopHook`'s methods in ``hooks=``; the ones it lacks are skipped.

A hook sees where the loop is (:class:`LoopPoint`) and may read the chunk's state and metrics; it
must not change them.  Hooks run in the order given, after the built-in ones.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .checkpoints import save_checkpoint
from .distributed import is_writer, tree_to_host


@dataclass(frozen=True)
class LoopInfo:
    """What one run of the loop is: fixed from start to end."""
    desc: str                 # the row's label ("blur/good/DAS search")
    n_trials: int
    n_epochs: int
    chunk: int                # trials per compiled call (padded)
    epochs_per_call: int
    calls: int                # epoch calls per chunk
    every: int                # epoch calls between save points (checkpoints, log lines)
    n_done: int               # trials already finished when the loop started (resume)
    start_call: int           # epoch calls of the first chunk already done (resume)
    t_start: float            # time.perf_counter() at the start, compile included


@dataclass
class LoopPoint:
    """Where the loop is, as a hook sees it after an epoch call or a chunk."""
    c0: int                   # first trial of the chunk
    n_real: int               # the chunk's trials that are not padding
    epochs_done: int          # of the chunk
    state: Any = None         # the chunk's state (device arrays); read only
    metrics: dict = field(default_factory=dict)      # the chunk's per-epoch metrics so far, (chunk, epochs, ...)
    done_final: dict = field(default_factory=dict)   # finished trials' outputs, (trials, ...)
    done_metrics: dict = field(default_factory=dict)

    def fraction(self, info: LoopInfo) -> float:
        """Share of this run's remaining epoch calls done (for an ETA)."""
        per_chunk = info.calls
        todo = ((info.n_trials - info.n_done + info.chunk - 1) // info.chunk) * per_chunk - info.start_call
        done = (self.c0 - info.n_done) // info.chunk * per_chunk + self.epochs_done // info.epochs_per_call \
            - info.start_call
        return done / max(todo, 1)


class LoopHook:
    """The events of the loop; a hook defines the ones it needs (all optional)."""

    def start(self, info: LoopInfo) -> None:
        """Before the first epoch call (after compiling, and after restoring a checkpoint)."""

    def after_call(self, info: LoopInfo, point: LoopPoint) -> None:
        """After every epoch call of a chunk."""

    def save_point(self, info: LoopInfo, point: LoopPoint) -> None:
        """Every ``info.every`` epoch calls, except after a chunk's last one (then: chunk_done)."""

    def chunk_skipped(self, info: LoopInfo, point: LoopPoint) -> None:
        """Every trial of the chunk finished early (early-stopping programs); its remaining calls are skipped."""

    def chunk_done(self, info: LoopInfo, point: LoopPoint) -> None:
        """A chunk's trials are finished and in ``point.done_final``."""

    def end(self, info: LoopInfo) -> None:
        """After the last chunk."""


def call_hooks(hooks, event: str, *args) -> None:
    """Call ``event`` on every hook that defines it."""
    for hook in hooks:
        method = getattr(hook, event, None)
        if method is not None:
            method(*args)


def _elapsed(info: LoopInfo) -> float:
    return time.perf_counter() - info.t_start


class ProgressBar(LoopHook):
    """A tqdm bar over all epoch calls of the run (on a terminal)."""

    def __init__(self):
        self.bar = None

    def start(self, info):
        from tqdm.auto import tqdm
        self.bar = tqdm(total=info.calls * info.epochs_per_call * ((info.n_trials + info.chunk - 1) // info.chunk),
                        desc=info.desc, unit="epoch", leave=False, dynamic_ncols=True, file=sys.stderr)
        self.bar.update(info.n_done // info.chunk * info.calls * info.epochs_per_call
                        + info.start_call * info.epochs_per_call)

    def after_call(self, info, point):
        self.bar.set_postfix_str(f"trials {point.c0 + 1}-{point.c0 + point.n_real}/{info.n_trials}", refresh=False)
        self.bar.update(info.epochs_per_call)

    def chunk_skipped(self, info, point):
        self.bar.update((info.calls * info.epochs_per_call) - point.epochs_done)

    def end(self, info):
        self.bar.close()


class LogLines(LoopHook):
    """One line per save point and per chunk (where no terminal shows a bar: logs, notebooks' files)."""

    def __init__(self, say: Callable[[str], None], checkpointing: bool = False):
        self.say, self.checkpointing = say, checkpointing

    def save_point(self, info, point):
        el, frac = _elapsed(info), point.fraction(info)
        self.say(f"[{info.desc}] trials {point.c0 + 1}-{point.c0 + point.n_real}/{info.n_trials}, "
                 f"epoch {point.epochs_done}/{info.n_epochs}, {el:.0f}s elapsed, "
                 f"ETA {el / max(frac, 1e-9) - el:.0f}s" + (" (checkpoint saved)" if self.checkpointing else ""))

    def chunk_skipped(self, info, point):
        self.say(f"[{info.desc}] trials {point.c0 + 1}-{point.c0 + point.n_real}/{info.n_trials}: all finished "
                 f"after {point.epochs_done}/{info.n_epochs} epoch calls")

    def chunk_done(self, info, point):
        self.say(f"[{info.desc}] trials {point.c0 + point.n_real}/{info.n_trials} done, "
                 f"{_elapsed(info):.1f}s elapsed")


class Checkpointer(LoopHook):
    """Saves the loop's full state at every save point and its finished trials after every chunk
    (:mod:`dasjax.checkpoints`), so a rerun resumes with the numbers of an uninterrupted run.
    ``on_save(c0, epochs_done)`` runs after each mid-chunk save (tests use it to simulate a kill)."""

    def __init__(self, path, fingerprint: str, on_save: Callable[[int, int], None] | None = None):
        self.path, self.fingerprint, self.on_save = path, fingerprint, on_save

    def save_point(self, info, point):
        state = tree_to_host(point.state)           # every process gathers (a collective) ...
        if is_writer():                             # ... one writes
            save_checkpoint(self.path, self.fingerprint, point.c0, point.epochs_done, state,
                            point.metrics, point.done_final, point.done_metrics)

    def chunk_done(self, info, point):
        if is_writer():
            save_checkpoint(self.path, self.fingerprint, point.c0 + point.n_real, 0, {}, {}, point.done_final,
                            point.done_metrics)


class AfterSave(LoopHook):
    """Calls ``fn(c0, epochs_done)`` after each mid-chunk checkpoint (run_batched's ``on_checkpoint``)."""

    def __init__(self, fn: Callable[[int, int], None]):
        self.fn = fn

    def save_point(self, info, point):
        self.fn(point.c0, point.epochs_done)


def concat_metrics(per_call: list[dict]) -> dict:
    """Per-call metric dicts, (chunk, k, ...) each -> one dict along the epoch axis."""
    return {n: np.concatenate([m[n] for m in per_call], axis=1) for n in per_call[0]} if per_call else {}
