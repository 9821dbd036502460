"""Adaptive runs (--target-ci / --max-trials, dasjax.run_adaptive): a row stops when its median is
tight or at the trial limit, records why, equals the plain run over the same seeds, and resumes."""
import numpy as np
import pandas as pd
import pytest
from dasjax.runners import common as table_runner  # the runners' shared machinery
from conftest import TINY_CLI, load_script

import dasjax
import dasjax.adaptive as adaptive

BASE = ["--preset", "smoke", "--rows", "lg_only", "--problems", "blur", "--no-figures"] + TINY_CLI
SAME = ["seed", "arch_psnr", "architecture", "diverged"]


@pytest.fixture(scope="module")
def table1():
    return load_script("run_table1")


def run(table1, out, *flags):
    assert table_runner.main_guard(table1.main, BASE + ["--out", str(out), *flags]) == 0
    return pd.read_csv(out / "trials.csv"), pd.read_csv(out / "wall_times.csv")


def test_loose_target_stops_early_and_equals_the_plain_run(table1, tmp_path):
    """A target every row meets at once: the run stops at the first check (10 trials, two chunks of
    5), says so, and its trials are the plain run's over seeds 0-9, digit for digit."""
    got, walls = run(table1, tmp_path / "adaptive", "--target-ci", "100", "--max-trials", "40", "--trial-chunk", "5")
    plain, _ = run(table1, tmp_path / "plain", "--trials", "10")
    assert len(got) == 10 and set(got["stop_reason"]) == {"target_ci"}
    assert walls.loc[0, "stop_reason"] == "target_ci" and walls.loc[0, "trials"] == 10
    assert (got["ci_half_width"] <= 100).all()
    pd.testing.assert_frame_equal(got[SAME], plain[SAME])


def test_impossible_target_runs_to_max_trials_and_resumes(table1, tmp_path, monkeypatch):
    """A target no row can meet: the run goes to --max-trials (chunks 5, 2) and says so.  A run
    killed after its first chunk resumes from that chunk's checkpoint when restarted with the same
    command, and gives the plain run's trials over seeds 0-6."""
    out = tmp_path / "adaptive"
    flags = ("--target-ci", "1e-6", "--max-trials", "7", "--trial-chunk", "5")
    calls = []
    real = adaptive.run_method

    def killed_on_the_second_chunk(*a, **kw):
        calls.append(len(a[2]))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real(*a, **kw)

    monkeypatch.setattr(adaptive, "run_method", killed_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        table_runner.main_guard(table1.main, BASE + ["--out", str(out), *flags])
    assert (out / "runs/blur/lg_only/checkpoint/chunk000/retrain.npz").exists()
    monkeypatch.setattr(adaptive, "run_method", real)
    got, walls = run(table1, out, *flags)
    plain, _ = run(table1, tmp_path / "plain", "--trials", "7")
    assert calls == [5, 2] and len(got) == 7
    assert set(got["stop_reason"]) == {"max_trials"} and walls.loc[0, "stop_reason"] == "max_trials"
    pd.testing.assert_frame_equal(got[SAME], plain[SAME])
    assert not (out / "runs/blur/lg_only/checkpoint").exists()         # removed once the row is saved


def test_bad_adaptive_input(table1, tmp_path, capsys):
    for flags, needle in ((["--max-trials", "5"], "--target-ci"), (["--target-ci", "0"], "--target-ci"),
                          (["--target-ci", "1", "--trial-chunk", "0"], "--trial-chunk")):
        code = table_runner.main_guard(table1.main, BASE + ["--out", str(tmp_path / "x"), *flags])
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and "\n" not in err, err
    cfg = dasjax.make_config()
    with pytest.raises(ValueError, match="target_ci"):
        dasjax.run_adaptive(cfg, "Nets only", target_ci=0, max_trials=5)
    with pytest.raises(ValueError, match="max_trials"):
        dasjax.run_adaptive(cfg, "Nets only", target_ci=1.0, max_trials=0)


def test_median_ci_half_width_shrinks_with_trials():
    rng = np.random.default_rng(0)
    x = rng.normal(15.0, 2.0, 400)
    small, large = adaptive.median_ci_half_width(x[:25]), adaptive.median_ci_half_width(x)
    assert large < small and large == pytest.approx(1.96 * np.sqrt(np.pi / 2) * 2.0 / 20, rel=0.2)
    assert adaptive.median_ci_half_width([3.0, np.nan]) == np.inf
