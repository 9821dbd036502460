"""The registries: a user's operation, problem and search space, registered from test code, run
through search, retraining, the results rows and the figures without a line changed inside dasjax
or analysis."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import tiny

import analysis
import dasjax
from dasjax.runners import common as table_runner  # the runners' shared machinery
from dasjax.operations import BUILTIN_OPS, Operation, get_op, op_names, register_op, unregister_op
from dasjax.ops import OpLayer


def shrink(inp):
    """A gradient step, then soft thresholding by a learnt lam (one ISTA step)."""
    z = inp.x - inp.step * inp.data_grad
    lam = jnp.abs(inp.params["lam"])
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - lam, 0.0)


SHRINK = Operation("shrink", shrink, label="Soft thresh.", color="#00aa88", step=True, needs_data_grad=True,
                   init=lambda key, cfg, problem: {"lam": jnp.asarray(0.05)}, preserves_zero=False)


@pytest.fixture(scope="module")
def shrink_op():
    register_op(SHRINK)
    yield SHRINK
    unregister_op("shrink")


def test_registry_rules(shrink_op):
    assert op_names()[:5] == tuple(BUILTIN_OPS) and "shrink" in op_names()
    assert get_op("lg").uses_cnn and get_op("lg").step == "tau_learnable" and get_op("roll").preserves_zero
    register_op(SHRINK)                                        # the same record again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_op(Operation("shrink", shrink))
    with pytest.raises(ValueError, match="identifier"):
        Operation("soft-thresh", shrink)
    with pytest.raises(ValueError, match="built in"):
        unregister_op("lg")
    with pytest.raises(ValueError, match="register_op"):
        dasjax.make_config(op_set=("lg", "ista"))
    with pytest.raises(ValueError, match="register_op"):
        get_op("ista")


def test_every_name_table_is_a_registry_with_the_same_rules():
    """Operations, problems, spaces, algorithms, methods, method groups, hyperparameter sets and
    presets: one Registry each, so the same (or an equal) entry again is fine, another needs the
    replace flag, built-in names stay, and a wrong name lists the known ones and how to add one."""
    from dasjax import hparams, methods, presets, registry
    tables = {"op": registry.OPS, "problem": registry.PROBLEMS, "space": registry.SPACES,
              "algorithm": registry.ALGORITHMS, "method": methods._METHODS, "group": methods._GROUPS,
              "set": hparams.SETS, "preset": presets.PRESETS}
    assert all(isinstance(t, registry.Registry) and len(t) > 0 for t in tables.values())
    mine = hparams.H1.replace(name="registry-rules")
    hparams.register(mine)
    hparams.register(hparams.H1.replace(name="registry-rules"))             # an equal set again: fine
    with pytest.raises(ValueError, match="overwrite=True"):
        hparams.register(mine.replace(alpha_lr=0.5))
    quick = dataclasses.replace(presets.get_preset("smoke"), name="quick", trials=1)
    presets.register_preset(quick)
    try:
        assert presets.get_preset("quick", "table1").trials == 1 and "quick" in presets.PRESETS
        with pytest.raises(ValueError, match="replace=True"):
            presets.register_preset(dataclasses.replace(quick, trials=2))
        assert presets.get_preset("cpu", "table1").trials == 25 and presets.get_preset("cpu", "table4").trials == 3
        with pytest.raises(ValueError, match="already registered"):
            methods.register_group("random", lambda *a, **k: {})
        for name, table in [("H1", hparams.SETS), ("cpu", presets.PRESETS), ("random", methods._GROUPS)]:
            with pytest.raises(ValueError, match="built in"):
                table.remove(name)
        with pytest.raises(ValueError, match="register_preset"):
            presets.get_preset("no-such-preset")
    finally:
        presets.PRESETS.remove("quick")
        hparams.SETS.remove("registry-rules")


def test_own_parameters_get_gradients(shrink_op):
    cfg = tiny(op_set=("lg", "shrink"))
    problem = dasjax.make_problem(cfg.problem)
    layer = OpLayer(cfg.space.ops, cfg.space, problem)
    params, state = layer.init(jax.random.key(0))
    assert float(params["own"]["shrink"]["lam"]) == pytest.approx(0.05) and set(params["tau"]) == {"lg", "shrink"}
    batch = problem.sample(jax.random.key(1), 8)

    def loss(p):
        outs, _ = layer.apply(p, state, batch.x0, batch.y, jax.random.key(2), True)
        return jnp.sum(outs[1] ** 2)

    g = jax.grad(loss)(params)
    assert float(jnp.abs(g["own"]["shrink"]["lam"])) > 0 and float(jnp.abs(g["tau"]["shrink"])) > 0


def test_user_op_runs_through_search_retraining_results_and_figures(shrink_op, tmp_path):
    cfg = tiny(op_set=("lg", "net", "shrink"), n_layers=2)
    found = dasjax.search(cfg, [0, 1])
    assert found.alpha.shape == (2, 2, 3) and np.all(np.isfinite(found.one_shot_psnr))
    assert not np.allclose(found.alpha[:, :, 2], 0.0)          # alpha of the user op moved
    for arch in found.arch_strings:
        assert set(analysis.architecture_ops(arch)) <= {"lg", "net", "shrink"}
    rs = dasjax.run_method(cfg, "Random Sampling", [0, 1, 2], dasjax.H1)
    assert np.all(np.isfinite(rs.arch_psnr))
    assert any("shrink" in a for a in rs.arch_strings)
    rows, _ = dasjax.method_records(rs, experiment="user", cfg=cfg)
    df = dasjax.save_results(tmp_path / "user", rows, cfg.to_dict())
    meta = analysis.parse_op_meta(pd.read_csv(tmp_path / "user" / "trials.csv")["op_meta"].iloc[0])
    assert meta["shrink"] == {"label": "Soft thresh.", "color": "#00aa88", "preserves_zero": False}
    assert json.loads(df["ops"].iloc[0]) == ["lg", "net", "shrink"]
    # the figures take label and colour from the results, not from a table inside analysis
    fig = analysis.architecture_figure(df[df["architecture"].str.contains("shrink")].head(1))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "Soft thresh." in texts
    colors = {tuple(np.round(p.get_facecolor()[:3], 3)) for p in fig.axes[0].patches}
    assert (0.0, round(0xaa / 255, 3), round(0x88 / 255, 3)) in colors
    # an op the analysis knows nothing about gets a fallback label and colour, not an error
    assert analysis.labels.op_label("mystery") == "mystery" and analysis.labels.op_color("mystery").startswith("#")


# --- a user's inverse problem ------------------------------------------------------------------------
class Inpainting(dasjax.Problem):
    """The paper's cosine signals with every other sample missing (a user-supplied A)."""

    @property
    def matrix(self):
        return np.eye(self.cfg.n_points, dtype=np.float32)[::2]


def test_user_problem_runs_through_the_engine():
    dasjax.register_problem("inpainting", Inpainting)
    try:
        cfg = tiny(problem="inpainting", op_set="good")
        problem = dasjax.make_problem(cfg.problem)
        assert isinstance(problem, dasjax.InverseProblem) and problem.measurement_shape == (cfg.problem.n_points // 2,)
        batch = problem.sample(jax.random.key(0), 4)
        np.testing.assert_allclose(np.asarray(batch.x0), np.asarray(problem.adjoint(batch.y)), atol=1e-6)
        assert problem.cache_id != dasjax.make_problem(tiny(op_set="good").problem).cache_id
        found = dasjax.search(cfg, [0, 1])
        assert np.all(np.isfinite(found.one_shot_psnr))
        lg = dasjax.run_method(cfg, "Learnable Grad. only", [0], dasjax.H1)
        assert np.isfinite(lg.arch_psnr).all()
        with pytest.raises(ValueError, match="already registered"):
            dasjax.register_problem("inpainting", dasjax.Problem)
    finally:
        dasjax.problems.unregister_problem("inpainting")
    with pytest.raises(ValueError, match="register_problem"):
        tiny(problem="inpainting")
    dasjax.register_problem("broken", lambda cfg: object())
    try:
        with pytest.raises(TypeError, match="InverseProblem"):
            dasjax.make_problem(dasjax.ProblemConfig(name="broken"))
    finally:
        dasjax.problems.unregister_problem("broken")


# --- a user's search space ---------------------------------------------------------------------------
class ResidualSequential(dasjax.spaces.SequentialSpace):
    """The sequential space with a skip around every layer: x^(j+1) = x^(j) + mixed layer(x^(j))."""
    kind = "residual_sequential"

    def apply(self, params, state, weights, batch, key, train):
        x, new_state = batch.x0, []
        for j in range(self.n_layers):
            p = jax.tree_util.tree_map(lambda a: a[j], params)
            s = jax.tree_util.tree_map(lambda a: a[j], state)
            outs, s_new = self.layer.apply(p, s, x, batch.y, jax.random.fold_in(key, j), train)
            x = x + dasjax.ops.mix(outs, weights[j])
            new_state.append(s_new)
        return x, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *new_state)


def test_user_space_runs_through_search_and_retraining():
    dasjax.spaces.register_space("residual_sequential", ResidualSequential)
    try:
        cfg = tiny(space="residual_sequential", op_set="good")
        space = dasjax.make_space(cfg, dasjax.make_problem(cfg.problem))
        assert isinstance(space, dasjax.spaces.SearchSpace) and space.kind == "residual_sequential"
        found = dasjax.search(cfg, [0])
        assert np.isfinite(found.one_shot_psnr).all() and found.arch_strings[0].count("-") == 2
        assert np.isfinite(dasjax.retrain(cfg, found.architecture, [0]).arch_psnr).all()
    finally:
        dasjax.spaces.unregister_space("residual_sequential")
    with pytest.raises(ValueError, match="register_space"):
        tiny(space="residual_sequential")
    # a factory of the older signature (no plan=) is still called; this one returns no space
    dasjax.spaces.register_space("broken", lambda cfg, problem, share_f=False: object())
    try:
        with pytest.raises(TypeError, match="SearchSpace"):
            c = tiny(space="broken")
            dasjax.make_space(c, dasjax.make_problem(c.problem))
    finally:
        dasjax.spaces.unregister_space("broken")


# --- a user's method ---------------------------------------------------------------------------------
def best_single_op(cfg, seeds, hparams, **kw):
    """Per seed, the better of the two single-op baselines (a method built from other methods)."""
    lg = dasjax.run_method(cfg, "Learnable Grad. only", seeds, hparams, **kw)
    nets = dasjax.run_method(cfg, "Nets only", seeds, hparams, **kw)
    pick = np.where(nets.arch_psnr >= lg.arch_psnr, 1, 0)
    best = [(lg, nets)[p] for p in pick]
    return dasjax.stages.MethodResult(
        "Best single op", lg.seeds, lg.hparams, np.where(pick, nets.arch_psnr, lg.arch_psnr),
        np.full(len(pick), np.nan), [b.arch_strings[i] for i, b in enumerate(best)], None,
        lg.diverged & nets.diverged, lg.wall_time_s + nets.wall_time_s, lg.compile_time_s, {})


def test_user_method_runs_through_the_table_runner(tmp_path):
    dasjax.register_method(dasjax.Method("Best single op", best_single_op))
    try:
        rows = [table_runner.Row("best_single", "good", "Best single op"), table_runner.Row("lg_only", "good",
                                                                                           "Learnable Grad. only")]
        overrides = dict(width=4, n_layers=3, batch_size=16, steps_per_epoch=3, epochs=2, eval_batches=2,
                         progress=False, fast_compile=True)
        df = table_runner.run_rows(table="user", rows=rows, problems=["blur"], seeds=[0, 1], overrides=overrides,
                                   hp=dasjax.H1, out=tmp_path / "user", log=lambda *a: None)
        mine, lg = df[df.method == "Best single op"], df[df.method == "Learnable Grad. only"]
        assert len(mine) == 2 and (mine["arch_psnr"].to_numpy() >= lg["arch_psnr"].to_numpy() - 1e-6).all()
        assert (tmp_path / "user" / "runs" / "blur" / "best_single" / "trials.csv").exists()
        assert "Best single op" in analysis.markdown_table(df)
        dasjax.register_method(dasjax.Method("Best single op", best_single_op))     # an equal one: fine
        with pytest.raises(ValueError, match="already registered"):
            dasjax.register_method(dasjax.Method("Best single op", lambda cfg, seeds, hparams, **kw: None))
    finally:
        dasjax.methods.unregister_method("Best single op")
    with pytest.raises(ValueError, match="register_method"):
        dasjax.run_method(tiny(), "Best single op", [0])
    with pytest.raises(ValueError, match="built in"):
        dasjax.methods.unregister_method("DAS")


# --- a user's component brings its own config fields ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class KeepOptions:
    """How many samples an inpainting problem observes: every ``stride``-th one."""
    stride: int = 2

    def __post_init__(self):
        if self.stride < 1:
            raise ValueError(f"stride={self.stride} must be at least 1")


class StridedInpainting(dasjax.Problem):
    @property
    def matrix(self):
        return np.eye(self.cfg.n_points, dtype=np.float32)[::dasjax.problem_options(self.cfg).stride]


@dataclasses.dataclass(frozen=True)
class ScaleOptions:
    factor: float = 1.0


SCALE = Operation("scale", lambda inp: dasjax.op_options(inp.cfg, "scale").factor * inp.x, options=ScaleOptions)


def test_user_problem_and_op_options_are_config_fields_set_from_the_shell():
    dasjax.register_problem("strided", StridedInpainting, options=KeepOptions)
    register_op(SCALE)
    try:
        assert dasjax.make_problem(tiny(problem="strided").problem).measurement_shape == (25,)
        cfg = tiny(problem="strided", op_set=("lg", "scale"),
                   **table_runner.parse_set_items(["problem_options.stride=5", "op_options.scale.factor=3"]))
        assert cfg.problem.problem_options == (("stride", 5),) and cfg.space.op_options == (("scale.factor", 3.0),)
        problem = dasjax.make_problem(cfg.problem)
        assert problem.measurement_shape == (10,)
        # the op reads its option: factor 3 triples its output against the default
        layer = OpLayer(cfg.space.ops, cfg.space, problem)
        params, state = layer.init(jax.random.key(0))
        batch = problem.sample(jax.random.key(1), 4)
        outs = layer.apply(params, state, batch.x0, batch.y, jax.random.key(2), True)[0]
        default = OpLayer(cfg.space.ops, dataclasses.replace(cfg.space, op_options=()), problem)
        outs1 = default.apply(params, state, batch.x0, batch.y, jax.random.key(2), True)[0]
        np.testing.assert_allclose(np.asarray(outs[1]), 3 * np.asarray(outs1[1]), rtol=1e-6)
        # saved and read back; a typo or a bad value is refused by name
        assert dasjax.config.Config.from_dict(json.loads(cfg.to_json())) == cfg
        with pytest.raises(ValueError, match=r"did you mean \['stride'\]"):
            tiny(problem="strided", problem_options={"strid": 3})
        with pytest.raises(ValueError, match="stride=0 must be at least 1"):
            tiny(problem="strided", problem_options={"stride": 0})
        with pytest.raises(ValueError, match="declares no options"):
            tiny(problem_options={"stride": 3})                    # blur has none
        # a config without options keeps the repr, cache keys and fingerprints of before the fields
        plain = tiny()
        assert "options" not in repr(plain.problem) + repr(plain.space) and "op_options" not in plain.science_dict()["space"]
    finally:
        dasjax.problems.unregister_problem("strided")
        unregister_op("scale")
