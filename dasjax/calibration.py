"""Calibration as a search: fit the readings the paper leaves open to its released statistics.

A *target table* lists statistics of the paper's rows, tidy: one line per (space, op_set, method,
problem, stat) with the paper's ``value`` (``analysis.reference.table1()`` has this form), and
optionally a ``weight`` and a ``trials_scale`` (a row that needs more trials than the others, such
as the distribution of random architectures).  A *field space* names the config fields to search
(any :func:`dasjax.make_config` name) with their candidate values.  :func:`fit` then runs
Hyperband (:mod:`dasjax.hpo`'s brackets, and its random or TPE proposals) over that space, where a
candidate's *budget* is its number of trials per row: every candidate starts on a few seeds, and
the promising ones get more.

* **Distance** (lower is better): the weighted mean of |ours - paper| over the target's lines,
  in dB; each row's statistics come from its trials at the candidate's budget.
* **Seeds** start at ``first_seed`` (10 000 by default, :data:`CALIBRATION_SEED0`), disjoint from
  the seeds 0..N-1 that results report.  Every candidate runs the same seeds, so two candidates
  differ by their readings, not by their draws.
* **Trials are reused**: a trial depends on its config and seed alone, so a promoted candidate only
  runs the seeds it has not run yet, and a rerun of the command (``previous`` trials) runs none of
  the finished ones.  Random search with ``random_search_pool="row"`` is rebuilt from the
  random-sampling trials (:func:`dasjax.methods.search_from_pool`).
* **Statistics**: max, mean, median, min, std (ddof 0, as the paper's tables) and ``pNN``, the
  NN-th percentile (the paper's random-search median is the 87th percentile of a pool of single
  architectures: 0.87^5 is about 1/2).

The tidy per-trial table (:data:`TRIAL_COLUMNS`) is the record; :func:`candidate_table`,
:func:`ranking_markdown` and :func:`field_figure` are computed from it.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import hpo
from .config import flat_field, make_config
from .methods import get_method, pool_candidates, run_group, run_method

CALIBRATION_SEED0 = 10_000        # calibration seeds start here: never the reported seeds 0..N-1
ROW_KEYS = ("space", "op_set", "method", "problem")
# pool: for random search drawn from the random-sampling row, the size of the row it was drawn from
# (its trials change when the row grows); 0 for every other trial
# config: a fingerprint of the whole config a trial ran with (the candidate's values on top of the
# base and the defaults of the day), so a trial is reused only for the very same config
TRIAL_COLUMNS = ("candidate", "values", "config", *ROW_KEYS, "seed", "pool", "arch_psnr", "diverged", "architecture",
                 "wall_time_s")
_PCT = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


# --- statistics and targets -------------------------------------------------------------------------
def statistic(name: str, values) -> float:
    """One statistic of a row's finite values: max, mean, median, min, std (ddof 0) or pNN."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    simple = {"max": np.max, "mean": np.mean, "median": np.median, "min": np.min, "std": np.std}
    if name in simple:
        return float(simple[name](x))
    m = _PCT.match(name)
    if m:
        return float(np.percentile(x, float(m.group(1))))
    raise ValueError(f"unknown statistic {name!r}; use max, mean, median, min, std or pNN (a percentile, e.g. p87)")


def check_targets(targets: pd.DataFrame) -> pd.DataFrame:
    """The target table with its optional columns filled (weight 1, trials_scale 1), checked."""
    missing = [c for c in (*ROW_KEYS, "stat", "value") if c not in targets.columns]
    if missing:
        raise ValueError(f"the target table lacks columns {missing}; it needs {list(ROW_KEYS)} + ['stat', 'value'] "
                         "(and optionally 'weight', 'trials_scale')")
    t = targets.copy()
    t["weight"] = t["weight"].astype(float) if "weight" in t else 1.0
    t["trials_scale"] = t["trials_scale"].astype(float) if "trials_scale" in t else 1.0
    for s in set(t["stat"]):
        statistic(s, [1.0])                                   # raises on an unknown statistic
    for m in set(t["method"]):
        get_method(m)                                         # raises naming the registered methods
    if not (t["weight"] > 0).all() or not (t["trials_scale"] >= 1).all():
        raise ValueError("target weights must be > 0 and trials_scale >= 1")
    if t[list(ROW_KEYS)].drop_duplicates().merge(t.groupby(list(ROW_KEYS))["trials_scale"].nunique()
                                                 .reset_index(), on=list(ROW_KEYS))["trials_scale"].max() > 1:
        raise ValueError("every line of one row must have the same trials_scale")
    return t.reset_index(drop=True)


# --- the fields searched ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Uniform:
    """A number drawn uniformly from [low, high]."""
    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform needs finite low < high, got [{self.low}, {self.high}]")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


def parse_field(text: str):
    """``NAME=SPEC`` -> (name, distribution).  SPEC: ``a,b,c`` (the choices; numbers, true/false,
    none and words), ``uniform:LOW:HIGH`` or ``log:LOW:HIGH``."""
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise ValueError(f"field {text!r}: write NAME=a,b,c or NAME=uniform:LOW:HIGH or NAME=log:LOW:HIGH")
    kind, _, rest = spec.partition(":")
    if kind in ("uniform", "log") and rest:
        lo, _, hi = rest.partition(":")
        dist = Uniform(float(lo), float(hi)) if kind == "uniform" else hpo.LogUniform(float(lo), float(hi))
        return name.strip(), dist
    name = name.strip()
    owners = flat_field(name)
    text_field = bool(owners) and isinstance(owners[0][1].default, str)
    return name, hpo.Categorical(tuple(_literal(v, text_field) for v in spec.split(",")))


def _literal(text: str, text_field: bool = False):
    """A choice as written: true / false, none (a word for a field whose default is text), a number, a word."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return "none" if text_field else None
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


@dataclass(frozen=True)
class FieldSpace:
    """Config fields to search (flat :func:`dasjax.make_config` names -> Categorical, Uniform or
    LogUniform), on top of ``fixed`` overrides.  Every choice is checked against the config."""
    params: dict
    fixed: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.params:
            raise ValueError("the field space is empty: name at least one field to search")
        for name, dist in self.params.items():
            if not isinstance(dist, (hpo.Categorical, Uniform, hpo.LogUniform)):
                raise ValueError(f"field {name!r}: {dist!r} is not a Categorical, Uniform or LogUniform")
            probe = dist.choices if isinstance(dist, hpo.Categorical) else (dist.low, dist.high)
            for v in probe:
                make_config(**{**self.fixed, name: v})        # raises naming the field and what it allows

    @property
    def names(self) -> tuple:
        return tuple(self.params)

    def sample(self, rng: np.random.Generator) -> dict:
        return {k: d.sample(rng) for k, d in self.params.items()}

    def optuna_distributions(self) -> dict:
        from optuna.distributions import CategoricalDistribution, FloatDistribution
        out = {}
        for k, d in self.params.items():
            if isinstance(d, hpo.Categorical):
                out[k] = CategoricalDistribution(d.choices)
            else:
                out[k] = FloatDistribution(d.low, d.high, log=isinstance(d, hpo.LogUniform))
        return out


def values_key(values: dict) -> str:
    """A candidate's readings as one canonical string (the trial table's ``values`` column)."""
    def plain(v):
        if isinstance(v, (np.floating, float)):
            return float(f"{float(v):.6g}")
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.bool_):
            return bool(v)
        return v
    return json.dumps({k: plain(v) for k, v in sorted(values.items())}, sort_keys=True)


# --- evaluating a candidate -------------------------------------------------------------------------
@dataclass
class Evaluator:
    """Runs a candidate's target rows on the seeds it lacks and returns its trials.

    ``base``: make_config overrides of every run (width, epochs, the fixed fields); ``hparams``: the
    set every trial trains with; ``previous``: trials already done (a rerun reuses them)."""
    targets: pd.DataFrame
    base: dict
    hparams: object = "H1"
    first_seed: int = CALIBRATION_SEED0
    previous: pd.DataFrame | None = None
    log: Callable | None = None
    on_trials: Callable | None = None          # called with the new trials' DataFrame as they finish
    trials: list = field(default_factory=list)

    def __post_init__(self):
        self.targets = check_targets(self.targets)
        self._done, self._ids, self._values = {}, {}, {}
        if self.previous is not None and len(self.previous):
            self._ids = {k: int(c) for k, c in zip(self.previous["config"], self.previous["candidate"])}
            for r in self.previous.to_dict("records"):
                self._done[(r["config"], *(r[k] for k in ROW_KEYS), int(r["seed"]), int(r["pool"]))] = r
            self.trials = self.previous.to_dict("records")

    def fingerprint(self, values: dict) -> str:
        """The config a candidate's trials run with (base and defaults included), as a short hash.
        A sequential config drops the fields only the cell space reads, so with cell-space targets the
        cell config counts too (before, two candidates that differed only in a cell field, such as
        ``merge_norm``, shared one key, and the second reused the first's trials)."""
        cfg = make_config(**{**self.base, **values})
        spaces = sorted(set(self.targets["space"]) - {cfg.space.space})
        science = cfg.science_dict() if not spaces else \
            [cfg.science_dict()] + [make_config(**{**self.base, **values, "space": s}).science_dict() for s in spaces]
        text = json.dumps(science, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def candidate_id(self, values: dict) -> int:
        """A candidate's number: the one its config already has in the trial table, else the next free."""
        key = self.fingerprint(values)
        if key not in self._ids:
            self._ids[key] = max(self._ids.values(), default=-1) + 1
        return self._ids[key]

    def rows(self) -> pd.DataFrame:
        return self.targets.groupby(list(ROW_KEYS), sort=False)["trials_scale"].first().reset_index()

    def seeds(self, budget: int, scale: float) -> list[int]:
        return list(range(self.first_seed, self.first_seed + int(math.ceil(budget * scale))))

    def row_trials(self, key: str, row: dict, seeds, pool: int = 0) -> pd.DataFrame:
        got = [self._done[(key, *(row[k] for k in ROW_KEYS), s, pool)] for s in seeds
               if (key, *(row[k] for k in ROW_KEYS), s, pool) in self._done]
        return pd.DataFrame(got, columns=TRIAL_COLUMNS)

    def __call__(self, candidate: int, values: dict, budget: int) -> pd.DataFrame:
        """All trials of the candidate's rows at ``budget`` trials (times each row's scale)."""
        key = self.fingerprint(values)
        self._values[key] = values_key(values)
        rows = self.rows()
        pooled = {}
        for (space, op_set, problem), group in rows.groupby(["space", "op_set", "problem"], sort=False):
            cfg = make_config(**{**self.base, **values, "problem": problem, "op_set": op_set, "space": space})
            pooled[space, op_set, problem] = cfg.retrain.random_search_pool == "row"
            self._run_group(candidate, key, cfg, group.to_dict("records"), budget)
        out = []
        for r in rows.to_dict("records"):
            seeds = self.seeds(budget, r["trials_scale"])
            derived = r["method"] == "Random Search" and pooled[r["space"], r["op_set"], r["problem"]]
            out.append(self.row_trials(key, r, seeds, len(seeds) if derived else 0))
        return pd.concat(out, ignore_index=True)

    def _run_group(self, candidate, key, cfg, rows, budget):
        pooled = cfg.retrain.random_search_pool == "row"
        wanted = {r["method"]: r for r in rows}
        if pooled and "Random Search" in wanted:
            # rebuilt from the random-sampling trials of its own seeds (the row it draws from)
            scale = wanted.pop("Random Search")["trials_scale"]
            rs = dict(wanted.get("Random Sampling") or {**rows[0], "method": "Random Sampling", "trials_scale": scale})
            rs["trials_scale"] = max(rs["trials_scale"], scale)
            self._run_methods(candidate, key, cfg, {"Random Sampling": rs}, budget)
            seeds = self.seeds(budget, scale)
            samp = self.row_trials(key, rs, seeds)
            idx = pool_candidates(samp["seed"].to_numpy(), cfg.retrain.n_random_search)
            psnr = samp["arch_psnr"].to_numpy(float)
            pick = idx[np.arange(len(idx)), np.argmax(np.where(np.isfinite(psnr), psnr, -np.inf)[idx], axis=1)]
            row = {**rs, "method": "Random Search"}
            new = []
            for i, s in enumerate(seeds):
                if (key, *(row[k] for k in ROW_KEYS), s, len(seeds)) not in self._done:
                    src = samp.iloc[pick[i]]
                    new.append(self._record(key, candidate, row, s, src["arch_psnr"], src["diverged"],
                                            src["architecture"], 0.0, pool=len(seeds)))
            if new and self.on_trials is not None:
                self.on_trials(pd.DataFrame(new, columns=TRIAL_COLUMNS))
        self._run_methods(candidate, key, cfg, wanted, budget)

    def _run_methods(self, candidate, key, cfg, wanted: dict, budget: int):
        todo: dict = {}
        for method, row in wanted.items():
            seeds = [s for s in self.seeds(budget, row["trials_scale"])
                     if (key, *(row[k] for k in ROW_KEYS), s, 0) not in self._done]
            if seeds:
                todo[method] = (row, seeds)
        groups: dict = {}
        for method, (row, seeds) in todo.items():
            g = get_method(method).group
            groups.setdefault((g, tuple(seeds)) if g is not None else (method, tuple(seeds)), []).append(method)
        for (_, seeds), methods in groups.items():
            t0 = time.perf_counter()
            if len(methods) > 1 or get_method(methods[0]).group is not None:
                res = run_group(cfg, methods, list(seeds), self.hparams)
            else:
                res = {methods[0]: run_method(cfg, methods[0], list(seeds), self.hparams)}
            new = []
            for m, r in res.items():
                row = todo[m][0]
                for i, s in enumerate(seeds):
                    new.append(self._record(key, candidate, row, s, r.arch_psnr[i], r.diverged[i], r.arch_strings[i],
                                            r.wall_time_s / len(seeds)))
            if self.log is not None:
                med = {m: np.nanmedian(r.arch_psnr) for m, r in res.items()}
                self.log(f"[calibrate] candidate {candidate} {cfg.problem.name}/{cfg.space.op_set_name}: "
                         + ", ".join(f"{m} median {v:.2f} dB" for m, v in med.items())
                         + f" ({len(seeds)} seeds, {time.perf_counter() - t0:.0f}s)")
            if self.on_trials is not None:
                self.on_trials(pd.DataFrame(new, columns=TRIAL_COLUMNS))

    def _record(self, key, candidate, row, seed, psnr, diverged, arch, wall, pool: int = 0):
        rec = {"candidate": candidate, "values": self._values[key], "config": key, **{k: row[k] for k in ROW_KEYS},
               "seed": int(seed), "pool": int(pool), "arch_psnr": float(psnr), "diverged": bool(diverged),
               "architecture": arch, "wall_time_s": float(wall)}
        self._done[(key, *(row[k] for k in ROW_KEYS), int(seed), int(pool))] = rec
        self.trials.append(rec)
        return rec


def row_statistics(trials: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """The target table with ``ours`` (the statistic over the trials) and ``diff`` (ours - value)."""
    t = check_targets(targets)
    ours = []
    for r in t.to_dict("records"):
        sel = trials
        for k in ROW_KEYS:
            sel = sel[sel[k] == r[k]]
        ours.append(statistic(r["stat"], sel["arch_psnr"]) if len(sel) else float("nan"))
    t["ours"] = ours
    t["diff"] = t["ours"] - t["value"]
    t["n"] = [int(((trials[list(ROW_KEYS)] == pd.Series({k: r[k] for k in ROW_KEYS})).all(axis=1)).sum())
              for r in t.to_dict("records")]
    return t


def distance(stats: pd.DataFrame) -> float:
    """Weighted mean |ours - paper| in dB (inf when a statistic is missing)."""
    d = stats["diff"].abs().to_numpy(float)
    if not np.all(np.isfinite(d)):
        return float("inf")
    w = stats["weight"].to_numpy(float)
    return float(np.sum(w * d) / np.sum(w))


# --- the search ------------------------------------------------------------------------------------
@dataclass
class FitResult:
    trials: pd.DataFrame           # one row per trial (TRIAL_COLUMNS)
    candidates: pd.DataFrame       # one row per (candidate, budget): the fields, the distance, each statistic
    best: dict | None              # the candidate row with the lowest distance at the largest budget reached


def fit(targets: pd.DataFrame, space: FieldSpace, *, base: dict | None = None, hparams="H1", iterations: int = 2,
        min_trials: int = 3, max_trials: int = 24, eta: float = 3, sampler="auto", seed: int = 0,
        first_seed: int = CALIBRATION_SEED0, previous: pd.DataFrame | None = None, include: list | None = None,
        on_trials: Callable | None = None, log: Callable | None = None) -> FitResult:
    """Hyperband over ``space`` with the number of trials per row as the budget (from
    ``min_trials`` to ``max_trials``, factor ``eta``); returns every trial, every candidate's
    distance and statistics at each budget, and the best candidate.  ``include``: candidates (dicts
    of the searched fields, e.g. today's defaults) proposed first, before the sampler's own."""
    targets = check_targets(targets)
    base = {**(base or {}), **space.fixed}
    ev = Evaluator(targets, base, hparams, first_seed, previous, log, on_trials)
    schedule = hpo.hyperband_schedule(max_trials, eta, min_trials)
    prop = hpo.make_sampler(sampler, space, seed, log=log)
    queue = [dict(v) for v in (include or [])]
    for v in queue:
        if set(v) != set(space.names):
            raise ValueError(f"included candidate {v} must set exactly the searched fields {list(space.names)}")
    observations, records = [], []
    for it in range(int(iterations)):
        bracket = hpo.bracket_of_iteration(schedule, it)
        n0 = bracket.rungs[0].n_configs
        proposals = [(queue.pop(0), "included") for _ in range(min(n0, len(queue)))]
        proposals += prop.propose(n0 - len(proposals), observations, it) if n0 > len(proposals) else []
        active = list(range(len(proposals)))
        ids = [ev.candidate_id(v) for v, _ in proposals]
        for i, rung in enumerate(bracket.rungs):
            scores = {}
            for a in active:
                values, origin = proposals[a]
                trials = ev(ids[a], values, rung.epochs)
                stats = row_statistics(trials, targets)
                d = distance(stats)
                scores[a] = d
                observations.append(hpo.Observation(values, rung.epochs, -d if math.isfinite(d) else -math.inf))
                records.append({"candidate": ids[a], "iteration": it, "bracket": bracket.s, "rung": i,
                                "trials": rung.epochs, "proposal": origin, **values, "distance": d,
                                **{_stat_column(r): r["ours"] for r in stats.to_dict("records")}})
                if log is not None:
                    log(f"[calibrate] candidate {ids[a]} at {rung.epochs} trials per row: distance {d:.3f} dB  {values}")
            if i + 1 < len(bracket.rungs):
                keep = bracket.rungs[i + 1].n_configs
                active = sorted((a for a in active if math.isfinite(scores[a])), key=lambda a: scores[a])[:keep]
                if not active:
                    break
    trials = pd.DataFrame(ev.trials, columns=TRIAL_COLUMNS)
    cands = pd.DataFrame(records)
    return FitResult(trials, cands, best_candidate(cands))


def evaluate(targets: pd.DataFrame, candidates: list, trials: int, *, base: dict | None = None, hparams="H1",
             first_seed: int = CALIBRATION_SEED0, previous: pd.DataFrame | None = None,
             on_trials: Callable | None = None, log: Callable | None = None) -> FitResult:
    """No search: each of ``candidates`` (dicts of make_config fields) at ``trials`` trials per row,
    scored as :func:`fit` scores them (the same trial table, reused the same way)."""
    targets = check_targets(targets)
    ev = Evaluator(targets, dict(base or {}), hparams, first_seed, previous, log, on_trials)
    records = []
    for values in candidates:
        i = ev.candidate_id(values)
        stats = row_statistics(ev(i, values, int(trials)), targets)
        d = distance(stats)
        records.append({"candidate": i, "iteration": 0, "bracket": 0, "rung": 0, "trials": int(trials),
                        "proposal": "given", **values, "distance": d,
                        **{_stat_column(r): r["ours"] for r in stats.to_dict("records")}})
        if log is not None:
            log(f"[calibrate] candidate {i} at {trials} trials per row: distance {d:.3f} dB  {values}")
    cands = pd.DataFrame(records)
    return FitResult(pd.DataFrame(ev.trials, columns=TRIAL_COLUMNS), cands, best_candidate(cands))


def _stat_column(r: dict) -> str:
    return f"{r['problem']}|{r['op_set']}|{r['method']}|{r['stat']}" + ("" if r["space"] == "sequential" else f"|{r['space']}")


def best_candidate(cands: pd.DataFrame) -> dict | None:
    """The lowest distance at the largest budget that has a finite one (Hyperband's incumbent)."""
    if cands is None or cands.empty:
        return None
    ok = cands[np.isfinite(cands["distance"].astype(float))]
    if ok.empty:
        return None
    top = ok[ok["trials"] == ok["trials"].max()]
    return top.loc[top["distance"].astype(float).idxmin()].to_dict()


def candidate_table(trials: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """From the trial table alone: per candidate (all its trials), the readings, the trials per row,
    the distance and every statistic, best first.  What the ranking and the figure show."""
    out = []
    for (key, _), g in trials.groupby(["values", "config"], sort=False):
        # a random search drawn from the row: the draws from the largest row it was drawn from
        g = g[g["pool"] == g.groupby(list(ROW_KEYS))["pool"].transform("max")]
        stats = row_statistics(g, targets)
        out.append({"candidate": int(g["candidate"].min()), **json.loads(key), "trials": int(stats["n"].min()),
                    "distance": distance(stats), **{_stat_column(r): r["ours"] for r in stats.to_dict("records")}})
    df = pd.DataFrame(out)
    return df.sort_values(["distance", "trials"], ascending=[True, False]).reset_index(drop=True) if len(df) else df


def ranking_markdown(table: pd.DataFrame, targets: pd.DataFrame, fields: list, top: int = 15) -> str:
    """The best candidates (all their trials), their readings, distance and statistics beside the paper's."""
    t = check_targets(targets)
    cols = [_stat_column(r) for r in t.to_dict("records")]
    paper = {_stat_column(r): r["value"] for r in t.to_dict("records")}
    lines = ["| rank | candidate | " + " | ".join(fields) + " | trials per row | distance (dB) |",
             "|" + "---|" * (len(fields) + 4)]
    for i, r in enumerate(table.head(top).to_dict("records")):
        lines.append(f"| {i + 1} | {r['candidate']} | " + " | ".join(_fmt(r.get(f)) for f in fields)
                     + f" | {r['trials']} | {r['distance']:.3f} |")
    lines += ["", "Statistics of the best three (ours; paper in brackets):", "",
              "| statistic | " + " | ".join(f"candidate {r['candidate']}" for r in table.head(3).to_dict("records"))
              + " | paper |", "|" + "---|" * (min(3, len(table)) + 2)]
    for c in cols:
        lines.append(f"| {c} | " + " | ".join(f"{r[c]:.2f}" for r in table.head(3).to_dict("records"))
                     + f" | {paper[c]:.2f} |")
    return "\n".join(lines) + "\n"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def field_figure(table: pd.DataFrame, fields: list, path, min_trials: int | None = None) -> None:
    """One panel per field: each candidate's distance against its value (candidates with at least
    ``min_trials`` trials per row; the point's size grows with its trials)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .results import atomic_write_bytes
    df = table if min_trials is None else table[table["trials"] >= min_trials]
    n = max(1, len(fields))
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, f in zip(axes.flat, fields):
        vals = df[f].tolist()
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals) and len(set(vals)) > 3
        if numeric:
            x = np.asarray(vals, float)
        else:
            cats = sorted({str(v) for v in vals})
            x = np.asarray([cats.index(str(v)) for v in vals], float)
            x += np.random.default_rng(0).uniform(-0.12, 0.12, len(x))
            ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right", fontsize=8)
        ax.scatter(x, df["distance"], s=12 + 3 * df["trials"], alpha=0.6)
        ax.set_title(f, fontsize=9)
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("distance to the paper (dB)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=str(path).rsplit(".", 1)[-1], dpi=150)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())          # never a half-written figure
