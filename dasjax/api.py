"""The notebook-sized public API: batched DAS search, retraining, baselines, methods.

>>> import dasjax
>>> cfg = dasjax.make_config(problem="blur", op_set="all", width=16, epochs=5)
>>> found = dasjax.search(cfg, seeds=range(8))              # 8 DAS trials, one program
>>> final = dasjax.retrain(cfg, found.architecture, seeds=range(8))
>>> final.arch_psnr, found.one_shot_psnr, found.arch_strings
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from . import hparams as hpmod
from . import streams
from .batch import run_batched, trial_keys, unflatten_named
from .config import Config
from .problems import make_problem
from .search import SearchProgram
from .spaces import make_space
from .train import RetrainProgram

METHODS = ("Learnable Grad. only", "Nets only", "DAS", "Random Sampling", "Random Search", "DAS-single",
           "DAS-ES", "DAS-ADA")
_FIXED_OP = {"Learnable Grad. only": "lg", "Nets only": "net"}
#: DAS variants and the early-stopping mode each runs with (RobustDARTS: DARTS-ES, DARTS-ADA)
EARLY_STOP_METHODS = {"DAS": "none", "DAS-ES": "es", "DAS-ADA": "ada"}
#: lambda_max interval of DAS-ES / DAS-ADA when the config has tracking off (register #34): every 2
#: epochs, as RobustDARTS's DARTS-ADA runs (--report_freq_hessian 2); experiments/run_curvature.py's default
CURVATURE_EVERY = 2


def method_config(cfg: Config, method: str) -> Config:
    """The config a method actually runs with: "DAS-ES" / "DAS-ADA" switch ``early_stop`` on (and
    lambda_max tracking every CURVATURE_EVERY epochs, if it is off), "DAS" switches it off; other
    methods are unchanged."""
    mode = EARLY_STOP_METHODS.get(method)
    if mode is None or cfg.search.early_stop == mode:
        return cfg
    if mode != "none" and cfg.search.curvature_every == 0:
        return cfg.replace(early_stop=mode, curvature_every=CURVATURE_EVERY)
    return cfg.replace(early_stop=mode)


def make_search_program(cfg: Config, space, optimizer_types):
    """:class:`SearchProgram`, or :class:`dasjax.early_stop.EarlyStopProgram` when
    ``SearchConfig.early_stop`` is "es" / "ada"."""
    if cfg.search.early_stop != "none":
        from .early_stop import EarlyStopProgram
        return EarlyStopProgram(cfg, space, optimizer_types)
    return SearchProgram(cfg, space, optimizer_types)


def resolve_hparams(hparams, n_trials: int):
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


def _seeds(seeds) -> np.ndarray:
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


def _run_kw(cfg, progress, checkpoint):
    return dict(chunk_size=cfg.run.chunk_size, epochs_per_call=cfg.run.epochs_per_call,
                progress=cfg.run.progress if progress is None else progress,
                fast_compile=cfg.run.fast_compile, checkpoint=checkpoint,
                checkpoint_every=cfg.run.checkpoint_every, devices=cfg.run.devices,
                memory_fraction=cfg.run.memory_fraction, trials_at_once=cfg.run.trials_at_once)


def search(cfg: Config, seeds, hparams="H1", *, progress=None, desc="DAS search",
           checkpoint=None) -> SearchResult:
    """Batched DAS search: one trial per seed, all in one compiled program."""
    seeds = _seeds(seeds)
    hp, types, names = resolve_hparams(hparams, len(seeds))
    space = make_space(cfg, make_problem(cfg.problem))
    program = make_search_program(cfg, space, types)
    out = run_batched(program, trial_keys(seeds), hp, n_epochs=cfg.search.search_epoch_budget, desc=desc,
                      **_run_kw(cfg, progress, checkpoint))
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


def retrain(cfg: Config, architectures, seeds, hparams="H1", *, keys=None, progress=None,
            desc="retrain", checkpoint=None, keep_params=False) -> RetrainResult:
    """Train each one-hot architecture (T, layers, ops) from scratch; report its architecture PSNR."""
    seeds = _seeds(seeds)
    archs = np.asarray(architectures, dtype=np.float32)
    space = make_space(cfg, make_problem(cfg.problem), share_f=cfg.retrain.share_f)
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
                      desc=desc, **_run_kw(cfg, progress, checkpoint))
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


def random_architectures(cfg: Config, keys) -> np.ndarray:
    """One uniformly random architecture per trial key (from the key's ARCH stream)."""
    space = make_space(cfg, make_problem(cfg.problem))
    return np.asarray(jax.vmap(lambda k: space.random_architecture(streams.stream(k, streams.ARCH)))(keys))


def _candidate_keys(seeds, n: int):
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


def _ckpt(checkpoint_dir, name):
    return None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}.npz"


def _label(cfg, method):
    return f"{cfg.problem.name}/{cfg.space.op_set_name}/{method}"


def _param_arrays(r: RetrainResult) -> dict:
    """The trained networks of a retraining as named per-trial arrays ("params/...", "bn/...")."""
    from .batch import flatten_named
    return {k: np.asarray(v) for k, v in flatten_named({"params": r.params, "bn": r.bn}).items()}


def run_method(cfg: Config, method: str, seeds, hparams="H1", *, progress=None,
               checkpoint_dir=None, keep_params: bool = False) -> MethodResult:
    """Run one method of Table 1 for every seed as batched programs.

    With ``checkpoint_dir``, each stage checkpoints there and a rerun resumes where it stopped.
    With ``keep_params``, the retrained networks' parameters and BatchNorm statistics are returned
    in ``arrays`` (names "params/..." and "bn/...", leading trial axis), e.g. to denoise images with
    the best trial later (rebuild with :func:`dasjax.batch.unflatten_named`).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed; choose one of {list(METHODS)}")
    seeds = _seeds(seeds)
    T = len(seeds)
    nan = np.full(T, np.nan)
    if method in _FIXED_OP:
        op = _FIXED_OP[method]
        if op not in cfg.space.ops:
            raise ValueError(f"method {method!r} needs op {op!r}, which op set {list(cfg.space.ops)} lacks")
        r = retrain(cfg, fixed_architectures(cfg, op, T), seeds, hparams, progress=progress,
                    desc=_label(cfg, method), checkpoint=_ckpt(checkpoint_dir, "retrain"), keep_params=keep_params)
        arrays = {**r.history, **(_param_arrays(r) if keep_params else {})}
        return MethodResult(method, seeds, r.hparams, r.arch_psnr, nan, r.arch_strings, None, r.diverged,
                            r.wall_time_s, r.compile_time_s, arrays)
    if method == "DAS-single":
        from .single import das_single
        return das_single(cfg, seeds, hparams, progress=progress, checkpoint_dir=checkpoint_dir)
    if method in EARLY_STOP_METHODS:
        cfg = method_config(cfg, method)
        s = search(cfg, seeds, hparams, progress=progress, desc=_label(cfg, f"{method} search"),
                   checkpoint=_ckpt(checkpoint_dir, "search"))
        r = retrain(cfg, s.architecture, seeds, hparams, progress=progress, desc=_label(cfg, f"{method} retrain"),
                    checkpoint=_ckpt(checkpoint_dir, "retrain"), keep_params=keep_params)
        arrays = {**s.history, **r.history, **(_param_arrays(r) if keep_params else {})}
        columns = {}
        for name, v in s.curvature.items():
            if np.ndim(v) == 1:
                columns[name] = v
            else:
                arrays[name] = v
        return MethodResult(method, seeds, s.hparams, r.arch_psnr, s.one_shot_psnr, s.arch_strings,
                            s.alpha_softmax, s.diverged | r.diverged, s.wall_time_s + r.wall_time_s,
                            s.compile_time_s + r.compile_time_s, arrays, columns)
    sampling, searching = random_methods(cfg, seeds, hparams, progress=progress,
                                         n_candidates=1 if method == "Random Sampling" else None,
                                         checkpoint_dir=checkpoint_dir, keep_params=keep_params)
    return sampling if method == "Random Sampling" else searching


def random_methods(cfg: Config, seeds, hparams="H1", *, progress=None, n_candidates=None,
                   checkpoint_dir=None, keep_params: bool = False):
    """Random Sampling and Random Search from one batched retraining of n x T random architectures.

    Candidate 0 of each seed is that seed's Random-Sampling trial; Random Search reports the
    best of the seed's ``n`` candidates by architecture validation PSNR (as the paper does).
    Returns (random_sampling, random_search) MethodResults (random_search is None when n = 1).
    ``keep_params``: as in :func:`run_method` (the reported candidate's network per trial).
    """
    seeds = _seeds(seeds)
    T = len(seeds)
    n = cfg.retrain.n_random_search if n_candidates is None else n_candidates
    keys = _candidate_keys(seeds, n)
    archs = random_architectures(cfg, keys)
    hp_names = hparams if isinstance(hparams, (str, hpmod.HParamSet)) or hparams is None \
        else list(hparams) * n
    r = retrain(cfg, archs, np.tile(seeds, n), hp_names, keys=keys, progress=progress,
                desc=_label(cfg, f"random archs ({n}x{T})"), checkpoint=_ckpt(checkpoint_dir, "retrain"),
                keep_params=keep_params)
    psnr = r.arch_psnr.reshape(n, T)
    nan = np.full(T, np.nan)
    per_trial = {**r.history, **(_param_arrays(r) if keep_params else {})}
    hist = {k: v.reshape((n, T) + v.shape[1:]) for k, v in per_trial.items()}
    share = r.wall_time_s / n           # wall time of T trainings
    sampling = MethodResult("Random Sampling", seeds, r.hparams[:T], psnr[0], nan, r.arch_strings[:T], None,
                            r.diverged[:T], share, r.compile_time_s, {k: v[0] for k, v in hist.items()})
    if n == 1:
        return sampling, None
    best = np.argmax(np.where(np.isfinite(psnr), psnr, -np.inf), axis=0)
    pick = best * T + np.arange(T)
    searching = MethodResult("Random Search", seeds, r.hparams[:T], r.arch_psnr[pick], nan,
                             [r.arch_strings[i] for i in pick], None, np.all(r.diverged.reshape(n, T), 0),
                             r.wall_time_s, r.compile_time_s,
                             {k: v[best, np.arange(T)] for k, v in hist.items()})
    return sampling, searching


def run_sets(cfg: Config, method: str, sets, seeds, *, progress=None, checkpoint_dir=None) -> dict:
    """Run ``method`` under K hyperparameter sets x T seeds; returns {set name: MethodResult}.

    Sets that share optimizer types run as ONE batched program over a (K*T) trial axis; sets with
    other optimizer types form separate groups.  A set's results do not depend on which other sets
    share its batch (trials are independent and keyed by their seed alone).
    """
    seeds = _seeds(seeds)
    sets = [hpmod.get(s) for s in sets]
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"sets: names must be unique, got {names}")
    out: dict = {}
    for types, idx in hpmod.group_by_optimizer(sets).items():
        group = [sets[i] for i in idx]
        per_trial = [s for s in group for _ in seeds]
        tiled = np.tile(seeds, len(group))
        ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / "-".join(types)
        res = run_method(cfg, method, tiled, per_trial, progress=progress, checkpoint_dir=ckpt)
        T = len(seeds)
        for g, s in enumerate(group):
            sl = slice(g * T, (g + 1) * T)
            out[s.name] = MethodResult(
                method, seeds, res.hparams[sl], res.arch_psnr[sl], res.one_shot_psnr[sl],
                res.arch_strings[sl], None if res.alpha_softmax is None else res.alpha_softmax[sl],
                res.diverged[sl], res.wall_time_s / len(group), res.compile_time_s,
                {k: v[sl] for k, v in res.arrays.items()}, {k: v[sl] for k, v in res.columns.items()})
    return {n: out[n] for n in names}
