"""Methods, registered by name: the rows of the paper's tables, and any a user adds.

A method is a :class:`Method` record whose ``run(cfg, seeds, hparams, *, progress, checkpoint_dir,
keep_params)`` returns a :class:`dasjax.stages.MethodResult`, one entry per seed.  Every runner
(``dasjax.run_method``, the table scripts, ``run_sets``, HPO) dispatches through the registry,
so a user's method runs through the same results folders and analysis::

    def das_twice_the_epochs(cfg, seeds, hparams, **kw):
        return dasjax.run_method(cfg.replace(search_epochs=2 * cfg.search.epochs), "DAS", seeds, hparams, **kw)

    dasjax.register_method(dasjax.Method("DAS-long", das_twice_the_epochs))

Methods of one ``group`` can share work: :func:`run_group` runs the group's runner once for
every requested member (random sampling and random search come from one retraining).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from . import hparams as hpmod
from .config import Config
from .registry import Registry
from .stages import (MethodResult, PathLike, Seeds, as_seeds, candidate_keys, checkpoint_path, fixed_architectures,
                     param_arrays, random_architectures, retrain, row_label, search)

#: lambda_max interval of DAS-ES / DAS-ADA when the config has tracking off (register #34): every 2
#: epochs, as RobustDARTS's DARTS-ADA runs (--report_freq_hessian 2); experiments/run_curvature.py's default
CURVATURE_EVERY = 2


@dataclass(frozen=True)
class Method:
    """A method: ``run(cfg, seeds, hparams, *, progress=None, checkpoint_dir=None,
    keep_params=False) -> MethodResult``.  ``configure(cfg) -> cfg``: the config it actually runs
    with (recorded in results folders; None = unchanged).  ``group``: the name of a group runner
    (:func:`register_group`) that produces this method together with the group's others.
    ``from_row(cfg) -> (method, derive) | None``: under ``cfg`` this method's trials are computed
    from the whole row of another ``method`` by ``derive(row) -> MethodResult`` (random search
    from the random-sampling pool), so an adaptive run grows that row and derives this one after
    each chunk.  ``seed_trials(cfg) -> int``: the trials one seed batches (random search: its
    candidates); None = 1."""
    name: str
    run: Callable[..., MethodResult]
    configure: Callable[[Config], Config] | None = None
    group: str | None = None
    from_row: Callable[[Config], tuple | None] | None = None
    seed_trials: Callable[[Config], int] | None = None

    def config(self, cfg: Config) -> Config:
        return cfg if self.configure is None else self.configure(cfg)

    def row_source(self, cfg: Config) -> tuple | None:
        return None if self.from_row is None else self.from_row(cfg)

    def trials_per_seed(self, cfg: Config) -> int:
        return 1 if self.seed_trials is None else int(self.seed_trials(cfg))


_METHODS = Registry("method", "dasjax.register_method")
_GROUPS = Registry("method group", "dasjax.methods.register_group")


def register_method(method: Method, replace: bool = False) -> Method:
    """Add ``method`` to the registry, so ``run_method`` and the table runners' rows find it by name
    (``replace=True`` to redefine a name).  Returns it."""
    if not isinstance(method, Method):
        raise TypeError(f"register_method takes a Method, got {type(method).__name__}")
    if method.group is not None and method.group not in _GROUPS:
        raise ValueError(f"method {method.name!r}: group {method.group!r} has no runner; register_group it first")
    _METHODS.add(method.name, method, replace=replace)
    return method


def unregister_method(name: str) -> None:
    _METHODS.remove(name)


def register_group(name: str, runner: Callable[..., dict], replace: bool = False) -> None:
    """``runner(cfg, seeds, hparams, methods, *, progress, checkpoint_dir, keep_params) -> {method:
    MethodResult}`` for the requested member ``methods`` of the group (``replace=True`` to redefine
    a name)."""
    if not callable(runner):
        raise TypeError(f"register_group takes a callable runner, got {type(runner).__name__}")
    _GROUPS.add(name, runner, replace=replace)


def get_method(name: str) -> Method:
    return _METHODS.get(name)


def method_names() -> tuple[str, ...]:
    return _METHODS.names()


def method_config(cfg: Config, method: str) -> Config:
    """The config ``method`` actually runs with (DAS-ES / DAS-ADA switch early stopping on)."""
    return get_method(method).config(cfg)


def run_method(cfg: Config, method: str, seeds: Seeds, hparams: hpmod.HParamsLike | None = "H1", *,
               progress: bool | None = None, checkpoint_dir: PathLike | None = None,
               keep_params: bool = False) -> MethodResult:
    """Run one method for every seed as batched programs.

    With ``checkpoint_dir``, each stage checkpoints there and a rerun resumes where it stopped.
    With ``keep_params``, the retrained networks' parameters and BatchNorm statistics are returned
    in ``arrays`` (names "params/..." and "bn/...", leading trial axis), e.g. to denoise images with
    the best trial later (rebuild with :func:`dasjax.batch.unflatten_named`).
    """
    m = get_method(method)
    return m.run(m.config(cfg), as_seeds(seeds), hparams, progress=progress, checkpoint_dir=checkpoint_dir,
                 keep_params=keep_params)


def run_group(cfg: Config, methods: Sequence[str], seeds: Seeds, hparams: hpmod.HParamsLike | None = "H1", *,
              progress: bool | None = None, checkpoint_dir: PathLike | None = None,
              keep_params: bool = False) -> dict[str, MethodResult]:
    """Run several methods of one group with one call of the group's runner: {method: result}."""
    groups = {get_method(m).group for m in methods}
    if len(groups) != 1 or None in groups:
        raise ValueError(f"run_group: {list(methods)} are not members of one group")
    (group,) = groups
    return _GROUPS.get(group)(cfg, as_seeds(seeds), hparams, tuple(methods), progress=progress,
                          checkpoint_dir=checkpoint_dir, keep_params=keep_params)


# --- the paper's methods ----------------------------------------------------------------------------
def fixed_op_method(op: str) -> Callable[..., MethodResult]:
    """A single-op baseline: every layer (edge) uses ``op``, retrained from scratch."""
    def run(cfg, seeds, hparams, *, progress=None, checkpoint_dir=None, keep_params=False):
        name = _FIXED_NAMES[op]
        if op not in cfg.space.ops:
            raise ValueError(f"method {name!r} needs op {op!r}, which op set {list(cfg.space.ops)} lacks")
        T = len(seeds)
        r = retrain(cfg, fixed_architectures(cfg, op, T), seeds, hparams, progress=progress,
                    desc=row_label(cfg, name), checkpoint=checkpoint_path(checkpoint_dir, "retrain"),
                    keep_params=keep_params)
        arrays = {**r.history, **(param_arrays(r) if keep_params else {})}
        return MethodResult(name, seeds, r.hparams, r.arch_psnr, np.full(T, np.nan), r.arch_strings, None,
                            r.diverged, r.wall_time_s, r.compile_time_s, arrays)
    return run


_FIXED_NAMES = {"lg": "Learnable Grad. only", "net": "Nets only"}


def early_stop_config(mode: str) -> Callable[[Config], Config]:
    """DAS with ``early_stop=mode``: "none" (DAS), "es" (DAS-ES) or "ada" (DAS-ADA); the latter two
    switch lambda_max tracking on every CURVATURE_EVERY epochs if it is off."""
    def configure(cfg):
        if cfg.search.early_stop == mode:
            return cfg
        if mode != "none" and cfg.search.curvature_every == 0:
            return cfg.replace(early_stop=mode, curvature_every=CURVATURE_EVERY)
        return cfg.replace(early_stop=mode)
    return configure


#: the DAS variants (dasjax.algorithms) as methods: method name -> registered algorithm
VARIANT_ALGORITHMS = {"GDAS": "gdas", "SNAS": "snas", "DrNAS": "drnas", "FairDARTS": "fairdarts",
                      "beta-DARTS": "beta-darts", "SDARTS-RS": "sdarts-rs", "SDARTS-ADV": "sdarts-adv",
                      "DARTS-PT": "darts-pt"}


def algorithm_config(algorithm: str) -> Callable[[Config], Config]:
    """DAS with the search algorithm ``algorithm`` (no early stopping, no lambda_max tracking:
    both measure DARTS's softmax relaxation).  The config's ``algorithm_options`` stay (they must
    be options of ``algorithm``)."""
    def configure(cfg):
        return cfg.replace(algorithm=algorithm, early_stop="none", curvature_every=0)
    return configure


def das_method(name: str) -> Callable[..., MethodResult]:
    """DAS (or a variant whose config switches early stopping on): search, then retrain the argmax."""
    def run(cfg, seeds, hparams, *, progress=None, checkpoint_dir=None, keep_params=False):
        s = search(cfg, seeds, hparams, progress=progress, desc=row_label(cfg, f"{name} search"),
                   checkpoint=checkpoint_path(checkpoint_dir, "search"))
        r = retrain(cfg, s.architecture, seeds, hparams, progress=progress, desc=row_label(cfg, f"{name} retrain"),
                    checkpoint=checkpoint_path(checkpoint_dir, "retrain"), keep_params=keep_params)
        arrays = {**s.history, **r.history, **(param_arrays(r) if keep_params else {})}
        columns = {}
        for key, v in s.curvature.items():
            if np.ndim(v) == 1:
                columns[key] = v
            else:
                arrays[key] = v
        return MethodResult(name, seeds, s.hparams, r.arch_psnr, s.one_shot_psnr, s.arch_strings,
                            s.alpha_softmax, s.diverged | r.diverged, s.wall_time_s + r.wall_time_s,
                            s.compile_time_s + r.compile_time_s, arrays, columns)
    return run


def random_methods(cfg: Config, seeds: Seeds, hparams: hpmod.HParamsLike | None = "H1", *,
                   progress: bool | None = None, n_candidates: int | None = None,
                   checkpoint_dir: PathLike | None = None,
                   keep_params: bool = False) -> tuple[MethodResult, MethodResult]:
    """Random Sampling and Random Search from one batched retraining of n x T random architectures.

    Candidate 0 of each seed is that seed's Random-Sampling trial; Random Search reports the
    best of the seed's ``n`` candidates by architecture validation PSNR (as the paper does).
    Returns (random_sampling, random_search) MethodResults (with n = 1 random search is candidate 0 too).
    ``keep_params``: as in :func:`run_method` (the reported candidate's network per trial).
    """
    seeds = as_seeds(seeds)
    T = len(seeds)
    n = cfg.retrain.n_random_search if n_candidates is None else n_candidates
    keys = candidate_keys(seeds, n)
    archs = random_architectures(cfg, keys)
    hp_names = hparams if isinstance(hparams, (str, hpmod.HParamSet)) or hparams is None \
        else list(hparams) * n
    r = retrain(cfg, archs, np.tile(seeds, n), hp_names, keys=keys, progress=progress,
                desc=row_label(cfg, f"random archs ({n}x{T})"), checkpoint=checkpoint_path(checkpoint_dir, "retrain"),
                keep_params=keep_params)
    psnr = r.arch_psnr.reshape(n, T)
    nan = np.full(T, np.nan)
    per_trial = {**r.history, **(param_arrays(r) if keep_params else {})}
    hist = {k: v.reshape((n, T) + v.shape[1:]) for k, v in per_trial.items()}
    share = r.wall_time_s / n           # wall time of T trainings
    sampling = MethodResult("Random Sampling", seeds, r.hparams[:T], psnr[0], nan, r.arch_strings[:T], None,
                            r.diverged[:T], share, r.compile_time_s, {k: v[0] for k, v in hist.items()})
    if n == 1:          # the best of one candidate is that candidate
        return sampling, dataclasses.replace(sampling, method="Random Search", wall_time_s=r.wall_time_s)
    best = np.argmax(np.where(np.isfinite(psnr), psnr, -np.inf), axis=0)
    pick = best * T + np.arange(T)
    searching = MethodResult("Random Search", seeds, r.hparams[:T], r.arch_psnr[pick], nan,
                             [r.arch_strings[i] for i in pick], None, np.all(r.diverged.reshape(n, T), 0),
                             r.wall_time_s, r.compile_time_s,
                             {k: v[best, np.arange(T)] for k, v in hist.items()})
    return sampling, searching


POOL_SEED_SALT = 0x52534F   # separates the pool draws from every other use of a trial's seed


def pool_candidates(seeds, n: int) -> np.ndarray:
    """(T, min(n, T)) indices into the row for ``random_search_pool="row"``: trial i's own index
    first, then min(n, T) - 1 other trials of the row drawn without replacement by a generator seeded
    with trial i's seed (and the row's seeds, so that the same row always draws the same)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    T = len(seeds)
    k = min(int(n), T)
    out = np.empty((T, k), dtype=np.int64)
    for i, s in enumerate(seeds):
        rng = np.random.default_rng([POOL_SEED_SALT, int(s), T])
        others = np.delete(np.arange(T), i)
        out[i, 0] = i
        out[i, 1:] = rng.choice(others, size=k - 1, replace=False) if k > 1 else others[:0]
    return out


def search_from_pool(sampling: MethodResult, n: int) -> MethodResult:
    """Random Search as the best of each trial's :func:`pool_candidates` among the random-sampling
    row's retrained architectures (``random_search_pool="row"``): no training of its own, and the
    row's best architecture is every trial's best that draws it, so the maxima of the two rows are
    equal by construction.  Needs only ``sampling``: the analysis and adaptive runs can rebuild it."""
    idx = pool_candidates(sampling.seeds, n)
    psnr = np.where(np.isfinite(sampling.arch_psnr), sampling.arch_psnr, -np.inf)
    pick = idx[np.arange(len(idx)), np.argmax(psnr[idx], axis=1)]
    diverged = np.all(np.asarray(sampling.diverged)[idx], axis=1)
    return MethodResult("Random Search", sampling.seeds, list(sampling.hparams), np.asarray(sampling.arch_psnr)[pick],
                        np.full(len(pick), np.nan), [sampling.arch_strings[i] for i in pick], None, diverged,
                        sampling.wall_time_s, sampling.compile_time_s,
                        {k: np.asarray(v)[pick] for k, v in sampling.arrays.items()},
                        {"pool_trial": np.asarray(sampling.seeds)[pick]})


def _search_pool_source(cfg: Config) -> tuple | None:
    """Random search draws from the random-sampling row under ``random_search_pool="row"``."""
    if cfg.retrain.random_search_pool != "row":
        return None
    return "Random Sampling", lambda row: search_from_pool(row, cfg.retrain.n_random_search)


def _search_candidates(cfg: Config) -> int:
    """Random search's trainings per seed: its n candidates (``"fresh"``), or none of its own (``"row"``)."""
    return cfg.retrain.n_random_search if cfg.retrain.random_search_pool == "fresh" else 1


def _random_group(cfg, seeds, hparams, methods, *, progress=None, checkpoint_dir=None, keep_params=False):
    """Random search needs n candidates per seed (``random_search_pool="fresh"``), or the
    random-sampling row itself (``"row"``); random sampling alone needs one."""
    sampling, searching = random_methods(cfg, seeds, hparams, progress=progress,
                                         n_candidates=_search_candidates(cfg) if "Random Search" in methods else 1,
                                         checkpoint_dir=checkpoint_dir, keep_params=keep_params)
    source = _search_pool_source(cfg)
    if source is not None:
        searching = source[1](sampling)
    results = {"Random Sampling": sampling, "Random Search": searching}
    return {m: results[m] for m in methods}


def _random_member(name: str) -> Callable[..., MethodResult]:
    def run(cfg, seeds, hparams, **kw):
        return _random_group(cfg, seeds, hparams, (name,), **kw)[name]
    return run


def _das_single(cfg, seeds, hparams, *, progress=None, checkpoint_dir=None, keep_params=False):
    from .single import das_single           # DAS-single's programs load only when it runs
    return das_single(cfg, seeds, hparams, progress=progress, checkpoint_dir=checkpoint_dir)


def run_sets(cfg: Config, method: str, sets: Iterable[str | hpmod.HParamSet], seeds: Seeds, *,
             progress: bool | None = None, checkpoint_dir: PathLike | None = None) -> dict[str, MethodResult]:
    """Run ``method`` under K hyperparameter sets x T seeds; returns {set name: MethodResult}.

    Sets that share optimizer types run as ONE batched program over a (K*T) trial axis; sets with
    other optimizer types form separate groups.  A set's results do not depend on which other sets
    share its batch (trials are independent and keyed by their seed alone).
    """
    seeds = as_seeds(seeds)
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


_GROUPS.add("random", _random_group, builtin=True)
BUILTIN_METHODS = (
    Method("Learnable Grad. only", fixed_op_method("lg")),
    Method("Nets only", fixed_op_method("net")),
    Method("DAS", das_method("DAS"), configure=early_stop_config("none")),
    Method("Random Sampling", _random_member("Random Sampling"), group="random"),
    Method("Random Search", _random_member("Random Search"), group="random", from_row=_search_pool_source,
           seed_trials=_search_candidates),
    Method("DAS-single", _das_single),
    Method("DAS-ES", das_method("DAS-ES"), configure=early_stop_config("es")),
    Method("DAS-ADA", das_method("DAS-ADA"), configure=early_stop_config("ada")),
    *(Method(name, das_method(name), configure=algorithm_config(algorithm))
      for name, algorithm in VARIANT_ALGORITHMS.items()),
)
BUILTIN_METHODS = {m.name: m for m in BUILTIN_METHODS}
for _m in BUILTIN_METHODS.values():
    register_method(_m)
    _METHODS.builtin.add(_m.name)
