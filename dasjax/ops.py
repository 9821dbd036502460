"""The layer of candidate operations (:class:`OpLayer`) and the CNN F it runs for the ops that own one.

The operations themselves are records in :mod:`dasjax.operations` (learnable gradient step,
2-layer CNN, roll, noise, zero, and any a user registers).  All functions are pure: ``(params, state, x, ...) -> (out, new_state)``.  Signals have
shape ``(B, *spatial)`` with one channel (1D: ``(B, 50)``; 2D: ``(B, H, W)``).

The CNN ``F`` = conv(1->W, k) -> BatchNorm -> ReLU -> conv(W->1, k) is written with
small matmuls, which batch well over a leading trial axis (a vmapped ``lax.conv``
over per-trial weights becomes a slow grouped convolution on CPU, see docs/results/bench_cpu_formulations.txt):

* conv 1->W: stack the K = k^d shifted copies of x into patches (B, *S, K), then
  ``patches @ w1`` (K, W);
* conv W->1: ``z = h @ w2`` (W, K), then sum the K shifted planes of z;
* BatchNorm statistics of ``h = patches @ w1 + b1`` are computed exactly from the
  mean and the K x K covariance of the patches (h is linear in them), so the wide
  activation is never reduced.  Semantics follow PyTorch: batch statistics (biased
  variance) in train mode, running statistics in eval mode, running_var updated
  with the unbiased variance, momentum 0.1, eps 1e-5.
* the wide part relu(P A + c) w2 has a hand-written backward pass (:func:`relu_mlp`) that
  recomputes the (N, W) activation instead of storing it (``RunConfig.f_backward``, on by
  default on the CPU; resolved into the :class:`dasjax.plan.ExecutionPlan`).
  ``f_backward="fused_f"`` writes the backward pass of all of F by hand: it keeps only x and
  the parameters and recomputes the patches and BN statistics as well.
  Neither has a forward-mode rule: for ``jax.jvp`` / ``jax.hessian`` through F use
  ``f_backward="autodiff"`` (dasjax's own Hessian-vector products are reverse over reverse and
  work with all three).

Initialisation follows PyTorch's Conv defaults: weights and biases U(+-1/sqrt(fan_in)).
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp

from .config import SpaceConfig
from .operations import OpInputs, get_op, roll  # noqa: F401  (roll: the roll layer, also ops.roll)
from .plan import ExecutionPlan, make_plan


# --- shifts and patches ----------------------------------------------------------------------
def tap_offsets(ndim: int, k: int) -> list[tuple[int, ...]]:
    """Offsets of the k^ndim taps of a 'same' convolution, in PyTorch weight order."""
    p = k // 2
    return list(itertools.product(range(-p, p + 1), repeat=ndim))


def shift(v, offset: tuple[int, ...]):
    """out[..., l] = v[..., l + d] along the trailing spatial axes, zero outside (the conv padding)."""
    nd = len(offset)
    out = v
    for i, d in enumerate(offset):
        if d == 0:
            continue
        axis = v.ndim - nd + i
        n = v.shape[axis]
        pad = [(0, 0)] * v.ndim
        pad[axis] = (max(-d, 0), max(d, 0))
        out = jax.lax.slice_in_dim(jnp.pad(out, pad), max(d, 0), max(d, 0) + n, axis=axis)
    return out


def patches(x, k: int):
    """(B, *S) -> (B, *S, K): the K shifted copies a k-tap 'same' convolution reads."""
    nd = x.ndim - 1
    return jnp.stack([shift(x, off) for off in tap_offsets(nd, k)], axis=-1)


def unpatch(z, k: int):
    """(B, *S, K) -> (B, *S): out[l] = sum_t z[l + off_t, t], the W->1 'same' convolution."""
    nd = z.ndim - 2
    return sum(shift(z[..., t], off) for t, off in enumerate(tap_offsets(nd, k)))


# --- the 2-layer CNN F -----------------------------------------------------------------------
def f_init(key, cfg: SpaceConfig, ndim: int = 1):
    """PyTorch-default init of conv(1->W) / BN / conv(W->1).  Returns (params, bn_state)."""
    K, W = cfg.kernel_size ** ndim, cfg.width
    k1, k2, k3, k4 = jax.random.split(key, 4)
    b1, b2 = 1.0 / math.sqrt(K), 1.0 / math.sqrt(W * K)
    params = {
        "w1": jax.random.uniform(k1, (K, W), minval=-b1, maxval=b1),
        "w2": jax.random.uniform(k3, (W, K), minval=-b2, maxval=b2),
        "gamma": jnp.ones((W,)),
        "beta": jnp.zeros((W,)),
    }
    if cfg.bias:
        params["b1"] = jax.random.uniform(k2, (W,), minval=-b1, maxval=b1)
        params["b2"] = jax.random.uniform(k4, (), minval=-b2, maxval=b2)
    state = {"mean": jnp.zeros((W,)), "var": jnp.ones((W,))}
    return params, state


def _f_narrow(params, state, x, train: bool, cfg: SpaceConfig):
    """The narrow part of F: patches P (N, K), and A (K, W), c (W,) such that BN(conv1(x)) = P A + c,
    with the BN statistics (mean, biased var) used: the batch's in train mode, the running ones in
    eval mode (the batch's there too under ``bn_eval="batch"``)."""
    k = cfg.kernel_size
    P = patches(x, k).reshape(-1, k ** (x.ndim - 1))                  # (N, K)
    w1 = params["w1"]
    b1 = params.get("b1", 0.0)
    if train or cfg.bn_eval == "batch":
        n = P.shape[0]
        mu = jnp.mean(P, axis=0)                              # (K,)
        Pc = P - mu
        cov = (Pc.T @ Pc) / n                                 # (K, K), biased
        mean = mu @ w1 + b1                                   # (W,)  batch mean of h
        var = jnp.maximum(jnp.einsum("kw,kl,lw->w", w1, cov, w1), 0.0)  # biased batch var of h
    else:
        mean, var = state["mean"], state["var"]
    scale = params["gamma"] * jax.lax.rsqrt(var + cfg.bn_eps)
    # BN(P w1 + b1) = P (w1 * scale) + (b1 - mean) * scale + beta
    A, c = w1 * scale, (b1 - mean) * scale + params["beta"]
    return P, A, c, mean, var


def f_apply(params, state, x, train: bool, cfg: SpaceConfig, plan: ExecutionPlan | None = None):
    """F(x): (B, *S) -> (B, *S).  Returns (out, new_bn_state).  ``plan``: how F computes (its
    backward pass and row blocks; :mod:`dasjax.plan`), the same values up to float rounding; None:
    the defaults for JAX's backend, one trial per device (the engine always passes its plan)."""
    plan = make_plan(width=cfg.width) if plan is None else plan
    mode = plan.f_backward
    if mode == "fused_f":
        out, mean, var = _f_fused(cfg, plan.f_block_rows, bool(train), params, state, x)
    else:
        P, A, c, mean, var = _f_narrow(params, state, x, train, cfg)
        if mode == "fused":
            z = relu_mlp(P, A, c, params["w2"], plan.f_block_rows)
        else:
            z = _relu_mlp_plain(P, A, c, params["w2"])
        out = unpatch(z.reshape(x.shape + (-1,)), cfg.kernel_size)
        if "b2" in params:
            out = out + params["b2"]
    if not train:
        return out, state
    n = x.size
    m = cfg.bn_momentum
    unbiased = var * (n / (n - 1)) if cfg.bn_unbiased_running_var else var
    new_state = {"mean": (1 - m) * state["mean"] + m * jax.lax.stop_gradient(mean),
                 "var": (1 - m) * state["var"] + m * jax.lax.stop_gradient(unbiased)}
    return out, new_state


# --- all of F with a hand-written backward pass (f_backward="fused_f") ----------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _f_fused(cfg, block_rows, train, params, state, x):
    """(F(x), BN mean, BN var) whose backward pass keeps only x and the parameters: it recomputes the
    patches, the BN statistics and the wide activation (``f_backward="fused_f"``)."""
    return _f_fused_fwd(cfg, block_rows, train, params, state, x)[0]


def _f_fused_fwd(cfg, block_rows, train, params, state, x):
    P, A, c, mean, var = _f_narrow(params, state, x, train, cfg)
    z = _relu_mlp_fwd(P, A, c, params["w2"], block_rows)[0]
    out = unpatch(z.reshape(x.shape + (-1,)), cfg.kernel_size)
    if "b2" in params:
        out = out + params["b2"]
    return (out, mean, var), (params, state, x)


def _f_fused_bwd(cfg, block_rows, train, res, cts):
    params, state, x = res
    dout, dmean, dvar = cts
    (P, A, c, _, _), narrow_vjp = jax.vjp(lambda p, s, v: _f_narrow(p, s, v, train, cfg), params, state, x)
    # unpatch is linear: its transpose maps dout to the cotangent of z (B, *S, K)
    z_shape = jax.ShapeDtypeStruct(x.shape + (P.shape[1],), x.dtype)
    dz, = jax.linear_transpose(lambda z: unpatch(z, cfg.kernel_size), z_shape)(dout)
    dP, dA, dc, dw2 = _relu_mlp_bwd(block_rows, (P, A, c, params["w2"]), dz.reshape(P.shape))
    dparams, dstate, dx = narrow_vjp((dP, dA, dc, dmean, dvar))
    dparams = dict(dparams, w2=dparams["w2"] + dw2)
    if "b2" in params:
        dparams["b2"] = dparams["b2"] + jnp.sum(dout)
    return dparams, dstate, dx


_f_fused.defvjp(_f_fused_fwd, _f_fused_bwd)


# --- the wide part of F with a hand-written backward pass ---------------------------------------
def _pre(P, A, c):
    # a matmul, not K broadcast products: XLA would fuse those with the BN scale into a slow
    # elementwise loop that recomputes rsqrt for every element
    return P @ A + c


def _relu_mlp_plain(P, A, c, w2):
    """relu(P A + c) w2 with JAX's own derivatives (``f_backward="autodiff"``); P may be (..., K)."""
    return jax.nn.relu(_pre(P, A, c)) @ w2


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def relu_mlp(P, A, c, w2, block_rows=0):
    """z = relu(P A + c) w2 for P (N, K), A (K, W), c (W,), w2 (W, K) -> (N, K).

    The (N, W) activation is the only wide array in F, and its cost is memory traffic, not
    arithmetic (K is 3 or 9).  Autodiff of the plain expression writes it several times per
    layer (forward activation, ReLU mask, transposed copies, the zero-filled residual stack of
    ``lax.scan``) and keeps it for the backward pass.  Here the backward pass keeps only the
    small inputs, recomputes the activation and writes its gradient once (its speed and memory
    against autodiff: docs/performance.md).  ``RunConfig.f_backward`` selects it ("auto": on
    the CPU only).
    ``block_rows`` > 0 (``RunConfig.f_block_rows``) computes both passes ``block_rows`` rows at
    a time (``lax.map`` / ``lax.scan``; the last block zero-padded), so the activation never
    exists whole: a block stays in cache.
    Higher-order derivatives (second-order DAS, Hessian-vector products) differentiate the
    backward pass below, which is written in jax.numpy.
    """
    return _relu_mlp_fwd(P, A, c, w2, block_rows)[0]


def _row_blocks(X, rows):
    """(N, K) -> (ceil(N / rows), rows, K), the last block zero-padded."""
    nb = -(-X.shape[0] // rows)
    return jnp.pad(X, ((0, nb * rows - X.shape[0]), (0, 0))).reshape(nb, rows, X.shape[1])


def _blocked(block_rows, n):
    return 0 < block_rows < n


def _relu_mlp_fwd(P, A, c, w2, block_rows):
    if _blocked(block_rows, P.shape[0]):
        z = jax.lax.map(lambda p: _relu_mlp_plain(p, A, c, w2), _row_blocks(P, block_rows))
        z = z.reshape(-1, z.shape[-1])[:P.shape[0]]
    else:
        z = _relu_mlp_plain(P, A, c, w2)
    return z, (P, A, c, w2)


def _relu_mlp_grads(P, A, c, w2, dz):
    """(dP, dA, dc, dw2) of relu(P A + c) w2 for the cotangent dz, recomputing the activation."""
    pre = _pre(P, A, c)
    dpre = jnp.where(pre > 0, dz @ w2.T, 0.0)            # (N, W): the one wide array written
    dw2 = (dz.T @ jax.nn.relu(pre)).T                    # (W, K)
    return dpre @ A.T, P.T @ dpre, jnp.sum(dpre, axis=0), dw2


def _relu_mlp_bwd(block_rows, res, dz):
    P, A, c, w2 = res
    if not _blocked(block_rows, P.shape[0]):
        return _relu_mlp_grads(P, A, c, w2, dz)

    def block(acc, pd):
        dp, *dparams = _relu_mlp_grads(pd[0], A, c, w2, pd[1])
        return tuple(a + d for a, d in zip(acc, dparams)), dp

    zeros = (jnp.zeros_like(A), jnp.zeros_like(c), jnp.zeros_like(w2))
    (dA, dc, dw2), dP = jax.lax.scan(block, zeros, (_row_blocks(P, block_rows), _row_blocks(dz, block_rows)))
    return dP.reshape(-1, P.shape[1])[:P.shape[0]], dA, dc, dw2


relu_mlp.defvjp(_relu_mlp_fwd, _relu_mlp_bwd)


# --- layer of candidate operations -----------------------------------------------------------
class OpLayer:
    """The candidate operations of one layer (or cell edge), evaluated together.

    Any registered :class:`dasjax.operations.Operation` can be a candidate.  ``f_slots`` maps
    each op that owns a CNN to a slot of the stacked F parameters.  In the supernet every such op
    has its own slot; a discrete network may share one slot between them (only one is active),
    halving its compute.
    """

    def __init__(self, ops: tuple[str, ...], cfg: SpaceConfig, problem, share_f: bool = False,
                 plan: ExecutionPlan | None = None):
        self.ops, self.cfg, self.problem = tuple(ops), cfg, problem
        # how F computes; None: the defaults for this backend, one trial per device (resolved now, not
        # while a program is traced)
        self.plan = make_plan(width=cfg.width) if plan is None else plan
        self.records = tuple(get_op(o) for o in self.ops)
        f_ops = [r.name for r in self.records if r.uses_cnn]
        # a frozen F needs its own slot: a shared slot would also freeze the other ops' F
        share_f = share_f and all(r.cnn_trained(cfg) for r in self.records if r.uses_cnn)
        self.f_slots = {o: (0 if share_f else i) for i, o in enumerate(f_ops)}
        self.n_slots = (1 if f_ops else 0) if share_f else len(f_ops)
        self.learn_tau = {r.name: r.step_learnable(cfg) for r in self.records if r.step is not False}
        self.own = tuple(r for r in self.records if r.init is not None)     # ops with parameters of their own
        if cfg.tau_init == "inverse_norm":
            self.tau0 = 1.0 / problem.operator_norm_sq()
        else:
            self.tau0 = float(cfg.tau_init)

    def init(self, key):
        params, state = {}, {}
        if self.n_slots:
            keys = jax.random.split(key, self.n_slots)
            params["f"], state["f"] = jax.vmap(lambda k: f_init(k, self.cfg, self.problem.ndim))(keys)
        taus = {o: jnp.asarray(self.tau0, jnp.float32) for o, learn in self.learn_tau.items() if learn}
        if taus:
            params["tau"] = taus
        if self.own:                # their own keys, so the built-in ops' init does not change
            own_keys = jax.random.split(jax.random.fold_in(key, 0x6F70), len(self.own))
            params["own"] = {r.name: r.init(k, self.cfg, self.problem) for r, k in zip(self.own, own_keys)}
        return params, state

    def tau(self, params, op):
        return params["tau"][op] if self.learn_tau[op] else self.tau0

    def apply(self, params, state, x, y, key, train: bool):
        """All candidate outputs, stacked: (n_ops, B, *S).  Returns (outs, new_state)."""
        new_state = dict(state)
        fx = None
        if self.n_slots:
            pf = params["f"]
            for r in self.records:                 # a frozen op's F gets no gradient
                if r.uses_cnn and not r.cnn_trained(self.cfg):
                    i = self.f_slots[r.name]
                    pf = jax.tree_util.tree_map(lambda a: a.at[i].set(jax.lax.stop_gradient(a[i])), pf)
            if self.plan.f_slot_calls == "loop":      # one F call per slot (the CPU's plan)
                outs = [f_apply(jax.tree_util.tree_map(lambda a: a[i], pf),
                                jax.tree_util.tree_map(lambda a: a[i], state["f"]), x, train, self.cfg, self.plan)
                        for i in range(self.n_slots)]
                fx = [o for o, _ in outs]
                new_state["f"] = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[s for _, s in outs])
            else:       # one batched call for all slots (the accelerators' plan)
                fx, new_state["f"] = jax.vmap(lambda p, s: f_apply(p, s, x, train, self.cfg, self.plan))(
                    pf, state["f"])
        need_grad = any(r.needs_data_grad for r in self.records)
        g = self.problem.data_grad(x, y) if need_grad else None
        if need_grad and self.cfg.grad_term == "detached":
            g = jax.lax.stop_gradient(g)
        own = params.get("own", {})
        outs = []
        for r in self.records:
            inp = OpInputs(x=x, y=y, data_grad=g if r.needs_data_grad else None,
                           cnn=fx[self.f_slots[r.name]] if r.uses_cnn else None,
                           step=self.tau(params, r.name) if r.step is not False else None,
                           params=own.get(r.name), key=key, train=train, cfg=self.cfg, problem=self.problem)
            outs.append(r.apply(inp))
        return jnp.stack(outs), new_state


def mix(outs, weights):
    """sum_t w_t o_t, skipping ops whose weight is exactly 0 (jnp.where: 0 * inf would be NaN)."""
    w = weights.reshape(weights.shape + (1,) * (outs.ndim - 1))
    return jnp.sum(jnp.where(w != 0, w * outs, 0.0), axis=0)
