"""DAS search (paper §3, Eq. 2): alternating alpha / theta steps, first order or exact second order.

Everything here is written for ONE trial; :mod:`dasjax.batch` vmaps it over the trial axis.
Per iteration (DARTS order):

1. a fresh validation batch: alpha <- alpha - lr_a * grad_alpha L_val
   (second order: grad_alpha L_val(theta - xi grad_theta L_train(theta, alpha), alpha),
   differentiated exactly through the one-step unroll by autodiff);
2. a fresh training batch: theta <- theta - lr_t * grad_theta L_train (with the new alpha).

The search algorithm (:mod:`dasjax.algorithms`, DARTS by default) decides how alpha becomes the
supernet's mixing weights in each forward, what is added to the alpha loss and how alpha is
perturbed in the theta step; with DARTS every step computes what it computed before algorithms
existed.  A trial whose loss or parameters become non-finite is frozen from that step on and
flagged ``alive = False`` (:func:`dasjax.program.guarded_step`); its neighbours in the batch are
untouched.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import streams
from .algorithms import SearchClock, resolve_algorithm
from .evaluate import evaluate_psnr
from .optim import lr_factor, make_optimizer
from .problems import mse_loss
from .program import guarded_step, keep_if, tree_all_finite  # noqa: F401  (keep_if, tree_all_finite: re-exported)


def fix_rows(weights, fixed):
    """``weights`` (rows, ops) with every row r where ``fixed[r] >= 0`` replaced by the one-hot of
    op ``fixed[r]`` (no gradient reaches alpha through a fixed row)."""
    one_hot = jax.nn.one_hot(fixed, weights.shape[-1], dtype=weights.dtype)
    return jnp.where((fixed >= 0)[:, None], one_hot, weights)


@struct.dataclass
class SearchState:
    params: dict
    bn: dict
    alpha: jnp.ndarray
    opt_theta: optax.OptState
    opt_alpha: optax.OptState
    step: jnp.ndarray          # int32 update counter
    alive: jnp.ndarray         # False once the trial diverged


class SearchProgram:
    """The DAS search of one trial as pure functions: ``init``, ``epoch``, ``finalize``.

    ``optimizer_types = (theta_optimizer, alpha_optimizer)`` is static; every number in
    ``hp`` (:class:`dasjax.hparams.HParams`, scalars here) is traced.  ``algorithm``: a
    :class:`dasjax.algorithms.SearchAlgorithm` or a registered name (None: the config's).
    """

    def __init__(self, cfg, space, optimizer_types=("adam", "sgd"), algorithm=None):
        self.cfg, self.space = cfg, space
        self.algorithm = resolve_algorithm(cfg, algorithm)
        self.algorithm.check_search(cfg.search)     # also an algorithm passed here, not the config's
        self.theta_opt_kind, self.alpha_opt_kind = optimizer_types
        # search_epochs: the search's own length (schedules, the clock); epochs: the epoch calls a
        # run makes (a program that trains on after the search, such as DARTS-PT's, makes more)
        self.search_epochs = self.epochs = cfg.search.epochs
        s = cfg.search
        self.steps_per_epoch, self.batch_size = s.steps_per_epoch, s.batch_size

    @property
    def cache_key(self):
        """Everything static that shapes the compiled program."""
        key = ("search", self.cfg, self.space.kind, self.space.layer.n_slots, self.space.layer.plan,
               self.space.problem.cache_id, self.theta_opt_kind, self.alpha_opt_kind)
        # DARTS keeps the key it had before algorithms existed (its checkpoints resume)
        return key if self.algorithm.is_darts else key + (self.algorithm,)

    # --- optimizers -----------------------------------------------------------------------
    def _opt(self, kind, lr, wd, warmup, sched):
        return make_optimizer(kind, lr, wd, warmup, sched, epochs=self.search_epochs,
                              steps_per_epoch=self.steps_per_epoch, cfg=self.cfg.schedule)

    def theta_optimizer(self, hp):
        return self._opt(self.theta_opt_kind, hp.theta_lr, hp.theta_wd, hp.theta_warmup, hp.theta_scheduler)

    def alpha_optimizer(self, hp):
        return self._opt(self.alpha_opt_kind, hp.alpha_lr, hp.alpha_wd, hp.alpha_warmup, hp.alpha_scheduler)

    # --- state ----------------------------------------------------------------------------
    def init(self, key, hp) -> SearchState:
        params, bn = self.space.init(streams.stream(key, streams.INIT))
        alpha = self.space.init_alpha(streams.stream(key, streams.ALPHA_INIT))
        return SearchState(params=params, bn=bn, alpha=alpha,
                           opt_theta=self.theta_optimizer(hp).init(params),
                           opt_alpha=self.alpha_optimizer(hp).init(alpha),
                           step=jnp.zeros((), jnp.int32), alive=jnp.asarray(True))

    # --- losses ---------------------------------------------------------------------------
    def clock(self, st: SearchState) -> SearchClock:
        return SearchClock(st.step, self.steps_per_epoch, self.search_epochs)

    def mixing_weights(self, alpha, relax_key, clock, fixed=None):
        """The algorithm's mixing weights of alpha in one search forward (``relax_key``: the draw of
        a stochastic relaxation); rows that ``fixed`` (per row: an op index, or -1) names are one-hot
        on that op (a discretisation that fixes rows one at a time, e.g. DARTS-PT)."""
        w = self.algorithm.relaxation.sample(alpha, relax_key, clock, self.space)
        return w if fixed is None else fix_rows(w, fixed)

    def loss(self, params, bn, alpha, batch, key, relax_key=None, clock=None, fixed=None):
        """Supernet MSE in train mode (batch-statistics BN) with :meth:`mixing_weights`.  Returns
        (loss, new_bn)."""
        return self.weights_loss(params, bn, self.mixing_weights(alpha, relax_key, clock, fixed), batch, key)

    def weights_loss(self, params, bn, weights, batch, key):
        """Supernet MSE in train mode with the given mixing weights.  Returns (loss, new_bn)."""
        x_hat, bn_new = self.space.apply(params, bn, weights, batch, key, train=True)
        return mse_loss(x_hat, batch.x), bn_new

    def alpha_grad(self, st: SearchState, hp, val_batch, train_batch, key, relax_key=None, fixed=None):
        """(L_val, new_bn, grad_alpha).  First order, or exact through the one-step unroll; the
        algorithm's regularisers add their gradients (L_val is reported without them)."""
        k_val, k_unroll = jax.random.split(key)
        clock = self.clock(st)
        if self.cfg.search.order == 1:
            (lv, bn), g = jax.value_and_grad(self.loss, argnums=2, has_aux=True)(
                st.params, st.bn, st.alpha, val_batch, k_val, relax_key, clock, fixed)
            return lv, bn, self._regularised(g, st.alpha, clock)
        xi = self.unroll_lr(st, hp)

        def unrolled_val_loss(alpha):
            g_theta = jax.grad(lambda p: self.loss(p, st.bn, alpha, train_batch, k_unroll, relax_key, clock,
                                                   fixed)[0])(st.params)
            theta_1 = jax.tree_util.tree_map(lambda p, g: p - xi * (g + hp.theta_wd * p), st.params, g_theta)
            return self.loss(theta_1, st.bn, alpha, val_batch, k_val, relax_key, clock, fixed)

        (lv, bn), g = jax.value_and_grad(unrolled_val_loss, has_aux=True)(st.alpha)
        return lv, bn, self._regularised(g, st.alpha, clock)

    def _regularised(self, g, alpha, clock):
        """grad_alpha plus the gradients of the algorithm's penalties (none for DARTS)."""
        for reg in self.algorithm.regularisers:
            g = g + jax.grad(lambda a, r=reg: r.penalty(a, clock))(alpha)
        return g

    def unroll_lr(self, st, hp):
        """xi of the second-order unroll: the theta learning rate of this step (or a fixed value)."""
        if self.cfg.search.unroll_lr is not None:
            return self.cfg.search.unroll_lr
        return hp.theta_lr * lr_factor(st.step, warmup=hp.theta_warmup, scheduler=hp.theta_scheduler,
                                       epochs=self.search_epochs, steps_per_epoch=self.steps_per_epoch,
                                       cfg=self.cfg.schedule)

    # --- one iteration --------------------------------------------------------------------
    def step(self, st: SearchState, key, hp, fixed=None):
        """One alpha step and one theta step.  ``fixed``: rows held one-hot (:meth:`mixing_weights`)."""
        problem, t = self.space.problem, st.step
        val_batch = problem.sample(streams.stream(key, streams.SEARCH_VAL, t), self.batch_size, "val")
        train_batch = problem.sample(streams.stream(key, streams.SEARCH_TRAIN, t), self.batch_size)
        k_alpha, k_theta = jax.random.split(streams.stream(key, streams.SEARCH_NOISE, t))
        # the algorithm's own draws (Gumbel / Dirichlet samples, alpha perturbations); DARTS draws none
        r_alpha, r_theta, r_perturb = jax.random.split(streams.stream(key, streams.SEARCH_RELAX, t), 3)
        clock = self.clock(st)

        lv, bn_val, g_alpha = self.alpha_grad(st, hp, val_batch, train_batch, k_alpha, r_alpha, fixed)
        upd, opt_alpha = self.alpha_optimizer(hp).update(g_alpha, st.opt_alpha, st.alpha)
        alpha = optax.apply_updates(st.alpha, upd)
        bn = bn_val if self.cfg.search.bn_update_on_alpha_step else st.bn

        if self.algorithm.perturbation is None:
            (lt, bn), g_theta = jax.value_and_grad(self.loss, has_aux=True)(
                st.params, bn, alpha, train_batch, k_theta, r_theta, clock, fixed)
        else:       # SDARTS: the theta step mixes with perturbed weights
            w = self.mixing_weights(alpha, r_theta, clock, fixed)
            w = self.algorithm.perturbation.perturb(
                w, r_perturb, clock, lambda w_: self.weights_loss(st.params, bn, w_, train_batch, k_theta)[0])
            (lt, bn), g_theta = jax.value_and_grad(self.weights_loss, has_aux=True)(
                st.params, bn, w, train_batch, k_theta)
        upd, opt_theta = self.theta_optimizer(hp).update(g_theta, st.opt_theta, st.params)
        params = optax.apply_updates(st.params, upd)

        new = SearchState(params=params, bn=bn, alpha=alpha, opt_theta=opt_theta, opt_alpha=opt_alpha,
                          step=t + 1, alive=st.alive)
        out, (lv, lt) = guarded_step(st, new, (lv, lt), (params, bn, alpha))
        return out, (lt, lv)

    def epoch(self, st: SearchState, key, hp, epoch=None):
        """One epoch (steps_per_epoch iterations, a lax.scan).  Metrics: mean losses, softmax(alpha),
        and with ``SearchConfig.curvature_every = k > 0`` the dominant eigenvalue of the alpha Hessian
        of L_val after every k-th epoch (NaN on the other epochs).  ``epoch`` is the unbatched epoch
        index, so the curvature branch is a real conditional under vmap."""
        def body(s, _):
            return self.step(s, key, hp)

        st, (lt, lv) = jax.lax.scan(body, st, None, length=self.steps_per_epoch)
        metrics = {"search_train_loss": jnp.mean(lt), "search_val_loss": jnp.mean(lv),
                   "alpha_history": self.algorithm.relaxation.expected(st.alpha, self.space)}
        every = self.cfg.search.curvature_every
        if every and epoch is not None:
            metrics["lambda_max"] = jax.lax.cond((epoch + 1) % every == 0,
                                                 lambda s: self.curvature(s, key), lambda s: jnp.float32(jnp.nan), st)
        return st, metrics

    def curvature(self, st: SearchState, key):
        """lambda_max of the Hessian of L_val w.r.t. alpha on the trial's fixed curvature batch."""
        from .curvature import alpha_lambda_max
        batch = self.space.problem.sample(streams.stream(key, streams.CURVATURE), self.batch_size, "val")
        lam = alpha_lambda_max(self.space, st.params, st.bn, st.alpha, batch,
                               streams.stream(key, streams.CURVATURE, 1), self.cfg.search.curvature_iters,
                               self.curvature_method)
        return jnp.where(st.alive, lam, jnp.nan).astype(jnp.float32)

    @property
    def curvature_method(self) -> str:
        """"exact", "lanczos" or "power": ``SearchConfig.curvature_method``, where "auto" builds the
        exact Hessian when it takes no more HVPs than ``curvature_iters`` Lanczos steps (its dimension,
        rows x (ops - 1), is at most curvature_iters) and runs Lanczos otherwise."""
        from .curvature import curvature_dimension
        s = self.cfg.search
        if s.curvature_method != "auto":
            return s.curvature_method
        return "exact" if curvature_dimension(self.space.arch_shape) <= s.curvature_iters else "lanczos"

    def finalize(self, st: SearchState, key, hp):
        """One-shot validation PSNR (eval mode, 2432 fresh samples, the relaxation's evaluation
        weights), final alpha, its weights (``alpha_softmax``: the relaxation's expected weights)
        and its argmax."""
        s, relax = self.cfg.search, self.algorithm.relaxation
        p = evaluate_psnr(self.space, st.params, st.bn, relax.evaluation(st.alpha, self.space), key,
                          n_batches=s.eval_batches, batch_size=s.batch_size)
        ok = st.alive & jnp.isfinite(p)
        return {"one_shot_psnr": jnp.where(ok, p, jnp.nan),
                "alpha": st.alpha,
                "alpha_softmax": relax.expected(st.alpha, self.space),
                "architecture": self.space.discretize(st.alpha),
                "diverged": ~ok}
