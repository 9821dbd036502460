"""Optimizers and learning-rate schedules with traced, per-trial hyperparameters.

* PyTorch-style *coupled* weight decay (L2 added to the gradient), not AdamW:
  ``chain(add_decayed_weights(wd), scale_by_adam(), scale_by_learning_rate(lr_fn))``.
* "Gradient Descent" = SGD without momentum, also with coupled decay.
* "sgd_nesterov" = ``torch.optim.SGD(lr, momentum=0.9, nesterov=True, weight_decay)``, the "SGD" of
  Geiping's training code [GC] (a candidate for the unstated theta optimizer, register #15).
* Schedules are plain functions of the update count (optax's built-in warm-up
  schedules do not accept traced peak values).  Epoch e = count // steps_per_epoch:
  - warm-up (on/off traced): lr * (e + 1) / W for e < W (register #17; other modes are flags);
  - "Linear" scheduler (on/off traced): MultiStepLR, x gamma at epochs E // 2.667, E // 1.6,
    E // 1.142 (18, 31, 43 for E = 50), counted from the end of the warm-up; or a true
    linear decay to 0 (``ScheduleConfig.kind = "linear_decay"``).
"""
from __future__ import annotations

import jax.numpy as jnp
import optax

from .config import ScheduleConfig


def lr_factor(count, *, warmup, scheduler, epochs: int, steps_per_epoch: int, cfg: ScheduleConfig):
    """Multiplier of the base learning rate at update ``count`` (warmup / scheduler are 0/1 arrays)."""
    e = count // steps_per_epoch
    W = cfg.warmup_epochs
    warm_on = (warmup > 0.5) & (W > 0)
    if cfg.warmup_mode == "ramp":
        ramp = (e + 1) / max(W, 1)
    elif cfg.warmup_mode == "ramp_from_zero":
        ramp = e / max(W, 1)
    else:  # "freeze": no updates during the warm-up epochs
        ramp = jnp.zeros_like(e, dtype=jnp.float32)
    in_warmup = warm_on & (e < W)
    warm = jnp.where(in_warmup, ramp, 1.0)
    e_after = jnp.where(warm_on, e - W, e)
    if cfg.kind == "multistep":
        n_passed = sum((e_after >= m).astype(jnp.float32) for m in cfg.milestones(epochs))
        decay = cfg.gamma ** n_passed
    else:  # linear decay to 0 over the epochs after the warm-up
        span = jnp.where(warm_on, max(epochs - W, 1), epochs)
        decay = jnp.clip(1.0 - e_after / span, 0.0, 1.0)
    sched = jnp.where(scheduler > 0.5, decay, 1.0)
    return (warm * sched).astype(jnp.float32)


def make_optimizer(kind: str, lr, wd, warmup, scheduler, *, epochs: int, steps_per_epoch: int,
                   cfg: ScheduleConfig) -> optax.GradientTransformation:
    """Coupled-L2 Adam or SGD with the epoch schedule; lr / wd / switches may be traced scalars."""
    return scheduled_optimizer(kind, wd, lr_schedule(lr, warmup, scheduler, epochs=epochs,
                                                     steps_per_epoch=steps_per_epoch, cfg=cfg), cfg)


def lr_schedule(lr, warmup, scheduler, *, epochs: int, steps_per_epoch: int, cfg: ScheduleConfig):
    """The learning rate as a function of the update count: ``lr`` times :func:`lr_factor`."""
    def schedule(count):
        return lr * lr_factor(count, warmup=warmup, scheduler=scheduler, epochs=epochs,
                              steps_per_epoch=steps_per_epoch, cfg=cfg)
    return schedule


def scheduled_optimizer(kind: str, wd, schedule, cfg: ScheduleConfig) -> optax.GradientTransformation:
    """Coupled-L2 ``kind`` optimizer with the learning rate ``schedule(count)`` (a function of its
    own update counter).  Every kind keeps the same state structure whatever the schedule."""
    parts = [optax.add_decayed_weights(wd)]
    if kind == "adam":
        parts.append(optax.scale_by_adam(b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps))
    elif kind == "sgd_nesterov":
        # PyTorch: buf = m buf + g; step = g + m buf (Nesterov) -- optax.trace(nesterov=True) exactly
        parts.append(optax.trace(decay=cfg.sgd_momentum, nesterov=True))
    elif kind != "sgd":
        raise ValueError(f"optimizer {kind!r} is not allowed; choose one of ['adam', 'sgd', 'sgd_nesterov']")
    parts.append(optax.scale_by_learning_rate(schedule))
    return optax.chain(*parts)
