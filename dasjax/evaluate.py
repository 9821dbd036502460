"""Evaluation: PSNR of a network in eval mode on fresh validation samples (register #7, paper §4.1).

Both the one-shot PSNR (supernet, softmax(alpha) weights) and the architecture PSNR
(retrained discrete network, one-hot weights) use this function.  The problem says what it is
evaluated on (``problem.eval_sets``): for 1D signals ``eval_batches`` x ``batch_size`` = 2432
fresh samples from the trial's EVAL stream; for images the held-out test images.  BatchNorm
uses running statistics (``bn_eval="running"``) or each batch's own (``"batch"``); the noise layer
stays stochastic.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import streams
from .problems import psnr_from_mse


def evaluate_psnr(space, params, state, weights, key, *, n_batches: int, batch_size: int):
    """Mean per-sample PSNR over n_batches fresh batches (per-sample mode averages all samples)."""
    pcfg = space.problem.cfg
    mses, offset = [], 0
    for es in space.problem.eval_sets(key, n_batches, batch_size):
        def one(_, b, es=es, offset=offset):
            batch = es.batch(b)
            x_hat, _ = space.apply(params, state, weights, batch,
                                   streams.stream(key, streams.EVAL_NOISE, offset + b), train=False)
            axes = tuple(range(1, batch.x.ndim))
            return None, jnp.mean((x_hat - batch.x) ** 2, axis=axes)

        _, mse = jax.lax.scan(one, None, jnp.arange(es.steps))
        mses.append(mse.ravel()[:es.n_valid])
        offset += es.steps
    return psnr_from_mse(jnp.concatenate(mses), pcfg.psnr_peak, pcfg.psnr_mode)


def validation_loss(space, params, state, weights, batch, key):
    """MSE of one batch in eval mode (the retraining validation-loss curve)."""
    x_hat, _ = space.apply(params, state, weights, batch, key, train=False)
    return jnp.mean((x_hat - batch.x) ** 2)
