"""Hyperparameter sets as data: exact values, traced numbers, batching across sets."""
import numpy as np
import pytest
from conftest import tiny

import dasjax
from dasjax import hparams as hp


def test_exact_values_of_named_sets():
    s = hp.named_sets()
    assert set(s) >= {"H1", "H2", "BOHB-one-shot-Blur", "BOHB-one-shot-DS", "BOHB-Blur", "BOHB-DAS-single",
                      "BOHB-Non-Seq-one-shot-Blur", "BOHB-Non-Seq-Blur"}
    assert (s["H1"].theta_lr, s["H1"].theta_wd, s["H1"].alpha_lr, s["H1"].alpha_wd) == (0.001, 1e-8, 0.001, 0.001)
    assert (s["H2"].alpha_lr, s["H2"].alpha_wd, s["H2"].alpha_optimizer) == (0.0001, 0.0001, "sgd")
    b = s["BOHB-one-shot-Blur"]
    assert (b.theta_lr, b.theta_wd, b.theta_warmup, b.alpha_lr, b.alpha_wd, b.alpha_warmup,
            b.alpha_scheduler, b.alpha_optimizer) == (0.0014232405, 8.616e-07, False, 0.0836808765,
                                                      5.05099e-05, False, True, "adam")
    d = s["BOHB-one-shot-DS"]
    assert (d.theta_lr, d.theta_wd, d.theta_warmup, d.alpha_lr, d.alpha_wd, d.alpha_optimizer) == \
        (0.0020448382, 5.04e-08, True, 0.0100063746, 0.0058022776, "sgd")
    f = s["BOHB-Blur"]
    assert (f.theta_lr, f.theta_wd, f.alpha_lr, f.alpha_wd, f.alpha_warmup, f.alpha_optimizer) == \
        (0.0020882283, 4.4e-08, 8.43195e-05, 0.0127425783, True, "adam")
    g = s["BOHB-DAS-single"]
    assert (g.alpha_lr, g.alpha_wd, g.alpha_scheduler) == (0.025012337102395577, 1.390640076980444e-05, False)
    n1, n2 = s["BOHB-Non-Seq-one-shot-Blur"], s["BOHB-Non-Seq-Blur"]
    assert (n1.theta_lr, n1.theta_wd, n1.alpha_lr, n1.alpha_wd) == (0.0050969066, 2.423e-07, 1.32499e-05, 0.0010171142)
    assert (n2.theta_lr, n2.theta_wd, n2.alpha_lr, n2.alpha_wd) == (0.0037014752, 1.4573e-06, 0.0012395056, 0.0002855732)
    assert all(x.theta_optimizer == "adam" for x in s.values())


def test_user_sets_register_and_roundtrip(tmp_path):
    mine = hp.H1.replace(name="mine", alpha_lr=0.02)
    hp.register(mine)
    assert hp.get("MINE") == mine
    path = tmp_path / "mine.json"
    path.write_text(mine.to_json())
    assert hp.load(path) == mine
    with pytest.raises(ValueError, match="already registered"):
        hp.register(mine.replace(alpha_lr=0.5))
    with pytest.raises(ValueError, match="optimizer types"):
        hp.stack([hp.H1, hp.BOHB_BLUR])


def test_set_results_do_not_depend_on_batch_partners():
    """H1's trials give the same results wherever H1 sits in the program it shares with H2 (same
    optimizer types -> one program over 2*T trials; both orders run the same compiled one).  Sets of
    other optimizer types run as programs of their own: tests/test_runner.py's Table 3 mixes them."""
    cfg = tiny(op_set="all")
    first = dasjax.run_sets(cfg, "DAS", ["H1", "H2"], [0, 1])
    both = dasjax.run_sets(cfg, "DAS", ["H2", "H1"], [0, 1])
    assert list(both) == ["H2", "H1"]
    assert both["H1"].hparams == ["H1", "H1"] and both["H2"].hparams == ["H2"] * 2
    for name in both:
        np.testing.assert_allclose(both[name].alpha_softmax, first[name].alpha_softmax, atol=1e-5)
        np.testing.assert_allclose(both[name].one_shot_psnr, first[name].one_shot_psnr, atol=1e-5)
        np.testing.assert_allclose(both[name].arch_psnr, first[name].arch_psnr, atol=1e-5)
    assert not np.allclose(both["H2"].alpha_softmax, both["H1"].alpha_softmax)


def test_sgd_nesterov_is_pytorchs_sgd_with_nesterov_momentum():
    """theta_optimizer="sgd_nesterov" (register #15 candidate) follows torch.optim.SGD(momentum=0.9,
    nesterov=True, weight_decay=wd): d = g + wd p; buf = m buf + d; p -= lr (d + m buf)."""
    import jax.numpy as jnp
    from dasjax.config import ScheduleConfig
    from dasjax.optim import make_optimizer
    lr, wd, m = 0.1, 0.01, 0.9
    opt = make_optimizer("sgd_nesterov", lr, wd, 0.0, 0.0, epochs=5, steps_per_epoch=2, cfg=ScheduleConfig())
    p = jnp.array([1.0, -2.0])
    grads = [jnp.array([0.5, 1.0]), jnp.array([-1.0, 0.25]), jnp.array([2.0, -0.5])]
    state = opt.init(p)
    p_ref, buf = np.array([1.0, -2.0]), np.zeros(2)
    for g in grads:
        upd, state = opt.update(g, state, p)
        p = p + upd
        d = np.asarray(g) + wd * p_ref
        buf = m * buf + d
        p_ref = p_ref - lr * (d + m * buf)
    np.testing.assert_allclose(np.asarray(p), p_ref, rtol=1e-6)
    assert hp.get("H1").replace(theta_optimizer="sgd_nesterov").theta_optimizer == "sgd_nesterov"
    with pytest.raises(ValueError, match="sgd_momentum"):
        ScheduleConfig(sgd_momentum=1.0)
