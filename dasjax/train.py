"""Retraining a discrete architecture from scratch (paper §3, register #18).

The architecture is a one-hot ``(layers, ops)`` array, an input like any other, so
different architectures retrain together as one vmapped program.  The network is the
search space evaluated with one-hot weights.  With ``RetrainConfig.share_f`` (default)
'lg' and 'net' share one CNN per layer: only one of them is ever active, so this is the
same network at half the compute of carrying both.

Recipe: fresh init, ``epochs`` x ``steps_per_epoch`` batches of fresh training samples,
the θ optimizer and the "Param." rows of the hyperparameter set.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import streams
from .evaluate import evaluate_psnr, validation_loss
from .optim import make_optimizer
from .problems import mse_loss
from .program import guarded_step


@struct.dataclass
class TrainState:
    params: dict
    bn: dict
    opt: optax.OptState
    arch: jnp.ndarray          # one-hot (layers, ops)
    step: jnp.ndarray
    alive: jnp.ndarray


class RetrainProgram:
    """Training of one fixed architecture as pure functions: ``init``, ``epoch``, ``finalize``."""

    def __init__(self, cfg, space, optimizer_types=("adam", "sgd"), keep_params: bool = False):
        self.cfg, self.space = cfg, space
        self.opt_kind = optimizer_types[0]
        self.keep_params = keep_params
        r = cfg.retrain
        self.epochs, self.steps_per_epoch, self.batch_size = r.epochs, r.steps_per_epoch, r.batch_size

    @property
    def cache_key(self):
        """Everything static that shapes the compiled program."""
        # the search section does not shape retraining: DAS, DAS-ES and DAS-ADA share one program
        cfg = dataclasses.replace(self.cfg, search=type(self.cfg.search)())
        return ("retrain", self.keep_params, cfg, self.space.kind, self.space.layer.n_slots,
                self.space.layer.plan, self.space.problem.cache_id, self.opt_kind)

    def optimizer(self, hp):
        return make_optimizer(self.opt_kind, hp.theta_lr, hp.theta_wd, hp.theta_warmup,
                              hp.theta_scheduler, epochs=self.epochs,
                              steps_per_epoch=self.steps_per_epoch, cfg=self.cfg.schedule)

    def init(self, key, hp, arch) -> TrainState:
        params, bn = self.space.init(streams.stream(key, streams.RETRAIN_INIT))
        return TrainState(params=params, bn=bn, opt=self.optimizer(hp).init(params),
                          arch=jnp.asarray(arch, jnp.float32), step=jnp.zeros((), jnp.int32),
                          alive=jnp.asarray(True))

    def loss(self, params, bn, arch, batch, key):
        x_hat, bn_new = self.space.apply(params, bn, arch, batch, key, train=True)
        return mse_loss(x_hat, batch.x), bn_new

    def step(self, st: TrainState, key, hp):
        t = st.step
        batch = self.space.problem.sample(streams.stream(key, streams.RETRAIN_TRAIN, t), self.batch_size)
        (lt, bn), g = jax.value_and_grad(self.loss, has_aux=True)(
            st.params, st.bn, st.arch, batch, streams.stream(key, streams.RETRAIN_NOISE, t))
        upd, opt = self.optimizer(hp).update(g, st.opt, st.params)
        params = optax.apply_updates(st.params, upd)
        new = st.replace(params=params, bn=bn, opt=opt, step=t + 1)
        out, (lt,) = guarded_step(st, new, (lt,), (params, bn))
        return out, lt

    def epoch(self, st: TrainState, key, hp, epoch=None):
        """One epoch of training, then the validation loss of one fresh batch in eval mode."""
        e = st.step // self.steps_per_epoch
        st, lt = jax.lax.scan(lambda s, _: self.step(s, key, hp), st, None, length=self.steps_per_epoch)
        vb = self.space.problem.sample(streams.stream(key, streams.RETRAIN_VAL, e), self.batch_size, "val")
        lv = validation_loss(self.space, st.params, st.bn, st.arch, vb,
                             streams.stream(key, streams.RETRAIN_VAL, e, 1))
        return st, {"retrain_train_loss": jnp.mean(lt),
                    "retrain_val_loss": jnp.where(st.alive, lv, jnp.nan)}

    def finalize(self, st: TrainState, key, hp):
        """Architecture validation PSNR: eval mode on 2432 fresh samples (NaN if diverged)."""
        r = self.cfg.retrain
        p = evaluate_psnr(self.space, st.params, st.bn, st.arch, key,
                          n_batches=r.eval_batches, batch_size=r.batch_size)
        ok = st.alive & jnp.isfinite(p)
        out = {"arch_psnr": jnp.where(ok, p, jnp.nan), "diverged": ~ok}
        if self.keep_params:          # e.g. DAS-single reuses the trained networks
            out.update(params=st.params, bn=st.bn)
        return out
