"""DAS-single: alpha-only search over frozen pretrained operations (paper App. B)."""
import jax
import numpy as np
from conftest import tiny

import dasjax
from dasjax.api import fixed_architectures, resolve_hparams
from dasjax.single import SingleLevelProgram, transplant
from dasjax.spaces import make_space


def test_das_single_freezes_weights_and_moves_alpha():
    cfg = tiny(op_set="all")
    seeds = [0, 1]
    good = cfg.replace(op_set="good")
    lg = dasjax.retrain(good, fixed_architectures(good, "lg", 2), seeds, keep_params=True)
    nets = dasjax.retrain(good, fixed_architectures(good, "net", 2), seeds, keep_params=True)
    space = make_space(cfg, dasjax.make_problem(cfg.problem))
    params, bn = transplant(space, seeds, lg, nets)
    # layer j's lg / net ops are exactly the pretrained networks' layer j
    np.testing.assert_array_equal(params["f"]["w1"][:, :, 0], lg.params["f"]["w1"][:, :, 0])
    np.testing.assert_array_equal(params["f"]["w1"][:, :, 1], nets.params["f"]["w1"][:, :, 0])
    np.testing.assert_array_equal(params["tau"]["lg"], lg.params["tau"]["lg"])
    np.testing.assert_array_equal(bn["f"]["var"][:, :, 1], nets.bn["f"]["var"][:, :, 0])

    hp, types, _ = resolve_hparams("BOHB-DAS-single", 2)
    prog = SingleLevelProgram(cfg, space, types)
    keys = dasjax.batch.trial_keys(seeds)
    st = jax.vmap(prog.init)(keys, hp, params, bn)
    alpha0 = np.asarray(st.alpha)
    epoch = jax.jit(jax.vmap(prog.epoch))             # one compile for every epoch
    for _ in range(cfg.search.epochs):
        st, m = epoch(st, keys, hp)
    for a, b in zip(jax.tree_util.tree_leaves((st.params, st.bn)), jax.tree_util.tree_leaves((params, bn))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))        # bit-identical frozen ops
    assert np.abs(np.asarray(st.alpha) - alpha0).max() > 1e-3               # alpha moved


def test_das_single_pipeline_records():
    cfg = tiny(op_set="all")
    res = dasjax.run_method(cfg, "DAS-single", [0, 1], "BOHB-DAS-single")
    assert res.method == "DAS-single" and res.hparams == ["BOHB-DAS-single"] * 2
    assert np.isfinite(res.one_shot_psnr).all() and np.isfinite(res.arch_psnr).all()
    assert res.arrays["alpha_history"].shape == (2, cfg.search.epochs, cfg.space.n_layers, 4)
