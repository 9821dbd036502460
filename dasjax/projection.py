"""DARTS-PT: perturbation-based architecture selection (Wang et al., ICLR 2021).

After the search, the architecture is not the argmax of alpha.  The rows of the supernet are
projected one at a time, in a random order (the authors' ``--edge_decision random``): for the
row, each op is removed in turn (its mixing weight set to 0, the others unchanged) and the
supernet is evaluated on validation batches; the op whose removal costs the most (the lowest
PSNR, the authors' ``--proj_crit acc``) is kept, and the row is one-hot on it from then on.
Between projections the supernet is tuned for ``proj_intv`` epochs (alpha and theta steps as in
the search, the projected rows held one-hot), with the theta optimizer restarted at a tenth of
its learning rate and a cosine decay over all the tuning epochs (``pt_project`` in
``sota/cnn/projection.py`` of ruocwang/darts-pt; sources and defaults in docs/register.md).

:class:`PerturbationProjection` is the discretisation component (its fields are the options); :class:`ProjectionProgram` is the batched program it runs: the search's epochs, then
``rows x proj_intv`` tuning epochs, each projection at the start of its block of tuning epochs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from . import streams
from .algorithms import SearchAlgorithm
from .evaluate import evaluate_psnr
from .optim import lr_schedule, scheduled_optimizer
from .problems import psnr_from_mse
from .registry import ALGORITHMS
from .search import SearchProgram, SearchState, fix_rows


@dataclass(frozen=True)
class PerturbationProjection:
    """DARTS-PT's selection (Wang et al. 2021): after the search the rows are projected one at a
    time, each to the op whose removal costs the supernet the most.  ``proj_intv``: tuning epochs
    after each projection; ``proj_batches``: validation batches per removal (0: the search's
    ``eval_batches``); ``tune_lr_start`` / ``tune_lr_end``: the tuning's theta learning rate, as fractions of the
    search's, at its first and last step (cosine between them; the authors: lr / 10 decaying to
    ``learning_rate_min`` = 0.001 of a 0.025 search, i.e. 0.04)."""
    proj_intv: int = 5
    proj_batches: int = 0
    tune_lr_start: float = 0.1
    tune_lr_end: float = 0.04

    def program(self, cfg, space, optimizer_types, algorithm):
        return ProjectionProgram(cfg, space, optimizer_types, algorithm)


@struct.dataclass
class ProjectionState:
    search: SearchState
    fixed: jnp.ndarray       # (rows,) int32: the projected op of each row, -1 while not projected
    order: jnp.ndarray       # (rows,) int32: the order in which the rows are projected


class ProjectionProgram(SearchProgram):
    """The search, then DARTS-PT's projection and tuning, as one batched program."""

    def __init__(self, cfg, space, optimizer_types=("adam", "sgd"), algorithm=None):
        super().__init__(cfg, space, optimizer_types, algorithm)
        self.projection = self.algorithm.discretisation
        if not isinstance(self.projection, PerturbationProjection):
            raise TypeError(f"algorithm {self.algorithm.name!r}: ProjectionProgram needs a PerturbationProjection "
                            f"discretisation, got {type(self.projection).__name__}")
        if cfg.space.space == "cell" and cfg.space.cell_discretization == "top2":
            raise ValueError("DARTS-PT projects one op per row; the cell space's top2 discretisation (DARTS's "
                             "two edges per state) has no projection here: use cell_discretization='argmax'")
        self.n_rows, self.n_ops = space.arch_shape
        self.intv = self.projection.proj_intv
        if self.intv < 1:
            raise ValueError(f"proj_intv={self.intv}: tune at least one epoch after each projection")
        self.tune_epochs = self.n_rows * self.intv
        self.epochs = self.search_epochs + self.tune_epochs
        self.proj_batches = self.projection.proj_batches or cfg.search.eval_batches

    # --- state ----------------------------------------------------------------------------
    def init(self, key, hp) -> ProjectionState:
        order = jax.random.permutation(streams.stream(key, streams.PROJECTION), self.n_rows).astype(jnp.int32)
        return ProjectionState(search=super().init(key, hp), fixed=jnp.full((self.n_rows,), -1, jnp.int32),
                               order=order)

    def theta_optimizer(self, hp):
        """The search's theta optimizer until the search ends; then the tuning's: the same kind and
        weight decay, its learning rate a cosine from tune_lr_start to tune_lr_end (x theta_lr) over
        all tuning steps (its moments are restarted when the tuning starts, :meth:`restart_moments`)."""
        p, n_search = self.projection, self.search_epochs * self.steps_per_epoch
        total = max(1, self.tune_epochs * self.steps_per_epoch - 1)
        search_schedule = lr_schedule(hp.theta_lr, hp.theta_warmup, hp.theta_scheduler, epochs=self.search_epochs,
                                      steps_per_epoch=self.steps_per_epoch, cfg=self.cfg.schedule)

        def schedule(count):
            frac = jnp.clip((count - n_search) / total, 0.0, 1.0)
            tune = hp.theta_lr * (p.tune_lr_end + 0.5 * (p.tune_lr_start - p.tune_lr_end) * (1 + jnp.cos(math.pi * frac)))
            return jnp.where(count < n_search, search_schedule(count), tune)

        return scheduled_optimizer(self.theta_opt_kind, hp.theta_wd, schedule, self.cfg.schedule)

    def restart_moments(self, ps: ProjectionState, hp) -> ProjectionState:
        """A fresh theta optimizer state (the authors' ``reset_optimizer``) that keeps the update
        count its schedule reads."""
        st = ps.search
        fresh = self.theta_optimizer(hp).init(st.params)
        return ps.replace(search=st.replace(opt_theta=(*fresh[:-1], st.opt_theta[-1])))

    # --- the selection --------------------------------------------------------------------
    def projection_weights(self, ps: ProjectionState):
        """The supernet's weights between projections: the relaxation's expected weights, projected
        rows one-hot (the authors' ``get_projected_weights``)."""
        return fix_rows(self.algorithm.relaxation.expected(ps.search.alpha, self.space), ps.fixed)

    def removal_psnrs(self, ps: ProjectionState, row, key):
        """(ops,) PSNR of the supernet with each op of ``row`` removed in turn, on the same
        validation batches, BN in train mode (the authors' ``infer(..., _eval=False)``)."""
        st, w = ps.search, self.projection_weights(ps)
        problem, bs = self.space.problem, self.batch_size
        k_data, k_noise = jax.random.split(key)
        stacked = jax.vmap(lambda b: problem.sample(jax.random.fold_in(k_data, b), bs, "val"))(
            jnp.arange(self.proj_batches))

        def psnr_without(op):
            removed = w * (1.0 - jax.nn.one_hot(row, self.n_rows)[:, None] * jax.nn.one_hot(op, self.n_ops)[None, :])

            def one(_, b):
                batch = jax.tree_util.tree_map(lambda x: x[b], stacked)
                x_hat, _ = self.space.apply(st.params, st.bn, removed, batch, jax.random.fold_in(k_noise, b), train=True)
                return None, jnp.mean((x_hat - batch.x) ** 2, axis=tuple(range(1, batch.x.ndim)))

            _, mse = jax.lax.scan(one, None, jnp.arange(self.proj_batches))
            pcfg = problem.cfg
            return psnr_from_mse(mse.ravel(), pcfg.psnr_peak, pcfg.psnr_mode)

        return jax.lax.map(psnr_without, jnp.arange(self.n_ops))

    def project(self, ps: ProjectionState, key, k):
        """Projection number ``k``: row ``order[k]`` keeps the op whose removal gives the lowest
        PSNR (a removal that makes the supernet diverge counts as the lowest)."""
        row = ps.order[k]
        psnrs = self.removal_psnrs(ps, row, streams.stream(key, streams.PROJECTION, 1 + k))
        best = jnp.argmin(jnp.where(jnp.isnan(psnrs), -jnp.inf, psnrs)).astype(jnp.int32)
        return ps.replace(fixed=ps.fixed.at[row].set(best))

    # --- epochs ---------------------------------------------------------------------------
    def epoch(self, ps: ProjectionState, key, hp, epoch=None):
        """A search epoch while ``epoch`` < the search's epochs, then tuning epochs (the same step,
        projected rows held one-hot): the first tuning epoch restarts the theta optimizer's moments,
        and every ``proj_intv``-th first projects the next row."""
        if epoch is None:
            raise ValueError("ProjectionProgram.epoch needs the epoch index (run_batched passes it)")
        t = epoch - self.search_epochs
        ps = jax.lax.cond(t == 0, lambda q: self.restart_moments(q, hp), lambda q: q, ps)
        ps = jax.lax.cond((t >= 0) & (t % self.intv == 0),
                          lambda q: self.project(q, key, jnp.maximum(t, 0) // self.intv), lambda q: q, ps)

        def body(s, _):
            return self.step(s, key, hp, fixed=ps.fixed)

        st, (lt, lv) = jax.lax.scan(body, ps.search, None, length=self.steps_per_epoch)
        ps = ps.replace(search=st)
        return ps, {"search_train_loss": jnp.mean(lt), "search_val_loss": jnp.mean(lv),
                    "alpha_history": self.projection_weights(ps)}

    def finalize(self, ps: ProjectionState, key, hp):
        """The projected architecture and the one-shot PSNR of the tuned supernet with it (eval
        mode, the search's evaluation samples)."""
        st, s = ps.search, self.cfg.search
        arch = jax.nn.one_hot(ps.fixed, self.n_ops)
        p = evaluate_psnr(self.space, st.params, st.bn, arch, key, n_batches=s.eval_batches, batch_size=s.batch_size)
        ok = st.alive & jnp.isfinite(p)
        return {"one_shot_psnr": jnp.where(ok, p, jnp.nan),
                "alpha": st.alpha,
                "alpha_softmax": self.algorithm.relaxation.expected(st.alpha, self.space),
                "architecture": arch,
                "diverged": ~ok}


DARTS_PT = SearchAlgorithm("darts-pt", discretisation=PerturbationProjection(),
                           reference="Wang et al. 2021; ruocwang/darts-pt")
ALGORITHMS.add(DARTS_PT.name, DARTS_PT, builtin=True)
