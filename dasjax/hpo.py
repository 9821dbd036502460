"""Hyperparameter optimisation of DAS: bracket-synchronous Hyperband with random or TPE proposals.

The paper tuned its DAS hyperparameters with BOHB (paper §4.1, Table 8, register #26): Hyperband
over the number of epochs, with a model-based sampler in place of Hyperband's random one.
This module gives the same loop on the batched engine:

* **Hyperband** (Li et al. 2018): :func:`hyperband_schedule` lists the brackets; one
  *iteration* runs one bracket (hpbandster's meaning: 128 iterations = 128 brackets, cycling
  ``s = s_max, ..., 0``).  Each rung's configurations are evaluated **together**: the
  configurations that share optimizer types run as one batched program (hyperparameters are
  per-trial arrays), the others as one more program per optimizer-type group.
* **Survivors restart** at the larger budget, as hpbandster's BOHB does: a rung at ``b`` epochs
  is a fresh ``b``-epoch run with the configuration's own seeds.  Continuing a 6-epoch run to
  18 epochs is not an 18-epoch run here, because the "Linear" scheduler's milestones depend on
  the total epoch count (register #16) and the objective "arch" retrains from scratch anyway.
* **Proposals**: :class:`RandomSampler`, or :class:`TPESampler` (BOHB-style: Optuna's
  Tree-structured Parzen Estimator, fitted on the observations of the largest budget that has
  enough of them; a fraction of the proposals stays random).  Optuna is an optional dependency
  (``pip install "dasjax[hpo]"``); without it, ``sampler="auto"`` falls back to random proposals.
* **Objectives**: ``"one-shot"`` (the supernet's validation PSNR after the search,
  :func:`dasjax.search`) or ``"arch"`` (the retrained architecture's PSNR,
  :func:`dasjax.run_method` ``"DAS"``; the budget applies to search and retraining alike, so it
  costs twice as many epochs).  Diverged configurations score ``-inf`` and are never promoted.

Everything is a pure function of ``seed``: the same seed gives the same proposals and results.

>>> import dasjax, dasjax.hpo as hpo
>>> cfg = dasjax.make_config(problem="blur", op_set="all", width=16)
>>> res = hpo.tune(cfg, objective="one-shot", iterations=3, max_budget=9, sampler="random")
>>> res.incumbent                       # a HParamSet; res.incumbent.to_json() for run_table1.py
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from . import hparams as hpmod
from . import methods, stages
from .hparams import HParamSet

OBJECTIVES = ("one-shot", "arch")
SAMPLERS = ("random", "tpe", "auto")
INSTALL_HINT = 'the TPE sampler needs Optuna: pip install "dasjax[hpo]" (or pip install optuna)'


# --- search space (paper Table 8) --------------------------------------------------------------
@dataclass(frozen=True)
class LogUniform:
    """A number drawn uniformly in log space from [low, high]."""
    low: float
    high: float

    def __post_init__(self):
        if not (0 < self.low < self.high and math.isfinite(self.high)):
            raise ValueError(f"LogUniform needs 0 < low < high, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> float:
        return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))

    def contains(self, v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and self.low <= v <= self.high


@dataclass(frozen=True)
class Categorical:
    """One of a few values (booleans, optimizer names)."""
    choices: tuple

    def __post_init__(self):
        if len(self.choices) == 0:
            raise ValueError("Categorical needs at least one choice")

    def sample(self, rng: np.random.Generator):
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, v) -> bool:
        return any(v == c and type(v) is type(c) for c in self.choices)


# The search ranges of the paper's Table 8 (App. E); the theta optimizer (Adam, register #15)
# and the theta scheduler (constant) are not listed hyperparameters and stay fixed.
PAPER_SPACE = {
    "theta_lr": LogUniform(1e-5, 1.0),
    "theta_wd": LogUniform(1e-8, 0.1),
    "theta_warmup": Categorical((False, True)),
    "alpha_lr": LogUniform(1e-5, 0.1),
    "alpha_wd": LogUniform(1e-5, 0.1),
    "alpha_warmup": Categorical((False, True)),
    "alpha_scheduler": Categorical((False, True)),      # False = "None", True = "Linear"
    "alpha_optimizer": Categorical(("adam", "sgd")),    # "sgd" = "Gradient Descent"
}
_HP_FIELDS = tuple(f.name for f in dataclasses.fields(HParamSet) if f.name != "name")


@dataclass(frozen=True)
class SearchSpace:
    """The searched hyperparameters (name -> distribution) and the pinned ones (name -> value).

    ``SearchSpace()`` is the paper's space.  ``space.fix(theta_lr=1e-3)`` pins a value (as
    BOHB-DAS-single, whose theta rows were apparently not searched).
    """
    params: dict = field(default_factory=lambda: dict(PAPER_SPACE))
    fixed: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in list(self.params) + list(self.fixed):
            if name not in _HP_FIELDS:
                raise ValueError(f"hyperparameter {name!r} is not a HParamSet field; allowed: {list(_HP_FIELDS)}")
        both = set(self.params) & set(self.fixed)
        if both:
            raise ValueError(f"hyperparameters {sorted(both)} are both searched and fixed")
        if not self.params:
            raise ValueError("the search space has no free hyperparameter left")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.params)

    def fix(self, **values) -> "SearchSpace":
        """A copy with ``values`` pinned (and removed from the searched ones)."""
        for k, v in values.items():
            if k in self.params and not self.params[k].contains(v):
                raise ValueError(f"fixed value {k}={v!r} lies outside the search range {self.params[k]}")
        params = {k: d for k, d in self.params.items() if k not in values}
        return SearchSpace(params, {**self.fixed, **values})

    def sample(self, rng: np.random.Generator) -> dict:
        return {k: d.sample(rng) for k, d in self.params.items()}

    def to_hparams(self, values: dict, name: str) -> HParamSet:
        """A full :class:`HParamSet` from sampled values + the fixed ones (+ HParamSet defaults)."""
        return HParamSet(name=name, **{**self.fixed, **values})

    def optuna_distributions(self) -> dict:
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        return {k: (FloatDistribution(d.low, d.high, log=True) if isinstance(d, LogUniform)
                    else CategoricalDistribution(d.choices)) for k, d in self.params.items()}


# --- the Hyperband schedule ----------------------------------------------------------------------
@dataclass(frozen=True)
class Rung:
    n_configs: int
    budget: float      # nominal budget (epochs, fractional)
    epochs: int        # what is run: the budget rounded half up


@dataclass(frozen=True)
class Bracket:
    s: int
    rungs: tuple


def round_budget(budget: float) -> int:
    """Nominal budget -> integer epochs, rounded half up (50/9 -> 6, 50/3 -> 17)."""
    return int(math.floor(budget + 0.5 + 1e-9))


def hyperband_schedule(max_budget: float, eta: float = 3, min_budget: float | None = None) -> list[Bracket]:
    """Hyperband's brackets, most aggressive first (Li et al. 2018, Alg. 1).

    s_max = floor(log_eta(max_budget / min_budget)), B = (s_max + 1) * R with R = max/min;
    bracket s starts n = ceil(B/R * eta^s / (s+1)) configurations at r = max_budget * eta^-s,
    and rung i keeps floor(n * eta^-i) of them at r * eta^i.  ``min_budget`` defaults to
    max_budget / 9 (register #26).  The smallest budget actually used is max_budget / eta^s_max.
    """
    if not (isinstance(eta, (int, float)) and eta > 1):
        raise ValueError(f"eta={eta!r} must be a number > 1")
    if not (max_budget > 0 and math.isfinite(max_budget)):
        raise ValueError(f"max_budget={max_budget!r} must be a positive number of epochs")
    min_budget = max_budget / 9 if min_budget is None else min_budget
    if not (0 < min_budget <= max_budget):
        raise ValueError(f"min_budget={min_budget!r} must be in (0, max_budget={max_budget}]")
    s_max = int(math.floor(math.log(max_budget / min_budget) / math.log(eta) + 1e-9))
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) * eta ** s / (s + 1) - 1e-9))
        rungs = []
        for i in range(s + 1):
            b = max_budget * eta ** (i - s)
            rungs.append(Rung(int(math.floor(n * eta ** -i + 1e-9)), b, round_budget(b)))
        epochs = [r.epochs for r in rungs]
        if epochs[0] < 1 or any(a >= b for a, b in zip(epochs, epochs[1:])):
            raise ValueError(f"budgets {[round(r.budget, 3) for r in rungs]} round to epochs {epochs}: "
                             "each rung needs at least 1 more epoch than the last; raise min_budget or "
                             "max_budget, or lower eta")
        brackets.append(Bracket(s, tuple(rungs)))
    return brackets


def bracket_of_iteration(schedule: Sequence[Bracket], iteration: int) -> Bracket:
    """Iteration i runs bracket s = s_max - (i mod (s_max + 1)) (hpbandster's cycle)."""
    return schedule[iteration % len(schedule)]


# --- proposals ------------------------------------------------------------------------------------
def _rng(seed: int, *index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *map(int, index)])


@dataclass(frozen=True)
class Observation:
    values: dict
    epochs: int
    objective: float


class RandomSampler:
    """Independent draws from the search space (Hyperband's sampler)."""
    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.space, self.seed = space, int(seed)

    def propose(self, n: int, observations: Sequence[Observation], iteration: int) -> list[tuple[dict, str]]:
        rng = _rng(self.seed, iteration)
        return [(self.space.sample(rng), "random") for _ in range(n)]


def _import_optuna():
    try:
        import optuna
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return optuna


@contextlib.contextmanager
def quiet_optuna():
    """Optuna (imported) with its log level at WARNING inside the block and the user's own level
    given back after it: dasjax never changes another library's logging for good."""
    optuna = _import_optuna()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield optuna
    finally:
        optuna.logging.set_verbosity(verbosity)


def optuna_available() -> bool:
    try:
        _import_optuna()
    except ImportError:
        return False
    return True


class TPESampler:
    """BOHB-style proposals from Optuna's TPE (ask/tell interface).

    As BOHB: the model is fitted on the observations of the *largest* budget that has at least
    ``min_points`` of them (default: searched dimensions + 1); before that, and for a
    ``random_fraction`` of the proposals (BOHB's default 1/3), configurations are random.  The
    model is a fresh in-memory Optuna study per proposal round, filled with ``add_trial`` and
    sampled with ``ask``; its seed is derived from (seed, iteration), so runs are reproducible.
    Diverged observations enter with value ``-inf`` (the worst), so TPE learns to avoid them.
    """
    name = "tpe"

    def __init__(self, space: SearchSpace, seed: int = 0, *, random_fraction: float = 1 / 3,
                 min_points: int | None = None, multivariate: bool = True, n_ei_candidates: int = 24):
        _import_optuna()                 # without Optuna: the install hint now, not at the first proposal
        if not 0 <= random_fraction <= 1:
            raise ValueError(f"random_fraction={random_fraction!r} must be in [0, 1]")
        self.space, self.seed = space, int(seed)
        self.random_fraction = float(random_fraction)
        self.min_points = len(space.params) + 1 if min_points is None else int(min_points)
        self.multivariate, self.n_ei_candidates = multivariate, int(n_ei_candidates)

    def model_budget(self, observations: Sequence[Observation]) -> int | None:
        counts: dict[int, int] = {}
        for o in observations:
            counts[o.epochs] = counts.get(o.epochs, 0) + 1
        ok = [e for e, c in counts.items() if c >= self.min_points]
        return max(ok) if ok else None

    def propose(self, n: int, observations: Sequence[Observation], iteration: int) -> list[tuple[dict, str]]:
        rng = _rng(self.seed, iteration)
        budget = self.model_budget(observations)
        use_model = (rng.random(n) >= self.random_fraction) if budget is not None else np.zeros(n, bool)
        randoms = [self.space.sample(rng) for _ in range(n)]        # drawn for every slot: stable streams
        out = [(r, "random") for r in randoms]
        if use_model.any():
            dists = self.space.optuna_distributions()
            with quiet_optuna() as optuna:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    sampler = optuna.samplers.TPESampler(
                        seed=int(_rng(self.seed, iteration, 1).integers(2 ** 31)), n_startup_trials=0,
                        multivariate=self.multivariate, n_ei_candidates=self.n_ei_candidates)
                    study = optuna.create_study(direction="maximize", sampler=sampler)
                    for o in observations:
                        if o.epochs == budget:
                            study.add_trial(optuna.trial.create_trial(
                                params={k: o.values[k] for k in dists}, distributions=dists,
                                value=float(o.objective) if np.isfinite(o.objective) else float("-inf")))
                    for j in np.flatnonzero(use_model):
                        trial = study.ask(dists)
                        out[j] = ({k: trial.params[k] for k in dists}, f"tpe@{budget}ep")
        return out


def make_sampler(name, space: SearchSpace, seed: int = 0, *, log=None, **kw):
    """"random" | "tpe" | "auto" (TPE when Optuna is installed, else random) | a sampler object."""
    if not isinstance(name, str):
        return name
    if name not in SAMPLERS:
        raise ValueError(f"sampler={name!r} is not allowed; choose one of {list(SAMPLERS)}")
    if name == "auto":
        name = "tpe" if optuna_available() else "random"
        if name == "random" and log is not None:
            log("[hpo] Optuna is not installed: random proposals (Hyperband). "
                'For BOHB-style TPE proposals: pip install "dasjax[hpo]"')
    if name == "random":
        return RandomSampler(space, seed)
    return TPESampler(space, seed, **kw)


# --- evaluating a rung on the batched engine --------------------------------------------------------
class Evaluator:
    """evaluate(configs, seeds, epochs) -> one dict per configuration.

    ``configs``: HParamSets; ``seeds``: one list of trial seeds per configuration.  The
    configurations that share optimizer types run as one batched program (one trial per
    (configuration, seed)); each other optimizer-type group is one more program.  A trial's
    result does not depend on its batch, so this equals evaluating the configurations one by one.
    """

    def __init__(self, cfg, objective: str = "one-shot", *, progress: bool = False):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective={objective!r} is not allowed; choose one of {list(OBJECTIVES)}")
        self.cfg, self.objective, self.progress = cfg, objective, progress
        self.stages = 2 if objective == "arch" else 1      # search + retraining, each `epochs` long

    def __call__(self, configs: Sequence[HParamSet], seeds: Sequence[Sequence[int]], epochs: int) -> list[dict]:
        cfg = self.cfg.replace(epochs=int(epochs))
        out: list[dict | None] = [None] * len(configs)
        for types, idx in hpmod.group_by_optimizer(configs).items():
            per_trial = [configs[i] for i in idx for _ in seeds[i]]
            flat = [int(s) for i in idx for s in seeds[i]]
            if self.objective == "one-shot":
                r = stages.search(cfg, flat, per_trial, progress=self.progress, desc=f"hpo {epochs}ep {'/'.join(types)}")
                one_shot, arch = r.one_shot_psnr, np.full(len(flat), np.nan)
            else:
                r = methods.run_method(cfg, "DAS", flat, per_trial, progress=self.progress)
                one_shot, arch = r.one_shot_psnr, r.arch_psnr
            score = one_shot if self.objective == "one-shot" else arch
            pos = 0
            for i in idx:
                k = len(seeds[i])
                sl = slice(pos, pos + k)
                pos += k
                diverged = bool(np.any(r.diverged[sl]) or not np.all(np.isfinite(score[sl])))
                out[i] = {"objective": -math.inf if diverged else float(np.mean(score[sl])),
                          "one_shot_psnr": float(np.mean(one_shot[sl])),
                          "arch_psnr": float(np.mean(arch[sl])),
                          "diverged": diverged,
                          "architecture": r.arch_strings[sl.start],
                          "wall_time_s": float(r.wall_time_s) * k / len(flat),
                          "compile_time_s": float(r.compile_time_s)}
        return out


# --- the loop ----------------------------------------------------------------------------------------
CONFIG_COLUMNS = ("theta_lr", "theta_wd", "theta_warmup", "alpha_lr", "alpha_wd", "alpha_warmup",
                  "alpha_scheduler", "alpha_optimizer", "theta_optimizer", "theta_scheduler")
COLUMNS = ("iteration", "bracket", "rung", "budget", "epochs", "config_id", "seeds", "proposal",
           *CONFIG_COLUMNS, "objective", "one_shot_psnr", "arch_psnr", "diverged", "architecture",
           "wall_time_s", "compile_time_s", "rung_wall_time_s", "trial_epochs", "cumulative_trial_epochs")


@dataclass
class HPOResult:
    evaluations: pd.DataFrame      # one row per (configuration, rung): COLUMNS
    incumbent: HParamSet | None    # best configuration at the largest budget reached (None: all diverged)
    incumbent_row: dict | None
    trajectory: pd.DataFrame
    schedule: list
    sampler: str


def _same_values(row, values: dict) -> bool:
    for k, v in values.items():
        old = row.get(k)
        if isinstance(v, float):
            if not (isinstance(old, (int, float)) and math.isclose(float(old), v, rel_tol=1e-12)):
                return False
        elif old != v:
            return False
    return True


def hyperband(evaluate: Callable, *, space: SearchSpace | None = None, iterations: int = 3,
              max_budget: float = 50, eta: float = 3, min_budget: float | None = None, sampler="auto",
              seed: int = 0, trials: int = 1, name: str = "HPO", previous: pd.DataFrame | None = None,
              on_rung: Callable | None = None, log: Callable | None = None,
              sampler_kw: dict | None = None) -> HPOResult:
    """Bracket-synchronous Hyperband; returns every evaluation, the incumbent and its trajectory.

    evaluate(configs, seeds, epochs) -> list of dicts with at least "objective" (higher is
    better; -inf = diverged) and "diverged"; see :class:`Evaluator`.  Configuration ``c`` (numbered
    in proposal order) runs with seeds ``seed + c*trials, ..., seed + c*trials + trials-1`` at every
    rung.  ``previous``: an earlier run's evaluations (same settings); matching rows are reused
    instead of evaluated again (resume).  ``on_rung(df)`` is called with all rows after each rung.
    """
    space = space or SearchSpace()
    if int(iterations) < 1:
        raise ValueError(f"iterations={iterations!r} must be >= 1")
    if int(trials) < 1:
        raise ValueError(f"trials={trials!r} must be >= 1")
    schedule = hyperband_schedule(max_budget, eta, min_budget)
    prop = make_sampler(sampler, space, seed, log=log, **(sampler_kw or {}))
    n_stages = getattr(evaluate, "stages", 1)
    cache = {} if previous is None else {(int(r["config_id"]), int(r["epochs"])): r
                                         for r in previous.to_dict("records")}
    rows: list[dict] = []
    observations: list[Observation] = []
    next_id = 0
    cumulative = 0
    for it in range(int(iterations)):
        bracket = bracket_of_iteration(schedule, it)
        proposals = prop.propose(bracket.rungs[0].n_configs, observations, it)
        ids = list(range(next_id, next_id + len(proposals)))
        next_id += len(proposals)
        active = list(range(len(proposals)))           # indices into proposals
        for i, rung in enumerate(bracket.rungs):
            values = [proposals[a][0] for a in active]
            sets = [space.to_hparams(v, f"{name}-c{ids[a]}") for a, v in zip(active, values)]
            seeds = [[seed + ids[a] * trials + j for j in range(trials)] for a in active]
            results: list = [None] * len(active)
            todo = []
            for j, a in enumerate(active):
                old = cache.get((ids[a], rung.epochs))
                if old is not None and _same_values(old, values[j]):
                    results[j] = {k: old[k] for k in ("objective", "one_shot_psnr", "arch_psnr", "diverged",
                                                      "architecture", "wall_time_s", "compile_time_s",
                                                      "rung_wall_time_s")}
                else:
                    todo.append(j)
            t0 = time.perf_counter()
            if todo:
                fresh = evaluate([sets[j] for j in todo], [seeds[j] for j in todo], rung.epochs)
                for j, r in zip(todo, fresh):
                    results[j] = dict(r)
            rung_wall = time.perf_counter() - t0
            for j, a in enumerate(active):
                r = results[j]
                obj = float(r["objective"])
                diverged = bool(r["diverged"]) or not math.isfinite(obj)
                obj = -math.inf if diverged else obj
                cost = rung.epochs * trials * n_stages
                cumulative += cost
                hp = sets[j]
                rows.append({"iteration": it, "bracket": bracket.s, "rung": i, "budget": rung.budget,
                             "epochs": rung.epochs, "config_id": ids[a],
                             "seeds": " ".join(map(str, seeds[j])), "proposal": proposals[a][1],
                             **{k: getattr(hp, k) for k in CONFIG_COLUMNS},
                             "objective": obj, "one_shot_psnr": r.get("one_shot_psnr", np.nan),
                             "arch_psnr": r.get("arch_psnr", np.nan), "diverged": diverged,
                             "architecture": r.get("architecture", ""),
                             "wall_time_s": r.get("wall_time_s", np.nan),
                             "compile_time_s": r.get("compile_time_s", np.nan),
                             "rung_wall_time_s": r.get("rung_wall_time_s", rung_wall) if j not in todo
                             else rung_wall,
                             "trial_epochs": cost, "cumulative_trial_epochs": cumulative})
                observations.append(Observation(values[j], rung.epochs, obj))
            df = pd.DataFrame(rows, columns=COLUMNS)
            if log is not None:
                fin = [results[j]["objective"] for j in range(len(active))
                       if math.isfinite(float(results[j]["objective"])) and not results[j]["diverged"]]
                log(f"[hpo] iteration {it + 1}/{iterations}, bracket s={bracket.s}, rung {i}: "
                    f"{len(active)} configs x {rung.epochs} epochs"
                    + (f" ({len(active) - len(todo)} reused)" if len(todo) < len(active) else "")
                    + (f": best {max(fin):.3f} dB, {len(active) - len(fin)} diverged" if fin
                       else ": all diverged") + f", {rung_wall:.1f}s")
            if on_rung is not None:
                on_rung(df)
            if i + 1 < len(bracket.rungs):
                keep = bracket.rungs[i + 1].n_configs
                score = [float(results[j]["objective"]) if not results[j]["diverged"] else -math.inf
                         for j in range(len(active))]
                order = sorted((j for j in range(len(active)) if math.isfinite(score[j])),
                               key=lambda j: -score[j])          # stable: ties keep proposal order
                active = [active[j] for j in order[:keep]]
                if not active:
                    break
    df = pd.DataFrame(rows, columns=COLUMNS)
    inc_row = incumbent_row(df)
    inc = None
    if inc_row is not None:
        vals = {k: inc_row[k] for k in space.names}
        inc = space.to_hparams(_plain(vals), name)
    return HPOResult(df, inc, inc_row, trajectory(df), schedule, prop.name)


def _plain(values: dict) -> dict:
    """numpy scalars (from a DataFrame) -> Python bool / float / str."""
    out = {}
    for k, v in values.items():
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, float, np.number)):
            out[k] = float(v)
        else:
            out[k] = str(v)
    return out


def incumbent_row(df: pd.DataFrame) -> dict | None:
    """hpbandster's incumbent: the best finite objective at the largest budget that has one."""
    ok = df[np.isfinite(df["objective"].astype(float)) & ~df["diverged"].astype(bool)]
    if ok.empty:
        return None
    top = ok[ok["epochs"] == ok["epochs"].max()]
    return top.loc[top["objective"].astype(float).idxmax()].to_dict()


def trajectory(df: pd.DataFrame) -> pd.DataFrame:
    """After each evaluation: cumulative trial-epochs, the incumbent's objective (best at the largest
    budget reached so far) and the best objective so far at each budget."""
    best: dict[int, float] = {}
    inc_id = None
    rows = []
    for r in df.to_dict("records"):
        obj = float(r["objective"])
        if math.isfinite(obj) and obj > best.get(r["epochs"], -math.inf):
            best[r["epochs"]] = obj
            if r["epochs"] == max(best):
                inc_id = r["config_id"]
        top = max(best) if best else None
        rows.append({"cumulative_trial_epochs": r["cumulative_trial_epochs"], "epochs": r["epochs"],
                     "objective": obj, "incumbent_epochs": top,
                     "incumbent_objective": best[top] if top is not None else -math.inf,
                     "incumbent_config_id": inc_id,
                     **{f"best_at_{e}_epochs": best.get(e, np.nan) for e in sorted(df["epochs"].unique())}})
    return pd.DataFrame(rows)


def tune(cfg, objective: str = "one-shot", *, iterations: int = 3, max_budget: float = 50, eta: float = 3,
         min_budget: float | None = None, sampler="auto", seed: int = 0, trials: int = 1,
         space: SearchSpace | None = None, name: str | None = None, progress: bool = False,
         previous=None, on_rung=None, log=None, sampler_kw: dict | None = None) -> HPOResult:
    """Hyperband (random or TPE proposals) over DAS hyperparameters on ``cfg``'s problem and op set."""
    name = name or f"HPO-{objective}-{cfg.problem.name}"
    return hyperband(Evaluator(cfg, objective, progress=progress), space=space, iterations=iterations,
                     max_budget=max_budget, eta=eta, min_budget=min_budget, sampler=sampler, seed=seed,
                     trials=trials, name=name, previous=previous, on_rung=on_rung, log=log,
                     sampler_kw=sampler_kw)
