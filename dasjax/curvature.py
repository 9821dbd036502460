"""Curvature of the architecture loss (RobustDARTS, Zela et al. 2020): dominant eigenvalue of
the Hessian of L_val with respect to alpha, and the DARTS-ES stopping rule (host reference
:func:`es_stop_epoch`, on-device :func:`es_fires`; the batched DARTS-ES / DARTS-ADA search is
:mod:`dasjax.early_stop`).

The Hessian is never materialised: power iteration on Hessian-vector products (the gradient
of <grad f, v>, reverse over reverse), so the estimate vmaps over trials at the memory cost of
a few gradients (``jax.hessian`` under vmap tried to allocate 148 GB).  Reverse over
reverse, not ``jax.jvp`` of ``jax.grad``: the CNN's hand-written backward pass
(:func:`dasjax.ops.relu_mlp`, a ``custom_vjp``) has no forward-mode rule.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def hvp(f, x, v):
    """Hessian-vector product of scalar f at x along v: grad_x <grad f(x), v> (reverse over reverse)."""
    return jax.grad(lambda y: jnp.vdot(jax.grad(f)(y), v))(x)


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
    :func:`hessian_by_hvp` (x.size HVPs)."""
    H = hessian_by_hvp(f, x)
    return jnp.linalg.eigvalsh(0.5 * (H + H.T))[-1]


def lanczos_lambda_max(f, x, key, n_iter: int = 20):
    """Largest (algebraic) eigenvalue of the Hessian of f at x by ``n_iter`` steps of Lanczos with full
    reorthogonalisation (n_iter HVPs, at most x.size).  Lanczos's largest Ritz value converges to the
    top of the spectrum whatever the signs below it, so an indefinite Hessian needs no shift.  On a
    breakdown (the Krylov space is invariant) it goes on from a fresh random direction orthogonal to
    the basis so far (beta = 0), so every Ritz value stays inside the spectrum.  A pure function:
    vmaps over trials."""
    n = x.size
    k = min(int(n_iter), n)
    starts = jax.random.normal(key, (k, n), x.dtype)
    matvec = lambda v: hvp(f, x, v.reshape(x.shape)).ravel()

    def orthogonalise(Q, w):          # twice is enough (Kahan's "twice is enough")
        w = w - Q.T @ (Q @ w)
        return w - Q.T @ (Q @ w)

    def body(carry, i):
        Q, q, q_prev, b_prev = carry
        Q = Q.at[i].set(q)
        w = matvec(q)
        a = jnp.vdot(q, w)
        w = orthogonalise(Q, w - a * q - b_prev * q_prev)
        b = jnp.linalg.norm(w)
        ok = b > 1e-3 * (jnp.abs(a) + b_prev) + 1e-30
        r = orthogonalise(Q, starts[jnp.minimum(i + 1, k - 1)])
        q_next = jnp.where(ok, w / jnp.where(ok, b, 1.0), r / (jnp.linalg.norm(r) + 1e-30))
        b = jnp.where(ok, b, 0.0)
        return (Q, q_next, q, b), (a, b)

    q0 = starts[0] / jnp.linalg.norm(starts[0])
    init = (jnp.zeros((k, n), x.dtype), q0, jnp.zeros(n, x.dtype), jnp.zeros((), x.dtype))
    _, (a, b) = jax.lax.scan(body, init, jnp.arange(k))
    T = jnp.diag(a) + jnp.diag(b[:-1], 1) + jnp.diag(b[:-1], -1)
    return jnp.linalg.eigvalsh(T)[-1]


def _zero_sum_basis(c: int) -> np.ndarray:
    """(c, c - 1) orthonormal basis of the vectors in R^c that sum to zero."""
    u, _, _ = np.linalg.svd(np.eye(c) - 1.0 / c)
    return u[:, :c - 1]


def alpha_lambda_max(space, params, bn, alpha, batch, key, n_iter: int = 20, method: str = "power"):
    """lambda_max of the Hessian of the supernet's validation MSE w.r.t. alpha (train-mode BN, as in
    the search), on one fixed validation batch.

    method: "power" (shifted power iteration on the full alpha, 2 (n_iter + 1) HVPs), "exact"
    (eigvalsh of the Hessian built from HVPs) or "lanczos" (n_iter Lanczos steps).  The operation
    weights are a softmax over each row of alpha, so L_val does not change when a constant is added to
    a row: the Hessian has those directions as exact null vectors (eigenvalue 0).  "exact" and
    "lanczos" therefore work on the complement (rows x (ops - 1) dimensions: 30 for 10 layers x 4
    ops) and return max(0, its largest eigenvalue), the full Hessian's lambda_max.
    """
    k_noise, k_init = jax.random.split(key)

    def val_loss(a):
        x_hat, _ = space.apply(params, bn, space.weights(a), batch, k_noise, train=True)
        return jnp.mean((x_hat - batch.x) ** 2)

    if method == "power":
        return lambda_max(val_loss, alpha, k_init, n_iter)
    if method not in ("exact", "lanczos"):
        raise ValueError(f"curvature_method={method!r} is not allowed; choose one of ['power', 'exact', 'lanczos']")
    c = alpha.shape[-1]
    if c < 2:                          # one op per row: the loss does not depend on alpha at all
        return jnp.zeros((), alpha.dtype)
    basis = jnp.asarray(_zero_sum_basis(c), alpha.dtype)
    rows = alpha.size // c

    def reduced_loss(z):               # z: (rows * (c - 1),) coordinates of the zero-row-sum subspace
        return val_loss(alpha + (z.reshape(rows, c - 1) @ basis.T).reshape(alpha.shape))

    z0 = jnp.zeros(rows * (c - 1), alpha.dtype)
    top = lambda_max_exact(reduced_loss, z0) if method == "exact" else lanczos_lambda_max(reduced_loss, z0, k_init, n_iter)
    return jnp.maximum(top, 0.0)


def curvature_dimension(arch_shape) -> int:
    """Dimension of alpha modulo the row-constant null directions: rows x (ops - 1)."""
    return int(np.prod(arch_shape[:-1])) * max(int(arch_shape[-1]) - 1, 0)


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
