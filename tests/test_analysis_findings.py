"""analysis.table1_findings: verdicts follow the numbers, tests match scipy, missing rows are said."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import analysis

RNG = np.random.default_rng(0)


HYBRID, PURE = "lg-net-net", "net-net-net"


def trials(spec, problem="blur", das_arch=HYBRID):
    """spec: {(op_set, method): (arch values, one-shot values or None)} -> a trials DataFrame.
    ``das_arch``: the architecture string of every DAS trial (others get "lg-lg-lg")."""
    rows = []
    for (op_set, method), (arch, one_shot) in spec.items():
        one_shot = np.full(len(arch), np.nan) if one_shot is None else one_shot
        for seed, (a, o) in enumerate(zip(arch, one_shot)):
            rows.append(dict(problem=problem, op_set=op_set, method=method, hparams="H1", seed=seed,
                             arch_psnr=a, one_shot_psnr=o,
                             architecture=das_arch if method == "DAS" else "lg-lg-lg"))
    return pd.DataFrame(rows)


def paper_like(n=20):
    """Random search above DAS (good) with the highest minimum there; DAS above random sampling and
    random search (all); DAS all-ops spread 4x good."""
    das_good = RNG.normal(21.5, 0.5, n)
    das_all = RNG.normal(19.0, 2.0, n)
    return {
        ("good", "DAS"): (das_good, RNG.normal(15, 1, n)),          # one-shot independent of arch
        ("good", "Random Search"): (RNG.normal(23.0, 0.5, n), None),
        ("good", "Random Sampling"): (RNG.normal(21.0, 0.5, n) - np.r_[5.0, np.zeros(n - 1)], None),
        ("good", "Nets only"): (RNG.normal(20.0, 2.0, n), None),
        ("all", "DAS"): (das_all, RNG.normal(12, 1, n)),
        ("all", "Random Sampling"): (RNG.normal(12.0, 2.0, n), None),
        ("all", "Random Search"): (RNG.normal(14.0, 2.0, n), None),
    }


def verdicts(f):
    return dict(zip(f["finding"], f["verdict"]))


def test_paper_like_data_holds_everywhere_and_tests_match_scipy():
    spec = paper_like()
    df = pd.concat([trials(spec, "blur"), trials(spec, "downsampling")])
    f = analysis.table1_findings(df)
    assert list(f["problem"]) == ["blur"] * 7 + ["downsampling"] * 7
    assert set(f["verdict"]) == {"holds"}
    blur = f[f.problem == "blur"].set_index("finding")
    rsearch, das = spec[("good", "Random Search")][0], spec[("good", "DAS")][0]
    assert blur.loc[analysis.FINDINGS[0], "p_value"] == pytest.approx(
        sps.mannwhitneyu(rsearch, das, alternative="two-sided").pvalue)
    assert blur.loc[analysis.FINDINGS[2], "p_value"] == pytest.approx(
        sps.levene(spec[("all", "DAS")][0], das, center="median").pvalue)
    ratio = np.std(spec[("all", "DAS")][0]) / np.std(das)
    assert f"({ratio:.1f}x;" in blur.loc[analysis.FINDINGS[2], "ours"]
    assert "22.63 vs 21.60" == blur.loc[analysis.FINDINGS[0], "paper"]           # the paper's medians
    md = analysis.findings_markdown(f)
    assert md.count("**holds**") == 14 and md.startswith("| finding |")
    assert blur.loc[analysis.FINDINGS[4], "p_value"] == pytest.approx(
        sps.mannwhitneyu(spec[("all", "DAS")][0], spec[("all", "Random Search")][0]).pvalue)
    assert "(DAS;" in blur.loc[analysis.FINDINGS[5], "ours"]                # the runner-up by minimum
    assert "21.29 vs 19.43 (Random Sampling)" == blur.loc[analysis.FINDINGS[5], "paper"]


def test_reversed_data_does_not_hold():
    n = 20
    das_good = RNG.normal(23.0, 0.5, n)
    spec = {("good", "DAS"): (das_good, das_good - 5),              # one-shot predicts arch exactly
            ("good", "Random Search"): (RNG.normal(21.5, 0.5, n), None),   # below DAS
            ("all", "DAS"): (RNG.normal(8.0, 0.5, n), RNG.normal(12, 1, n)),  # below RS, tight
            ("all", "Random Sampling"): (RNG.normal(12.0, 2.0, n), None),
            ("all", "Random Search"): (RNG.normal(14.0, 2.0, n), None)}   # above DAS
    v = verdicts(analysis.table1_findings(trials(spec, das_arch=PURE)))
    assert v == {name: "does not hold" for name in analysis.FINDINGS}


def test_right_direction_but_not_significant():
    n = 6
    base = RNG.normal(20, 1.0, n)
    spec = {("good", "DAS"): (base, RNG.normal(15, 1, n)),
            ("good", "Random Search"): (base + 0.05, None),
            ("all", "DAS"): (base, RNG.normal(12, 1, n)),
            ("all", "Random Sampling"): (base - 0.05, None)}
    v = verdicts(analysis.table1_findings(trials(spec)))
    assert v[analysis.FINDINGS[0]] == "holds, not significant"
    assert v[analysis.FINDINGS[1]] == "holds, not significant"
    assert v[analysis.FINDINGS[2]] == "does not hold"                  # equal spreads: ratio 1 < 1.5
    # a looser threshold for "much larger" turns the same numbers into "right direction"
    v = verdicts(analysis.table1_findings(trials(spec), much_larger=1.0))
    assert v[analysis.FINDINGS[2]] == "holds, not significant"


def test_spread_of_two_trials_per_row_is_never_significant():
    """With 2 trials a row's deviations from its median are equal, so Brown-Forsythe's W is infinite
    (scipy: p = 0, and a divide-by-zero warning): the finding says p = NaN, not "holds"."""
    import warnings
    spec = {("good", "DAS"): (np.array([20.0, 20.1]), np.array([15.0, 15.5])),
            ("all", "DAS"): (np.array([12.0, 18.0]), np.array([11.0, 12.0]))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = analysis.table1_findings(trials(spec)).set_index("finding")
    assert np.isnan(f.loc[analysis.FINDINGS[2], "p_value"])
    assert f.loc[analysis.FINDINGS[2], "verdict"] == "holds, not significant"   # 3.0 vs 0.05: ratio 60


def test_missing_rows_are_not_measured_and_bad_input_is_refused():
    spec = paper_like()
    del spec[("all", "Random Sampling")]
    f = analysis.table1_findings(trials(spec))
    assert verdicts(f)[analysis.FINDINGS[1]] == "not measured"
    assert verdicts(f)[analysis.FINDINGS[0]] == "holds"
    two_sets = pd.concat([trials(spec), trials(spec).assign(hparams="H2")])
    with pytest.raises(ValueError, match="one hyperparameter set"):
        analysis.table1_findings(two_sets)
    with pytest.raises(ValueError, match="columns"):
        analysis.table1_findings(trials(spec).drop(columns="one_shot_psnr"))


def test_worst_case_permutation_p_matches_exact_enumeration():
    """Finding 6 on 4 + 4 trials: the Monte-Carlo permutation p is the exact share of the 70 label
    splits whose min difference reaches the observed one, to within its sampling error."""
    import itertools
    rs, runner_up = np.array([20.0, 20.5, 21.0, 22.0]), np.array([19.0, 20.2, 21.5, 23.0])
    spec = {("good", "Random Search"): (rs, None), ("good", "DAS"): (runner_up, RNG.normal(15, 1, 4))}
    f = analysis.table1_findings(trials(spec), n_resamples=20000).set_index("finding")
    pooled = np.r_[rs, runner_up]
    observed = rs.min() - runner_up.min()
    splits = [(pooled[list(a)].min() - np.delete(pooled, list(a)).min()) >= observed
              for a in itertools.combinations(range(8), 4)]
    exact = np.mean(splits)
    assert f.loc[analysis.FINDINGS[5], "p_value"] == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 20000))
    assert f.loc[analysis.FINDINGS[5], "verdict"] == "holds, not significant"     # 8 trials cannot settle it


def test_hybrid_support_is_the_chance_that_a_resample_keeps_the_best_trial():
    """Finding 7 with one hybrid trial, the best, among n pure ones: a resample's best trial is a
    hybrid exactly when the resample contains it, so p = 1 - support = (1 - 1/n)^n."""
    n = 10
    df = trials({("good", "DAS"): (np.arange(n, dtype=float), RNG.normal(15, 1, n))}, das_arch=PURE)
    df.loc[df["arch_psnr"].idxmax(), "architecture"] = HYBRID
    row = analysis.table1_findings(df, n_resamples=20000).set_index("finding").loc[analysis.FINDINGS[6]]
    expected = (1 - 1 / n) ** n
    assert row["p_value"] == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / 20000))
    assert row["verdict"] == "holds, not significant" and "1 of 10 DAS trials hybrid" in row["ours"]
    assert verdicts(analysis.table1_findings(df.drop(columns="architecture")))[analysis.FINDINGS[6]] == \
        "not measured"
