"""The paper's qualitative Table 1 findings, checked on our trials.

The paper draws four conclusions from Table 1 and Fig. 3 (sequential space, H1):

1. random search is at least as good as DAS on the good ops;
2. DAS beats random sampling on all ops;
3. DAS on all ops varies much more from seed to seed than on the good ops;
4. the one-shot (supernet) PSNR correlates poorly with the architecture PSNR;

and states three more in its text (abstract, §4.2):

5. DAS beats random search on all ops (the headline claim: harmful ops favour DAS);
6. random search has the best worst case (the highest minimum) on the good ops;
7. the best DAS architecture is a hybrid that mixes both benign ops (lg and net).

:func:`table1_findings` states, per problem, whether each holds in a results table, with the
numbers it rests on, a test, and the paper's own numbers beside ours::

    import analysis
    df = analysis.load_results("results/table1-cpu")
    print(analysis.findings_markdown(analysis.table1_findings(df)))

Verdicts: ``holds`` (the direction is the paper's and the test is significant at ``alpha``),
``holds, not significant`` (right direction, p >= alpha), ``does not hold`` (wrong direction or,
for finding 4, a correlation at or above ``weak_r``), ``not measured`` (a row is missing).
Medians are compared with the two-sided Mann-Whitney U test, the spreads with the
Brown-Forsythe test (Levene's test around the median, robust to the degenerate outliers that
make DAS's all-ops spread), the correlation with Pearson's r per op set
(the p column gives the p-value of the largest r).  The worst case (6) is tested by permuting the
labels of random search and the runner-up (the good-ops method with the next-highest minimum):
p = P(min difference >= the observed one).  The hybrid claim (7) is about one architecture, the
best DAS trial; its p is 1 - the bootstrap support (the share of resamples of the DAS trials whose
best trial is a hybrid), counted as (1 + misses) / (1 + resamples) so that it is never 0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats as sps

from .architecture import architecture_ops
from .correlation import correlate, has_one_shot
from .reference import STATS, TABLE1_ROWS
from .stats import finite, mann_whitney

FINDINGS = (
    "random search >= DAS on good ops",
    "DAS > random sampling on all ops",
    "DAS std on all ops >> on good ops",
    "one-shot PSNR correlates poorly with architecture PSNR",
    "DAS > random search on all ops",
    "random search has the best worst case on good ops",
    "the best DAS architecture is a hybrid of both benign ops",
)
# the good-ops rows of Table 1 whose minimum random search's is compared with (finding 6)
GOOD_OPS_METHODS = ("Learnable Grad. only", "Nets only", "DAS", "Random Sampling", "Random Search")
BENIGN_OPS = frozenset({"lg", "net"})
COLUMNS = ["finding", "problem", "ours", "paper", "test", "p_value", "verdict"]
PROBLEMS = ("blur", "downsampling")


def _paper(op_set: str, method: str, problem: str, stat: str) -> float | None:
    values = TABLE1_ROWS.get((op_set, method))
    if values is None or problem not in PROBLEMS:
        return None
    return float(values[len(STATS) * PROBLEMS.index(problem) + STATS.index(stat)])


def _verdict(direction_ok: bool, p: float, alpha: float) -> str:
    if not direction_ok:
        return "does not hold"
    if np.isfinite(p) and p < alpha:
        return "holds"
    return "holds, not significant"


def _values(df: pd.DataFrame, problem: str, op_set: str, method: str, value: str = "arch_psnr") -> np.ndarray:
    sel = df[(df["problem"] == problem) & (df["op_set"] == op_set) & (df["method"] == method)]
    return finite(sel[value])


def _median_finding(df, problem, op_set, a, b, strict, alpha, finding):
    x, y = _values(df, problem, op_set, a), _values(df, problem, op_set, b)
    pa, pb = _paper(op_set, a, problem, "median"), _paper(op_set, b, problem, "median")
    paper = "" if pa is None or pb is None else f"{pa:.2f} vs {pb:.2f}"
    if x.size == 0 or y.size == 0:
        return dict(finding=finding, problem=problem, ours="", paper=paper, test="", p_value=np.nan,
                    verdict="not measured")
    ma, mb = float(np.median(x)), float(np.median(y))
    mw = mann_whitney(x, y)
    ok = ma > mb if strict else ma >= mb
    ours = f"{ma:.2f} vs {mb:.2f} (n = {x.size}, {y.size})"
    test = f"Mann-Whitney U, P({a} > {b}) = {mw['prob_a_beats_b']:.2f}"
    return dict(finding=finding, problem=problem, ours=ours, paper=paper, test=test, p_value=mw["p_value"],
                verdict=_verdict(ok, mw["p_value"], alpha))


def _spread_finding(df, problem, much, alpha, finding):
    good, all_ = _values(df, problem, "good", "DAS"), _values(df, problem, "all", "DAS")
    pg, pa = _paper("good", "DAS", problem, "std"), _paper("all", "DAS", problem, "std")
    paper = "" if pg is None or pa is None else f"{pa:.2f} vs {pg:.2f} ({pa / pg:.1f}x)"
    if good.size < 2 or all_.size < 2:
        return dict(finding=finding, problem=problem, ours="", paper=paper, test="", p_value=np.nan,
                    verdict="not measured")
    sg, sa = float(np.std(good)), float(np.std(all_))
    ratio = sa / sg if sg > 0 else np.inf
    p = _brown_forsythe_p(all_, good)
    ours = f"{sa:.2f} vs {sg:.2f} ({ratio:.1f}x; n = {all_.size}, {good.size})"
    test = f"Brown-Forsythe; 'much larger' = ratio >= {much:g}"
    return dict(finding=finding, problem=problem, ours=ours, paper=paper, test=test, p_value=p,
                verdict=_verdict(ratio >= much, p, alpha))


def _brown_forsythe_p(a: np.ndarray, b: np.ndarray) -> float:
    """p of the Brown-Forsythe test (Levene's about the medians); NaN where it says nothing: with
    2 values a group's deviations from its median are equal, so W is infinite whatever the data
    (p = 0), and W is undefined when no group's deviations vary."""
    if a.size < 3 or b.size < 3:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        res = sps.levene(a, b, center="median")
    return float(res.pvalue) if np.isfinite(res.statistic) else np.nan


def _correlation_finding(df, problem, weak_r, finding):
    paper = "weak (Fig. 3; no value given)"
    das = df[(df["problem"] == problem) & (df["method"] == "DAS")]
    das = das[has_one_shot(das)]
    parts, worst = [], None
    for op_set in [o for o in ("good", "all") if o in set(das["op_set"])]:
        sel = das[das["op_set"] == op_set]
        res = correlate(sel["one_shot_psnr"], sel["arch_psnr"])
        if np.isfinite(res["pearson_r"]):
            parts.append(f"{op_set}: r = {res['pearson_r']:.2f} (p = {res['pearson_p']:.2g}, n = {res['n']})")
            if worst is None or res["pearson_r"] > worst["pearson_r"]:
                worst = res
    if worst is None:
        return dict(finding=finding, problem=problem, ours="", paper=paper, test="", p_value=np.nan,
                    verdict="not measured")
    test = f"Pearson's r per op set (DAS); 'poorly' = every r < {weak_r:g}"
    return dict(finding=finding, problem=problem, ours="; ".join(parts), paper=paper, test=test,
                p_value=worst["pearson_p"], verdict="holds" if worst["pearson_r"] < weak_r else "does not hold")


def _worst_case_finding(df, problem, alpha, n_resamples, seed, finding):
    mins = {m: _values(df, problem, "good", m) for m in GOOD_OPS_METHODS}
    mins = {m: v for m, v in mins.items() if v.size}
    paper_mins = {m: _paper("good", m, problem, "min") for m in GOOD_OPS_METHODS}
    paper = ""
    if all(v is not None for v in paper_mins.values()):
        others = {m: v for m, v in paper_mins.items() if m != "Random Search"}
        second = max(others, key=others.get)
        paper = f"{paper_mins['Random Search']:.2f} vs {others[second]:.2f} ({second})"
    if "Random Search" not in mins or len(mins) < 2:
        return dict(finding=finding, problem=problem, ours="", paper=paper, test="", p_value=np.nan,
                    verdict="not measured")
    rs = mins.pop("Random Search")
    runner_up = max(mins, key=lambda m: mins[m].min())
    other = mins[runner_up]
    observed = rs.min() - other.min()
    pooled = np.concatenate([rs, other])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_resamples):
        perm = rng.permutation(pooled)
        hits += perm[:rs.size].min() - perm[rs.size:].min() >= observed
    p = (1 + hits) / (1 + n_resamples)
    ours = f"{rs.min():.2f} vs {other.min():.2f} ({runner_up}; n = {rs.size}, {other.size})"
    test = f"permutation test of the min difference vs the runner-up, {n_resamples} resamples"
    return dict(finding=finding, problem=problem, ours=ours, paper=paper, test=test, p_value=float(p),
                verdict=_verdict(observed > 0, p, alpha))


def _is_hybrid(architecture) -> bool:
    return isinstance(architecture, str) and BENIGN_OPS <= set(architecture_ops(architecture))


def _hybrid_finding(df, problem, alpha, n_resamples, seed, finding):
    paper = "hybrid (§4.2)"
    das = df[(df["problem"] == problem) & (df["method"] == "DAS")]
    if "architecture" in das.columns:
        das = das[np.isfinite(das["arch_psnr"].to_numpy(float)) & das["architecture"].notna()]
    if "architecture" not in das.columns or not len(das):
        return dict(finding=finding, problem=problem, ours="", paper=paper, test="", p_value=np.nan,
                    verdict="not measured")
    psnr = das["arch_psnr"].to_numpy(float)
    hybrid = np.array([_is_hybrid(a) for a in das["architecture"]])
    best = int(np.argmax(psnr))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(das), size=(n_resamples, len(das)))
    misses = int(np.sum(~hybrid[picks[np.arange(n_resamples), np.argmax(psnr[picks], axis=1)]]))
    p = (1 + misses) / (1 + n_resamples)         # 1 - support, never exactly 0 from finite resamples
    row = das.iloc[best]
    ops = architecture_ops(row["architecture"])
    counts = ", ".join(f"{o} x{ops.count(o)}" for o in sorted(set(ops)))
    ours = (f"best {psnr[best]:.2f} dB ({row['op_set']} ops): {counts}; "
            f"{hybrid.sum()} of {len(das)} DAS trials hybrid")
    test = f"bootstrap support of a hybrid best trial (all DAS trials), {n_resamples} resamples"
    return dict(finding=finding, problem=problem, ours=ours, paper=paper, test=test, p_value=p,
                verdict=_verdict(bool(hybrid[best]), p, alpha))


def table1_findings(df: pd.DataFrame, alpha: float = 0.05, much_larger: float = 1.5,
                    weak_r: float = 0.5, n_resamples: int = 9999, seed: int = 0) -> pd.DataFrame:
    """One row per (finding, problem) present in ``df``: ours, the paper's, the test and a verdict.

    ``df``: Table 1 trials (columns problem, op_set, method, arch_psnr, one_shot_psnr), one
    hyperparameter set.  ``much_larger``: the std ratio (all / good ops, DAS) that counts as
    "much larger" (the paper's: 5.9x blur, 2.7x downsampling).  ``weak_r``: Pearson r below
    which the one-shot correlation counts as poor.  ``n_resamples`` / ``seed``: the permutation
    test of finding 6 and the bootstrap of finding 7 (fixed seed: the same verdicts every time)."""
    missing = {"problem", "op_set", "method", "arch_psnr", "one_shot_psnr"} - set(df.columns)
    if missing:
        raise ValueError(f"table1_findings needs the columns {sorted(missing)}")
    if "hparams" in df.columns and df["hparams"].nunique() > 1:
        raise ValueError(f"table1_findings needs one hyperparameter set; got {sorted(df['hparams'].unique())} "
                         "(select one first, e.g. df[df.hparams == 'H1'])")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be in (0, 1)")
    rows = []
    for problem in [p for p in PROBLEMS if p in set(df["problem"])] + \
            sorted(set(df["problem"]) - set(PROBLEMS)):
        rows.append(_median_finding(df, problem, "good", "Random Search", "DAS", False, alpha, FINDINGS[0]))
        rows.append(_median_finding(df, problem, "all", "DAS", "Random Sampling", True, alpha, FINDINGS[1]))
        rows.append(_spread_finding(df, problem, much_larger, alpha, FINDINGS[2]))
        rows.append(_correlation_finding(df, problem, weak_r, FINDINGS[3]))
        rows.append(_median_finding(df, problem, "all", "DAS", "Random Search", True, alpha, FINDINGS[4]))
        rows.append(_worst_case_finding(df, problem, alpha, n_resamples, seed, FINDINGS[5]))
        rows.append(_hybrid_finding(df, problem, alpha, n_resamples, seed, FINDINGS[6]))
    return pd.DataFrame(rows, columns=COLUMNS)


def findings_markdown(findings: pd.DataFrame) -> str:
    """The findings as a markdown table (p-values to two significant digits)."""
    head = "| finding | problem | ours | paper | test | p | verdict |\n|---|---|---|---|---|---|---|\n"
    lines = []
    for r in findings.itertuples(index=False):
        p = "" if not np.isfinite(r.p_value) else f"{r.p_value:.2g}"
        lines.append(f"| {r.finding} | {r.problem} | {r.ours} | {r.paper} | {r.test} | {p} | **{r.verdict}** |")
    return head + "\n".join(lines) + "\n"
