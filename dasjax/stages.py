"""The stages every method is built from: batched DAS search, retraining, fixed and random
architectures, and the per-trial result records.

Each stage runs all its trials as one compiled program (:func:`dasjax.batch.run_batched`).  The
methods of :mod:`dasjax.methods` (DAS, the baselines, DAS-single, a user's) combine them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

import jax
import numpy as np
import pandas as pd

from . import hparams as hpmod
from . import streams
from .batch import run_batched, trial_keys, unflatten_named
from .placement import Placement, place
from .config import Config
from .problems import make_problem
from .algorithms import SearchAlgorithm, resolve_algorithm
from .search import SearchProgram
from .spaces import make_space
from .train import RetrainProgram

#: seeds: a trial count n (seeds 0..n-1) or the seeds themselves, one trial each
Seeds = Union[int, Iterable[int]]
#: a checkpoint file or folder
PathLike = Union[str, "os.PathLike[str]"]


def make_search_program(cfg: Config, space, optimizer_types, algorithm=None):
    """:class:`SearchProgram` running ``algorithm`` (None: the config's), the program of the
    algorithm's own discretisation (DARTS-PT's projection), or
    :class:`dasjax.early_stop.EarlyStopProgram` when ``SearchConfig.early_stop`` is "es" / "ada"."""
    if cfg.search.early_stop != "none":
        from .early_stop import EarlyStopProgram
        return EarlyStopProgram(cfg, space, optimizer_types, algorithm)
    alg = resolve_algorithm(cfg, algorithm)
    if alg.discretisation is not None:
        return alg.discretisation.program(cfg, space, optimizer_types, alg)
    return SearchProgram(cfg, space, optimizer_types, alg)


def resolve_hparams(hparams: hpmod.HParamsLike | None,
                    n_trials: int) -> tuple[hpmod.HParams, tuple[str, str], list[str]]:
    """None / name / HParamSet (broadcast) or one per trial -> (HParams, optimizer types, names)."""
    if hparams is None:
        hparams = "H1"
    if isinstance(hparams, (str, hpmod.HParamSet)):
        sets = [hpmod.get(hparams)] * n_trials
    else:
        sets = [hpmod.get(h) for h in hparams]
        if len(sets) != n_trials:
            raise ValueError(f"hparams: got {len(sets)} hyperparameter sets for {n_trials} seeds; "
                             "pass one set, or exactly one per seed")
    hp, types = hpmod.stack(sets)
    return hp, types, [s.name for s in sets]


def as_seeds(seeds: Seeds) -> np.ndarray:
    """Seeds as a 1D int64 array (an int n means seeds 0..n-1)."""
    s = np.asarray(list(seeds) if not isinstance(seeds, int) else range(seeds))
    if s.ndim != 1 or len(s) == 0:
        raise ValueError("seeds must be a non-empty sequence of integers (or a trial count)")
    return s.astype(np.int64)


@dataclass
class SearchResult:
    """Stacked results of T DAS searches (leading axis = trial)."""
    seeds: np.ndarray
    hparams: list
    alpha: np.ndarray              # (T, layers, ops) final alpha
    alpha_softmax: np.ndarray
    architecture: np.ndarray       # (T, layers, ops) one-hot argmax
    arch_strings: list
    one_shot_psnr: np.ndarray      # (T,)
    diverged: np.ndarray
    history: dict                  # alpha_history (T, E, L, ops), search_train_loss, search_val_loss (T, E)
    wall_time_s: float
    compile_time_s: float
    memory: dict = field(default_factory=dict)
    # with lambda_max tracking (curvature_every > 0): per trial lambda_max_final, stop_epoch, n_rollbacks,
    # theta_wd_final, search_epochs (T,) and lambda_max_path (T, estimates) (dasjax.early_stop)
    curvature: dict = field(default_factory=dict)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial: seed, hyperparameter set, found architecture, one-shot PSNR,
        divergence, and the per-trial curvature numbers when they were tracked."""
        df = _trial_frame(self.seeds, self.hparams, architecture=self.arch_strings,
                          one_shot_psnr=self.one_shot_psnr, diverged=self.diverged)
        for name, values in self.curvature.items():
            if np.ndim(values) == 1:
                df[name] = np.asarray(values)
        return df


@dataclass
class RetrainResult:
    seeds: np.ndarray
    hparams: list
    architecture: np.ndarray
    arch_strings: list
    arch_psnr: np.ndarray
    diverged: np.ndarray
    history: dict                  # retrain_train_loss, retrain_val_loss (T, E)
    wall_time_s: float
    compile_time_s: float
    memory: dict = field(default_factory=dict)
    params: dict | None = None     # trained parameters / BN state (leading trial axis), keep_params=True
    bn: dict | None = None

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial: seed, hyperparameter set, architecture, architecture PSNR, divergence."""
        return _trial_frame(self.seeds, self.hparams, architecture=self.arch_strings, arch_psnr=self.arch_psnr,
                            diverged=self.diverged)


def _trial_frame(seeds, hparams, **columns) -> pd.DataFrame:
    names = [getattr(h, "name", h) for h in hparams]
    return pd.DataFrame({"seed": np.asarray(seeds), "hparams": names,
                         **{k: list(v) if isinstance(v, list) else np.asarray(v) for k, v in columns.items()}})


def run_kwargs(cfg, progress, checkpoint, placement: Placement, hooks=()):
    """The execution settings of ``cfg.run`` as keyword arguments of :func:`run_batched`, with the
    ``placement`` the program's space was built for (:func:`dasjax.placement.place`)."""
    return dict(chunk_size=cfg.run.chunk_size, epochs_per_call=cfg.run.epochs_per_call,
                progress=cfg.run.progress if progress is None else progress,
                fast_compile=cfg.run.fast_compile, checkpoint=checkpoint,
                checkpoint_every=cfg.run.checkpoint_every, memory_fraction=cfg.run.memory_fraction,
                placement=placement, hooks=hooks)


def search(cfg: Config, seeds: Seeds, hparams: hpmod.HParamsLike | None = "H1", *,
           algorithm: SearchAlgorithm | str | None = None, progress: bool | None = None,
           desc: str = "DAS search", checkpoint: PathLike | None = None,
           hooks: Sequence[object] = ()) -> SearchResult:
    """Batched DAS search: one trial per seed, all in one compiled program.  ``algorithm``: a
    :class:`dasjax.algorithms.SearchAlgorithm` or a registered name (None: ``cfg.search.algorithm``,
    DARTS by default), with ``cfg.search.algorithm_options`` on top.  ``hooks``: the loop's extra
    hooks (:mod:`dasjax.loop_hooks`), e.g. a metrics logger."""
    seeds = as_seeds(seeds)
    hp, types, names = resolve_hparams(hparams, len(seeds))
    placement = place(cfg, len(seeds))
    space = make_space(cfg, make_problem(cfg.problem), plan=placement.plan)
    program = make_search_program(cfg, space, types, algorithm)
    out = run_batched(program, trial_keys(seeds), hp, desc=desc,
                      **run_kwargs(cfg, progress, checkpoint, placement, hooks))
    f = out.final
    return SearchResult(seeds=seeds, hparams=names, alpha=f["alpha"], alpha_softmax=f["alpha_softmax"],
                        architecture=f["architecture"],
                        arch_strings=[space.arch_string(a) for a in f["architecture"]],
                        one_shot_psnr=f["one_shot_psnr"], diverged=f["diverged"], history=out.metrics,
                        wall_time_s=out.wall_time_s, compile_time_s=out.compile_time_s, memory=out.memory,
                        curvature=_curvature_outputs(cfg, f, out.metrics, hp))


def _curvature_outputs(cfg: Config, final: dict, history: dict, hp) -> dict:
    """Per-trial curvature outputs of a search ({} without lambda_max tracking).  The early-stopping
    program returns them itself; for plain DAS they follow from the per-epoch lambda_max."""
    from .early_stop import FINAL_COLUMNS
    k = cfg.search.curvature_every
    if not k:
        return {}
    if cfg.search.early_stop != "none":
        return {name: np.asarray(final[name]) for name in FINAL_COLUMNS + ("lambda_max_path",)}
    path = np.asarray(history["lambda_max"])[:, k - 1::k]
    T, E = path.shape[0], cfg.search.epochs
    last = path[:, -1] if path.shape[1] else np.full(T, np.nan)
    return {"lambda_max_final": np.where(np.asarray(final["diverged"]), np.nan, last),
            "stop_epoch": np.full(T, E - 1), "early_stopped": np.zeros(T, np.int32),
            "n_rollbacks": np.zeros(T, np.int32),
            "theta_wd_final": np.asarray(hp.theta_wd, np.float32), "search_epochs": np.full(T, E),
            "lambda_max_path": path}


def retrain(cfg: Config, architectures: np.ndarray | jax.Array, seeds: Seeds,
            hparams: hpmod.HParamsLike | None = "H1", *, keys: jax.Array | None = None,
            progress: bool | None = None, desc: str = "retrain", checkpoint: PathLike | None = None,
            keep_params: bool = False, hooks: Sequence[object] = ()) -> RetrainResult:
    """Train each one-hot architecture (T, layers, ops) from scratch; report its architecture PSNR."""
    seeds = as_seeds(seeds)
    archs = np.asarray(architectures, dtype=np.float32)
    placement = place(cfg, len(seeds))
    space = make_space(cfg, make_problem(cfg.problem), share_f=cfg.retrain.share_f, plan=placement.plan)
    if archs.ndim != 3 or archs.shape[1:] != space.arch_shape:
        raise ValueError(f"architectures: expected shape (T, {space.arch_shape[0]}, {space.arch_shape[1]}) "
                         f"one-hot arrays for op set {list(space.ops)}, got {archs.shape}")
    if archs.shape[0] != len(seeds):
        raise ValueError(f"architectures: trial-axis length {archs.shape[0]} does not match {len(seeds)} seeds")
    if not np.all((archs == 0) | (archs == 1)) or not np.all(archs.sum(-1) == 1):
        raise ValueError("architectures: each layer needs exactly one op (a one-hot row)")
    hp, types, names = resolve_hparams(hparams, len(seeds))
    program = RetrainProgram(cfg, space, types, keep_params=keep_params)
    keys = trial_keys(seeds) if keys is None else keys
    out = run_batched(program, keys, hp, (jax.numpy.asarray(archs),), n_epochs=cfg.retrain.epochs,
                      desc=desc, **run_kwargs(cfg, progress, checkpoint, placement, hooks))
    params = bn = None
    if keep_params:
        like_p, like_b = jax.eval_shape(space.init, jax.random.key(0))
        params = unflatten_named(out.final, "params", like_p)
        bn = unflatten_named(out.final, "bn", like_b)
    return RetrainResult(seeds=seeds, hparams=names, architecture=archs,
                         arch_strings=[space.arch_string(a) for a in archs],
                         arch_psnr=out.final["arch_psnr"], diverged=out.final["diverged"],
                         history=out.metrics, wall_time_s=out.wall_time_s,
                         compile_time_s=out.compile_time_s, memory=out.memory, params=params, bn=bn)


def fixed_architectures(cfg: Config, op: str, n: int) -> np.ndarray:
    """(n, layers, ops) one-hot arrays where every layer uses ``op``."""
    space = make_space(cfg, make_problem(cfg.problem))
    return np.repeat(np.asarray(space.fixed_architecture(op))[None], n, axis=0)


def random_architectures(cfg: Config, keys: jax.Array) -> np.ndarray:
    """One uniformly random architecture per trial key (from the key's ARCH stream)."""
    space = make_space(cfg, make_problem(cfg.problem))
    return np.asarray(jax.vmap(lambda k: space.random_architecture(streams.stream(k, streams.ARCH)))(keys))


def candidate_keys(seeds, n: int):
    """(n * T,) keys: candidate-major, candidate 0 = the trial's own key."""
    keys = trial_keys(seeds)
    return jax.numpy.concatenate([jax.vmap(lambda k, j=j: streams.candidate_key(k, j))(keys)
                                  for j in range(n)])


@dataclass
class MethodResult:
    """Per-trial outcome of one method (one row of a paper table), as plain arrays."""
    method: str
    seeds: np.ndarray
    hparams: list
    arch_psnr: np.ndarray
    one_shot_psnr: np.ndarray
    arch_strings: list
    alpha_softmax: np.ndarray | None
    diverged: np.ndarray
    wall_time_s: float              # batched wall time of the whole row
    compile_time_s: float
    arrays: dict                    # name -> (T, ...) per-trial arrays (curves, alpha history)
    columns: dict = field(default_factory=dict)   # name -> (T,) extra per-trial numbers for trials.csv

    def to_dataframe(self, cfg: Config, experiment: str = "dasjax") -> pd.DataFrame:
        """One row per trial, the columns of a results folder's trials.csv (``cfg``: the config the
        method ran with, for the problem, op set and ops columns), ready for the analysis."""
        from .results import method_records, trials_frame
        return trials_frame(method_records(self, experiment=experiment, cfg=cfg)[0])


def checkpoint_path(checkpoint_dir, name):
    """The checkpoint file of stage ``name`` under ``checkpoint_dir`` (None: no checkpoints)."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}.npz"


def row_label(cfg, method):
    """The progress label of a stage: "problem/op set/method"."""
    return f"{cfg.problem.name}/{cfg.space.op_set_name}/{method}"


def param_arrays(r: RetrainResult) -> dict:
    """The trained networks of a retraining as named per-trial arrays ("params/...", "bn/...")."""
    from .batch import flatten_named
    return {k: np.asarray(v) for k, v in flatten_named({"params": r.params, "bn": r.bn}).items()}
