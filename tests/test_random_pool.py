"""random_search_pool="row": random search drawn from the random-sampling row's retrained
architectures (register #35): equal maxima by construction, draws seeded per trial, no training of
its own, the same trials through a results folder, a resume and an adaptive run."""
import numpy as np
import pandas as pd
import pytest
from dasjax.runners import common as table_runner  # the runners' shared machinery
from conftest import TINY_CLI, load_script, tiny

import dasjax
from dasjax.adaptive import adapt
from dasjax.methods import pool_candidates, run_group, search_from_pool
from dasjax.stages import MethodResult


def fake_row(seeds, psnr):
    T = len(seeds)
    return MethodResult("Random Sampling", np.asarray(seeds), ["H1"] * T, np.asarray(psnr, float), np.full(T, np.nan),
                        [f"arch{s}" for s in seeds], None, ~np.isfinite(np.asarray(psnr, float)), 10.0, 1.0,
                        {"curve": np.arange(T * 3.0).reshape(T, 3)})


def test_pool_candidates_are_the_trial_and_distinct_others_seeded_per_trial():
    seeds = list(range(100, 125))
    idx = pool_candidates(seeds, 5)
    assert idx.shape == (25, 5)
    assert (idx[:, 0] == np.arange(25)).all()                        # the trial's own architecture first
    assert all(len(set(r)) == 5 for r in idx)                        # without replacement
    np.testing.assert_array_equal(idx, pool_candidates(seeds, 5))    # deterministic
    assert len({tuple(sorted(r[1:])) for r in idx}) > 20             # each trial draws its own others
    # a trial's draw depends on its seed: another seed in the same slot draws other partners
    other = pool_candidates([999] + seeds[1:], 5)
    assert not np.array_equal(other[0, 1:], idx[0, 1:]) and np.array_equal(other[1:], idx[1:])
    assert pool_candidates([3, 4], 5).shape == (2, 2)                # a row smaller than n: all of it


def test_search_from_pool_takes_the_best_candidate_and_keeps_the_row_maximum():
    rng = np.random.default_rng(0)
    seeds = list(range(30))
    psnr = rng.normal(10, 3, 30)
    psnr[7] = np.nan                                                # a diverged trial is never picked
    row = fake_row(seeds, psnr)
    got = search_from_pool(row, 5)
    idx = pool_candidates(seeds, 5)
    best = np.nanmax(np.where(np.isnan(psnr), -np.inf, psnr)[idx], axis=1)
    np.testing.assert_allclose(got.arch_psnr, best)
    assert np.nanmax(got.arch_psnr) == np.nanmax(psnr)              # equal maxima, by construction
    assert (got.arch_psnr >= np.where(np.isnan(psnr), -np.inf, psnr)).all()
    pick = got.columns["pool_trial"]
    assert [f"arch{s}" for s in pick] == got.arch_strings
    np.testing.assert_array_equal(got.arrays["curve"], row.arrays["curve"][pick])
    assert got.method == "Random Search" and got.wall_time_s == row.wall_time_s


def test_adaptive_rebuilds_the_row_search_from_all_trials():
    """Chunks of a pooled row: random search after the stop is the plain one over all seeds."""
    psnr = {s: float(np.sin(s) * 5 + 10) for s in range(40)}

    def chunk(seeds, _ckpt):
        return {"Random Sampling": fake_row(seeds, [psnr[s] for s in seeds])}

    got = adapt(chunk, target_ci=1e-9, max_trials=23, chunk=10,
                derive=lambda rows: {"Random Search": search_from_pool(rows["Random Sampling"], 5)})
    plain = search_from_pool(fake_row(list(range(23)), [psnr[s] for s in range(23)]), 5)
    np.testing.assert_array_equal(got["Random Search"].result.arch_psnr, plain.arch_psnr)
    assert got["Random Search"].stop_reason == "max_trials" and len(got["Random Sampling"].result.seeds) == 23


@pytest.fixture(scope="module")
def pooled():
    cfg = tiny(op_set="all", random_search_pool="row")
    return cfg, run_group(cfg, ("Random Sampling", "Random Search"), range(6))


def test_the_row_pool_runs_no_candidates_of_its_own(pooled):
    cfg, res = pooled
    rs, search = res["Random Sampling"], res["Random Search"]
    assert np.nanmax(search.arch_psnr) == np.nanmax(rs.arch_psnr)
    for i, row in enumerate(pool_candidates(rs.seeds, cfg.retrain.n_random_search)):
        assert search.arch_psnr[i] == np.nanmax(rs.arch_psnr[row])
    # random search alone retrains the same row (one candidate per seed) and picks the same
    alone = dasjax.run_method(cfg, "Random Search", range(6))
    np.testing.assert_array_equal(alone.arch_psnr, search.arch_psnr)
    assert alone.arch_strings == search.arch_strings


def test_the_row_pool_through_a_results_folder_and_a_resume(tmp_path):
    table1 = load_script("run_table1")
    args = ["--preset", "smoke", "--rows", "rs_all,rsearch_all", "--problems", "blur", "--no-figures",
            "--trials", "6", *TINY_CLI, "--set", "random_search_pool=row", "--out", str(tmp_path)]
    assert table_runner.main_guard(table1.main, args) == 0
    df = pd.read_csv(tmp_path / "trials.csv")
    rs, search = (df[df.method == m].sort_values("seed") for m in ("Random Sampling", "Random Search"))
    assert len(rs) == len(search) == 6 and search.arch_psnr.max() == rs.arch_psnr.max()
    assert set(search.pool_trial) <= set(rs.seed)
    assert table_runner.main_guard(table1.main, args) == 0          # a rerun: everything is done
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "trials.csv"), df)


def test_an_adaptive_pooled_row_equals_the_plain_one(pooled):
    """run_adaptive in chunks of 3 seeds: random search is redrawn from all 6 random-sampling trials
    at the end, so both rows equal the plain run over seeds 0-5; random search alone too."""
    from dasjax.adaptive import run_adaptive
    cfg, plain = pooled
    both = run_adaptive(cfg, ("Random Sampling", "Random Search"), target_ci=1e-9, max_trials=6, chunk=3,
                        min_trials=6)
    for m in ("Random Sampling", "Random Search"):
        np.testing.assert_allclose(both[m].result.arch_psnr, plain[m].arch_psnr, rtol=1e-5)
        assert both[m].stop_reason == "max_trials"
    alone = run_adaptive(cfg, "Random Search", target_ci=1e-9, max_trials=6, chunk=3, min_trials=6)
    assert set(alone) == {"Random Search"}
    np.testing.assert_allclose(alone["Random Search"].result.arch_psnr, plain["Random Search"].arch_psnr, rtol=1e-5)
