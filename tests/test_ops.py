import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dasjax
from dasjax.ops import OpLayer, f_apply, f_init, mix, roll


def reference_f(p, s, x, train, cfg):
    """PyTorch semantics written with lax.conv: Conv1d(1->W) -> BatchNorm1d -> ReLU -> Conv1d(W->1)."""
    k = cfg.kernel_size
    w1 = p["w1"].T[:, None, :]                      # (W, 1, k)  OIH
    w2 = p["w2"][None, :, :]                        # (1, W, k)
    dn = ("NCH", "OIH", "NCH")
    h = jax.lax.conv_general_dilated(x[:, None, :], w1, (1,), [(k // 2, k // 2)], dimension_numbers=dn)
    h = h + p["b1"][None, :, None]
    if train:
        mean, var = h.mean((0, 2)), h.var((0, 2))
        n = h.shape[0] * h.shape[2]
        new = {"mean": 0.9 * s["mean"] + 0.1 * mean, "var": 0.9 * s["var"] + 0.1 * var * n / (n - 1)}
    else:
        mean, var, new = s["mean"], s["var"], s
    h = (h - mean[None, :, None]) / jnp.sqrt(var[None, :, None] + 1e-5) * p["gamma"][None, :, None] \
        + p["beta"][None, :, None]
    h = jax.nn.relu(h)
    out = jax.lax.conv_general_dilated(h, w2, (1,), [(k // 2, k // 2)], dimension_numbers=dn)
    return out[:, 0, :] + p["b2"], new


@pytest.mark.parametrize("train", [True, False])
def test_cnn_matches_lax_conv_reference(train):
    cfg = dasjax.SpaceConfig(width=8)
    p, s = f_init(jax.random.key(0), cfg)
    p = {**p, "gamma": p["gamma"] + 0.3, "beta": p["beta"] - 0.2}
    s = {"mean": s["mean"] + 0.1, "var": s["var"] * 1.5}
    x = jax.random.normal(jax.random.key(1), (16, 50)) + 0.7
    out, new = f_apply(p, s, x, train, cfg)
    ref, ref_new = reference_f(p, s, x, train, cfg)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new["mean"], ref_new["mean"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new["var"], ref_new["var"], rtol=1e-4, atol=1e-5)
    # gradients agree too
    g = jax.grad(lambda q: f_apply(q, s, x, train, cfg)[0].sum())(p)
    g_ref = jax.grad(lambda q: reference_f(q, s, x, train, cfg)[0].sum())(p)
    for name in g:
        np.testing.assert_allclose(g[name], g_ref[name], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("ndim", [1, 2])
def test_fused_backward_matches_autodiff(ndim):
    """The plans' f_backward="fused" (ops.relu_mlp's hand-written VJP) and "fused_f" (all of F,
    keeping only x) give JAX's own gradients, also second order (the DAS unroll) and as
    Hessian-vector products (the curvature code), whole and in row blocks (f_block_rows; 7 rows:
    1D has 120 rows, so the last block is padded), in train and eval mode, with the same BN states."""
    from dasjax.curvature import hvp
    from dasjax.plan import ExecutionPlan
    cfg = dasjax.SpaceConfig(width=8)
    plans = {"fused": ExecutionPlan("fused", 0), "blocks": ExecutionPlan("fused", 7),
             "fused_f": ExecutionPlan("fused_f", 0), "fused_f_blocks": ExecutionPlan("fused_f", 7),
             "autodiff": ExecutionPlan("autodiff", 0)}
    p, s = f_init(jax.random.key(0), cfg, ndim)
    p = {**p, "beta": p["beta"] + jnp.linspace(-0.5, 0.5, 8)}    # some units dead, some alive
    x = jax.random.normal(jax.random.key(1), (6, 20) if ndim == 1 else (3, 7, 7)) + 0.3
    r = jax.random.normal(jax.random.key(2), x.shape)

    def loss(q, x, plan, train=True):
        return jnp.sum(jnp.sin(f_apply(q, s, x, train, cfg, plan)[0]) * r)

    def unrolled(q, plan):        # second order: a loss at the parameters after one gradient step
        g = jax.grad(loss)(q, x, plan)
        return loss(jax.tree_util.tree_map(lambda a, b: a - 0.1 * b, q, g), x, plan)

    v = jax.random.normal(jax.random.key(3), x.shape)

    @jax.jit                     # compiled: op-by-op dispatch of second derivatives is slow
    def derivatives(p, x, v):
        return {name: (jax.grad(loss, argnums=(0, 1))(p, x, c), jax.grad(unrolled)(p, c),
                       hvp(lambda y: loss(p, y, c), x, v), jax.grad(loss, argnums=(0, 1))(p, x, c, False),
                       f_apply(p, s, x, True, cfg, c))
                for name, c in plans.items()}

    d = derivatives(p, x, v)
    for name in ("fused", "blocks", "fused_f", "fused_f_blocks"):
        for i, (ref, got) in enumerate(zip(d["autodiff"], d[name])):
            # the second-order unroll (i = 1) through the BN statistics rounds differently in float32
            # when fused_f recomputes them (relative error 1.4e-4 seen); a wrong rule is off by O(1)
            jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=5e-4 if i == 1 else 1e-4,
                                                                           atol=1e-5), ref, got)
    with pytest.raises(ValueError, match="f_backward"):
        dasjax.make_config(f_backward="manual")
    with pytest.raises(ValueError, match="f_slot_calls"):
        dasjax.make_config(f_slot_calls="scan")
    for bad in (-1, 2.5, "some", True):
        with pytest.raises(ValueError, match="f_block_rows"):
            dasjax.RunConfig(f_block_rows=bad)
        with pytest.raises(ValueError, match="f_block_rows"):
            ExecutionPlan(f_block_rows=bad)


def test_execution_plan_resolves_auto_per_backend():
    """make_plan turns the run settings' "auto" into concrete values once, from the backend and from
    whether trials run side by side on several devices: on the CPU a trial alone gets the "fused"
    pass, no row blocks and one F call per slot; trials side by side get all of F hand-written and
    blocks of 400 * 64 / width rows; accelerators get JAX's own backward pass and one vmapped call.
    An explicit setting is kept whatever the backend."""
    from dasjax.plan import make_plan, plan_for
    run = dasjax.RunConfig()
    alone = make_plan(run, 64, backend="cpu")
    assert (alone.f_backward, alone.f_block_rows, alone.f_slot_calls) == ("fused", 0, "loop")
    shared = make_plan(run, 64, backend="cpu", side_by_side=True)
    assert (shared.f_backward, shared.f_block_rows, shared.f_slot_calls) == ("fused_f", 400, "loop")
    assert make_plan(run, 16, backend="cpu", side_by_side=True).f_block_rows == 1600
    gpu = make_plan(run, 64, backend="gpu", side_by_side=True)
    assert (gpu.f_backward, gpu.f_block_rows, gpu.f_slot_calls) == ("autodiff", 0, "vmap")
    fixed = dasjax.RunConfig(f_backward="autodiff", f_block_rows=7, f_slot_calls="vmap")
    for backend in ("cpu", "gpu"):
        kept = make_plan(fixed, 64, backend=backend, side_by_side=True)
        assert (kept.f_backward, kept.f_block_rows, kept.f_slot_calls) == ("autodiff", 7, "vmap")
    cfg = dasjax.make_config(width=32)
    assert plan_for(cfg, 2, backend="cpu") == make_plan(cfg.run, 32, backend="cpu", side_by_side=True)
    assert plan_for(cfg, 1, backend="cpu").side_by_side is False
    # a config saved when these fields belonged to the search space reads them into the run settings
    old = cfg.to_dict()
    old["space"].update(f_backward="fused_f", f_block_rows=9)
    for k in ("f_backward", "f_block_rows"):
        old["run"].pop(k)
    back = dasjax.Config.from_dict(old)
    assert (back.run.f_backward, back.run.f_block_rows) == ("fused_f", 9)


def test_layer_layouts_agree():
    """OpLayer.apply under the CPU plan (one F call per slot, fused backward) and the accelerator plan
    (a vmap over the slots, JAX's own backward) gives the same outputs, BN states and gradients;
    both are traced here on the CPU, since the plan is an argument and no global switch."""
    from dasjax.plan import make_plan
    problem = dasjax.make_problem(dasjax.ProblemConfig(name="blur"))
    cfg = dasjax.SpaceConfig(width=4, op_set=("lg", "net", "roll", "noise"))
    b = problem.sample(jax.random.key(1), 8)

    def run(backend):
        layer = OpLayer(cfg.ops, cfg, problem, plan=make_plan(width=4, backend=backend))
        params, state = layer.init(jax.random.key(0))

        def loss(p):
            outs, new = layer.apply(p, state, b.x0, b.y, jax.random.key(2), train=True)
            return jnp.sum(jnp.sin(outs)), new
        return jax.jit(jax.grad(loss, has_aux=True))(params)

    close = lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)   # float rounding
    jax.tree_util.tree_map(close, run("cpu"), run("gpu"))


def test_pytorch_default_init_bounds():
    cfg = dasjax.SpaceConfig(width=64)
    p, s = f_init(jax.random.key(0), cfg)
    assert float(jnp.abs(p["w1"]).max()) <= 1 / np.sqrt(3) and float(jnp.abs(p["w1"]).max()) > 0.5 / np.sqrt(3)
    assert float(jnp.abs(p["w2"]).max()) <= 1 / np.sqrt(64 * 3)
    np.testing.assert_array_equal(p["gamma"], 1.0)
    np.testing.assert_array_equal(s["var"], 1.0)


def test_ops_semantics():
    problem = dasjax.make_problem(dasjax.ProblemConfig(name="blur"))
    cfg = dasjax.SpaceConfig(width=4, op_set=("lg", "net", "roll", "noise"), roll_axes="signal",
                             noise_layer_std=0.1)
    layer = OpLayer(cfg.ops, cfg, problem)
    params, state = layer.init(jax.random.key(0))
    b = problem.sample(jax.random.key(1), 8)
    outs, _ = layer.apply(params, state, b.x0, b.y, jax.random.key(2), train=True)
    assert outs.shape == (4, 8, 50)
    np.testing.assert_allclose(outs[2], jnp.roll(b.x0, 1, axis=1))           # roll by +1
    fx, _ = f_apply(jax.tree_util.tree_map(lambda a: a[0], params["f"]),
                    jax.tree_util.tree_map(lambda a: a[0], state["f"]), b.x0, True, cfg)
    g = problem.data_grad(b.x0, b.y)
    np.testing.assert_allclose(outs[0], b.x0 - g - fx, rtol=1e-5, atol=1e-5)  # tau = 1
    noise = outs[3] - (b.x0 - g)
    assert 0.07 < float(noise.std()) < 0.13                                   # sigma_L = 0.1
    # mixing: one-hot weights select exactly one op; zero weights never leak NaN
    bad = outs.at[1].set(jnp.inf)
    np.testing.assert_array_equal(mix(bad, jnp.array([0.0, 0.0, 1.0, 0.0])), outs[2])


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4)])
def test_roll_axes_readings(shape):
    """roll_axes: "signal" rolls each sample's signal, "all" also the batch axis (sample i receives
    sample i - 1), "flat" the flattened batch (torch.roll without dims); all three differ."""
    x = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape)
    nd = len(shape)
    expect = {"signal": np.roll(np.asarray(x), 1, axis=tuple(range(1, nd))),
              "all": np.roll(np.asarray(x), 1, axis=tuple(range(nd))),
              "flat": np.roll(np.asarray(x).ravel(), 1).reshape(shape)}
    got = {a: np.asarray(roll(x, 1, a)) for a in expect}
    for a in expect:
        np.testing.assert_array_equal(got[a], expect[a])
    np.testing.assert_array_equal(got["all"][1], expect["signal"][0])        # sample 1 <- sample 0
    assert not np.array_equal(got["signal"], got["all"]) and not np.array_equal(got["signal"], got["flat"])
    assert not np.array_equal(got["all"], got["flat"])
    np.testing.assert_array_equal(np.asarray(roll(x, 3, "flat")).ravel(), np.roll(np.asarray(x).ravel(), 3))


def test_roll_and_noise_fields_reach_the_layer():
    """The op layer uses roll_axes / roll_shift, noise_layer_std, and noise_eval (eval-mode noise
    off: the noise op is then exactly the gradient step; train mode always draws noise)."""
    problem = dasjax.make_problem(dasjax.ProblemConfig(name="blur"))
    b = problem.sample(jax.random.key(1), 8)
    g = problem.data_grad(b.x0, b.y)

    def outs(train, **kw):
        cfg = dasjax.SpaceConfig(width=4, op_set=("roll", "noise"), noise_tau_learnable=False, **kw)
        layer = OpLayer(cfg.ops, cfg, problem)
        params, state = layer.init(jax.random.key(0))
        return layer.apply(params, state, b.x0, b.y, jax.random.key(2), train=train)[0]

    for axes in ("signal", "all", "flat"):
        np.testing.assert_array_equal(outs(True, roll_axes=axes, roll_shift=2)[0], roll(b.x0, 2, axes))
    quiet = outs(False, noise_eval=False)[1]
    np.testing.assert_array_equal(quiet, b.x0 - g)
    assert float(jnp.abs(outs(False, noise_eval=True)[1] - (b.x0 - g)).max()) > 0.1
    assert float(jnp.abs(outs(True, noise_eval=False)[1] - (b.x0 - g)).max()) > 0.1
    unit = outs(True, noise_layer_std=1.0)[1] - (b.x0 - g)
    assert 0.9 < float(unit.std()) < 1.1
    # noise_form="gradient": x - tau (g + noise); with tau fixed at 1 the same draw enters with a minus
    np.testing.assert_allclose(outs(True, noise_form="gradient")[1] - (b.x0 - g),
                               -(outs(True, noise_form="additive")[1] - (b.x0 - g)), atol=1e-6)


def test_grad_term_detached_is_a_constant_of_the_backward_pass():
    """grad_term="detached": same forward, but d out / d x loses the -tau A^T A term of the step."""
    problem = dasjax.make_problem(dasjax.ProblemConfig(name="blur"))
    b = problem.sample(jax.random.key(1), 4)
    A = jnp.asarray(problem.matrix)
    outs, jacs = {}, {}
    for mode in ("differentiable", "detached"):
        cfg = dasjax.SpaceConfig(width=4, op_set=("lg", "noise"), grad_term=mode)
        layer = OpLayer(cfg.ops, cfg, problem)
        params, state = layer.init(jax.random.key(0))

        def out(x, op):
            return layer.apply(params, state, x, b.y, jax.random.key(2), train=False)[0][op]

        outs[mode] = out(b.x0, 0)
        # noise op (tau = 1, no F): x - g + noise, so its Jacobian per sample is I - A^T A or I
        jacs[mode] = jax.jacobian(lambda x: out(x, 1)[0])(b.x0)[:, 0]
    np.testing.assert_allclose(outs["detached"], outs["differentiable"], rtol=1e-6, atol=1e-6)
    eye = np.eye(A.shape[1])
    np.testing.assert_allclose(jacs["differentiable"], eye - A.T @ A, atol=1e-5)
    np.testing.assert_allclose(jacs["detached"], eye, atol=1e-6)
