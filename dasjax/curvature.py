"""Curvature of the architecture loss (RobustDARTS, Zela et al. 2020): dominant eigenvalue of
the Hessian of L_val with respect to alpha, and the DARTS-ES stopping rule.

The Hessian is never materialised: power iteration on Hessian-vector products
(``jax.jvp`` of ``jax.grad``), so the estimate vmaps over trials at the memory cost of
a few gradients (``jax.hessian`` under vmap tried to allocate 148 GB; DESIGN.md).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def hvp(f, x, v):
    """Hessian-vector product of scalar f at x along v (forward-over-reverse)."""
    return jax.jvp(jax.grad(f), (x,), (v,))[1]


def _power(matvec, v, n_iter):
    """Power iteration: the Rayleigh quotient of the last iterate (the largest-magnitude eigenvalue)."""
    v = v / jnp.linalg.norm(v)

    def body(v, _):
        w = matvec(v)
        return w / (jnp.linalg.norm(w) + 1e-30), None

    v, _ = jax.lax.scan(body, v, None, length=n_iter)
    return jnp.vdot(v, matvec(v))


def lambda_max(f, x, key, n_iter: int = 20):
    """Largest (algebraic) eigenvalue of the Hessian of f at x, as RobustDARTS tracks it.

    The alpha Hessian is indefinite, so plain power iteration may return a large *negative*
    eigenvalue.  A first pass finds the largest-magnitude eigenvalue lambda_d; a second pass iterates
    on H - min(lambda_d, 0) I, whose dominant eigenvalue is lambda_max - min(lambda_d, 0).  Each pass
    costs ``n_iter`` Hessian-vector products.  A pure function: vmaps over trials.
    """
    v0 = jax.random.normal(key, x.shape, x.dtype)
    H = lambda v: hvp(f, x, v)
    shift = jnp.minimum(_power(H, v0, n_iter), 0.0)
    return _power(lambda v: H(v) - shift * v, v0, n_iter) + shift


def alpha_lambda_max(space, params, bn, alpha, batch, key, n_iter: int = 20):
    """lambda_max of the Hessian of the supernet's validation MSE w.r.t. alpha (train-mode BN, as in
    the search), on one fixed validation batch."""
    k_noise, k_init = jax.random.split(key)

    def val_loss(a):
        x_hat, _ = space.apply(params, bn, space.weights(a), batch, k_noise, train=True)
        return jnp.mean((x_hat - batch.x) ** 2)

    return lambda_max(val_loss, alpha, k_init, n_iter)


def es_stop_epoch(lmax, window: int = 5, lag: int = 5, factor: float = 1.3):
    """DARTS-ES rule on a lambda_max sequence (one value per epoch).

    Stop at the first epoch i where mean(lmax[i-window+1 .. i]) > factor * mean(lmax[i-lag-window+1 .. i-lag])
    (RobustDARTS: the ratio of the earlier to the later local average drops below 1/factor).
    Returns (i, i - lag): the epoch the rule fires and the epoch whose architecture is returned,
    or None if it never fires.
    """
    x = np.asarray(lmax, dtype=float)
    for i in range(lag + window - 1, len(x)):
        now = x[i - window + 1:i + 1].mean()
        before = x[i - lag - window + 1:i - lag + 1].mean()
        if np.isfinite(now) and np.isfinite(before) and before > 0 and now > factor * before:
            return i, i - lag
    return None
