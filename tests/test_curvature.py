"""lambda_max of the architecture Hessian (power iteration, exact, Lanczos), the DARTS-ES rule, and
DARTS-ES / DARTS-ADA inside the batched search (isolation, exact rollback, run_curvature.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import HARMFUL_OPS_BEFORE_STAGE5, PROBLEM_BEFORE_STAGE7, TINY_CLI, tiny

import dasjax
from dasjax.runners import common as table_runner  # the runners' shared machinery
from dasjax.curvature import alpha_lambda_max, es_fires, es_stop_epoch, lambda_max, lanczos_lambda_max
from dasjax.spaces import make_space


def test_power_iteration_matches_eigvalsh_on_quadratic():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(6, 6))
    H = M @ M.T + np.diag(np.arange(6.0))
    f = lambda x: 0.5 * x @ jnp.asarray(H, jnp.float32) @ x
    est = lambda_max(f, jnp.ones(6), jax.random.key(0), n_iter=200)
    np.testing.assert_allclose(float(est), np.linalg.eigvalsh(H)[-1], rtol=1e-4)


def test_alpha_lambda_max_matches_explicit_hessian():
    """Small supernet (1 layer x 4 ops = 4 alphas): power iteration, the exact reduced Hessian and Lanczos
    vs eigvalsh of the explicit Hessian (jacrev of jacrev: the fused CNN backward has no forward mode;
    unbatched here: never under vmap)."""
    cfg = tiny(op_set="all", n_layers=1, width=4, batch_size=16)
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    params, bn = space.init(jax.random.key(0))
    alpha = 0.8 * jax.random.normal(jax.random.key(1), space.arch_shape)
    batch = space.problem.sample(jax.random.key(2), 16)
    key = jax.random.key(3)
    methods = {"power": 300, "exact": 0, "lanczos": 3}     # lanczos: all 1 x (4 - 1) = 3 directions
    est = jax.jit(lambda a: [alpha_lambda_max(space, params, bn, a, batch, key, n, m) for m, n in methods.items()])(alpha)
    k_noise, _ = jax.random.split(key)

    def val_loss(flat):
        a = flat.reshape(space.arch_shape)
        x_hat, _ = space.apply(params, bn, space.weights(a), batch, k_noise, train=True)
        return jnp.mean((x_hat - batch.x) ** 2)

    H = np.asarray(jax.jit(jax.jacrev(jax.jacrev(val_loss)))(alpha.ravel()), dtype=np.float64)
    ev = np.linalg.eigvalsh((H + H.T) / 2)
    for m, value in zip(methods, est):
        np.testing.assert_allclose(float(value), ev.max(), rtol=2e-3, atol=1e-6, err_msg=m)
    # the row-constant directions of alpha are exact null vectors of the Hessian (softmax per row)
    ones = np.kron(np.eye(space.arch_shape[0]), np.ones(space.arch_shape[1]))
    np.testing.assert_allclose(ones @ H, 0.0, atol=1e-5 * np.abs(H).max())


def test_lambda_max_is_the_largest_eigenvalue_of_an_indefinite_hessian():
    H = np.diag([-5.0, 2.0, 1.0, -0.5])          # dominant in magnitude is -5; lambda_max is 2
    f = lambda x: 0.5 * x @ jnp.asarray(H, jnp.float32) @ x
    np.testing.assert_allclose(float(lambda_max(f, jnp.ones(4), jax.random.key(0), n_iter=300)), 2.0, rtol=1e-4)


def test_lanczos_matches_eigvalsh_with_fewer_steps_than_dimensions():
    rng = np.random.default_rng(1)
    M = rng.normal(size=(30, 30))
    H = 0.5 * (M + M.T)                       # indefinite
    f = lambda x: 0.5 * x @ jnp.asarray(H, jnp.float32) @ x
    np.testing.assert_allclose(float(lanczos_lambda_max(f, jnp.zeros(30), jax.random.key(0), 20)),
                               np.linalg.eigvalsh(H)[-1], rtol=1e-4)
    D = np.diag([-5.0, 2.0, 1.0, -0.5])       # dominant in magnitude is -5; lambda_max is 2
    g = lambda x: 0.5 * x @ jnp.asarray(D, jnp.float32) @ x
    np.testing.assert_allclose(float(lanczos_lambda_max(g, jnp.ones(4), jax.random.key(0), 4)), 2.0, rtol=1e-5)
    # an invariant Krylov space (start vector in a 2D eigenspace): restarts keep the estimate exact
    E = np.diag([3.0, 3.0, 1.0, 1.0, -2.0, 7.0])
    h = lambda x: 0.5 * x @ jnp.asarray(E, jnp.float32) @ x
    np.testing.assert_allclose(float(lanczos_lambda_max(h, jnp.zeros(6), jax.random.key(2), 6)), 7.0, rtol=1e-5)


def test_es_rule_on_constructed_sequence():
    flat = [1.0] * 12
    assert es_stop_epoch(flat) is None
    grow = [1.0] * 10 + [2.0] * 10           # local average doubles
    fired = es_stop_epoch(grow, window=5, lag=5, factor=1.3)
    # first epoch i with mean(x[i-4..i]) > 1.3 * mean(x[i-9..i-5]): i=11 -> (1,1,2,2,2)/5=1.6 > 1.3
    assert fired == (11, 6)
    slow = [1.0 + 0.01 * i for i in range(30)]   # +1% per epoch: ratio of windows ~1.05 < 1.3
    assert es_stop_epoch(slow) is None
    assert es_stop_epoch(slow, factor=1.04) is not None


def test_lambda_max_tracked_in_batched_search():
    """curvature_every=2: an estimate after epochs 2 and 4, NaN otherwise; a trial's estimates do not
    depend on its place in the batch."""
    cfg = tiny(op_set="all", epochs=4, curvature_every=2, curvature_iters=5)
    res = dasjax.search(cfg, [0, 1])
    lam = res.history["lambda_max"]
    assert lam.shape == (2, 4)
    assert np.isnan(lam[:, [0, 2]]).all() and np.isfinite(lam[:, [1, 3]]).all()
    swapped = dasjax.search(cfg, [1, 0])                # the same compiled program, partners swapped
    np.testing.assert_allclose(swapped.history["lambda_max"], lam[::-1], rtol=1e-4)


# --- DARTS-ES / DARTS-ADA inside the batched search ---------------------------------------------
# window = lag = 1 estimate, from epoch 0: with H1 on this tiny problem seed 1's lambda_max grows by
# ~1.3 % in its second epoch (the rule fires), seeds 0 (+0.3 %) and 2 (falling) never fire.
EARLY = dict(op_set="all", epochs=4, curvature_every=1, curvature_iters=5, es_window=1, es_lag=1,
             es_factor=1.007, es_start_epoch=0)


def test_es_rule_on_device_matches_the_reference():
    """es_fires at every index vs es_stop_epoch's first firing, on random walks with NaNs and
    non-positive values; entries after the index never matter."""
    rng = np.random.default_rng(0)
    window, lag, factor, start = 3, 2, 1.3, 1
    fires = jax.jit(jax.vmap(lambda lam, m: es_fires(lam, m, window, lag, factor, start), in_axes=(None, 0)))
    n_fired = 0
    for _ in range(40):
        lam = np.exp(np.cumsum(rng.normal(0.0, 0.2, 16))).astype(np.float32)
        if rng.random() < 0.3:
            lam[rng.integers(16)] = np.nan
        if rng.random() < 0.2:
            lam[rng.integers(16)] = -abs(lam[0])
        got = np.asarray(fires(jnp.asarray(lam), jnp.arange(16)))
        ref = es_stop_epoch(lam, window, lag, factor, start=start)
        first = int(np.flatnonzero(got)[0]) if got.any() else None
        assert ref == (None if first is None else (first, first - lag)), (lam, got, ref)
        n_fired += ref is not None
        garbage = lam.copy()
        garbage[8:] = 1e6
        np.testing.assert_array_equal(np.asarray(fires(jnp.asarray(garbage), jnp.arange(8))), got[:8])
    assert 5 < n_fired < 40                   # both outcomes were exercised


def test_early_stop_config_is_validated():
    with pytest.raises(ValueError, match="curvature_every"):
        dasjax.make_config(early_stop="es")
    with pytest.raises(ValueError, match="early_stop"):
        dasjax.make_config(early_stop="sometimes", curvature_every=1)
    for field, value in [("es_factor", 1.0), ("ada_factor", 0.5), ("es_window", 0), ("es_lag", 1.5),
                         ("ada_max_wd", 0.0), ("ada_max_rollbacks", -1), ("curvature_method", "arnoldi"),
                         ("ada_min_wd", 1.0)]:
        with pytest.raises(ValueError, match=field):
            dasjax.make_config(**{field: value})
    cfg = dasjax.api.method_config(dasjax.make_config(), "DAS-ADA")
    assert (cfg.search.early_stop, cfg.search.curvature_every) == ("ada", 2)
    assert cfg.search.search_epoch_budget == 50 + 4 * 5 * 2      # rollbacks x lag x interval
    assert cfg.search.es_first_fire_epoch == 2 * (5 + 5) + 1      # estimates 0..10 at epochs 1, 3, ..., 21
    assert dasjax.api.method_config(cfg, "DAS").search.early_stop == "none"


@pytest.fixture(scope="module")
def es_runs():
    # seeds 0-2 of this toy were chosen under grad_term="differentiable" and the harmful ops before
    # calibration stage 5 and the problem readings before stage 7 (seed 1 alone stops)
    cfg = tiny(early_stop="es", grad_term="differentiable", **HARMFUL_OPS_BEFORE_STAGE5, **PROBLEM_BEFORE_STAGE7,
               **EARLY)
    return dasjax.search(cfg, [0, 1, 2]), dasjax.search(cfg, [0, 2, 2])


def test_stopped_trial_freezes_and_leaves_its_neighbours_unchanged(es_runs):
    """Seed 1 stops inside a vmapped batch of 3 and returns its state from before the growth; seeds 0
    and 2 are bitwise the same as in a batch where nobody stops."""
    stops, calm = es_runs
    assert stops.curvature["early_stopped"].tolist() == [0, 1, 0]
    assert calm.curvature["early_stopped"].tolist() == [0, 0, 0]
    for i in (0, 2):
        np.testing.assert_array_equal(stops.alpha[i], calm.alpha[i])
        np.testing.assert_array_equal(stops.one_shot_psnr[i], calm.one_shot_psnr[i])
        for name in stops.history:
            np.testing.assert_array_equal(stops.history[name][i], calm.history[name][i], err_msg=name)
        for name in stops.curvature:
            np.testing.assert_array_equal(stops.curvature[name][i], calm.curvature[name][i], err_msg=name)
    # the stopped trial: fired at epoch j + lag, returned epoch j's alpha / lambda, then froze
    j = int(stops.curvature["stop_epoch"][1])
    fired = j + EARLY["es_lag"]
    h = stops.history
    assert h["es_fired"][1, fired] == 1 and h["search_epoch"][1].tolist() == list(range(fired + 1)) + [-1] * (3 - fired)
    assert np.isnan(h["lambda_max"][1, fired + 1:]).all() and np.isnan(h["alpha_history"][1, fired + 1:]).all()
    assert h["lambda_max"][1, fired] > EARLY["es_factor"] * h["lambda_max"][1, j]
    np.testing.assert_array_equal(stops.alpha_softmax[1], h["alpha_history"][1, j])
    assert stops.curvature["lambda_max_final"][1] == h["lambda_max"][1, j]
    assert np.isfinite(stops.one_shot_psnr[1]) and not stops.diverged[1]
    assert stops.curvature["search_epochs"].tolist() == [4, fired + 1, 4]


def test_ada_rollback_restores_the_saved_state_exactly():
    """Drive one DARTS-ADA trial epoch by epoch: on the rollback its search state (theta, alpha, both
    optimizer states, step counter, BN) equals the state saved after epoch j bitwise, the theta weight
    decay is x3 and the abandoned estimates are forgotten."""
    from dasjax.api import resolve_hparams
    from dasjax.batch import trial_keys
    from dasjax.early_stop import EarlyStopProgram
    # x0 = A^T y: with x0 = y the alpha step of this 4-epoch toy moves by less than float32 resolution
    # under the raised weight decay, and the last assertion could not see the re-training
    # and grad_term="differentiable" with the harmful ops before calibration stage 5: the toy's
    # dynamics (one rollback, then a visible re-training) were built with them
    cfg = tiny(early_stop="ada", ada_max_rollbacks=1, ada_max_wd=1.0, x0="adjoint",
               grad_term="differentiable", **HARMFUL_OPS_BEFORE_STAGE5, **EARLY)
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    wd = 1e-3               # large enough that x3 visibly changes the next epoch
    hp, types, _ = resolve_hparams(dasjax.H1.replace(name="H1-wd", theta_wd=wd), 1)
    hp = jax.tree_util.tree_map(lambda x: x[0], hp)
    prog = EarlyStopProgram(cfg, space, types)
    key = trial_keys([1])[0]
    epoch = jax.jit(lambda ts: prog.epoch(ts, key, hp))
    ts = prog.init(key, hp)
    path, rollbacks = [], 0
    for _ in range(cfg.search.search_epoch_budget):
        before = ts
        ts, m = epoch(ts)
        if int(ts.n_rollbacks) > int(before.n_rollbacks):
            rollbacks += 1
            j = int(before.epoch) - EARLY["es_lag"]
            assert int(m["es_fired"]) == 1 and int(ts.epoch) == j + 1
            for a, b in zip(jax.tree_util.tree_leaves(ts.search), jax.tree_util.tree_leaves(path[j])):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert float(ts.theta_wd) == np.float32(3 * np.float32(wd))
            np.testing.assert_array_equal(np.asarray(ts.lam[:j + 1]), np.asarray(before.lam[:j + 1]))
            assert np.isnan(np.asarray(ts.lam[j + 1:])).all()
            abandoned = np.asarray(m["alpha_history"])        # alpha after the epoch that fired
            path = path[:j + 1]
        else:
            path.append(ts.search)
    assert rollbacks == 1 and int(ts.epoch) == cfg.search.epochs and bool(prog.finished(ts))
    assert int(ts.epochs_run) == cfg.search.epochs + EARLY["es_lag"]
    # the same epoch re-trained from the same state and data, now with the raised weight decay
    assert not np.array_equal(np.asarray(space.weights(path[j + EARLY["es_lag"]].alpha)), abandoned)


class _Countdown:
    """A toy program with ``finished``: trial i trains n_i epochs, then freezes (NaN / -1 metrics)."""
    epochs = 6
    cache_key = ("countdown",)

    def init(self, key, hp):
        return {"left": hp["n"], "x": jnp.float32(0.0)}

    def finished(self, s):
        return s["left"] <= 0

    def epoch(self, s, key, hp, epoch=None):
        from dasjax.search import keep_if
        act = s["left"] > 0
        new = {"left": s["left"] - 1, "x": s["x"] + 1.0 + 0.0 * jax.random.uniform(key)}
        return keep_if(act, new, s), {"x": jnp.where(act, new["x"], jnp.nan), "left": jnp.where(act, s["left"], -1)}

    def finalize(self, s, key, hp):
        return {"x": s["x"]}


def test_run_batched_ends_a_chunk_once_every_trial_finished():
    """Chunks of one trial stop after that trial's epochs; the skipped calls read as the program's
    own finished metrics, so results do not depend on the chunking, nor on trials_at_once."""
    from dasjax.batch import run_batched, trial_keys
    hp = {"n": jnp.asarray([1, 4, 2], jnp.int32)}
    kw = dict(n_epochs=6, progress=False, fast_compile=True)
    together = run_batched(_Countdown(), trial_keys([0, 1, 2]), hp, chunk_size=3, trials_at_once=3, devices=1,
                           log=lambda m: None, **kw)                  # one vmap over the 3 trials
    said = []
    alone = run_batched(_Countdown(), trial_keys([0, 1, 2]), hp, chunk_size=1, devices=1, log=said.append, **kw)
    # one trial at a time inside one program (lax.map; finished trials skipped by lax.cond), two at a time
    mapped = [run_batched(_Countdown(), trial_keys([0, 1, 2]), hp, chunk_size=3, trials_at_once=m,
                          devices=1, log=lambda m: None, **kw) for m in (1, 2)]
    for name in ("x", "left"):
        for other in [alone] + mapped:
            np.testing.assert_array_equal(other.metrics[name], together.metrics[name])
    np.testing.assert_array_equal(alone.final["x"], [1.0, 4.0, 2.0])
    np.testing.assert_array_equal(together.metrics["left"][1], [4, 3, 2, 1, -1, -1])
    assert [m.split(": ")[1] for m in said if "all finished" in m] == \
        ["all finished after 1/6 epoch calls", "all finished after 4/6 epoch calls",
         "all finished after 2/6 epoch calls"]


def test_run_curvature_smoke_end_to_end(tmp_path, capsys):
    """experiments/run_curvature.py: DAS-ES and DAS-ADA on blur / good ops, 4 trials at the tiny shapes,
    with a rule that fires within the 2 smoke epochs on any growth of lambda_max (some seeds grow,
    some do not); then every output file, and a rerun (without figures) skips the rows.  (The DAS row
    is the plain search with lambda_max tracking: test_lambda_max_tracked_in_batched_search.)"""
    import pandas as pd
    from conftest import load_script
    script = load_script("run_curvature")
    out = tmp_path / "curv"
    args = ["--preset", "smoke", "--out", str(out), "--trials", "4", "--problems", "blur", "--rows", "es_good,ada_good",
            "--set", "es_window=1", "--set", "es_lag=1", "--set", "es_start_epoch=0", "--set", "es_factor=1.000001",
            "--set", "ada_max_rollbacks=1", "--set", "curvature_every=1"] + TINY_CLI
    assert table_runner.main_guard(script.main, args) == 0
    printed = capsys.readouterr().out
    assert "| good ops. | DAS-ES |" in printed and "Final lambda_max vs architecture PSNR" in printed
    df = pd.read_csv(out / "trials.csv")
    assert sorted(df["method"]) == ["DAS-ADA"] * 4 + ["DAS-ES"] * 4
    for col in ("lambda_max_final", "stop_epoch", "early_stopped", "n_rollbacks", "theta_wd_final", "search_epochs"):
        assert df[col].notna().all(), col
    es, ada = (df[df.method == m].set_index("seed") for m in ("DAS-ES", "DAS-ADA"))
    assert (es["stop_epoch"] == np.where(es["early_stopped"] == 1, 0, 1)).all() and (es["n_rollbacks"] == 0).all()
    assert es["early_stopped"].sum() >= 1 and (ada["early_stopped"] == 0).all()
    # an ADA trial that rolled back re-trained one epoch per rollback, with a weight decay raised x3 each time
    assert (ada["n_rollbacks"] >= 1).any()
    assert (ada["search_epochs"] == 2 + ada["n_rollbacks"]).all()
    np.testing.assert_allclose(ada["theta_wd_final"], dasjax.H1.theta_wd * 3.0 ** ada["n_rollbacks"], rtol=1e-5)
    with np.load(out / "runs/blur/es_good/arrays.npz") as z:
        lam = [k for k in z.files if k.endswith("/lambda_max")]
        assert len(lam) == 4 and z[lam[0]].shape == (2,)
    for f in ["curvature.md", "curvature_correlation.csv", "early_stop_summary.csv", "summary.csv",
              "wall_times.csv", "figures/lambda_trajectories.png", "figures/lambda_vs_arch_psnr.png",
              "report/report.md", "runs/blur/ada_good/config.json"]:
        assert (out / f).exists() and (out / f).stat().st_size > 0, f
    md = (out / "curvature.md").read_text()
    assert "Early stopping" in md and "spearman_rho" in md
    # the rerun skips its figures and report: those of the first run are checked above
    assert table_runner.main_guard(script.main, args + ["--no-figures"]) == 0
    assert capsys.readouterr().out.count("already done, skipped") == 2


def test_curvature_analysis_on_synthetic_results(tmp_path):
    """Correlation of final lambda_max with PSNR against scipy, the early-stopping summary, and the
    trajectory figure, from a results folder written in the engine's format."""
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd
    from scipy import stats
    import analysis
    from analysis.testing import synthetic_trials, write_results_dir
    trials, arrays = synthetic_trials(n_trials=6, problems=("blur",), op_sets=("all",),
                                      methods=("DAS", "DAS-ES"), experiment="curvature")
    rng = np.random.default_rng(1)
    trials["lambda_max_final"] = np.exp(rng.normal(size=len(trials)))
    trials.loc[0, "lambda_max_final"] = np.nan                    # e.g. a diverged trial
    es = trials["method"] == "DAS-ES"
    trials["early_stopped"] = np.where(es, np.arange(len(trials)) % 2, 0)
    trials["stop_epoch"] = np.where(trials["early_stopped"] == 1, 2, 4)
    trials["n_rollbacks"], trials["theta_wd_final"], trials["search_epochs"] = 0, 1e-8, 5
    for tid, stop in zip(trials["trial_id"], trials["stop_epoch"]):
        arrays[f"{tid}/lambda_max"] = np.exp(np.linspace(-1, 1, 5)) * rng.uniform(0.5, 2)
        arrays[f"{tid}/search_epoch"] = np.where(np.arange(5) <= stop + 1, np.arange(5), -1)
    write_results_dir(tmp_path / "runs", trials, {}, arrays)
    df = analysis.load_results(tmp_path / "runs")
    corr = analysis.lambda_correlation_table(df).set_index("method")
    das = trials[~es].iloc[1:]
    assert corr.loc["DAS", "n"] == 5 and corr.loc["DAS", "n_excluded"] == 1
    assert corr.loc["DAS", "spearman_rho"] == pytest.approx(
        stats.spearmanr(das["lambda_max_final"], das["arch_psnr"]).statistic)
    assert corr.loc["DAS", "kendall_tau"] == pytest.approx(
        stats.kendalltau(das["lambda_max_final"], das["arch_psnr"]).statistic)
    summary = analysis.early_stop_summary(df).set_index("method")
    assert summary.loc["DAS-ES", "n_stopped"] == 3 and summary.loc["DAS", "n_stopped"] == 0
    assert summary.loc["DAS-ES", "median_stop_epoch"] == 2
    traj = analysis.lambda_trajectories(df)
    assert len(traj) == 5 * len(trials) and set(traj.columns) >= {"call", "search_epoch", "lambda_max"}
    path = analysis.save_figure(analysis.trajectory_figure(df, traj), tmp_path / "traj.png")
    assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="lambda_max"):
        analysis.trajectory_figure(pd.DataFrame({"problem": ["blur"]}))
