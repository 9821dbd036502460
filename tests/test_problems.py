import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dasjax
from dasjax.problems import blur_kernel, make_problem, psnr


@pytest.mark.parametrize("name", ["blur", "downsampling"])
@pytest.mark.parametrize("variant", [{}, {"boundary": "circular"}, {"ds_mode": "avgpool"},
                                     {"blur_units": "linspace"}, {"blur_alignment": "causal"}])
def test_adjoint_identity(name, variant):
    """<A x, r> == <x, A^T r> for random x, r."""
    p = make_problem(dasjax.ProblemConfig(name=name, **variant))
    kx, kr = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (64, 50))
    r = jax.random.normal(kr, (64,) + p.measurement_shape)
    lhs = jnp.sum(p.forward(x) * r, axis=1)
    rhs = jnp.sum(x * p.adjoint(r), axis=1)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-4)


def test_operator_shapes_and_kernel():
    blur = make_problem(dasjax.ProblemConfig(name="blur"))
    ds = make_problem(dasjax.ProblemConfig(name="downsampling"))
    assert blur.matrix.shape == (50, 50)
    assert ds.matrix.shape == (12, 50)      # stride-4 pick of 2, 6, ..., 46 (calibration stage 7)
    # register #3 readings: omega units ~ [0.109, 0.141, 0.164, 0.173, ...]; linspace [0, .003, .166, .664, ...]
    np.testing.assert_allclose(blur_kernel(dasjax.ProblemConfig()), [0.109, 0.141, 0.164, 0.173, 0.164, 0.141, 0.109], atol=1e-3)
    np.testing.assert_allclose(blur_kernel(dasjax.ProblemConfig(blur_units="linspace")),
                               [0.000, 0.003, 0.166, 0.664, 0.166, 0.003, 0.000], atol=1e-3)
    px = blur_kernel(dasjax.ProblemConfig(blur_units="pixel"))
    assert px[3] > 0.9999
    # blur rows sum to 1 away from the boundary (normalised kernel)
    np.testing.assert_allclose(blur.matrix[10:40].sum(1), 1.0, rtol=1e-6)


def test_sampler_statistics():
    """Per-point mean / std of x match a numpy Monte-Carlo of x = cos(f w + Ox) + Oy; fresh per key."""
    p = make_problem(dasjax.ProblemConfig())
    x = np.asarray(p.sample_signals(jax.random.key(1), 40000))
    rng = np.random.default_rng(0)
    n = 200000
    w = np.linspace(-np.pi / 2, np.pi / 2, 50)
    ref = np.cos(rng.uniform(0, 2 * np.pi, (n, 1)) * w + rng.normal(size=(n, 1))) + rng.normal(size=(n, 1))
    assert x.shape == (40000, 50)
    np.testing.assert_allclose(x.mean(0), ref.mean(0), atol=0.03)
    np.testing.assert_allclose(x.std(0), ref.std(0), atol=0.03)
    # the offset O_y is the only source of a constant shift: mean over points ~ N(0,1) + mean cos
    x2 = np.asarray(p.sample_signals(jax.random.key(2), 40000))
    assert not np.allclose(x[:5], x2[:5])            # a new key gives new signals
    np.testing.assert_array_equal(x, np.asarray(p.sample_signals(jax.random.key(1), 40000)))


def test_measurement_noise_and_input():
    cfg = dasjax.ProblemConfig(name="downsampling", noise_std=0.1, x0="adjoint")
    p = make_problem(cfg)
    b = p.sample(jax.random.key(3), 20000)
    resid = np.asarray(b.y - p.forward(b.x))
    assert abs(resid.std() - 0.1) < 2e-3 and abs(resid.mean()) < 2e-3
    np.testing.assert_allclose(b.x0, p.adjoint(b.y), rtol=1e-5, atol=1e-5)   # x0 = A^T y


def test_default_input_is_the_data_where_it_lives_on_the_signal_grid():
    b = make_problem(dasjax.ProblemConfig(name="blur")).sample(jax.random.key(4), 64)
    np.testing.assert_array_equal(b.x0, b.y)                                  # blur: x0 = y
    b = make_problem(dasjax.ProblemConfig(name="downsampling")).sample(jax.random.key(4), 64)
    np.testing.assert_array_equal(np.asarray(b.x0)[:, 2::4], b.y)             # downsampling: S^T y
    assert not np.asarray(b.x0)[:, np.setdiff1d(np.arange(50), np.arange(2, 50, 4))].any()
    p = make_problem(dasjax.ProblemConfig(name="blur", x0="adjoint"))
    b = p.sample(jax.random.key(4), 64)
    np.testing.assert_allclose(b.x0, p.adjoint(b.y), rtol=1e-5, atol=1e-5)


def test_psnr_hand_computed():
    x = jnp.zeros((2, 4))
    x_hat = jnp.array([[0.1, 0.1, 0.1, 0.1], [0.2, 0.0, 0.0, 0.0]])
    # sample 0: mse 0.01 -> 20 dB; sample 1: mse 0.01 -> 20 dB
    assert float(psnr(x_hat, x)) == pytest.approx(20.0, abs=1e-4)
    x_hat = jnp.array([[0.1, 0.1, 0.1, 0.1], [0.01, 0.01, 0.01, 0.01]])
    expect = (10 * math.log10(1 / 0.01) + 10 * math.log10(1 / 1e-4)) / 2   # mean of per-sample PSNRs
    assert float(psnr(x_hat, x)) == pytest.approx(expect, abs=1e-3)
    pooled = 10 * math.log10(1 / ((0.01 + 1e-4) / 2))
    assert float(psnr(x_hat, x, mode="pooled")) == pytest.approx(pooled, abs=1e-3)
    assert float(psnr(x_hat * 2, x * 2, peak=2.0)) == pytest.approx(expect, abs=1e-3)


def test_downsampling_readings_of_calibration_stage_7():
    """The subsampling offset and length, the downsampling blur's own units, where the noise enters,
    and the zero-filled input S^T y each compute what their docstrings say."""
    # the readings before stage 7 (centred blur, samples 0, 4, ..., 48), one field changed at a time
    P = lambda **kw: make_problem(dasjax.ProblemConfig(**{"name": "downsampling", "blur_alignment": "centred",
                                                          "ds_offset": 0, **kw}))
    base = P()
    picks = lambda p: np.flatnonzero(np.asarray(dasjax.problems.downsample_matrix(p.cfg)).sum(0))
    np.testing.assert_array_equal(picks(base), np.arange(0, 50, 4))                  # 13 samples
    np.testing.assert_array_equal(picks(P(ds_offset=2)), np.arange(2, 50, 4))        # 12 samples
    assert P(ds_samples=12).matrix.shape == (12, 50) and P(ds_offset=2).matrix.shape == (12, 50)
    with pytest.raises(ValueError, match="ds_samples=14"):
        P(ds_samples=14).matrix
    # the downsampling blur reads its own units; blur itself keeps blur_units
    np.testing.assert_allclose(P(ds_blur_units="pixel").matrix,
                               P(blur_units="pixel").matrix, atol=1e-7)
    assert not np.allclose(P(ds_blur_units="pixel").matrix, base.matrix)
    blur = make_problem(dasjax.ProblemConfig(name="blur", ds_blur_units="pixel"))
    np.testing.assert_array_equal(blur.matrix, make_problem(dasjax.ProblemConfig(name="blur")).matrix)
    # noise before an average-pooling subsampling is averaged over 4 samples: std sigma / 2
    x = jnp.zeros((4000, 50))
    for kw, std in (({}, 0.1), ({"noise_stage": "before_subsampling"}, 0.1),
                    ({"ds_mode": "avgpool"}, 0.1), ({"ds_mode": "avgpool", "noise_stage": "before_subsampling"}, 0.05)):
        y = P(**kw).measure(jax.random.key(3), x)
        assert abs(float(jnp.std(y)) - std) < 0.003, (kw, float(jnp.std(y)))
    # x0 = S^T y: the measurements at their own samples, zeros between
    b = P(x0="zero_fill").sample(jax.random.key(4), 8)
    x0 = np.asarray(b.x0)
    np.testing.assert_allclose(x0[:, ::4], np.asarray(b.y), atol=1e-6)
    mask = np.ones(50, bool)
    mask[::4] = False
    assert np.all(x0[:, mask] == 0)
    # the floor of the paper's downsampling rows (1.04-1.17 dB) is PSNR(S^T y) (docs/calibration.md)
    big = P(x0="zero_fill").sample(jax.random.key(5), 4000)
    assert 0.8 < float(psnr(big.x0, big.x)) < 1.4


def test_causal_blur_is_a_delayed_filter():
    """blur_alignment="causal": y_i = sum_k g_k x_(i-k), numpy's full convolution cut to the signal."""
    from dasjax.problems import blur_kernel
    cfg = dasjax.ProblemConfig(blur_alignment="causal")
    x = np.asarray(jax.random.normal(jax.random.key(0), (3, 50)))
    want = np.stack([np.convolve(r, blur_kernel(cfg), "full")[:50] for r in x])
    np.testing.assert_allclose(np.asarray(make_problem(cfg).forward(jnp.asarray(x))), want, rtol=1e-5, atol=1e-5)
    # its measurement is 3 samples late: PSNR(y) near the paper's all-ops blur floor (7.86-8.09 dB)
    b = make_problem(dasjax.ProblemConfig(blur_alignment="causal")).sample(jax.random.key(1), 4000)
    assert 7.0 < float(psnr(b.y, b.x)) < 8.0
