"""DAS-single (paper App. B, register #28): search alpha alone over frozen, pretrained operations.

1. Pretrain a Learnable-Grad-only and a Nets-only network per seed (the standard recipe).
2. Copy layer j of each into layer j's 'lg' and 'net' operations of the supernet and freeze them
   (BatchNorm in eval mode by default: ``SearchConfig.single_bn_train``); roll has no weights,
   the noise layer's tau stays at its init.
3. Optimise alpha alone on validation batches (single-level) with e.g. BOHB-DAS-single.
4. Retrain the argmax architecture from scratch, as in DAS.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import streams
from .stages import (MethodResult, as_seeds, checkpoint_path, fixed_architectures, resolve_hparams, retrain,
                     row_label, run_kwargs)
from .batch import run_batched, trial_keys
from .placement import place
from .evaluate import evaluate_psnr
from .optim import make_optimizer
from .problems import make_problem, mse_loss
from .program import guarded_step
from .spaces import make_space


@struct.dataclass
class SingleState:
    params: dict               # frozen supernet operations
    bn: dict
    alpha: jnp.ndarray
    opt_alpha: optax.OptState
    step: jnp.ndarray
    alive: jnp.ndarray


class SingleLevelProgram:
    """alpha-only search of one trial over frozen operation weights."""

    def __init__(self, cfg, space, optimizer_types=("adam", "adam")):
        self.cfg, self.space = cfg, space
        self.alpha_opt_kind = optimizer_types[1]
        s = cfg.search
        self.epochs, self.steps_per_epoch, self.batch_size = s.epochs, s.steps_per_epoch, s.batch_size
        self.bn_train = s.single_bn_train

    @property
    def cache_key(self):
        return ("single", self.cfg, self.space.kind, self.space.layer.n_slots, self.space.layer.plan,
                self.space.problem.cache_id, self.alpha_opt_kind)

    def alpha_optimizer(self, hp):
        return make_optimizer(self.alpha_opt_kind, hp.alpha_lr, hp.alpha_wd, hp.alpha_warmup,
                              hp.alpha_scheduler, epochs=self.epochs, steps_per_epoch=self.steps_per_epoch,
                              cfg=self.cfg.schedule)

    def init(self, key, hp, params, bn) -> SingleState:
        alpha = self.space.init_alpha(streams.stream(key, streams.ALPHA_INIT))
        return SingleState(params=params, bn=bn, alpha=alpha, opt_alpha=self.alpha_optimizer(hp).init(alpha),
                           step=jnp.zeros((), jnp.int32), alive=jnp.asarray(True))

    def step(self, st: SingleState, key, hp):
        t = st.step
        vb = self.space.problem.sample(streams.stream(key, streams.SEARCH_VAL, t), self.batch_size, "val")
        k = streams.stream(key, streams.SEARCH_NOISE, t)

        def loss(alpha):   # BN statistics are never written back: the operations stay frozen
            x_hat, _ = self.space.apply(st.params, st.bn, self.space.weights(alpha), vb, k, train=self.bn_train)
            return mse_loss(x_hat, vb.x)

        lv, g = jax.value_and_grad(loss)(st.alpha)
        upd, opt = self.alpha_optimizer(hp).update(g, st.opt_alpha, st.alpha)
        alpha = optax.apply_updates(st.alpha, upd)
        new = st.replace(alpha=alpha, opt_alpha=opt, step=t + 1)
        out, (lv,) = guarded_step(st, new, (lv,), alpha)
        return out, lv

    def epoch(self, st, key, hp, epoch=None):
        st, lv = jax.lax.scan(lambda s, _: self.step(s, key, hp), st, None, length=self.steps_per_epoch)
        return st, {"search_val_loss": jnp.mean(lv), "alpha_history": self.space.weights(st.alpha)}

    def finalize(self, st, key, hp):
        s = self.cfg.search
        p = evaluate_psnr(self.space, st.params, st.bn, self.space.weights(st.alpha), key,
                          n_batches=s.eval_batches, batch_size=s.batch_size)
        ok = st.alive & jnp.isfinite(p)
        return {"one_shot_psnr": jnp.where(ok, p, jnp.nan), "alpha": st.alpha,
                "alpha_softmax": self.space.weights(st.alpha), "architecture": self.space.discretize(st.alpha),
                "diverged": ~ok}


def transplant(space, seeds, lg_net, nets_net):
    """Supernet params / BN state whose 'lg' and 'net' ops copy the pretrained networks layer by layer.

    lg_net / nets_net: RetrainResults (keep_params=True) of the shared-F single-op networks.
    Ops without pretrained weights (noise tau) keep their init.
    """
    params, bn = jax.vmap(space.init)(trial_keys(seeds))
    slots = space.layer.f_slots
    sources = {"lg": lg_net, "net": nets_net}
    by_slot = [sources[op] for op, _ in sorted(slots.items(), key=lambda kv: kv[1])]
    if by_slot:
        params = dict(params, f=jax.tree_util.tree_map(
            lambda *xs: jnp.stack([x[:, :, 0] for x in xs], axis=2), *[r.params["f"] for r in by_slot]))
        bn = dict(bn, f=jax.tree_util.tree_map(
            lambda *xs: jnp.stack([x[:, :, 0] for x in xs], axis=2), *[r.bn["f"] for r in by_slot]))
    if "tau" in params and "lg" in params["tau"]:
        params = dict(params, tau=dict(params["tau"], lg=jnp.asarray(lg_net.params["tau"]["lg"])))
    return params, bn


def das_single(cfg, seeds, hparams="BOHB-DAS-single", *, pretrain_hparams="H1", progress=None,
               checkpoint_dir=None) -> MethodResult:
    """The whole DAS-single pipeline for every seed, each stage one batched program."""
    if cfg.space.space != "sequential":
        raise ValueError(f"space={cfg.space.space!r}: DAS-single is defined for the sequential space "
                         "(paper App. B); use space='sequential'")
    seeds = as_seeds(seeds)
    T = len(seeds)
    good = cfg.replace(op_set="good")
    pre = {}
    for op in ("lg", "net"):
        pre[op] = retrain(good, fixed_architectures(good, op, T), seeds, pretrain_hparams, keep_params=True,
                          progress=progress, desc=row_label(cfg, f"DAS-single pretrain {op}"),
                          checkpoint=checkpoint_path(checkpoint_dir, f"pretrain_{op}"))
    placement = place(cfg, T)
    space = make_space(cfg, make_problem(cfg.problem), plan=placement.plan)
    params, bn = transplant(space, seeds, pre["lg"], pre["net"])
    hp, types, names = resolve_hparams(hparams, T)
    out = run_batched(SingleLevelProgram(cfg, space, types), trial_keys(seeds), hp, (params, bn),
                      n_epochs=cfg.search.epochs, desc=row_label(cfg, "DAS-single search"),
                      **run_kwargs(cfg, progress, checkpoint_path(checkpoint_dir, "search"), placement))
    f = out.final
    arch = f["architecture"]
    r = retrain(cfg, arch, seeds, hparams, progress=progress, desc=row_label(cfg, "DAS-single retrain"),
                checkpoint=checkpoint_path(checkpoint_dir, "retrain"))
    wall = out.wall_time_s + r.wall_time_s + sum(p.wall_time_s for p in pre.values())
    arrays = {**out.metrics, **r.history}
    return MethodResult("DAS-single", seeds, names, r.arch_psnr, f["one_shot_psnr"],
                        [space.arch_string(a) for a in arch], f["alpha_softmax"],
                        f["diverged"] | r.diverged, wall, out.compile_time_s + r.compile_time_s, arrays)
