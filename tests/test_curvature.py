"""lambda_max of the architecture Hessian by power iteration, and the DARTS-ES rule."""
import jax
import jax.numpy as jnp
import numpy as np
from conftest import tiny

import dasjax
from dasjax.curvature import alpha_lambda_max, es_stop_epoch, lambda_max
from dasjax.spaces import make_space


def test_power_iteration_matches_eigvalsh_on_quadratic():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(6, 6))
    H = M @ M.T + np.diag(np.arange(6.0))
    f = lambda x: 0.5 * x @ jnp.asarray(H, jnp.float32) @ x
    est = lambda_max(f, jnp.ones(6), jax.random.key(0), n_iter=200)
    np.testing.assert_allclose(float(est), np.linalg.eigvalsh(H)[-1], rtol=1e-4)


def test_alpha_lambda_max_matches_explicit_hessian():
    """Small supernet (2 layers x 4 ops = 8 alphas): power iteration vs eigvalsh of jax.hessian."""
    cfg = tiny(op_set="all", n_layers=2, width=4, batch_size=16)
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    params, bn = space.init(jax.random.key(0))
    alpha = 0.8 * jax.random.normal(jax.random.key(1), space.arch_shape)
    batch = space.problem.sample(jax.random.key(2), 16)
    key = jax.random.key(3)
    est = float(jax.jit(lambda a: alpha_lambda_max(space, params, bn, a, batch, key, n_iter=300))(alpha))
    k_noise, _ = jax.random.split(key)

    def val_loss(flat):
        a = flat.reshape(space.arch_shape)
        x_hat, _ = space.apply(params, bn, space.weights(a), batch, k_noise, train=True)
        return jnp.mean((x_hat - batch.x) ** 2)

    H = np.asarray(jax.hessian(val_loss)(alpha.ravel()), dtype=np.float64)
    ev = np.linalg.eigvalsh((H + H.T) / 2)
    np.testing.assert_allclose(est, ev.max(), rtol=2e-3, atol=1e-6)


def test_lambda_max_is_the_largest_eigenvalue_of_an_indefinite_hessian():
    H = np.diag([-5.0, 2.0, 1.0, -0.5])          # dominant in magnitude is -5; lambda_max is 2
    f = lambda x: 0.5 * x @ jnp.asarray(H, jnp.float32) @ x
    np.testing.assert_allclose(float(lambda_max(f, jnp.ones(4), jax.random.key(0), n_iter=300)), 2.0, rtol=1e-4)


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
    """curvature_every=2: an estimate after epochs 2 and 4, NaN otherwise; trial-independent."""
    cfg = tiny(op_set="all", epochs=4, curvature_every=2, curvature_iters=5)
    res = dasjax.search(cfg, [0, 1])
    lam = res.history["lambda_max"]
    assert lam.shape == (2, 4)
    assert np.isnan(lam[:, [0, 2]]).all() and np.isfinite(lam[:, [1, 3]]).all()
    alone = dasjax.search(cfg, [1])
    np.testing.assert_allclose(alone.history["lambda_max"][0], lam[1], rtol=1e-4)
