"""1D inverse problems: cosine signals, blur / blur+downsampling operators, PSNR (spec §1).

With 50 samples the operators are tiny, so they are dense matrices built once in
numpy: ``A x`` is ``x @ A.T`` and the adjoint ``A^T r`` is ``r @ A``, which makes
the adjoint exact by construction.  Signals have shape ``(batch, n)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from .config import ProblemConfig


def blur_kernel(cfg: ProblemConfig) -> np.ndarray:
    """Normalised Gaussian taps g_k ~ exp(-(k s)^2 / (2 sigma_b^2)), k = -K//2..K//2.

    ``s`` is the tap spacing in the units sigma_b is measured in (register #3):
    "omega" = the signal grid spacing pi/(n-1) (sigma = 3.12 samples at the defaults),
    "linspace" = taps on linspace(-1, 1, K) (0.6 samples), "pixel" = 1 (0.2 samples).
    """
    half = cfg.kernel_size // 2
    spacing = {"omega": math.pi / (cfg.n_points - 1),
               "linspace": 2.0 / (cfg.kernel_size - 1),
               "pixel": 1.0}[cfg.blur_units]
    k = np.arange(-half, half + 1, dtype=np.float64) * spacing
    g = np.exp(-k ** 2 / (2 * cfg.blur_sigma ** 2))
    return g / g.sum()


def blur_matrix(cfg: ProblemConfig) -> np.ndarray:
    """(n, n) matrix of the 'same' convolution with the blur kernel (zero or circular boundary)."""
    n, g, half = cfg.n_points, blur_kernel(cfg), cfg.kernel_size // 2
    B = np.zeros((n, n))
    for i in range(n):
        for t, w in enumerate(g):
            j = i + t - half
            if cfg.boundary == "circular":
                B[i, j % n] += w
            elif 0 <= j < n:
                B[i, j] += w
    return B


def downsample_matrix(cfg: ProblemConfig) -> np.ndarray:
    """(m, n) subsampling: stride pick (indices 0, 4, ..., 13 values for n=50) or average pooling."""
    n, f = cfg.n_points, cfg.ds_factor
    if cfg.ds_mode == "stride":
        idx = np.arange(0, n, f)
        S = np.zeros((len(idx), n))
        S[np.arange(len(idx)), idx] = 1.0
    else:  # average pooling without padding (PyTorch AvgPool1d default, floor)
        m = n // f
        S = np.zeros((m, n))
        for i in range(m):
            S[i, i * f:(i + 1) * f] = 1.0 / f
    return S


def interp_matrix(cfg: ProblemConfig, S: np.ndarray) -> np.ndarray:
    """(n, m) linear interpolation of the measurements back onto the signal grid."""
    n = cfg.n_points
    pos = (S * np.arange(n)).sum(1) / S.sum(1)    # centre of each measurement on the grid
    M = np.zeros((n, len(pos)))
    for i in range(n):
        if i <= pos[0]:
            M[i, 0] = 1.0
        elif i >= pos[-1]:
            M[i, -1] = 1.0
        else:
            j = np.searchsorted(pos, i) - 1
            t = (i - pos[j]) / (pos[j + 1] - pos[j])
            M[i, j], M[i, j + 1] = 1 - t, t
    return M


@dataclass(frozen=True)
class Batch:
    x: jnp.ndarray    # clean signal (B, n)
    y: jnp.ndarray    # measurement (B, m)
    x0: jnp.ndarray   # network input (B, n)


jax.tree_util.register_pytree_node(
    Batch, lambda b: ((b.x, b.y, b.x0), None), lambda _, c: Batch(*c))


class Problem:
    """A linear inverse problem y = A x + n with its exact adjoint.  Hashable by its config."""

    ndim = 1

    def __init__(self, cfg: ProblemConfig):
        self.cfg = cfg

    def __hash__(self):
        return hash(self.cfg)

    def __eq__(self, other):
        return isinstance(other, Problem) and other.cfg == self.cfg

    # --- operators ------------------------------------------------------------------------
    @cached_property
    def matrix(self) -> np.ndarray:
        """The forward operator A as a dense (m, n) float32 matrix."""
        B = blur_matrix(self.cfg)
        if self.cfg.name == "downsampling":
            B = downsample_matrix(self.cfg) @ B
        return B.astype(np.float32)

    @cached_property
    def input_matrix(self) -> np.ndarray:
        """M with x0 = M y (register #6): A^T, identity (blur) or interpolation (downsampling);
        "data" is the identity where y lives on the signal grid (blur) and A^T otherwise."""
        c = self.cfg
        if c.x0 == "data":
            return np.eye(c.n_points, dtype=np.float32) if c.name == "blur" else self.matrix.T.copy()
        if c.x0 == "adjoint":
            return self.matrix.T.copy()
        if c.x0 == "measurement":
            return np.eye(c.n_points, dtype=np.float32)
        if c.name == "blur":
            return np.eye(c.n_points, dtype=np.float32)
        return interp_matrix(c, downsample_matrix(c)).astype(np.float32)

    @property
    def signal_shape(self) -> tuple[int, ...]:
        return (self.cfg.n_points,)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.matrix.shape[0],)

    def forward(self, x):
        """A x for a batch (B, n) -> (B, m)."""
        return x @ jnp.asarray(self.matrix.T)

    def adjoint(self, r):
        """A^T r for a batch (B, m) -> (B, n)."""
        return r @ jnp.asarray(self.matrix)

    def data_grad(self, x, y):
        """Gradient of D(Ax, y) = 1/2 ||Ax - y||^2 with respect to x: A^T (A x - y)."""
        return self.adjoint(self.forward(x) - y)

    def operator_norm_sq(self) -> float:
        return float(np.linalg.norm(self.matrix, 2) ** 2)

    # --- data -----------------------------------------------------------------------------
    def sample_signals(self, key, batch_size: int):
        """x_i = a cos(f w_i + O_x) + O_y on 50 points of [-pi/2, pi/2]; f ~ U[0, 2pi], O ~ N(0, 1)."""
        c = self.cfg
        kf, kx, ky, ka = jax.random.split(key, 4)
        omega = jnp.linspace(-jnp.pi / 2, jnp.pi / 2, c.n_points)
        f = jax.random.uniform(kf, (batch_size, 1), minval=0.0, maxval=c.freq_max)
        ox = jax.random.normal(kx, (batch_size, 1))
        oy = jax.random.normal(ky, (batch_size, 1))
        amp = 1.0
        if c.amplitude is not None:
            amp = jax.random.uniform(ka, (batch_size, 1), minval=c.amplitude[0], maxval=c.amplitude[1])
        return amp * jnp.cos(f * omega + ox) + oy

    def measure(self, key, x):
        y = self.forward(x)
        return y + self.cfg.noise_std * jax.random.normal(key, y.shape)

    def sample(self, key, batch_size: int) -> Batch:
        """A fresh batch of (clean, measured, network input); every call with a new key is new data."""
        ks, kn = jax.random.split(key)
        x = self.sample_signals(ks, batch_size)
        y = self.measure(kn, x)
        return Batch(x=x, y=y, x0=y @ jnp.asarray(self.input_matrix.T))


def psnr_from_mse(mse, peak: float = 1.0, mode: str = "per_sample"):
    """PSNR in dB from per-sample MSEs: "per_sample" averages 10 log10(peak^2 / mse_b) over samples
    (inversefed's batched=False, spec §1.7); "pooled" is 10 log10(peak^2 / mean mse)."""
    if mode == "pooled":
        return 10.0 * jnp.log10(peak ** 2 / jnp.mean(mse))
    return jnp.mean(10.0 * jnp.log10(peak ** 2 / mse))


def psnr(x_hat, x, peak: float = 1.0, mode: str = "per_sample"):
    """PSNR in dB of a batch (peak 1 by default, spec §1.7)."""
    mse = jnp.mean((x_hat - x) ** 2, axis=tuple(range(1, x.ndim)))
    return psnr_from_mse(mse, peak, mode)


def mse_loss(x_hat, x):
    """Training / validation loss (register: MSE over batch and signal)."""
    return jnp.mean((x_hat - x) ** 2)


def make_problem(cfg: ProblemConfig) -> Problem:
    return Problem(cfg)
