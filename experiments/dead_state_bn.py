"""Why cells with a dead state collapse in eval mode (docs/results/archive/table2_cpu_before_stage6/README.md).

A cell edge whose source state is identically zero feeds a Net (2-layer CNN) an all-zero signal.
Its first convolution then outputs the bias b1 alone, so BatchNorm sees zero variance: in train
mode the output is exactly beta, and b1, gamma and w1 get a zero loss gradient.  With coupled weight
decay, Adam normalises the tiny decay term into steps of about the learning rate, so b1 keeps
moving while the running mean lags behind it, and eval mode divides that lag by sqrt(eps).

This script trains one Net on an all-zero input (one retraining batch) with the retraining's
optimizer, schedule and step count (the "Param." rows of --hparams, H1 by default: Adam, lr 1e-3,
coupled weight decay 1e-8, 50 epochs x 19 steps) and prints the largest |eval-mode - train-mode|
output difference:

    python experiments/dead_state_bn.py                      # H1: weight decay 1e-8
    python experiments/dead_state_bn.py --weight-decay 0     # the gap closes
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from dasjax import hparams as hpmod  # noqa: E402
from dasjax.config import make_config  # noqa: E402
from dasjax.runners.common import DEFAULT_HPARAMS  # noqa: E402
from dasjax.ops import f_apply, f_init  # noqa: E402
from dasjax.optim import make_optimizer  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--hparams", default=DEFAULT_HPARAMS,
                    help="hyperparameter set whose Param. rows (theta optimizer) train the Net")
    ap.add_argument("--weight-decay", type=float, default=None,
                    help="coupled L2 weight decay (default: the set's theta weight decay)")
    ap.add_argument("--width", type=int, default=None, help="CNN width (default: the config's)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    hp = hpmod.get(args.hparams)
    wd = hp.theta_wd if args.weight_decay is None else args.weight_decay
    cfg = make_config(**({} if args.width is None else {"width": args.width}))
    rt = cfg.retrain
    steps = rt.epochs * rt.steps_per_epoch
    params, state = f_init(jax.random.key(args.seed), cfg.space)
    x = jnp.zeros((rt.batch_size, cfg.problem.n_points))      # the dead state: one all-zero batch
    opt = make_optimizer(hp.theta_optimizer, hp.theta_lr, wd, hp.theta_warmup, hp.theta_scheduler,
                         epochs=rt.epochs, steps_per_epoch=rt.steps_per_epoch, cfg=cfg.schedule)

    def loss(p, s):
        out, ns = f_apply(p, s, x, True, cfg.space)
        return jnp.mean(out ** 2), ns

    def step(carry, _):
        p, s, o = carry
        (_, ns), g = jax.value_and_grad(loss, has_aux=True)(p, s)
        u, o = opt.update(g, o, p)
        p = optax.apply_updates(p, u)
        train_out, _ = f_apply(p, ns, x, True, cfg.space)
        eval_out, _ = f_apply(p, ns, x, False, cfg.space)
        return (p, ns, o), (jnp.abs(eval_out - train_out).max(), jnp.abs(g["b1"]).max(),
                            jnp.abs(p["b1"] - ns["mean"]).max())

    _, (gap, grad_b1, lag) = jax.jit(lambda c: jax.lax.scan(step, c, None, length=steps))(
        (params, state, opt.init(params)))
    print(f"one Net on an all-zero input, {hp.name} Param. rows ({hp.theta_optimizer}, lr {hp.theta_lr:g}), "
          f"weight decay {wd:g}, width {cfg.space.width}, {steps} steps")
    print("| step | max abs(eval - train) output | max abs(loss grad of b1) | max abs(b1 - running mean) |")
    print("|---|---|---|---|")
    for i in sorted({0, 9, 49, 99, 199, 399, steps - 1}):
        if i < steps:
            print(f"| {i + 1} | {float(gap[i]):.3g} | {float(grad_b1[i]):.2g} | {float(lag[i]):.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
