"""Adaptive runs: add trials in batched chunks of seeds until a row's median is tight.

A row runs seeds ``first_seed, first_seed + 1, ...`` in chunks of ``chunk`` (each chunk one
batched call of :func:`dasjax.run_method`, or of :func:`dasjax.methods.run_group` for methods that
share work) until the 95 % bootstrap interval of its median architecture PSNR has a half-width of
at most ``target_ci`` dB, or ``max_trials`` trials are done.  Trial i depends on its seed alone,
never on its batch partners, so the result equals a plain run over the same seeds (every chunk is
placed as the plain run's program is, :func:`pinned_placement`); only the number of seeds is decided
on the way.  With ``checkpoint_dir`` every chunk checkpoints in its own
subfolder, so a killed run resumes as a plain one does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import hparams as hpmod
from .config import Config
from .methods import get_method, run_group, run_method
from .placement import resolve_devices
from .stages import MethodResult, PathLike

STOP_TARGET, STOP_MAX = "target_ci", "max_trials"
# no stop on the target before this many trials: a bootstrap interval from fewer trials is set by a
# handful of values (the same threshold as the analysis's small-pilot warning, analysis.power.MIN_PILOT)
MIN_TRIALS = 10


def median_ci_half_width(values, confidence_level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> float:
    """Half-width of the percentile bootstrap interval of the median of the finite ``values`` (inf with
    fewer than 2 finite values: a single trial says nothing about the spread)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("inf")
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, x.size, size=(n_resamples, x.size))], axis=1)
    a = (1 - confidence_level) / 2
    lo, hi = np.quantile(medians, [a, 1 - a])
    return float(hi - lo) / 2


@dataclass
class AdaptiveResult:
    """One row of an adaptive run: all its trials (their ``columns`` carry stop_reason and
    ci_half_width per trial), why it stopped and its final half-width."""
    result: MethodResult
    stop_reason: str                 # "target_ci" or "max_trials"
    ci_half_width: float             # of the median, over all its trials (dB)
    n_chunks: int

    def to_dataframe(self, cfg: Config, experiment: str = "dasjax") -> pd.DataFrame:
        """The row's trials as trials.csv rows (:meth:`MethodResult.to_dataframe`), with each
        trial's stop_reason and ci_half_width columns."""
        return self.result.to_dataframe(cfg, experiment)


def concat_results(parts: list[MethodResult]) -> MethodResult:
    """Method results over consecutive seed ranges as one result (wall and compile times add)."""
    first = parts[0]
    cat = lambda name: np.concatenate([np.asarray(getattr(p, name)) for p in parts])  # noqa: E731
    alpha = None if first.alpha_softmax is None else np.concatenate([p.alpha_softmax for p in parts])
    return MethodResult(
        method=first.method, seeds=cat("seeds"), hparams=[h for p in parts for h in p.hparams],
        arch_psnr=cat("arch_psnr"), one_shot_psnr=cat("one_shot_psnr"),
        arch_strings=[s for p in parts for s in p.arch_strings], alpha_softmax=alpha, diverged=cat("diverged"),
        wall_time_s=float(sum(p.wall_time_s for p in parts)), compile_time_s=float(sum(p.compile_time_s for p in parts)),
        arrays={k: np.concatenate([np.asarray(p.arrays[k]) for p in parts]) for k in first.arrays},
        columns={k: np.concatenate([np.asarray(p.columns[k]) for p in parts]) for k in first.columns})


def adapt(run_chunk: Callable[[list, str | None], dict], *, target_ci: float, max_trials: int,
          first_seed: int = 0, chunk: int = 10, min_trials: int = MIN_TRIALS, checkpoint_dir=None,
          log=None, derive: Callable[[dict], dict] | None = None) -> dict[str, AdaptiveResult]:
    """The adaptive loop over any batched runner: ``run_chunk(seeds, checkpoint_dir) -> {row name:
    MethodResult}`` runs one chunk of seeds for every row; chunks of ``chunk`` seeds are added until
    each row's median CI half-width is <= ``target_ci`` dB (checked from ``min_trials`` trials on)
    or ``max_trials`` trials are done.  Each row gets its own stop reason: "target_ci" if its
    half-width met the target when the run stopped, else "max_trials".  ``derive({row: all its
    trials so far}) -> {row: MethodResult}``: rows computed from the others' trials as a whole (random
    search drawn from the random-sampling row), recomputed after every chunk and stopped alike."""
    if not target_ci > 0:
        raise ValueError(f"target_ci={target_ci} must be > 0 (dB)")
    for name, v in (("max_trials", max_trials), ("chunk", chunk), ("min_trials", min_trials)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}={v!r} must be a positive integer")
    parts: dict[str, list] = {}
    done, k = 0, 0
    while True:
        seeds = list(range(first_seed + done, first_seed + min(done + chunk, max_trials)))
        got = run_chunk(seeds, None if checkpoint_dir is None else f"{checkpoint_dir}/chunk{k:03d}")
        for name, res in got.items():
            parts.setdefault(name, []).append(res)
        done, k = done + len(seeds), k + 1
        rows = {n: concat_results(ps) for n, ps in parts.items()}
        if derive is not None:
            rows.update(derive(rows))
        widths = {n: median_ci_half_width(r.arch_psnr) for n, r in rows.items()}
        checked = done >= min(min_trials, max_trials)
        tight = checked and all(w <= target_ci for w in widths.values())
        if log is not None:
            log(f"[adaptive] {done} trials; median CI half-width "
                + ", ".join(f"{n} {w:.2f}" for n, w in widths.items()) + f" dB (target {target_ci:g})")
        if tight or done >= max_trials:
            reason = {n: STOP_TARGET if checked and w <= target_ci else STOP_MAX for n, w in widths.items()}
            return {n: AdaptiveResult(_with_stop_columns(r, reason[n], widths[n]), reason[n], widths[n], k)
                    for n, r in rows.items()}


def _with_stop_columns(res: MethodResult, reason: str, width: float) -> MethodResult:
    """The row's stop, as the per-trial columns stop_reason and ci_half_width (for trials.csv)."""
    T = len(res.seeds)
    res.columns.update(stop_reason=np.full(T, reason), ci_half_width=np.full(T, width))
    return res


def pinned_placement(cfg, n_batched: int):
    """``cfg`` with its device count fixed to that of the plain run, whose program batches
    ``n_batched`` trials: a chunk of one seed would otherwise run on one device, with the execution
    plan of a trial alone (another backward pass: the same numbers only up to float rounding).  A
    chunk with fewer trials than devices is padded (:func:`dasjax.placement.resolve_devices`)."""
    return cfg.replace(devices=resolve_devices(cfg.run.devices, n_batched))


def run_adaptive(cfg: Config, methods: str | Sequence[str], hparams: hpmod.HParamsLike | None = "H1", *,
                 target_ci: float, max_trials: int, first_seed: int = 0, chunk: int = 10,
                 min_trials: int = MIN_TRIALS, progress: bool | None = None,
                 checkpoint_dir: PathLike | None = None, keep_params: bool = False,
                 log: Callable[[str], object] | None = None) -> dict[str, AdaptiveResult]:
    """Run ``methods`` (one method name, or several members of one group, which then share every
    chunk) adaptively (:func:`adapt`); returns {method: AdaptiveResult}."""
    names = (methods,) if isinstance(methods, str) else tuple(methods)
    derive = None
    derived = {m: src for m in names if (src := get_method(m).row_source(cfg)) is not None}
    if derived:
        # computed from another method's whole row (random search from the random-sampling pool),
        # so that row runs and this one is rebuilt from all its trials after each chunk
        wanted = names
        names = tuple(dict.fromkeys([m for m in names if m not in derived] + [src for src, _ in derived.values()]))

        def derive(rows):
            out = {m: fn(rows[src]) for m, (src, fn) in derived.items()}
            for src in {src for src, _ in derived.values()} - set(wanted):
                rows.pop(src)
            return out
    grouped = len(names) > 1 or get_method(names[0]).group is not None
    per_seed = max(get_method(m).trials_per_seed(cfg) for m in names)     # trials a seed batches
    cfg = pinned_placement(cfg, max_trials * per_seed)

    def run_chunk(seeds, ckpt):
        if grouped:
            return run_group(cfg, names, seeds, hparams, progress=progress, checkpoint_dir=ckpt,
                             keep_params=keep_params)
        return {names[0]: run_method(cfg, names[0], seeds, hparams, progress=progress, checkpoint_dir=ckpt,
                                     keep_params=keep_params)}
    return adapt(run_chunk, target_ci=target_ci, max_trials=max_trials, first_seed=first_seed, chunk=chunk,
                 min_trials=min_trials, checkpoint_dir=checkpoint_dir, log=log, derive=derive)


def run_sets_adaptive(cfg, method: str, sets, *, target_ci: float, max_trials: int, first_seed: int = 0,
                      chunk: int = 10, min_trials: int = MIN_TRIALS, progress=None, checkpoint_dir=None,
                      log=None) -> dict[str, AdaptiveResult]:
    """:func:`dasjax.run_sets` adaptively: every hyperparameter set is a row, and each chunk of seeds
    runs all sets in one batched call; returns {set name: AdaptiveResult}."""
    from .methods import run_sets
    cfg = pinned_placement(cfg, max_trials * len(sets))
    return adapt(lambda seeds, ckpt: run_sets(cfg, method, sets, seeds, progress=progress, checkpoint_dir=ckpt),
                 target_ci=target_ci, max_trials=max_trials, first_seed=first_seed, chunk=chunk,
                 min_trials=min_trials, checkpoint_dir=checkpoint_dir, log=log)
