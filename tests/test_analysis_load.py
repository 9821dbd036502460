"""Loading results folders: format contract, errors, many folders, arrays."""

import json

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.load import REQUIRED_COLUMNS, ResultsFormatError
from analysis.testing import synthetic_trials, write_results_dir


def tiny_trials(n=3, **kw):
    trials, arrays = synthetic_trials(n_trials=n, problems=("blur",), op_sets=("good",),
                                      methods=("DAS", "Random Sampling"), epochs=3, layers=3, **kw)
    return trials, arrays


def test_round_trip_types_and_columns(tmp_path):
    trials, arrays = tiny_trials()
    trials["my_extra"] = [1.5] * len(trials)
    trials.loc[0, "arch_psnr"] = np.nan  # diverged ...
    trials.loc[0, "diverged"] = True
    trials.loc[1, "arch_psnr"] = np.nan  # ... and NaN without the flag: still counted as diverged
    write_results_dir(tmp_path / "run", trials, {"preset": "smoke"}, arrays)

    df = analysis.load_results(tmp_path / "run")
    assert len(df) == len(trials)
    assert set(REQUIRED_COLUMNS) <= set(df.columns)
    assert {"results_dir", "local_trial_id", "my_extra"} <= set(df.columns)
    assert df["seed"].dtype == np.int64 and df["arch_psnr"].dtype == float
    assert df["diverged"].dtype == bool
    assert df["diverged"].tolist()[:3] == [True, True, False]
    assert df["my_extra"].tolist() == [1.5] * len(trials)
    rs = df[df["method"] == "Random Sampling"]
    assert rs["one_shot_psnr"].isna().all()
    assert (rs["alpha_softmax"] == "").all()  # empty string stays a string
    assert df["results_dir"].unique().tolist() == [str((tmp_path / "run").resolve())]
    assert analysis.load_config(tmp_path / "run") == {"preset": "smoke"}
    das = df[df["method"] == "DAS"].iloc[0]
    assert analysis.parse_alpha(das["alpha_softmax"]).shape == (3, 2)
    assert analysis.parse_ops(das["ops"]) == ["lg", "net"]


def test_nested_and_many_folders_disambiguate_ids(tmp_path):
    trials, arrays = tiny_trials()
    write_results_dir(tmp_path / "all" / "runA", trials, {}, arrays)
    write_results_dir(tmp_path / "all" / "runB", trials, {}, arrays)
    other, _ = tiny_trials(seed=1, experiment="table3")
    write_results_dir(tmp_path / "single", other, {})

    nested = analysis.load_results(tmp_path / "all")  # searches below for trials.csv
    assert len(nested) == 2 * len(trials)
    assert nested["trial_id"].is_unique
    assert nested["trial_id"].str.startswith(("runA::", "runB::")).all()
    assert set(nested["local_trial_id"]) == set(trials["trial_id"])

    both = analysis.load_results([tmp_path / "all", tmp_path / "single"])
    assert len(both) == 3 * len(trials) and both["trial_id"].is_unique
    # The same folder twice is loaded once.
    assert len(analysis.load_results(tmp_path / "single", tmp_path / "single")) == len(other)
    # Arrays of a disambiguated trial are found through its folder.
    tid = nested.loc[nested["method"] == "DAS", "trial_id"].iloc[0]
    arrs = analysis.trial_arrays(nested, tid)
    assert arrs["alpha_history"].shape == (3, 3, 2)


def test_load_arrays(tmp_path):
    trials, arrays = tiny_trials()
    write_results_dir(tmp_path, trials, {}, arrays)
    tid = trials["trial_id"].iloc[0]
    got = analysis.load_arrays(tmp_path, tid)
    assert set(got) == {"alpha_history", "search_val_loss", "retrain_val_loss"}
    np.testing.assert_array_equal(got["alpha_history"], arrays[f"{tid}/alpha_history"])
    with pytest.raises(KeyError, match="nope"):
        analysis.load_arrays(tmp_path, "nope")
    with pytest.raises(FileNotFoundError):
        analysis.load_arrays(tmp_path / "missing", tid)


@pytest.mark.parametrize("drop", [["arch_psnr"], ["one_shot_psnr", "hparams"]])
def test_missing_columns_named_with_folder(tmp_path, drop):
    trials, _ = tiny_trials()
    folder = write_results_dir(tmp_path / "broken", trials.drop(columns=drop), {})
    with pytest.raises(ResultsFormatError) as err:
        analysis.load_results(folder)
    assert isinstance(err.value, ValueError)
    for column in drop:
        assert column in str(err.value)
    assert "broken" in str(err.value)


def test_no_trials_is_a_clear_error(tmp_path):
    trials, _ = tiny_trials()
    header_only = write_results_dir(tmp_path / "header_only", trials.iloc[:0], {})
    with pytest.raises(ResultsFormatError, match="header_only.*no trials"):
        analysis.load_results(header_only)

    empty = tmp_path / "empty_file"
    empty.mkdir()
    (empty / "trials.csv").write_text("")
    with pytest.raises(ResultsFormatError, match="empty_file"):
        analysis.load_results(empty)

    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(ResultsFormatError, match="no trials.csv.*nothing"):
        analysis.load_results(nothing)
    with pytest.raises(FileNotFoundError):
        analysis.load_results(tmp_path / "does_not_exist")


def test_bad_values_are_errors(tmp_path):
    trials, _ = tiny_trials()
    bad = trials.astype({"arch_psnr": object})
    bad.loc[0, "arch_psnr"] = "abc"
    with pytest.raises(ResultsFormatError, match="arch_psnr"):
        analysis.load_results(write_results_dir(tmp_path / "a", bad, {}))
    bad = trials.astype({"diverged": object})
    bad.loc[0, "diverged"] = "maybe"
    with pytest.raises(ResultsFormatError, match="diverged"):
        analysis.load_results(write_results_dir(tmp_path / "b", bad, {}))
    dup = pd.concat([trials, trials.iloc[:1]])
    with pytest.raises(ResultsFormatError, match="duplicate trial_id"):
        analysis.load_results(write_results_dir(tmp_path / "c", dup, {}))


def test_parse_architectures():
    assert analysis.parse_sequential("lg-net-roll") == ["lg", "net", "roll"]
    edges = analysis.parse_cell("0>1:net;0>2:zero;1>2:lg")
    assert edges[2] == analysis.Edge(1, 2, "lg")
    assert analysis.architecture_ops("0>1:net;0>2:zero") == ["net", "zero"]
    assert analysis.parse_alpha("null") is None and analysis.parse_alpha("") is None
    assert analysis.parse_alpha(json.dumps([[0.5, 0.5]])).shape == (1, 2)
    with pytest.raises(ValueError, match="j>i:op"):
        analysis.parse_cell("0-1:net")
    with pytest.raises(ValueError, match="forward"):
        analysis.parse_cell("2>1:net")


def test_dead_states_and_their_cnn_readers():
    # s1 has only a zero edge: dead; s2 reads s0 through a net: alive; s3 gets a roll of dead s1 and
    # a zero edge: dead too (a roll of zeros is zero); s4 reads s1 through lg and s3 through net.
    cell = "0>1:zero;0>2:net;1>2:zero;0>3:zero;1>3:roll;2>3:zero;0>4:zero;1>4:lg;2>4:zero;3>4:net"
    assert analysis.dead_states(cell) == [{1, 3}]
    readers = analysis.dead_state_readers(cell)
    assert readers == [(0, analysis.Edge(1, 4, "lg")), (0, analysis.Edge(3, 4, "net"))]
    # a noise or lg edge from s0 keeps a state alive; each cell of "... | ..." is read on its own
    alive = "0>1:noise;0>2:zero;1>2:net"
    assert analysis.dead_states(alive) == [set()] and analysis.dead_state_readers(alive) == []
    assert analysis.dead_states(f"{alive} | {cell}") == [set(), {1, 3}]
    assert [c for c, _ in analysis.dead_state_readers(f"{alive} | {cell}")] == [1, 1]


def test_dead_state_summary_splits_trials():
    dead = "0>1:zero;0>2:zero;1>2:net"          # s1 dead, read by a net
    alive = "0>1:net;0>2:zero;1>2:net"
    df = pd.DataFrame({"problem": "blur", "op_set": "good", "method": "DAS", "hparams": "H1",
                       "architecture": [dead, dead, alive, alive, alive, "lg-net"],
                       "arch_psnr": [5.0, 7.0, 20.0, 21.0, 22.0, 23.0]})
    s = analysis.dead_state_summary(df)            # the sequential trial is left out
    assert len(s) == 1 and s["n"].iloc[0] == 5 and s["n_dead_readers"].iloc[0] == 2
    assert s["median_with"].iloc[0] == 6.0 and s["median_without"].iloc[0] == 21.0
    assert s["min_with"].iloc[0] == 5.0 and s["min_without"].iloc[0] == 20.0
    assert analysis.dead_state_summary(df[df.architecture == "lg-net"]).empty
