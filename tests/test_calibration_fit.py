"""Calibration as a search (dasjax.calibration, experiments/calibrate.py --fit) on a tiny target:
calibration seeds only, trials reused when a candidate is promoted and when the command reruns,
the ranking and figure written, and the distance computed as documented."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CLI, load_script

import dasjax
import dasjax.calibration as cal
from dasjax import hpo

TARGETS = pd.DataFrame([
    ("sequential", "good", "Learnable Grad. only", "blur", "median", 5.0),
    ("sequential", "good", "Nets only", "blur", "median", 6.0),
    ("sequential", "all", "Random Sampling", "blur", "p87", 4.0),
    ("sequential", "all", "Random Search", "blur", "max", 4.0),
], columns=["space", "op_set", "method", "problem", "stat", "value"])
TINY_SET = [a for a in TINY_CLI if a != "--set"] + ["eval_batches=2", "fast_compile=true"]


def test_statistics_and_field_specs():
    x = [1.0, 2.0, 3.0, np.nan, 10.0]
    assert cal.statistic("median", x) == 2.5 and cal.statistic("std", x) == pytest.approx(np.std([1, 2, 3, 10]))
    assert cal.statistic("p87", x) == pytest.approx(np.percentile([1, 2, 3, 10], 87))
    with pytest.raises(ValueError, match="unknown statistic 'p870'"):
        cal.statistic("p870", x)
    name, d = cal.parse_field("noise_layer_std=uniform:0.1:1")
    assert name == "noise_layer_std" and isinstance(d, cal.Uniform) and (d.low, d.high) == (0.1, 1.0)
    assert cal.parse_field("merge_norm=none,batch")[1].choices == ("none", "batch")    # a text field keeps "none"
    assert cal.parse_field("ds_samples=none,12")[1].choices == (None, 12)
    assert cal.parse_field("tau_init=1.0,inverse_norm")[1].choices == (1.0, "inverse_norm")
    with pytest.raises(ValueError, match="bn_eval"):
        cal.FieldSpace({"bn_eval": hpo.Categorical(("running", "sometimes"))})
    with pytest.raises(ValueError, match="lacks columns"):
        cal.check_targets(TARGETS.drop(columns="stat"))
    s = cal.row_statistics(pd.DataFrame({"space": "sequential", "op_set": "good", "method": "Nets only",
                                         "problem": "blur", "arch_psnr": [5.0, 8.0, 9.0]}), TARGETS.iloc[[1]])
    assert s["ours"].iloc[0] == 8.0 and cal.distance(s) == 2.0


def test_fit_command_searches_resumes_and_ranks(tmp_path, monkeypatch):
    calibrate = load_script("calibrate")
    targets = tmp_path / "targets.csv"
    TARGETS.to_csv(targets, index=False)
    out = tmp_path / "fit"
    argv = ["--fit", "--targets", str(targets), "--field", "noise_std=0.1,0.3", "--field",
            "random_search_pool=fresh,row", "--width", "4", "--epochs", "2", "--min-trials", "2",
            "--max-trials", "4", "--eta", "2", "--iterations", "1", "--sampler", "random", "--out", str(out)]
    for item in TINY_SET:
        argv += ["--set", item]
    assert calibrate.main(argv) == 0
    trials = pd.read_csv(out / "fit_trials.csv")
    assert trials["seed"].min() == cal.CALIBRATION_SEED0                 # never the reported seeds 0..N-1
    cands = pd.read_csv(out / "fit_candidates.csv")
    assert list(cands["trials"]) == [2, 2, 4]                            # 2 candidates at 2 trials, the best at 4
    assert cands["proposal"].iloc[0] == "included"                       # today's defaults come first
    today = dasjax.make_config()
    assert json.loads(trials["values"].iloc[0]) == {"noise_std": today.problem.noise_std,
                                                     "random_search_pool": today.retrain.random_search_pool}
    best = cands.iloc[2]
    mine = trials[trials["values"] == cal.values_key({"noise_std": best["noise_std"],
                                                       "random_search_pool": best["random_search_pool"]})]
    # the promoted candidate ran only the 2 seeds it lacked: 4 trials per trained row, none twice
    trained = mine[mine["pool"] == 0]
    assert not trained.duplicated(["method", "seed"]).any()
    assert trained.groupby("method").size().min() == 4
    # its distance: the mean |ours - paper| over the four lines, from its 4-trial rows
    table = cal.candidate_table(trials, pd.read_csv(out / "fit_targets.csv"))
    assert table["distance"].iloc[0] == pytest.approx(best["distance"])
    assert (out / "fit_ranking.md").read_text().count("|") > 20 and (out / "fit_fields.png").stat().st_size > 1000
    # a rerun reuses every trial: nothing trains, the same candidates come out
    monkeypatch.setattr(cal, "run_method", lambda *a, **k: pytest.fail("a finished trial ran again"))
    monkeypatch.setattr(cal, "run_group", lambda *a, **k: pytest.fail("a finished trial ran again"))
    assert calibrate.main(argv) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "fit_candidates.csv"), cands)
    assert len(pd.read_csv(out / "fit_trials.csv")) == len(trials)


def test_given_candidates_are_scored_without_a_search(tmp_path):
    """--candidate JSON (repeatable): each candidate on --max-trials trials per row, no search."""
    calibrate = load_script("calibrate")
    targets = tmp_path / "targets.csv"
    TARGETS.iloc[:2].to_csv(targets, index=False)
    argv = ["--fit", "--targets", str(targets), "--candidate", '{"noise_std": 0.3}', "--candidate",
            '{"noise_std": 0.1}', "--width", "4", "--epochs", "2", "--max-trials", "2", "--out", str(tmp_path / "o")]
    for item in TINY_SET:
        argv += ["--set", item]
    assert calibrate.main(argv) == 0
    cands = pd.read_csv(tmp_path / "o" / "fit_given.csv")
    assert list(cands["noise_std"]) == [0.3, 0.1] and set(cands["proposal"]) == {"given"}
    assert (cands["trials"] == 2).all() and np.isfinite(cands["distance"]).all()


def test_a_trial_is_reused_only_for_the_same_whole_config():
    """The trial table keys a trial by a fingerprint of its whole config: a candidate with the same
    searched values but another base (or other defaults of the day) runs again."""
    a = cal.Evaluator(TARGETS.iloc[:1], {"noise_std": 0.1})
    b = cal.Evaluator(TARGETS.iloc[:1], {"noise_std": 0.2})
    assert a.fingerprint({"x0": "data"}) != b.fingerprint({"x0": "data"})
    assert a.fingerprint({"x0": "data"}) == a.fingerprint({"x0": "data"}) != a.fingerprint({"x0": "adjoint"})
    row = TARGETS.iloc[0]
    old = pd.DataFrame([{"candidate": 0, "values": cal.values_key({"x0": "data"}), "config": a.fingerprint({"x0": "data"}),
                         **{k: row[k] for k in cal.ROW_KEYS}, "seed": s, "pool": 0, "arch_psnr": 10.0, "diverged": False,
                         "architecture": "lg", "wall_time_s": 1.0} for s in (10000, 10001)])
    seeds = [10000, 10001]
    assert len(cal.Evaluator(TARGETS.iloc[:1], {"noise_std": 0.1}, previous=old).row_trials(
        a.fingerprint({"x0": "data"}), dict(row), seeds)) == 2
    assert len(cal.Evaluator(TARGETS.iloc[:1], {"noise_std": 0.2}, previous=old).row_trials(
        b.fingerprint({"x0": "data"}), dict(row), seeds)) == 0
    # a field only the cell space reads tells candidates apart when a target row is in the cell space
    cell = cal.Evaluator(TARGETS.iloc[:1].assign(space="cell"), {"noise_std": 0.1})
    assert cell.fingerprint({"merge_norm": "batch"}) != cell.fingerprint({"merge_norm": "none"})
    assert a.fingerprint({"merge_norm": "batch"}) == a.fingerprint({"merge_norm": "none"})   # sequential rows only
