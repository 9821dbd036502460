"""Search algorithms as components (dasjax.algorithms): each component computes what its paper
says on tiny shapes, DARTS is the search it was, and every registered variant runs batched,
trial by trial independent of its neighbours."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dasjax
from conftest import tiny
from dasjax import algorithms as alg
from dasjax.api import resolve_hparams
from dasjax.methods import VARIANT_ALGORITHMS
from dasjax.problems import make_problem
from dasjax.search import SearchProgram
from dasjax.spaces import make_space

ALPHA = jnp.asarray([[0.3, -1.2, 0.8, 0.0], [1.5, 0.2, -0.4, -2.0], [0.0, 0.0, 0.0, 0.1]], jnp.float32)


def clock(epoch, epochs=10, steps=3):
    return alg.SearchClock(jnp.asarray(epoch * steps, jnp.int32), steps, epochs)


def draws(relaxation, n, epoch=0, epochs=10):
    keys = jax.random.split(jax.random.key(0), n)
    return jax.vmap(lambda k: relaxation.sample(ALPHA, k, clock(epoch, epochs), None))(keys)


def test_gdas_uses_one_op_per_row_and_its_gradient_reaches_alpha():
    """GDAS's forward weights are one-hot in value; alpha's gradient flows through the drawn op's
    weight (straight-through), not through the others."""
    g = alg.HardGumbel()
    w = draws(g, 64)
    np.testing.assert_array_equal(np.sort(np.asarray(w), -1)[..., :-1], 0.0)
    np.testing.assert_allclose(np.asarray(w).max(-1), 1.0, atol=1e-6)
    key = jax.random.key(1)
    out = jnp.asarray([1.0, 2.0, 3.0, 4.0])          # each op's "output" in one row
    grad = jax.grad(lambda a: jnp.sum(g.sample(a, key, clock(0), None) * out))(ALPHA)
    assert np.all(np.abs(np.asarray(grad)).sum(-1) > 0)
    # the gradient is that of the drawn op's soft probability alone
    idx = jnp.argmax(g.sample(ALPHA, key, clock(0), None), -1)
    gum = jax.random.gumbel(key, ALPHA.shape)

    def drawn_prob(a):
        p = jax.nn.softmax((jax.nn.log_softmax(a, -1) + gum) / 10.0, -1)
        return jnp.sum(jnp.take_along_axis(p, idx[:, None], -1)[:, 0] * out[idx])
    np.testing.assert_allclose(grad, jax.grad(drawn_prob)(ALPHA), rtol=1e-5, atol=1e-7)


def test_gdas_temperature_goes_from_tau_max_to_tau_min():
    c0, c_last = clock(0), clock(9)
    assert float(c0.linear(10.0, 0.1)) == 10.0 and float(c_last.linear(10.0, 0.1)) == pytest.approx(0.1, rel=1e-5)


def test_gumbel_draws_at_a_low_temperature_average_to_softmax():
    """SNAS's concrete weights sum to one; at a low temperature they are nearly one-hot and their
    mean approaches softmax(alpha) (the Gumbel-max trick)."""
    w = draws(alg.SoftGumbel(tau_init=0.05, tau_min=0.05), 4000)
    np.testing.assert_allclose(np.asarray(w).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w).mean(0), jax.nn.softmax(ALPHA, -1), atol=0.03)


def test_dirichlet_draws_average_to_the_dirichlet_mean_and_are_differentiable():
    d = alg.Dirichlet()
    w = draws(d, 4000)
    np.testing.assert_allclose(np.asarray(w).sum(-1), 1.0, atol=1e-5)
    c = jax.nn.elu(ALPHA) + 1
    np.testing.assert_allclose(np.asarray(w).mean(0), c / c.sum(-1, keepdims=True), atol=0.02)
    grad = jax.grad(lambda a: jnp.sum(d.sample(a, jax.random.key(2), clock(0), None)[:, 0]))(ALPHA)
    assert np.all(np.isfinite(grad)) and np.any(np.asarray(grad) != 0)


def test_dirichlet_kl_is_zero_at_the_prior_and_matches_a_monte_carlo_estimate():
    ones = jnp.ones((2, 4))
    np.testing.assert_allclose(alg.dirichlet_kl(ones, 1.0), 0.0, atol=1e-6)
    c = jnp.asarray([2.0, 0.5, 1.5, 3.0])
    x = jax.random.dirichlet(jax.random.key(3), c, (200000,))
    logpdf = jax.scipy.stats.dirichlet.logpdf
    mc = jnp.mean(jax.vmap(lambda v: logpdf(v, c) - logpdf(v, jnp.ones(4)))(x))
    np.testing.assert_allclose(alg.dirichlet_kl(c, 1.0), mc, rtol=0.02)


def test_fairdarts_weights_are_independent_sigmoids_pushed_to_zero_or_one():
    s = alg.Sigmoid()
    w = s.sample(ALPHA, None, clock(0), None)
    np.testing.assert_allclose(w, jax.nn.sigmoid(ALPHA))
    assert not np.allclose(np.asarray(w).sum(-1), 1.0)
    z = alg.ZeroOneLoss()
    a = ALPHA
    for _ in range(50):              # gradient descent on the zero-one loss alone
        a = a - 0.5 * jax.grad(lambda x: z.penalty(x, clock(0)))(a)
    before, after = np.abs(jax.nn.sigmoid(ALPHA) - 0.5), np.abs(jax.nn.sigmoid(a) - 0.5)
    assert np.all(after[before > 0.01] > before[before > 0.01])


def test_beta_decay_gradient_is_lambda_softmax_over_rows():
    """beta-DARTS: d/d alpha of lambda mean_rows logsumexp(alpha) = lambda softmax(alpha) / rows,
    with lambda = 0.5 x epoch."""
    b = alg.BetaDecay()
    g = jax.grad(lambda a: b.penalty(a, clock(6)))(ALPHA)
    np.testing.assert_allclose(g, 0.5 * 6 * jax.nn.softmax(ALPHA, -1) / ALPHA.shape[0], rtol=1e-5)


def test_sdarts_perturbations_stay_on_the_simplex_within_epsilon():
    w = jax.nn.softmax(ALPHA, -1)
    rs = alg.RandomSmoothing()
    c = clock(5)
    eps = float(rs.radius(c))
    assert eps == pytest.approx(0.03 + 0.27 * 5 / 10)
    p = rs.perturb(w, jax.random.key(4), c, None)
    np.testing.assert_allclose(np.asarray(p).sum(-1), 1.0, atol=1e-6)
    assert np.all(np.asarray(p) >= 0) and not np.allclose(p, w)
    target = jnp.asarray([0.0, 0.0, 1.0, 0.0])
    loss = lambda q: -jnp.sum(q * target)    # noqa: E731  ascending it moves weight off op 2
    adv = alg.AdversarialPGD().perturb(w, jax.random.key(5), c, loss)
    assert float(loss(adv)) > float(loss(w))
    np.testing.assert_allclose(np.asarray(adv).sum(-1), 1.0, atol=1e-6)


def _program(name, **kw):
    cfg = tiny(op_set="all", algorithm=name, **kw)
    space = make_space(cfg, make_problem(cfg.problem))
    hp, types, _ = resolve_hparams("H1", 1)
    return SearchProgram(cfg, space, types), jax.tree_util.tree_map(lambda x: x[0], hp)


def test_sdarts_perturbs_the_theta_step_only():
    """From one state, SDARTS-RS takes DARTS's alpha step and a different theta step."""
    (darts, hp), (rs, _) = _program("darts"), _program("sdarts-rs")
    key = jax.random.key(7)
    st = darts.init(key, hp)
    a, _ = jax.jit(lambda s: darts.step(s, key, hp))(st)
    b, _ = jax.jit(lambda s: rs.step(s, key, hp))(st)
    # the same alpha step (up to float rounding: the two programs compile differently)
    np.testing.assert_allclose(a.alpha, b.alpha, rtol=1e-5, atol=1e-9)
    moved = [np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in
             zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params))]
    assert max(moved) > 1e-5


def test_options_reach_the_components_and_a_typo_names_the_closest():
    cfg = dasjax.make_config(algorithm="gdas", algorithm_options={"tau_min": 0.5})
    assert alg.resolve_algorithm(cfg).relaxation == alg.HardGumbel(tau_max=10.0, tau_min=0.5)
    assert dasjax.Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="tau_min"):
        dasjax.make_config(algorithm="gdas", algorithm_options={"tau_mn": 0.5})
    with pytest.raises(ValueError, match="early stopping"):
        dasjax.make_config(algorithm="gdas", early_stop="es", curvature_every=1)


def test_darts_configs_keep_their_fingerprint():
    """The default algorithm leaves the science dict and the repr (part of every checkpoint's
    fingerprint) as they were, so saved results and running checkpoints keep matching."""
    cfg = dasjax.make_config()
    d = cfg.science_dict()["search"]
    assert "algorithm" not in d and "algorithm_options" not in d and "algorithm" not in repr(cfg)
    gdas = dasjax.make_config(algorithm="gdas", algorithm_options={"tau_max": 5})
    assert "algorithm" in gdas.science_dict()["search"] and "tau_max" in repr(gdas)
    assert dasjax.Config.from_dict(json.loads(gdas.to_json())) == gdas
    assert alg.resolve_algorithm(gdas).relaxation.tau_max == 5.0 and \
        isinstance(alg.resolve_algorithm(gdas).relaxation.tau_max, float)


def test_a_user_algorithm_runs_without_registration():
    """An entropy penalty on alpha, written in user code, runs through dasjax.search."""
    @dataclasses.dataclass(frozen=True)
    class Entropy:
        weight: float = 1.0

        def penalty(self, alpha, clock):
            p = jax.nn.softmax(alpha, -1)
            return self.weight * -jnp.mean(jnp.sum(p * jnp.log(p), -1))

    mine = dasjax.SearchAlgorithm("darts-entropy", regularisers=(Entropy(),))
    cfg = tiny(op_set="all")
    # the plain DARTS search of test_darts_pt_projects_every_row_batched_and_starts_as_darts (same config
    # and seeds): compiled once for both
    r = dasjax.search(cfg, [3, 4], algorithm=mine, progress=False)
    d = dasjax.search(cfg, [3, 4], progress=False)
    assert np.isfinite(r.one_shot_psnr).all() and not np.array_equal(r.alpha, d.alpha)


def test_every_variant_method_runs_its_algorithm_without_early_stopping():
    cfg = tiny(op_set="all", early_stop="es", curvature_every=1)
    for method, name in VARIANT_ALGORITHMS.items():
        c = dasjax.api.method_config(cfg, method)
        assert (c.search.algorithm, c.search.early_stop, c.search.curvature_every) == (name, "none", 0)
        assert not alg.get_algorithm(name).is_darts


# a stochastic relaxation and an adversarial perturbation (each compiles its own program, so not
# all seven; DrNAS's draws are checked above)
@pytest.mark.parametrize("method", ["GDAS", "SDARTS-ADV"])
def test_variants_are_batched_methods_independent_of_their_neighbours(method):
    """Trial 4 beside trial 3 equals trial 4 beside trial 9 (one compiled shape); finite results."""
    cfg = tiny(op_set="all", epochs=2)
    cfg = dasjax.api.method_config(cfg, method)
    a = dasjax.search(cfg, [3, 4], progress=False)
    b = dasjax.search(cfg, [4, 9], progress=False)
    np.testing.assert_array_equal(a.alpha[1], b.alpha[0])
    np.testing.assert_array_equal(a.one_shot_psnr[1], b.one_shot_psnr[0])
    assert np.isfinite(a.one_shot_psnr).all() and not a.diverged.any()
    assert cfg.search.algorithm == VARIANT_ALGORITHMS[method]


# --- DARTS-PT ---------------------------------------------------------------------------------------
class _ScaledInput:
    """A constructed supernet: x_hat = x * sum(w * M) / C, with C the sum at uniform weights, so
    removing op o of row r costs (w[r, o] M[r, o] / C)^2 of the error: most for the largest M[r, o]."""

    def __init__(self, space, m):
        self._space, self.m = space, jnp.asarray(m, jnp.float32)
        self.c = float(jnp.sum(self.m) / self.m.shape[1])

    def __getattr__(self, name):
        return getattr(self._space, name)

    def apply(self, params, state, weights, batch, key, train):
        return batch.x * jnp.sum(weights * self.m) / self.c, state


def test_darts_pt_keeps_the_op_whose_removal_costs_most():
    """On the constructed supernet each projected row keeps its largest M (not alpha's argmax,
    which here favours op 0 everywhere)."""
    from dasjax.projection import ProjectionProgram
    cfg = tiny(algorithm="darts-pt", algorithm_options={"proj_batches": 1})
    space = make_space(cfg, make_problem(cfg.problem))
    rows, ops = space.arch_shape
    m = np.asarray(jax.random.uniform(jax.random.key(3), (rows, ops), minval=0.5, maxval=2.0))
    hp, types, _ = resolve_hparams("H1", 1)
    hp = jax.tree_util.tree_map(lambda x: x[0], hp)
    program = ProjectionProgram(cfg, _ScaledInput(space, m), types)
    ps = program.init(jax.random.key(0), hp)
    ps = ps.replace(search=ps.search.replace(alpha=jnp.zeros((rows, ops)).at[:, 0].set(1e-3)))
    for k in range(rows):
        ps = program.project(ps, jax.random.key(1), k)
    np.testing.assert_array_equal(np.asarray(ps.fixed), m.argmax(1))
    assert sorted(np.asarray(ps.order).tolist()) == list(range(rows))


def test_darts_pt_projects_every_row_batched_and_starts_as_darts():
    """DARTS-PT runs the search's epochs, then rows x proj_intv tuning epochs; its architecture is
    its projected rows; trial 4 is the same beside trial 3 or trial 9; its search phase is DARTS's."""
    cfg = tiny(op_set="all", algorithm="darts-pt", algorithm_options={"proj_intv": 1, "proj_batches": 1})
    a = dasjax.search(cfg, [3, 4], progress=False)
    b = dasjax.search(cfg, [4, 9], progress=False)
    rows = a.architecture.shape[1]
    assert a.history["alpha_history"].shape[1] == cfg.search.epochs + rows
    np.testing.assert_array_equal(a.architecture[1], b.architecture[0])
    np.testing.assert_array_equal(a.one_shot_psnr[1], b.one_shot_psnr[0])
    assert np.isfinite(a.one_shot_psnr).all() and not a.diverged.any()
    last = a.history["alpha_history"][:, -1]          # every row one-hot on the architecture's op
    np.testing.assert_array_equal(last, a.architecture)
    d = dasjax.search(cfg.replace(algorithm="darts", algorithm_options={}), [3, 4], progress=False)
    np.testing.assert_allclose(a.history["alpha_history"][:, :cfg.search.epochs], d.history["alpha_history"],
                               rtol=1e-5, atol=1e-6)
