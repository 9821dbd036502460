"""Sequential search space (paper §3.1.1, Fig. 1): 10 mixed layers x^(j+1) = sum_t w_jt o_t(x^(j)), global skip.

The same :meth:`SequentialSpace.apply` evaluates the supernet (``weights = softmax(alpha)``)
and a discrete architecture (``weights`` = a one-hot ``(layers, ops)`` array), so different
architectures batch together.  Layers share shapes and run as a ``lax.scan`` over stacked
layer parameters, which keeps compile time independent of depth.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..config import SpaceConfig
from ..ops import OpLayer, mix


class SequentialSpace:
    kind = "sequential"

    def __init__(self, cfg: SpaceConfig, problem, share_f: bool = False, plan=None):
        self.cfg, self.problem = cfg, problem
        self.ops = cfg.ops
        self.n_layers = cfg.n_layers
        self.layer = OpLayer(self.ops, cfg, problem, share_f=share_f, plan=plan)

    @property
    def arch_shape(self) -> tuple[int, int]:
        return (self.n_layers, len(self.ops))

    # --- parameters ---------------------------------------------------------------------
    def init(self, key):
        """Per-layer op parameters and BN state, stacked on a leading layer axis."""
        return jax.vmap(self.layer.init)(jax.random.split(key, self.n_layers))

    def init_alpha(self, key):
        return self.cfg.alpha_init_std * jax.random.normal(key, self.arch_shape)

    @staticmethod
    def weights(alpha):
        return jax.nn.softmax(alpha, axis=-1)

    # --- forward ------------------------------------------------------------------------
    def apply(self, params, state, weights, batch, key, train: bool):
        """x_hat = x0 + x^(L) (or x^(L) without the global skip).  Returns (x_hat, new_state)."""
        keys = jax.random.split(key, self.n_layers)

        def layer(x, xs):
            p, s, w, k = xs
            outs, s_new = self.layer.apply(p, s, x, batch.y, k, train)
            return mix(outs, w), s_new

        x_last, new_state = jax.lax.scan(layer, batch.x0, (params, state, weights, keys))
        x_hat = batch.x0 + x_last if self.cfg.global_skip else x_last
        return x_hat, new_state

    # --- architectures ------------------------------------------------------------------
    def discretize(self, alpha):
        """argmax per layer -> one-hot (layers, ops)."""
        return jax.nn.one_hot(jnp.argmax(alpha, axis=-1), len(self.ops))

    def random_architecture(self, key):
        """Each layer's op drawn uniformly from the op set."""
        idx = jax.random.randint(key, (self.n_layers,), 0, len(self.ops))
        return jax.nn.one_hot(idx, len(self.ops))

    def fixed_architecture(self, op: str):
        """Every layer uses ``op`` (Learnable-Grad-only / Nets-only baselines)."""
        if op not in self.ops:
            raise ValueError(f"op {op!r} is not in the op set {list(self.ops)}")
        return jax.nn.one_hot(jnp.full((self.n_layers,), self.ops.index(op)), len(self.ops))

    def arch_string(self, one_hot) -> str:
        idx = np.argmax(np.asarray(one_hot), axis=-1)
        return "-".join(self.ops[i] for i in idx)

    def parse_arch(self, text: str):
        names = text.split("-")
        if len(names) != self.n_layers or any(n not in self.ops for n in names):
            raise ValueError(f"architecture {text!r} must be {self.n_layers} ops from {list(self.ops)} joined by '-'")
        return jax.nn.one_hot(jnp.asarray([self.ops.index(n) for n in names]), len(self.ops))
