"""One-shot vs architecture PSNR correlation and the degenerate filters of App. A."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import analysis

NAN = float("nan")


def test_correlate_matches_scipy_and_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(18, 3, 30)
    y = 0.4 * x + rng.normal(10, 1, 30)
    x_nan, y_nan = np.r_[x, NAN, 20.0], np.r_[y, 21.0, NAN]
    got = analysis.correlate(x_nan, y_nan)
    assert (got["n"], got["n_excluded"]) == (30, 2)
    for key, fn in (("pearson", sps.pearsonr), ("spearman", sps.spearmanr), ("kendall", sps.kendalltau)):
        ref = fn(x, y)
        coef = {"pearson": "pearson_r", "spearman": "spearman_rho", "kendall": "kendall_tau"}[key]
        assert got[coef] == pytest.approx(ref.statistic)
        assert got[f"{key}_p"] == pytest.approx(ref.pvalue)
    slope, intercept = np.polyfit(x, y, 1)
    assert got["slope"] == pytest.approx(slope) and got["intercept"] == pytest.approx(intercept)
    assert got["pearson_r"] == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_correlate_degenerate_inputs_give_nan():
    few = analysis.correlate([1.0, 2.0, NAN], [3.0, 5.0, 1.0])
    assert (few["n"], few["n_excluded"]) == (2, 1) and np.isnan(few["pearson_r"])
    assert few["slope"] == pytest.approx(2.0)  # a line through two points still exists
    const = analysis.correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert np.isnan(const["spearman_rho"]) and np.isnan(const["slope"])


# (one-shot, architecture) per trial; threshold 9 dB.
CASE = [(5.0, 20.0),   # degenerate search          -> removed by "search" and "all"
        (20.0, 5.0),   # degenerate architecture    -> removed by "all" only
        (8.9, 8.0),    # both degenerate            -> removed by both
        (20.0, 21.0), (15.0, 16.0), (12.0, 14.0), (18.0, 13.0),
        (NAN, 19.0),   # no one-shot value          -> never "< threshold": kept, then excluded
        (16.0, NAN)]   # diverged retrain           -> kept by "search", excluded from correlation


def case_frame():
    return pd.DataFrame({"problem": "blur", "op_set": "good", "method": "DAS", "hparams": "H1",
                         "one_shot_psnr": [c[0] for c in CASE], "arch_psnr": [c[1] for c in CASE]})


def test_degenerate_filters_on_constructed_case():
    df = case_frame()
    assert analysis.degenerate_mask(df, "none").sum() == 0
    assert analysis.degenerate_mask(df, "search").tolist() == [True, False, True] + [False] * 6
    assert analysis.degenerate_mask(df, "all").tolist() == [True, True, True] + [False] * 6
    assert len(analysis.filter_degenerate(df, "all")) == 6
    # The threshold is a parameter: at 13 dB "all" also drops the (12, 14) and (18, 13) trials.
    assert analysis.degenerate_mask(df, "all", threshold=13.5).sum() == 5
    with pytest.raises(ValueError, match="degenerate filter"):
        analysis.degenerate_mask(df, "some")


def test_correlation_table_counts_removed_and_excluded():
    rs = pd.DataFrame({"problem": "blur", "op_set": "good", "method": "Random Sampling",
                       "hparams": "H1", "one_shot_psnr": NAN, "arch_psnr": [20.0, 21.0]})
    table = analysis.correlation_table(pd.concat([case_frame(), rs]))
    assert table["method"].unique().tolist() == ["DAS"]  # no one-shot PSNR: no correlation row
    assert table["filter"].tolist() == ["none", "search", "all"]
    assert table["n_total"].tolist() == [9, 9, 9]
    assert table["n_removed"].tolist() == [0, 2, 3]
    assert table["n_excluded"].tolist() == [2, 2, 2]
    assert table["n"].tolist() == [7, 5, 4]
    kept = np.array([c for c in CASE[3:7]])
    r = sps.pearsonr(kept[:, 0], kept[:, 1]).statistic
    assert table.iloc[2]["pearson_r"] == pytest.approx(r)
    assert (table["threshold"] == 9.0).all()
