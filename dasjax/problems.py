"""Inverse problems y = A x + n: 1D cosine signals (paper §4.1) and 2D natural images (paper §4.4), PSNR.

1D: with 50 samples the operators are tiny, so they are dense matrices built once in
numpy: ``A x`` is ``x @ A.T`` and the adjoint ``A^T r`` is ``r @ A``, which makes
the adjoint exact by construction.  Signals have shape ``(batch, n)``.

2D (:class:`ImageProblem`): the same construction per image axis.  The Gaussian blur is
separable, ``A = A_H (x) A_W`` with the 1D 'same'-convolution matrices of :func:`conv_matrix`,
so ``A x = A_H x A_W^T`` and ``A^T r = A_H^T r A_W`` (exact adjoint again); denoising is A = I.
Images have shape ``(batch, H, W)``: random ``crop_size`` crops for training, the held-out
test images for evaluation (:meth:`ImageProblem.eval_sets`).

Every problem offers the same interface to the rest of the package, written down as the
:class:`InverseProblem` protocol.  Problems are registered by name (:func:`register_problem`), so
a user's problem is one call away: ``ProblemConfig.name`` accepts every registered name, and
every runner and API function builds the problem from the config through :func:`make_problem`.
The quickest user problem is a subclass of :class:`Problem` with its own ``matrix`` (the paper's
cosine signals, measured by the user's A)::

    class Inpainting(dasjax.Problem):          # keep every other sample
        @cached_property
        def matrix(self):
            return np.eye(self.cfg.n_points, dtype=np.float32)[::2]

    dasjax.register_problem("inpainting", Inpainting)
    cfg = dasjax.make_config(problem="inpainting")
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Hashable, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from . import options as component_options
from . import streams
from .config import ProblemConfig
from .registry import PROBLEMS

if TYPE_CHECKING:
    from .bsds import ImageSet


def gaussian_taps(size: int, sigma: float, spacing: float = 1.0) -> np.ndarray:
    """Normalised Gaussian taps g_k ~ exp(-(k s)^2 / (2 sigma^2)), k = -size//2..size//2."""
    half = size // 2
    k = np.arange(-half, half + 1, dtype=np.float64) * spacing
    g = np.exp(-k ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def blur_kernel(cfg: ProblemConfig, units: str | None = None) -> np.ndarray:
    """Normalised Gaussian taps g_k ~ exp(-(k s)^2 / (2 sigma_b^2)), k = -K//2..K//2.

    ``s`` is the tap spacing in the units sigma_b is measured in (register #3; default
    ``cfg.blur_units``): "omega" = the signal grid spacing pi/(n-1) (sigma = 3.12 samples at the
    defaults), "linspace" = taps on linspace(-1, 1, K) (0.6 samples), "pixel" = 1 (0.2 samples).
    """
    units = units or cfg.blur_units
    spacing = {"omega": math.pi / (cfg.n_points - 1),
               "linspace": 2.0 / (cfg.kernel_size - 1),
               "pixel": 1.0}[units]
    return gaussian_taps(cfg.kernel_size, cfg.blur_sigma, spacing)


def conv_matrix(n: int, g: np.ndarray, boundary: str = "zero", delay: int = 0) -> np.ndarray:
    """(n, n) matrix of the 'same' convolution of a length-n signal with taps g (zero or circular
    boundary); ``delay`` d shifts the output by d samples (y_i centred on x_(i-d))."""
    half = len(g) // 2
    B = np.zeros((n, n))
    for i in range(n):
        for t, w in enumerate(g):
            j = i + t - half - delay
            if boundary == "circular":
                B[i, j % n] += w
            elif 0 <= j < n:
                B[i, j] += w
    return B


def blur_matrix(cfg: ProblemConfig, units: str | None = None) -> np.ndarray:
    """(n, n) matrix of the convolution with the blur kernel (zero or circular boundary): centred
    ('same'), or causal (register #40: y_i = sum_k g_k x_(i-k), what ``scipy.signal.lfilter`` or
    ``np.convolve(x, g)[:n]`` compute, which delays the signal by half the kernel)."""
    delay = cfg.kernel_size // 2 if cfg.blur_alignment == "causal" else 0
    return conv_matrix(cfg.n_points, blur_kernel(cfg, units), cfg.boundary, delay)


def downsample_matrix(cfg: ProblemConfig) -> np.ndarray:
    """(m, n) subsampling: stride pick (indices ds_offset, ds_offset + 4, ...: 13 values for n=50 at
    offset 0) or average pooling over windows starting at ds_offset; ``ds_samples`` keeps the first m."""
    n, f, o = cfg.n_points, cfg.ds_factor, cfg.ds_offset
    if cfg.ds_mode == "stride":
        starts = np.arange(o, n, f)
        width = 1
    else:  # average pooling without padding (PyTorch AvgPool1d default, floor)
        starts = np.arange(o, n - f + 1, f)
        width = f
    if cfg.ds_samples is not None:
        if cfg.ds_samples > len(starts):
            raise ValueError(f"ds_samples={cfg.ds_samples} exceeds the {len(starts)} samples that fit "
                             f"(n_points={n}, ds_factor={f}, ds_offset={o}, ds_mode={cfg.ds_mode!r})")
        starts = starts[:cfg.ds_samples]
    if len(starts) == 0:
        raise ValueError(f"ds_offset={o} leaves no sample of the {n} points")
    S = np.zeros((len(starts), n))
    for i, a in enumerate(starts):
        S[i, a:a + width] = 1.0 / width
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


@dataclass(frozen=True)
class EvalSet:
    """``steps`` evaluation batches ``batch(b)`` (b traced); the first ``n_valid`` of the stacked
    per-sample results count (the rest pad the last batch to a fixed shape)."""
    steps: int
    n_valid: int
    batch: object


@runtime_checkable
class InverseProblem(Protocol):
    """What the search spaces, the training loops and the evaluation use of a problem.

    Signals have shape (B, *signal_shape), measurements (B, *measurement_shape).  A problem must
    be hashable, and ``cache_id`` must tell apart problems that compile to different programs."""
    cfg: Any                    # its ProblemConfig
    ndim: int                   # signal dimensions (1 or 2): the CNN's patches and the merge taps
    is_image: bool

    @property
    def cache_id(self) -> Any: ...
    @property
    def signal_shape(self) -> tuple[int, ...]: ...
    @property
    def measurement_shape(self) -> tuple[int, ...]: ...
    def forward(self, x: jax.Array) -> jax.Array: ...                 # A x
    def adjoint(self, r: jax.Array) -> jax.Array: ...                 # A^T r
    def data_grad(self, x: jax.Array, y: jax.Array) -> jax.Array: ...  # A^T (A x - y), the gradient layers' data term
    def operator_norm_sq(self) -> float: ...                          # ||A||^2 (tau_init="inverse_norm")
    def sample(self, key: jax.Array, batch_size: int, split: str = "train") -> "Batch": ...
    def eval_sets(self, key: jax.Array, n_batches: int, batch_size: int) -> list["EvalSet"]: ...


class Problem:
    """A linear inverse problem y = A x + n on 1D cosine signals, with its exact adjoint: the
    paper's blur (A = B) and, through ``sampling_matrix``, its downsampling (A = S B,
    :class:`DownsamplingProblem`).  Hashable by its config.  A subclass may replace ``matrix`` (A)
    to measure the same signals another way; ``input_matrix`` then gives x0 = y for a square A and
    A^T y otherwise (y under x0="measurement").  Nothing here depends on the problem's name."""

    ndim = 1
    is_image = False

    def __init__(self, cfg: ProblemConfig):
        self.cfg = cfg

    def __hash__(self):
        return hash(self.cfg)

    def __eq__(self, other):
        return type(other) is type(self) and other.cfg == self.cfg

    def __repr__(self):
        return f"{type(self).__name__}({self.cfg!r})"

    @property
    def cache_id(self) -> Hashable:
        """Everything about the problem that shapes a compiled program (used in cache keys); the
        config alone names a built-in problem."""
        return self.cfg if type(self) in (Problem, DownsamplingProblem) else (type(self).__qualname__, self.cfg)

    # --- operators ------------------------------------------------------------------------
    @property
    def blur_units(self) -> str:
        """The units of the blur's sigma (register #3)."""
        return self.cfg.blur_units

    @cached_property
    def sampling_matrix(self) -> np.ndarray | None:
        """S, the (m, n) subsampling after the blur, or None (no subsampling)."""
        return None

    @cached_property
    def matrix(self) -> np.ndarray:
        """The forward operator A as a dense (m, n) float32 matrix: B, or S B."""
        B = blur_matrix(self.cfg, self.blur_units)
        if self.sampling_matrix is not None:
            B = self.sampling_matrix @ B
        return B.astype(np.float32)

    @cached_property
    def noise_matrix(self) -> np.ndarray | None:
        """N with y = A x + n @ N^T for noise n on the signal grid (noise before the
        subsampling, register #38: N = S), or None: the noise is drawn on the measurements themselves."""
        if self.sampling_matrix is not None and self.cfg.noise_stage == "before_subsampling":
            return self.sampling_matrix.astype(np.float32)
        return None

    @cached_property
    def input_matrix(self) -> np.ndarray:
        """M with x0 = M y (register #6).  Where y lives on the signal grid (a square A, the blur)
        "data", "zero_fill" and "interp" are the identity.  Otherwise "data" is A^T; "zero_fill"
        (the default) S^T (each measurement at its own sample, zeros between) under a subsampling
        and A^T for another operator; "interp" interpolates the subsamples.  "adjoint" is A^T and
        "measurement" the identity always."""
        c, A, S = self.cfg, self.matrix, self.sampling_matrix
        square = A.shape[0] == A.shape[1]
        if c.x0 == "adjoint" or (c.x0 == "data" and not square):
            return A.T.copy()
        if c.x0 == "measurement" or square:
            return np.eye(c.n_points, dtype=np.float32)
        if c.x0 == "zero_fill":
            return A.T.copy() if S is None else np.ascontiguousarray((S > 0).T.astype(np.float32))
        if S is None:                                    # "interp" of an operator without samples
            raise ValueError(f"x0='interp' interpolates subsamples; problem {c.name!r} has no sampling_matrix")
        return interp_matrix(c, S).astype(np.float32)

    @property
    def signal_shape(self) -> tuple[int, ...]:
        return (self.cfg.n_points,)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.matrix.shape[0],)

    def forward(self, x: jax.Array) -> jax.Array:
        """A x for a batch (B, n) -> (B, m)."""
        return x @ jnp.asarray(self.matrix.T)

    def adjoint(self, r: jax.Array) -> jax.Array:
        """A^T r for a batch (B, m) -> (B, n)."""
        return r @ jnp.asarray(self.matrix)

    def data_grad(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Gradient of D(Ax, y) = 1/2 ||Ax - y||^2 with respect to x: A^T (A x - y)."""
        return self.adjoint(self.forward(x) - y)

    def operator_norm_sq(self) -> float:
        return float(np.linalg.norm(self.matrix, 2) ** 2)

    # --- data -----------------------------------------------------------------------------
    def sample_signals(self, key: jax.Array, batch_size: int) -> jax.Array:
        """x_i = a cos(f w_i + O_x) + O_y on 50 points of [-pi/2, pi/2]; f ~ U[0, 2pi], O ~ N(0, 1)."""
        c = self.cfg
        kf, kx, ky, ka = jax.random.split(key, 4)
        omega = jnp.linspace(-jnp.pi / 2, jnp.pi / 2, c.n_points)
        f = jax.random.uniform(kf, (batch_size, 1), minval=0.0, maxval=c.freq_max)
        ox = jax.random.normal(kx, (batch_size, 1))
        oy = jax.random.normal(ky, (batch_size, 1))
        amp: float | jax.Array = 1.0
        if c.amplitude is not None:
            amp = jax.random.uniform(ka, (batch_size, 1), minval=c.amplitude[0], maxval=c.amplitude[1])
        return amp * jnp.cos(f * omega + ox) + oy

    def measure(self, key: jax.Array, x: jax.Array) -> jax.Array:
        y = self.forward(x)
        N = self.noise_matrix
        if N is None:
            return y + self.cfg.noise_std * jax.random.normal(key, y.shape)
        return y + (self.cfg.noise_std * jax.random.normal(key, x.shape)) @ jnp.asarray(N.T)

    def sample(self, key: jax.Array, batch_size: int, split: str = "train") -> Batch:
        """A fresh batch of (clean, measured, network input); every call with a new key is new data.

        ``split`` ("train" / "val") does not matter here: training and validation samples come from
        the same generator, independent streams of keys tell them apart (paper §4.1, docs/design.md)."""
        ks, kn = jax.random.split(key)
        x = self.sample_signals(ks, batch_size)
        y = self.measure(kn, x)
        return Batch(x=x, y=y, x0=y @ jnp.asarray(self.input_matrix.T))

    def eval_sets(self, key: jax.Array, n_batches: int, batch_size: int) -> list[EvalSet]:
        """The final PSNR's data: ``n_batches`` fresh batches from the trial's EVAL stream."""
        return [EvalSet(n_batches, n_batches * batch_size,
                        lambda b: self.sample(streams.stream(key, streams.EVAL, b), batch_size, "val"))]


def psnr_from_mse(mse, peak: float = 1.0, mode: str = "per_sample"):
    """PSNR in dB from per-sample MSEs: "per_sample" averages 10 log10(peak^2 / mse_b) over samples
    (inversefed's batched=False, register #7); "pooled" is 10 log10(peak^2 / mean mse)."""
    if mode == "pooled":
        return 10.0 * jnp.log10(peak ** 2 / jnp.mean(mse))
    return jnp.mean(10.0 * jnp.log10(peak ** 2 / mse))


def psnr(x_hat: jax.Array | np.ndarray, x: jax.Array | np.ndarray, peak: float = 1.0,
         mode: str = "per_sample") -> jax.Array:
    """PSNR in dB of a batch (peak 1 by default, register #7)."""
    mse = jnp.mean((x_hat - x) ** 2, axis=tuple(range(1, x.ndim)))
    return psnr_from_mse(mse, peak, mode)


def mse_loss(x_hat, x):
    """Training / validation loss (register: MSE over batch and signal)."""
    return jnp.mean((x_hat - x) ** 2)


class _CropPool:
    """Images of different sizes stacked (zero-padded) into one uint8 array, for random crops in jit."""

    def __init__(self, images, crop: int):
        self.crop, self.n = crop, len(images)
        H = max(a.shape[0] for a in images)
        W = max(a.shape[1] for a in images)
        self.data = np.zeros((self.n, H, W), np.uint8)
        for i, a in enumerate(images):
            self.data[i, :a.shape[0], :a.shape[1]] = a
        # number of valid top-left corners per image and axis
        self.rows = np.asarray([a.shape[0] - crop + 1 for a in images], np.int32)
        self.cols = np.asarray([a.shape[1] - crop + 1 for a in images], np.int32)

    def crops(self, key, n: int):
        """n random crops (n, crop, crop) in [0, 1]: an image uniformly, then a position uniformly in it."""
        ki, kr, kc = jax.random.split(key, 3)
        i = jax.random.randint(ki, (n,), 0, self.n)
        r = jax.random.randint(kr, (n,), 0, jnp.asarray(self.rows)[i])
        c = jax.random.randint(kc, (n,), 0, jnp.asarray(self.cols)[i])
        data, c_ = jnp.asarray(self.data), self.crop
        take = lambda i, r, c: jax.lax.dynamic_slice(data, (i, r, c), (1, c_, c_))[0]
        return jax.vmap(take)(i, r, c).astype(jnp.float32) / 255.0


class ImageProblem:
    """2D denoising (A = I) or Gaussian deblurring of grayscale natural images (paper §4.4, register #25).

    Training (and search) batches are ``batch_size`` random ``crop_size`` crops of the training
    images with fresh noise; the final PSNRs are computed on the test images (full, or centre
    crops), with a fixed noise realisation (``eval_noise_seed``) shared by every trial and method.
    Hashable by its config and the pixels of its images.
    """

    ndim = 2
    is_image = True

    def __init__(self, cfg: ProblemConfig, images: ImageSet):
        from .bsds import DatasetError, SkippedImageWarning
        if not cfg.is_image:
            raise ValueError(f"ImageProblem needs an image problem, got problem={cfg.name!r}")
        self.cfg, self.images = cfg, images
        self.identity = cfg.name == "image_denoise"
        self.kernel = None if self.identity else gaussian_taps(cfg.kernel_size, cfg.image_blur_sigma)
        c = cfg.crop_size

        def croppable(imgs, names, split):
            keep = [a for a in imgs if min(a.shape) >= c]
            for a, n in zip(imgs, names):
                if min(a.shape) < c:
                    warnings.warn(f"skipped {split} image {n} ({a.shape[0]}x{a.shape[1]}): smaller than "
                                  f"crop_size={c}", SkippedImageWarning, stacklevel=3)
            if not keep:
                raise DatasetError(f"no {split} image of {images.label} is at least crop_size={c} pixels "
                                   f"on each side; lower crop_size")
            return keep

        self._train = _CropPool(croppable(images.train, images.train_names, "train"), c)
        self._val = self._train if cfg.val_split == "train" else \
            _CropPool(croppable(images.test, images.test_names, "test"), c)
        if not images.test:
            raise DatasetError(f"{images.label} has no test images")

    def __hash__(self):
        return hash(self.cache_id)

    def __eq__(self, other):
        return type(other) is type(self) and other.cache_id == self.cache_id

    def __repr__(self):
        return f"ImageProblem({self.cfg!r}, data={self.images.fingerprint})"

    @property
    def cache_id(self) -> Hashable:
        return (self.cfg, self.images.fingerprint)

    @property
    def data_label(self) -> str:
        """"BSDS300", or the embedded images' label saying NOT BSDS300."""
        return self.images.label

    # --- operators (separable, per axis) -----------------------------------------------------------
    def axis_matrix(self, n: int) -> np.ndarray:
        """(n, n) 1D blur matrix of one image axis of length n (float32)."""
        cache = self.__dict__.setdefault("_axis", {})
        if n not in cache:
            cache[n] = conv_matrix(n, self.kernel, self.cfg.boundary).astype(np.float32)
        return cache[n]

    def forward(self, x: jax.Array) -> jax.Array:
        """A x for a batch (B, H, W): A_H x A_W^T (identity for denoising)."""
        if self.identity:
            return x
        ah, aw = (jnp.asarray(self.axis_matrix(n)) for n in x.shape[-2:])
        return jnp.einsum("ij,bjk,lk->bil", ah, x, aw)

    def adjoint(self, r: jax.Array) -> jax.Array:
        """A^T r for a batch (B, H, W): A_H^T r A_W."""
        if self.identity:
            return r
        ah, aw = (jnp.asarray(self.axis_matrix(n)) for n in r.shape[-2:])
        return jnp.einsum("ji,bjk,kl->bil", ah, r, aw)

    def data_grad(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Gradient of 1/2 ||Ax - y||^2 with respect to x: A^T (A x - y)."""
        return self.adjoint(self.forward(x) - y)

    def operator_norm_sq(self) -> float:
        """||A||^2 on a training crop (the product of the two axes' norms, squared)."""
        if self.identity:
            return 1.0
        return float(np.linalg.norm(self.axis_matrix(self.cfg.crop_size), 2) ** 4)

    @property
    def signal_shape(self) -> tuple[int, ...]:
        return (self.cfg.crop_size, self.cfg.crop_size)

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return self.signal_shape

    # --- data ----------------------------------------------------------------------------------------
    def measure(self, key: jax.Array, x: jax.Array) -> jax.Array:
        """y = A x + white noise of std ``noise_std`` on the image grid."""
        return self.forward(x) + self.cfg.noise_std * jax.random.normal(key, x.shape)

    def network_input(self, y: jax.Array) -> jax.Array:
        """x0 = A^T y ("adjoint"), else the measurement y itself ("data", "measurement": y lies on the image grid)."""
        return self.adjoint(y) if self.cfg.x0 == "adjoint" else y

    def sample(self, key: jax.Array, batch_size: int, split: str = "train") -> Batch:
        """Random crops with fresh noise: training crops, or for ``split="val"`` crops of
        ``cfg.val_split`` (by default the training images again, from an independent key stream)."""
        ks, kn = jax.random.split(key)
        x = (self._train if split == "train" else self._val).crops(ks, batch_size)
        y = self.measure(kn, x)
        return Batch(x=x, y=y, x0=self.network_input(y))

    def test_images(self) -> list[np.ndarray]:
        """The clean evaluation images (uint8): full test images, or centre crops of at most
        ``eval_crop_size`` pixels per side."""
        out = []
        for a in self.images.test:
            if self.cfg.eval_images == "center_crop":
                h, w = min(a.shape[0], self.cfg.eval_crop_size), min(a.shape[1], self.cfg.eval_crop_size)
                r, c = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
                a = a[r:r + h, c:c + w]
            out.append(a)
        return out

    def test_noise_key(self, key: jax.Array, j: int | jax.Array) -> jax.Array:
        """Key of test image j's measurement noise: fixed by eval_noise_seed, or the trial's EVAL stream."""
        if self.cfg.eval_noise_seed is None:
            return streams.stream(key, streams.EVAL, j)
        return jax.random.fold_in(jax.random.key(self.cfg.eval_noise_seed), j)

    def test_batch(self, key: jax.Array, images: jax.Array | np.ndarray,
                   indices: jax.Array | np.ndarray) -> Batch:
        """Clean images (n, H, W) uint8 with their global test indices -> a Batch with their noise."""
        x = jnp.asarray(images).astype(jnp.float32) / 255.0
        noise = jax.vmap(lambda j: jax.random.normal(self.test_noise_key(key, j), x.shape[1:]))(indices)
        y = self.forward(x) + self.cfg.noise_std * noise
        return Batch(x=x, y=y, x0=self.network_input(y))

    def eval_sets(self, key: jax.Array, n_batches: int = 0, batch_size: int = 0) -> list[EvalSet]:
        """The test images, grouped by shape, ``eval_images_per_batch`` per batch (the last batch of a
        group is padded with repeats that are dropped again).  ``n_batches`` / ``batch_size`` are the
        1D problem's and are not used: the test set fixes the evaluation data."""
        imgs = self.test_images()
        groups: dict = {}
        for j, a in enumerate(imgs):
            groups.setdefault(a.shape, []).append(j)
        sets = []
        for shape, idx in groups.items():
            m = min(self.cfg.eval_images_per_batch, len(idx))
            steps = -(-len(idx) // m)
            padded = idx + [idx[0]] * (steps * m - len(idx))
            stack = np.stack([imgs[j] for j in padded]).reshape((steps, m) + shape)
            gidx = np.asarray(padded, np.int32).reshape(steps, m)

            def batch(b, stack=stack, gidx=gidx):
                return self.test_batch(key, jnp.asarray(stack)[b], jnp.asarray(gidx)[b])
            sets.append(EvalSet(steps, len(idx), batch))
        return sets


class DownsamplingProblem(Problem):
    """The paper's downsampling: the blur, then every ``ds_factor``-th sample (A = S B)."""

    @property
    def blur_units(self) -> str:
        """register #37: the downsampling problem's own units of the blur's sigma ("same": the blur's)."""
        return self.cfg.blur_units if self.cfg.ds_blur_units == "same" else self.cfg.ds_blur_units

    @cached_property
    def sampling_matrix(self) -> np.ndarray:
        return downsample_matrix(self.cfg)


def _image_problem(cfg: ProblemConfig):
    from .bsds import load_images
    return ImageProblem(cfg, load_images(cfg))


@dataclass(frozen=True)
class ProblemEntry:
    factory: Callable[[ProblemConfig], Any]     # ProblemConfig -> an InverseProblem
    image: bool = False                         # 2D images (the BSDS data fields apply)


def register_problem(name: str, factory: Callable[[ProblemConfig], Any], image: bool = False,
                     replace: bool = False, options: type | None = None) -> None:
    """Make ``ProblemConfig(name=name)`` build ``factory(cfg)``, an :class:`InverseProblem` (a
    :class:`Problem` subclass is one).  ``replace=True`` redefines a name.  ``options``: a
    dataclass of the problem's own config fields, set with ``problem_options`` and read with
    :func:`dasjax.problem_options` (:mod:`dasjax.options`)."""
    if not callable(factory):
        raise ValueError(f"problem {name!r}: the factory must be callable, got {factory!r}")
    component_options.check_declaration("problem", name, options)
    PROBLEMS.add(name, ProblemEntry(factory, image), replace=replace)
    component_options.declare("problem", name, options)


def unregister_problem(name: str) -> None:
    """Remove a user problem (the paper's cannot be removed)."""
    PROBLEMS.remove(name)
    component_options.declare("problem", name, None)


def problem_entry(name: str) -> ProblemEntry:
    return PROBLEMS.get(name)


PROBLEMS.add("blur", ProblemEntry(Problem), builtin=True)                       # 1D cosine signals
PROBLEMS.add("downsampling", ProblemEntry(DownsamplingProblem), builtin=True)
for _name in ("image_denoise", "image_blur"):         # 2D natural images, the BSDS300 protocol
    PROBLEMS.add(_name, ProblemEntry(_image_problem, image=True), builtin=True)


def make_problem(cfg: ProblemConfig) -> InverseProblem:
    """The problem a config names, from the registry: :class:`Problem` (1D), :class:`ImageProblem`
    (2D, loads the images), or a user's."""
    problem = problem_entry(cfg.name).factory(cfg)
    if not isinstance(problem, InverseProblem):
        missing = [m for m in ("cfg", "ndim", "is_image", "cache_id", "signal_shape", "measurement_shape",
                               "forward", "adjoint", "data_grad", "operator_norm_sq", "sample", "eval_sets")
                   if not hasattr(problem, m)]
        raise TypeError(f"problem {cfg.name!r}: the factory returned {type(problem).__name__}, which lacks "
                        f"{missing} of the InverseProblem interface (dasjax.problems.InverseProblem)")
    return problem
