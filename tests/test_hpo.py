"""Hyperband / BOHB-style HPO (dasjax.hpo, experiments/run_hpo.py).

Compiles are the cost here, so every engine test uses the same tiny config (good ops, 2 layers)
and the same trial-axis shapes: the rung of 3 gradient-descent configurations at 1 epoch and the
single configuration at 3 epochs are compiled once and reused by the loop and the runner tests.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_script, tiny

import dasjax
from dasjax.runners import common as table_runner  # the runners' shared machinery
from dasjax import hparams as hpmod
from dasjax import hpo

ROOT = Path(__file__).resolve().parents[1]
CFG = tiny(op_set="good", n_layers=2)
# the runner flags that rebuild exactly CFG from the smoke preset (so compiled programs are shared)
TINY_FLAGS = ["--preset", "smoke", "--problems", "blur", "--op-sets", "good", "--width", "4",
              "--batch-size", "16", "--set", "n_layers=2", "--set", "steps_per_epoch=3",
              "--set", "eval_batches=2", "--set", "progress=false"]
SGD_SPACE = hpo.SearchSpace().fix(alpha_optimizer="sgd")
TABLE = ["iteration", "bracket", "rung", "epochs", "config_id", "seeds", "proposal", *hpo.CONFIG_COLUMNS,
         "objective", "one_shot_psnr", "arch_psnr", "diverged", "architecture", "trial_epochs"]


def shape(schedule):
    return [[(r.n_configs, r.epochs) for r in b.rungs] for b in schedule]


# --- the schedule -------------------------------------------------------------------------------
def test_schedule_matches_hand_computed_values():
    # eta 3, budgets 1..9: s_max = 2, B = 3 * 9 = 27.
    #   s=2: n = ceil(27/9 * 9/3) = 9 at r = 9/9 = 1  -> 9 @ 1, floor(9/3) = 3 @ 3, 1 @ 9
    #   s=1: n = ceil(3 * 3/2) = ceil(4.5) = 5 at 3   -> 5 @ 3, floor(5/3) = 1 @ 9
    #   s=0: n = ceil(3 * 1/1) = 3 at 9               -> 3 @ 9
    assert shape(hpo.hyperband_schedule(9, 3, 1)) == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]
    # the paper's setting (register #26): 50/9, 50/3, 50 -> 5.56, 16.67, 50 -> 6, 17, 50 epochs (half up)
    paper = hpo.hyperband_schedule(50, 3)
    assert shape(paper) == [[(9, 6), (3, 17), (1, 50)], [(5, 17), (1, 50)], [(3, 50)]]
    assert paper[0].rungs[0].budget == pytest.approx(50 / 9)
    # eta 2, budgets 1..8: s_max = 3, B = 4 * 8 = 32.
    #   s=3: n = ceil(32/8 * 8/4) = 8 -> 8 @ 1, 4 @ 2, 2 @ 4, 1 @ 8
    #   s=2: n = ceil(4 * 4/3) = ceil(5.33) = 6 at 2 -> 6 @ 2, 3 @ 4, floor(1.5) = 1 @ 8
    #   s=1: n = ceil(4 * 2/2) = 4 at 4 -> 4 @ 4, 2 @ 8
    #   s=0: n = 4 at 8
    assert shape(hpo.hyperband_schedule(8, 2, 1)) == [[(8, 1), (4, 2), (2, 4), (1, 8)],
                                                      [(6, 2), (3, 4), (1, 8)], [(4, 4), (2, 8)], [(4, 8)]]
    # min budget not a power of eta below max: s_max = floor(log3(27/2)) = 2, smallest budget 27/9 = 3
    assert shape(hpo.hyperband_schedule(27, 3, 2)) == [[(9, 3), (3, 9), (1, 27)], [(5, 9), (1, 27)], [(3, 27)]]
    # iterations cycle through the brackets, most aggressive first (hpbandster)
    sched = hpo.hyperband_schedule(9, 3, 1)
    assert [hpo.bracket_of_iteration(sched, i).s for i in range(7)] == [2, 1, 0, 2, 1, 0, 2]
    assert hpo.round_budget(50 / 9) == 6 and hpo.round_budget(2.5) == 3 and hpo.round_budget(50 / 3) == 17
    with pytest.raises(ValueError, match="round to epochs"):
        hpo.hyperband_schedule(2, 3)                  # 0.22 / 0.67 / 2 -> 0, 1, 2 epochs
    with pytest.raises(ValueError, match="eta"):
        hpo.hyperband_schedule(9, 1)


def test_search_space_is_the_papers():
    space = hpo.SearchSpace()
    assert space.params["theta_lr"] == hpo.LogUniform(1e-5, 1.0)
    assert space.params["theta_wd"] == hpo.LogUniform(1e-8, 0.1)
    assert space.params["alpha_lr"] == hpo.LogUniform(1e-5, 0.1)
    assert space.params["alpha_wd"] == hpo.LogUniform(1e-5, 0.1)
    assert set(space.params["alpha_optimizer"].choices) == {"adam", "sgd"}
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(2000)]
    lr = np.log10([d["theta_lr"] for d in draws])
    assert lr.min() >= -5 and lr.max() <= 0
    assert abs(np.mean(lr < -2.5) - 0.5) < 0.05          # log-uniform: half the mass below 10^-2.5
    hp = space.to_hparams(draws[0], "x")
    assert isinstance(hp, hpmod.HParamSet) and hp.theta_optimizer == "adam" and hp.theta_scheduler is False
    assert "alpha_optimizer" not in SGD_SPACE.params and SGD_SPACE.sample(rng)
    with pytest.raises(ValueError, match="outside"):
        space.fix(alpha_lr=0.5)


# --- one rung on the engine ---------------------------------------------------------------------------
def test_rung_batched_equals_one_by_one():
    """4 configurations (3 gradient-descent, 1 Adam: two optimizer-type groups) in one rung call ==
    each configuration evaluated alone."""
    rng = np.random.default_rng(3)
    space = hpo.SearchSpace()
    vals = [SGD_SPACE.sample(rng) for _ in range(3)]
    configs = [space.to_hparams({**v, "alpha_optimizer": "sgd"}, f"c{i}") for i, v in enumerate(vals)]
    configs.insert(2, space.to_hparams({**space.sample(rng), "alpha_optimizer": "adam"}, "adam"))
    seeds = [[10], [11], [12], [13]]
    ev = hpo.Evaluator(CFG, "one-shot")
    batched = ev(configs, seeds, 1)
    alone = [ev([c], [s], 1)[0] for c, s in zip(configs, seeds)]
    for b, a in zip(batched, alone):
        assert b["diverged"] == a["diverged"]
        assert b["objective"] == pytest.approx(a["objective"], abs=1e-5)
        assert b["one_shot_psnr"] == pytest.approx(a["one_shot_psnr"], abs=1e-5, nan_ok=True)
        assert b["architecture"] == a["architecture"]
    assert len({round(b["objective"], 4) for b in batched}) > 1        # really different configurations


def test_arch_objective_uses_the_retrained_psnr(monkeypatch):
    """The "arch" objective: one run_method(cfg, "DAS") per optimizer-type group, with the budget as
    search and retraining epochs; objective = mean architecture PSNR, -inf if any trial diverged.
    (The engine is faked here: the real DAS method is tested elsewhere, and compiles are costly.)"""
    calls = []

    def fake_run_method(cfg, method, seeds, hparams, progress=None):
        calls.append((cfg.search.epochs, cfg.retrain.epochs, method, list(seeds), [h.name for h in hparams]))
        T = len(seeds)
        arch = np.array([float(s) for s in seeds])
        div = np.array([s == 21 for s in seeds])
        return dasjax.MethodResult(method, np.asarray(seeds), [h.name for h in hparams], arch,
                                   arch + 100, [f"a{s}" for s in seeds], None, div, 2.0 * T, 1.0, {})

    monkeypatch.setattr(dasjax.methods, "run_method", fake_run_method)
    space = hpo.SearchSpace()
    rng = np.random.default_rng(0)
    configs = [space.to_hparams({**space.sample(rng), "alpha_optimizer": o}, n)
               for n, o in [("x", "sgd"), ("y", "adam"), ("z", "sgd")]]
    ev = hpo.Evaluator(CFG, "arch")
    assert ev.stages == 2
    out = ev(configs, [[10, 11], [20, 21], [30, 31]], 4)
    assert sorted(calls) == sorted([(4, 4, "DAS", [10, 11, 30, 31], ["x", "x", "z", "z"]),
                                    (4, 4, "DAS", [20, 21], ["y", "y"])])
    assert [o["objective"] for o in out] == [10.5, -math.inf, 30.5]
    assert [o["diverged"] for o in out] == [False, True, False]
    assert [o["one_shot_psnr"] for o in out] == [110.5, 120.5, 130.5]
    assert [o["architecture"] for o in out] == ["a10", "a20", "a30"]
    with pytest.raises(ValueError, match="objective"):
        hpo.Evaluator(CFG, "final")


# --- the loop ---------------------------------------------------------------------------------------
def _tiny_loop(seed, **kw):
    return hpo.tune(CFG, "one-shot", iterations=1, max_budget=3, min_budget=1, seed=seed,
                    space=SGD_SPACE, **kw)


def test_loop_without_optuna_and_same_seed_same_results(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)          # `import optuna` raises ImportError
    assert not hpo.optuna_available()
    with pytest.raises(ImportError, match="dasjax\\[hpo\\]"):
        hpo.make_sampler("tpe", SGD_SPACE)
    said = []
    a = _tiny_loop(7, sampler="auto", log=said.append)
    assert a.sampler == "random" and any("Optuna is not installed" in s for s in said)
    ev = a.evaluations
    # bracket s=1 of eta 3, budgets 1..3: 3 configurations at 1 epoch, the best one again at 3
    assert list(ev["epochs"]) == [1, 1, 1, 3] and list(ev["rung"]) == [0, 0, 0, 1]
    first = ev[ev.rung == 0].sort_values("objective", ascending=False, kind="stable")
    assert ev.iloc[3]["config_id"] == first.iloc[0]["config_id"]
    assert list(ev["cumulative_trial_epochs"]) == [1, 2, 3, 6]
    assert a.incumbent is not None and a.incumbent.name == "HPO-one-shot-blur"
    assert a.incumbent.alpha_lr == ev.iloc[3]["alpha_lr"]
    # same seed: same proposals and the same results
    b = _tiny_loop(7, sampler="random")
    pd.testing.assert_frame_equal(a.evaluations[TABLE], b.evaluations[TABLE])
    assert a.incumbent == b.incumbent
    # another seed proposes other configurations
    other = hpo.RandomSampler(SGD_SPACE, 8).propose(3, [], 0)
    assert [v for v, _ in other] != [v for v, _ in hpo.RandomSampler(SGD_SPACE, 7).propose(3, [], 0)]


def test_diverged_configurations_are_never_promoted():
    """A synthetic objective: configurations with theta_lr > 0.1 'diverge' (-inf)."""
    def evaluate(configs, seeds, epochs):
        return [{"objective": math.nan if c.theta_lr > 0.1 else -abs(math.log10(c.alpha_lr) + 2) + epochs,
                 "diverged": c.theta_lr > 0.1} for c in configs]

    res = hpo.hyperband(evaluate, iterations=6, max_budget=9, min_budget=1, sampler="random", seed=0)
    ev = res.evaluations
    bad = ev[ev.diverged]
    assert len(bad) and np.all(np.isneginf(bad["objective"])) and (bad["rung"] == 0).all()
    promoted = ev[ev.rung > 0]
    assert (promoted["theta_lr"] <= 0.1).all()
    assert res.incumbent.theta_lr <= 0.1
    assert res.incumbent_row["epochs"] == 9
    assert np.all(np.diff(res.trajectory["incumbent_objective"].to_numpy()[-5:]) >= 0)


def test_tpe_sampler_is_reproducible_and_model_based():
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.DEBUG)      # the user's choice, which the sampler keeps

    def evaluate(configs, seeds, epochs):          # best near alpha_lr = 1e-2, theta_lr = 1e-3
        return [{"objective": -abs(math.log10(c.alpha_lr) + 2) - abs(math.log10(c.theta_lr) + 3),
                 "diverged": False} for c in configs]

    runs = [hpo.hyperband(evaluate, iterations=6, max_budget=9, min_budget=1, sampler="tpe", seed=4)
            for _ in range(2)]
    a, b = (r.evaluations for r in runs)
    pd.testing.assert_frame_equal(a[TABLE], b[TABLE])
    assert runs[0].sampler == "tpe" and a["proposal"].str.startswith("tpe@").any()
    assert (a["proposal"] == "random").any()                 # before the model has data, and 1/3 after
    space = hpo.SearchSpace()
    for name, d in space.params.items():
        assert all(d.contains(v.item() if hasattr(v, "item") else v) for v in a[name]), name
    tpe = a[a.proposal.str.startswith("tpe@")]
    rnd = a[(a.proposal == "random") & (a.rung == 0)]
    err = lambda df: np.median(np.abs(np.log10(df["alpha_lr"]) + 2))  # noqa: E731
    assert err(tpe) < err(rnd)                               # the model concentrates on the good region
    assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    optuna.logging.set_verbosity(optuna.logging.INFO)


def test_evaluations_open_as_an_optuna_study(tmp_path):
    """One Optuna trial per configuration: its params, its objective at its largest budget, one
    intermediate value per rung; a configuration that diverged is a failed trial; rewriting replaces."""
    optuna = pytest.importorskip("optuna")
    from dasjax.optuna_study import write_study

    def evaluate(configs, seeds, epochs):
        return [{"objective": math.nan if c.theta_lr > 0.1 else -abs(math.log10(c.alpha_lr) + 2) + epochs,
                 "diverged": c.theta_lr > 0.1} for c in configs]

    res = hpo.hyperband(evaluate, iterations=3, max_budget=9, min_budget=1, sampler="random", seed=0)
    ev, path = res.evaluations, tmp_path / "optuna.db"
    for _ in range(2):
        write_study(ev, hpo.SearchSpace(), path, "synthetic")
    study = optuna.load_study(study_name="synthetic", storage=f"sqlite:///{path}")
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == ev["config_id"].nunique()
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == ev.groupby("config_id")["diverged"].last().sum() > 0
    assert study.best_value == pytest.approx(res.incumbent_row["objective"])
    assert study.best_params["alpha_lr"] == pytest.approx(res.incumbent.alpha_lr, rel=1e-12)
    for t in trials:
        rows = ev[ev.config_id == t.user_attrs["config_id"]]
        finite = rows[np.isfinite(rows.objective)]
        assert t.intermediate_values == pytest.approx(dict(zip(finite.epochs, finite.objective)))


# --- the runner ---------------------------------------------------------------------------------------
def test_run_hpo_smoke_end_to_end(tmp_path, capsys):
    run_hpo = load_script("run_hpo")
    out = tmp_path / "hpo"
    args = TINY_FLAGS + ["--out", str(out), "--iterations", "1", "--max-budget", "3", "--min-budget", "1",
                         "--sampler", "random", "--fix", "alpha_optimizer=sgd", "--objective", "one-shot"]
    assert table_runner.main_guard(run_hpo.main, args) == 0
    printed = capsys.readouterr().out
    assert "[hpo] incumbent: configuration" in printed and "bracket s=1: 3 x 1 epochs, 1 x 3 epochs" in printed
    inc = hpmod.load(out / "incumbent.json")
    assert inc.name == "HPO-one-shot-blur-good" and inc.alpha_optimizer == "sgd"
    ev = pd.read_csv(out / "evaluations.csv")
    for col in ("iteration", "bracket", "rung", "budget", "theta_lr", "alpha_optimizer", "objective",
                "diverged", "wall_time_s", "arch_psnr", "one_shot_psnr"):
        assert col in ev.columns, col
    assert len(ev) == 4 and list(ev["trial_epochs"]) == [1, 1, 1, 3]
    best = ev[ev.epochs == 3].iloc[0]
    assert inc.alpha_lr == pytest.approx(best["alpha_lr"], rel=1e-12)
    assert best["objective"] == pytest.approx(best["one_shot_psnr"]) and np.isnan(best["arch_psnr"])
    assert (out / "figures" / "trajectory.png").stat().st_size > 0
    assert len(pd.read_csv(out / "trajectory.csv")) == 4
    assert (out / "optuna.db").exists() == hpo.optuna_available()      # the study: test_optuna_study below
    # the incumbent file is what run_table1.py / run_table3.py accept as --hparams FILE.json
    table1 = load_script("run_table1")
    targs = table1.build_parser("t1", table1.ROWS).parse_args(["--preset", "smoke", "--hparams",
                                                               str(out / "incumbent.json")])
    assert table_runner.resolve(targs, "table1", table1.ROWS, log=lambda *_: None)[5] == inc
    # a rerun of the same command reuses every evaluation and writes the same incumbent
    before = (out / "incumbent.json").read_text()
    assert table_runner.main_guard(run_hpo.main, args) == 0
    assert "reusing 4 earlier evaluations" in capsys.readouterr().out
    assert (out / "incumbent.json").read_text() == before
    # bad input: one line, exit code 2
    for bad, needle in [(["--eta", "1"], "--eta"), (["--problems", "blur,downsampling"], "--problems"),
                        (["--fix", "alpha_lr=5"], "--fix"), (["--epochs", "3"], "--max-budget"),
                        (["--max-budget", "2", "--min-budget", "0.2"], "round to epochs")]:
        code = table_runner.main_guard(run_hpo.main, args[:-2] + ["--out", str(tmp_path / "bad")] + bad)
        err = capsys.readouterr().err.strip()
        assert code == 2 and needle in err and "\n" not in err, (bad, err)
    assert json.loads((out / "run.json").read_text())["objective"] == "one-shot"
