"""Curvature of the architecture loss (RobustDARTS, Zela et al. 2020): dominant eigenvalue of
the Hessian of L_val with respect to alpha, and the DARTS-ES stopping rule (host reference
:func:`es_stop_epoch`, on-device :func:`es_fires`; the batched DARTS-ES / DARTS-ADA search is
:mod:`dasjax.early_stop`).

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


def hessian_by_hvp(f, x):
    """The full Hessian of f at x (flattened, (n, n)) from n Hessian-vector products along the basis
    vectors, run one after another (``lax.map``): the memory of one HVP, never ``jax.hessian``."""
    n = x.size
    basis = jnp.eye(n, dtype=x.dtype).reshape((n,) + x.shape)
    return jax.lax.map(lambda v: hvp(f, x, v).ravel(), basis)


def lambda_max_exact(f, x):
    """Largest eigenvalue of the Hessian of f at x, exactly: ``eigvalsh`` of the symmetrised
    :func:`hessian_by_hvp` (x.size HVPs).  For alpha (10 x 4 = 40 entries) this costs about as much
    as 20 power iterations (42 HVPs) and has no estimation error."""
    H = hessian_by_hvp(f, x)
    return jnp.linalg.eigvalsh(0.5 * (H + H.T))[-1]


def alpha_lambda_max(space, params, bn, alpha, batch, key, n_iter: int = 20, method: str = "power"):
    """lambda_max of the Hessian of the supernet's validation MSE w.r.t. alpha (train-mode BN, as in
    the search), on one fixed validation batch.  method: "power" (shifted power iteration, 2 (n_iter + 1)
    HVPs) or "exact" (all alpha.size HVPs, then eigvalsh)."""
    k_noise, k_init = jax.random.split(key)

    def val_loss(a):
        x_hat, _ = space.apply(params, bn, space.weights(a), batch, k_noise, train=True)
        return jnp.mean((x_hat - batch.x) ** 2)

    if method == "exact":
        return lambda_max_exact(val_loss, alpha)
    if method != "power":
        raise ValueError(f"curvature_method={method!r} is not allowed; choose one of ['power', 'exact']")
    return lambda_max(val_loss, alpha, k_init, n_iter)


def es_stop_epoch(lmax, window: int = 5, lag: int = 5, factor: float = 1.3, start: int = 0):
    """DARTS-ES rule on a lambda_max sequence (one value per estimate; one per epoch at
    ``curvature_every = 1``).

    Stop at the first index i where mean(lmax[i-window+1 .. i]) > factor * mean(lmax[i-lag-window+1 .. i-lag])
    (RobustDARTS: the ratio of the earlier to the later local average drops below 1/factor) and
    i - lag >= start.  Returns (i, i - lag): the index the rule fires at and the index whose
    architecture is returned, or None if it never fires.  This is the reference of :func:`es_fires`,
    which the batched search evaluates on device.
    """
    x = np.asarray(lmax, dtype=float)
    for i in range(max(lag + window - 1, start + lag), len(x)):
        now = x[i - window + 1:i + 1].mean()
        before = x[i - lag - window + 1:i - lag + 1].mean()
        if np.isfinite(now) and np.isfinite(before) and before > 0 and now > factor * before:
            return i, i - lag
    return None


def es_fires(lam, m, window: int, lag: int, factor: float, start: int = 0):
    """:func:`es_stop_epoch`'s test at one index, on device: does the rule fire at estimate ``m``?

    ``lam`` is a fixed-size (M,) buffer whose entries 0..m hold the estimates so far (later entries
    are ignored); ``m`` may be traced (per trial under vmap).  A NaN estimate in either window, a
    non-positive earlier average, fewer than ``window + lag`` estimates or ``m - lag < start`` never fire.
    """
    idx = jnp.arange(lam.shape[0])

    def local_average(end):
        inside = (idx > end - window) & (idx <= end)
        return jnp.sum(jnp.where(inside, lam, 0.0)) / window

    now, before = local_average(m), local_average(m - lag)
    return ((m - lag - window + 1 >= 0) & (m - lag >= start) & jnp.isfinite(now) & jnp.isfinite(before)
            & (before > 0) & (now > factor * before))
