#!/usr/bin/env python
"""How to write the 2-layer CNN F for T trials with per-trial weights (issue #5; the ideas are listed below).

The cost of every step is the CNN F = conv(1->W, k) -> BatchNorm (batch statistics) -> ReLU ->
conv(W->1, k), run by each Net / Learnable-Grad. op.  This script times one training step
(forward, backward, SGD update) of a stack of ``--layers`` such CNNs (a Nets-only network, batch
128 x 50 samples, width 64) for T trials with different weights, written in several ways:

* ``matmul``        dasjax's production form (``dasjax.ops.f_apply``): the 1->W and W->1
                    convolutions as small matmuls on the k shifted copies, BN statistics computed
                    analytically from the k x k patch covariance; ``jax.vmap`` over trials.
* ``matmul_scan``   the same, with ``lax.scan`` over the layers (stacked parameters).
* ``conv_ncw``      ``lax.conv_general_dilated`` in NCW / OIW layout, ``jax.vmap`` over trials
                    (XLA turns the per-trial weights into a grouped convolution).
* ``conv_nwc``      the same in NWC / WIO layout.
* ``groups_ncw``    the trial axis folded into the channel axis by hand, one convolution with
                    ``feature_group_count=T`` per layer, no vmap (NCW).
* ``groups_nwc``    the same in NWC layout.

Each is measured against the baseline a user would write, a Python loop over T single-trial
jitted calls of the same formulation (of ``matmul`` for the ``groups_*`` forms, which only exist
for several trials), interleaved in the same process; the table gives trial-steps/s and the ratio
(above 1: the formulation beats the loop).  All formulations compute the same function:
outputs and a training step are checked against ``matmul`` before timing.

    python benchmarks/formulations.py                       # T in 1, 8; every formulation
    python benchmarks/formulations.py --trials 1,8,32 --csv docs/results/bench_cpu_formulations.csv
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dasjax.batch import memory_stats  # noqa: E402
from dasjax.config import make_config  # noqa: E402
from dasjax.ops import f_apply, f_init  # noqa: E402
from dasjax.results import atomic_write_text  # noqa: E402

FORMULATIONS = ("matmul", "matmul_scan", "conv_ncw", "conv_nwc", "groups_ncw", "groups_nwc")


# --- one F per formulation: (params of one trial, x (B, L)) -> (B, L), batch-statistics BN -------------
def _bn_relu(h, p, axis_c, eps):
    red = tuple(a for a in range(h.ndim) if a != axis_c)
    mean = jnp.mean(h, axis=red, keepdims=True)
    var = jnp.mean(jnp.square(h - mean), axis=red, keepdims=True)
    shape = [1] * h.ndim
    shape[axis_c] = -1
    g, b = p["gamma"].reshape(shape), p["beta"].reshape(shape)
    return jax.nn.relu((h - mean) * jax.lax.rsqrt(var + eps) * g + b)


def _conv(x, w, layout, groups=1):
    """'same' 1D convolution; x in ``layout`` (NCW or NWC), w as (O, I/groups, k)."""
    k = w.shape[-1]
    dn = ("NCW", "OIW", "NCW") if layout == "NCW" else ("NWC", "WIO", "NWC")
    rhs = w if layout == "NCW" else jnp.transpose(w, (2, 1, 0))
    return jax.lax.conv_general_dilated(x, rhs, (1,), [(k // 2, k // 2)], dimension_numbers=dn,
                                        feature_group_count=groups)


def _torch_weights(p):
    """dasjax's matmul weights as PyTorch conv weights: w1 (K, W) -> (W, 1, K); w2 (W, K) -> (1, W, K)."""
    return p["w1"].T[:, None, :], p["w2"][None, :, :]


def f_conv(p, x, layout, eps):
    w1, w2 = _torch_weights(p)
    if layout == "NCW":
        h = _conv(x[:, None, :], w1, "NCW") + p["b1"][None, :, None]
        h = _bn_relu(h, p, 1, eps)
        return _conv(h, w2, "NCW")[:, 0, :] + p["b2"]
    h = _conv(x[:, :, None], w1, "NWC") + p["b1"]
    h = _bn_relu(h, p, 2, eps)
    return _conv(h, w2, "NWC")[:, :, 0] + p["b2"]


def f_groups(p, x, layout, eps):
    """p: a trial-stacked parameter tree (leading axis T); x: (T, B, L) -> (T, B, L), no vmap."""
    T, W = p["w1"].shape[0], p["w1"].shape[2]
    w1 = jnp.transpose(p["w1"], (0, 2, 1)).reshape(T * W, 1, -1)            # (T*W, 1, K)
    w2 = p["w2"]                                                            # (T, W, K) = (O=T, I/g=W, K)
    bn = {"gamma": p["gamma"].reshape(-1), "beta": p["beta"].reshape(-1)}   # per channel t*W + w
    if layout == "NCW":
        xx = jnp.transpose(x, (1, 0, 2))                                    # (B, T, L)
        h = _conv(xx, w1, "NCW", groups=T) + p["b1"].reshape(1, T * W, 1)
        h = _bn_relu(h, bn, 1, eps)
        y = _conv(h, w2, "NCW", groups=T) + p["b2"].reshape(1, T, 1)        # (B, T, L)
        return jnp.transpose(y, (1, 0, 2))
    xx = jnp.transpose(x, (1, 2, 0))                                        # (B, L, T)
    h = _conv(xx, w1, "NWC", groups=T) + p["b1"].reshape(1, 1, T * W)
    h = _bn_relu(h, bn, 2, eps)
    y = _conv(h, w2, "NWC", groups=T) + p["b2"].reshape(1, 1, T)            # (B, L, T)
    return jnp.transpose(y, (2, 0, 1))


# --- a network of L CNNs and its training step --------------------------------------------------------
def net_single(form, layers, x, scfg):
    """One trial: layers (list of per-layer params) applied in turn, global skip."""
    eps = scfg.bn_eps
    h = x
    if form == "matmul_scan":
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *layers)
        state = {"mean": jnp.zeros((scfg.width,)), "var": jnp.ones((scfg.width,))}
        h, _ = jax.lax.scan(lambda h, p: (f_apply(p, state, h, True, scfg)[0], None), h, stacked)
        return x + h
    for p in layers:
        if form == "matmul":
            state = {"mean": jnp.zeros((scfg.width,)), "var": jnp.ones((scfg.width,))}
            h = f_apply(p, state, h, True, scfg)[0]
        else:
            h = f_conv(p, h, "NCW" if form == "conv_ncw" else "NWC", eps)
    return x + h


def net_batched(form, layers, x, scfg):
    """T trials: layers hold a leading trial axis; x (T, B, L)."""
    if form.startswith("groups"):
        h = x
        for p in layers:
            h = f_groups(p, h, "NCW" if form == "groups_ncw" else "NWC", scfg.bn_eps)
        return x + h
    return jax.vmap(lambda lp, xx: net_single(form, lp, xx, scfg))(layers, x)


def make_step(form, scfg, batched, lr=1e-3):
    apply = net_batched if batched else net_single

    def loss(layers, x, y):
        out = apply(form, layers, x, scfg)
        per_trial = jnp.mean(jnp.square(out - y), axis=(-2, -1))
        return jnp.sum(per_trial)               # trials are independent: the sum's gradient is per trial

    @jax.jit
    def step(layers, x, y):
        val, g = jax.value_and_grad(loss)(layers, x, y)
        return jax.tree.map(lambda p, d: p - lr * d, layers, g), val

    return step


def init_layers(key, scfg, n_layers, T=None):
    keys = jax.random.split(key, n_layers)
    layers = [f_init(k, scfg)[0] for k in keys]
    if T is None:
        return layers
    return [jax.tree.map(lambda a: jnp.broadcast_to(a, (T,) + a.shape) + 0.0, p) for p in layers]


def run_steps(step, layers, x, y, n):
    for _ in range(n):
        layers, val = step(layers, x, y)
    jax.block_until_ready(layers)
    return layers


def check_equal(forms, scfg, n_layers, batch, length, T=3, tol=1e-3):
    """Every formulation gives ``matmul``'s outputs and one training step's parameters for T
    different trials; a mismatch is an error."""
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.fold_in(key, 1), (T, batch, length))
    y = jax.random.normal(jax.random.fold_in(key, 2), (T, batch, length))
    trial_layers = [init_layers(jax.random.fold_in(key, 10 + t), scfg, n_layers) for t in range(T)]
    layers = [jax.tree.map(lambda *a: jnp.stack(a), *ps) for ps in zip(*trial_layers)]
    ref_out = net_batched("matmul", layers, x, scfg)
    ref_step = make_step("matmul", scfg, True, lr=1.0)(layers, x, y)[0]
    for form in forms:
        out = net_batched(form, layers, x, scfg)
        if not np.allclose(out, ref_out, rtol=tol, atol=tol):
            raise AssertionError(f"{form}: outputs differ from matmul's by up to {float(jnp.max(jnp.abs(out - ref_out)))}")
        stepped = make_step(form, scfg, True, lr=1.0)(layers, x, y)[0]
        # lr = 1: stepped = params - grad.  Compare each gradient relative to its largest entry
        # (float32 sums in another order differ by ~1e-4 of that at width 64 and 10 layers); the
        # conv bias before BatchNorm has a zero gradient, which the conv forms give as ~1e-7 noise
        for a, b, p0 in zip(jax.tree.leaves(stepped), jax.tree.leaves(ref_step), jax.tree.leaves(layers)):
            err = float(jnp.max(jnp.abs(a - b)))
            scale = max(float(jnp.max(jnp.abs(p0 - b))), 1e-12)
            if err > tol * scale + 1e-6:
                raise AssertionError(f"{form}: a gradient differs from matmul's by {err:.3g} "
                                     f"(largest entry {scale:.3g})")


def loop_form(form):
    """The loop's single-trial program: the same formulation; matmul for the folded groups_* forms,
    which exist only for several trials."""
    return "matmul" if form.startswith("groups") else form


def measure(form, scfg, T, n_layers, batch, length, steps, reps):
    key = jax.random.key(T)
    x = jax.random.normal(jax.random.fold_in(key, 1), (T, batch, length))
    y = jax.random.normal(jax.random.fold_in(key, 2), (T, batch, length))
    b_step = make_step(form, scfg, True)
    b_layers = init_layers(key, scfg, n_layers, T)
    t0 = time.perf_counter()
    compiled = b_step.lower(b_layers, x, y).compile()
    compile_s = time.perf_counter() - t0
    peak = memory_stats(compiled).get("peak_estimate_bytes", 0)
    s_form = loop_form(form)
    s_step = make_step(s_form, scfg, False)
    s_layers = [init_layers(jax.random.fold_in(key, 100 + t), scfg, n_layers) for t in range(T)]
    b_layers = run_steps(compiled, b_layers, x, y, 1)                    # warm up
    s_layers[0] = run_steps(s_step, s_layers[0], x[0], y[0], 1)
    bt, lt = [], []
    for _ in range(reps):                                                # interleaved
        t = time.perf_counter()
        b_layers = run_steps(compiled, b_layers, x, y, steps)
        bt.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(T):
            s_layers[i] = run_steps(s_step, s_layers[i], x[i], y[i], steps)
        lt.append(time.perf_counter() - t)
    tb, tl = float(np.median(bt)), float(np.median(lt))
    return {"formulation": form, "loop_formulation": s_form, "T": T, "width": scfg.width, "layers": n_layers,
            "batched_trial_steps_per_s": T * steps / tb, "loop_trial_steps_per_s": T * steps / tl,
            "ratio_over_loop": tl / tb, "compile_s": compile_s, "xla_peak_estimate_MiB": peak / 2 ** 20}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", default="1,8")
    ap.add_argument("--formulations", default=",".join(FORMULATIONS))
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed call (per trial)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--csv", default=None, help="write the table here (rewritten after every row)")
    args = ap.parse_args(argv)
    forms = [f.strip() for f in args.formulations.split(",") if f.strip()]
    bad = sorted(set(forms) - set(FORMULATIONS))
    if bad:
        ap.error(f"unknown formulation(s) {bad}; choose from {list(FORMULATIONS)}")
    trials = [int(t) for t in args.trials.split(",")]
    cfg = make_config(problem="blur", op_set="good", width=args.width)
    scfg, batch, length = cfg.space, cfg.retrain.batch_size, cfg.problem.n_points
    dev = jax.devices()[0]
    print(f"backend {jax.default_backend()}, device {dev.device_kind}, jax {jax.__version__}, "
          f"{os.cpu_count()} CPU cores; width {args.width}, {args.layers} CNN layers, batch {batch} x {length}")
    # checked on 2 layers: float32 rounding differences of the summation order grow with depth
    # (largest output difference, matmul vs conv_ncw: 7e-7 at 1 layer, 1.6e-6 at 4, 1.3e-5 at 10) and
    # reach ~1 % of a gradient at 10 layers, which says nothing about the formulation
    check_equal(forms, scfg, min(args.layers, 2), batch, length)
    print("every formulation gives matmul's outputs and training step on 3 different trials (2 layers)")
    rows = []
    head = ("| formulation | loop of | T | batched trial-steps/s | loop trial-steps/s | batched / loop | compile (s) "
            "| XLA peak (MiB) |")
    print(head + "\n|---|---|---|---|---|---|---|---|", flush=True)
    for T in trials:
        for form in forms:
            r = measure(form, scfg, T, args.layers, batch, length, args.steps, args.reps)
            rows.append(r)
            print(f"| {form} | {r['loop_formulation']} | {T} | {r['batched_trial_steps_per_s']:.1f} | "
                  f"{r['loop_trial_steps_per_s']:.1f} | "
                  f"{r['ratio_over_loop']:.2f} | {r['compile_s']:.1f} | {r['xla_peak_estimate_MiB']:.0f} |", flush=True)
            if args.csv:
                atomic_write_text(args.csv, pd.DataFrame(rows).to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
