"""Summary statistics, bootstrap CIs and method comparisons against numpy/scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import analysis

NAN = float("nan")


def frame(groups):
    """{(problem, op_set, method): values} -> trials DataFrame (NaN = diverged)."""
    rows = []
    for (problem, op_set, method), values in groups.items():
        for v in values:
            rows.append({"problem": problem, "op_set": op_set, "method": method, "hparams": "H1",
                         "arch_psnr": v, "one_shot_psnr": NAN, "diverged": not np.isfinite(v)})
    return pd.DataFrame(rows)


RNG = np.random.default_rng(1)
A = np.r_[RNG.normal(20, 2, 12), NAN, NAN]
B = np.r_[RNG.normal(19, 3, 9)]


@pytest.mark.parametrize("ddof", [0, 1])
def test_describe_matches_numpy(ddof):
    got = analysis.describe(A, ddof=ddof)
    x = A[np.isfinite(A)]
    assert got["n_finite"] == 12
    assert got["max"] == np.max(x) and got["min"] == np.min(x)
    assert got["mean"] == pytest.approx(np.mean(x)) and got["median"] == pytest.approx(np.median(x))
    assert got["std"] == pytest.approx(np.std(x, ddof=ddof))
    assert np.isnan(analysis.describe([NAN])["mean"])
    assert np.isnan(analysis.describe([3.0], ddof=1)["std"])


def test_summarize_counts_stats_and_cis():
    df = frame({("blur", "good", "DAS"): A, ("blur", "good", "Random Sampling"): B,
                ("blur", "all", "DAS"): [17.0, NAN], ("downsampling", "good", "DAS"): [NAN, NAN]})
    s = analysis.summarize(df, n_resamples=500, seed=3)
    assert list(s["method"][:2]) == ["DAS", "Random Sampling"]  # paper order
    row = s[(s.problem == "blur") & (s.op_set == "good") & (s.method == "DAS")].iloc[0]
    x = A[np.isfinite(A)]
    assert (row["n"], row["n_diverged"], row["n_finite"]) == (14, 2, 12)
    assert row["std"] == pytest.approx(np.std(x))  # default ddof=0 (register #29)
    for stat, fn in (("median", np.median), ("mean", np.mean)):
        ref = sps.bootstrap((x,), fn, n_resamples=500, method="percentile",
                            rng=np.random.default_rng(3)).confidence_interval
        assert row[f"{stat}_ci_low"] == pytest.approx(ref.low)
        assert row[f"{stat}_ci_high"] == pytest.approx(ref.high)
        assert row[f"{stat}_ci_low"] <= row[stat] <= row[f"{stat}_ci_high"]
    one = s[(s.op_set == "all")].iloc[0]  # one finite value: stats but no CI
    assert (one["n"], one["n_diverged"], one["mean"], one["std"]) == (2, 1, 17.0, 0.0)
    assert np.isnan(one["median_ci_low"]) and np.isnan(one["mean_ci_high"])
    none = s[(s.problem == "downsampling")].iloc[0]  # all diverged: counted, NaN stats
    assert (none["n"], none["n_diverged"], none["n_finite"]) == (2, 2, 0) and np.isnan(none["max"])
    s1 = analysis.summarize(df, ddof=1, ci=False)
    assert "median_ci_low" not in s1
    assert s1.iloc[0]["std"] == pytest.approx(np.std(x, ddof=1))


def test_bootstrap_ci_is_seeded_and_handles_small_groups():
    a = analysis.bootstrap_ci(B, "median", n_resamples=300, seed=7)
    assert a == analysis.bootstrap_ci(B, "median", n_resamples=300, seed=7)
    assert a != analysis.bootstrap_ci(B, "median", n_resamples=300, seed=8)
    assert all(np.isnan(analysis.bootstrap_ci([1.0, NAN])))
    assert analysis.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="statistic"):
        analysis.bootstrap_ci(B, "mode")


def test_mann_whitney_and_probability_of_superiority():
    a = np.r_[1.0, 2.0, 2.0, 5.0, NAN]
    b = np.r_[2.0, 3.0, 0.5]
    got = analysis.mann_whitney(a, b)
    ref = sps.mannwhitneyu(a[:-1], b, alternative="two-sided")
    assert got["u"] == ref.statistic and got["p_value"] == pytest.approx(ref.pvalue)
    pairs = [(x, y) for x in a[:-1] for y in b]
    brute = np.mean([1.0 if x > y else 0.5 if x == y else 0.0 for x, y in pairs])
    assert got["prob_a_beats_b"] == pytest.approx(brute)
    assert got["rank_biserial"] == pytest.approx(2 * brute - 1)
    assert (got["n_a"], got["n_b"]) == (4, 3)
    assert np.isnan(analysis.mann_whitney([NAN], b)["p_value"])


def test_compare_within_groups():
    df = frame({("blur", "good", "DAS"): A, ("blur", "good", "Random Sampling"): B,
                ("blur", "good", "Random Search"): B + 1, ("blur", "all", "DAS"): A})
    one = analysis.compare(df, "DAS", "Random Sampling")
    assert len(one) == 1 and one.iloc[0]["op_set"] == "good"
    ref = sps.mannwhitneyu(A[np.isfinite(A)], B, alternative="two-sided")
    assert one.iloc[0]["u"] == ref.statistic
    vs_das = analysis.compare_all(df, reference="DAS")
    assert vs_das[["a", "b"]].values.tolist() == [["DAS", "Random Sampling"], ["DAS", "Random Search"]]
    assert len(analysis.compare_all(df)) == 3  # all pairs of the good-ops group
