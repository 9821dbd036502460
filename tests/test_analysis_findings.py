"""analysis.table1_findings: verdicts follow the numbers, tests match scipy, missing rows are said."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import analysis

RNG = np.random.default_rng(0)


def trials(spec, problem="blur"):
    """spec: {(op_set, method): (arch values, one-shot values or None)} -> a trials DataFrame."""
    rows = []
    for (op_set, method), (arch, one_shot) in spec.items():
        one_shot = np.full(len(arch), np.nan) if one_shot is None else one_shot
        for seed, (a, o) in enumerate(zip(arch, one_shot)):
            rows.append(dict(problem=problem, op_set=op_set, method=method, hparams="H1", seed=seed,
                             arch_psnr=a, one_shot_psnr=o))
    return pd.DataFrame(rows)


def paper_like(n=20):
    """Random search above DAS (good), DAS above random sampling (all), DAS all-ops spread 4x good."""
    das_good = RNG.normal(21.5, 0.5, n)
    das_all = RNG.normal(19.0, 2.0, n)
    return {
        ("good", "DAS"): (das_good, RNG.normal(15, 1, n)),          # one-shot independent of arch
        ("good", "Random Search"): (RNG.normal(23.0, 0.5, n), None),
        ("all", "DAS"): (das_all, RNG.normal(12, 1, n)),
        ("all", "Random Sampling"): (RNG.normal(12.0, 2.0, n), None),
    }


def verdicts(f):
    return dict(zip(f["finding"], f["verdict"]))


def test_paper_like_data_holds_everywhere_and_tests_match_scipy():
    spec = paper_like()
    df = pd.concat([trials(spec, "blur"), trials(spec, "downsampling")])
    f = analysis.table1_findings(df)
    assert list(f["problem"]) == ["blur"] * 4 + ["downsampling"] * 4
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
    assert md.count("**holds**") == 8 and md.startswith("| finding |")


def test_reversed_data_does_not_hold():
    n = 20
    das_good = RNG.normal(23.0, 0.5, n)
    spec = {("good", "DAS"): (das_good, das_good - 5),              # one-shot predicts arch exactly
            ("good", "Random Search"): (RNG.normal(21.5, 0.5, n), None),   # below DAS
            ("all", "DAS"): (RNG.normal(8.0, 0.5, n), RNG.normal(12, 1, n)),  # below RS, tight
            ("all", "Random Sampling"): (RNG.normal(12.0, 2.0, n), None)}
    v = verdicts(analysis.table1_findings(trials(spec)))
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
