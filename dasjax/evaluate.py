"""Evaluation: PSNR of a network in eval mode on fresh validation samples (spec §1.7, §7).

Both the one-shot PSNR (supernet, softmax(alpha) weights) and the architecture PSNR
(retrained discrete network, one-hot weights) use this function, on ``eval_batches``
x ``batch_size`` = 2432 fresh samples from the trial's EVAL stream.  BatchNorm uses
running statistics; the noise layer stays stochastic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import streams
from .problems import psnr_from_mse


def evaluate_psnr(space, params, state, weights, key, *, n_batches: int, batch_size: int):
    """Mean per-sample PSNR over n_batches fresh batches (per-sample mode averages all samples)."""
    pcfg = space.problem.cfg

    def one(_, b):
        batch = space.problem.sample(streams.stream(key, streams.EVAL, b), batch_size)
        x_hat, _ = space.apply(params, state, weights, batch,
                               streams.stream(key, streams.EVAL_NOISE, b), train=False)
        axes = tuple(range(1, batch.x.ndim))
        mse = jnp.mean((x_hat - batch.x) ** 2, axis=axes)
        return None, mse

    _, mse = jax.lax.scan(one, None, jnp.arange(n_batches))
    return psnr_from_mse(mse.ravel(), pcfg.psnr_peak, pcfg.psnr_mode)


def validation_loss(space, params, state, weights, batch, key):
    """MSE of one batch in eval mode (the retraining validation-loss curve)."""
    x_hat, _ = space.apply(params, state, weights, batch, key, train=False)
    return jnp.mean((x_hat - batch.x) ** 2)
