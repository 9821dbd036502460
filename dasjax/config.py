"""Configuration: frozen, validated dataclasses.

Every choice the paper leaves open (docs/register.md, the "register") is a field here, with the
default the evidence in docs/calibration.md chose, so a user can switch it.  Static choices (problem, op set,
optimizer *type*) live in the hashable config; numbers that may differ per trial
(learning rates, weight decays, warm-up / scheduler switches) live in
:class:`dasjax.hparams.HParams` and are traced.

Each field declares the values it accepts next to its default (:mod:`dasjax.fields`); one validator
checks them, and the problem and space names come from their registries.  docs/register.md lists
every register row with the field that implements it, its choices and the evidence for its default;
tests/test_config.py checks that each non-default choice changes the computation.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import algorithms  # noqa: F401  (fills the algorithm registry the search section checks against)
from . import options as component_options
from .fields import Checked, Rule, choice, flag, integer, interval, nonneg, positive, registered, rule_of
from .operations import op_names
from .registry import ALGORITHMS as ALGORITHM_REGISTRY
from .registry import PROBLEMS as PROBLEM_REGISTRY
from .registry import SPACES as SPACE_REGISTRY

# the paper's two op sets; any tuple of registered op names (dasjax.operations) is an op set too
OP_SETS = {"good": ("lg", "net"), "all": ("lg", "net", "roll", "noise")}
# the paper's 1D problems (the table runners' default); every registered problem is allowed
# (dasjax.problems.register_problem: these two, the 2D image problems and the user's)
PROBLEMS = ("blur", "downsampling")
IMAGE_PROBLEMS = ("image_denoise", "image_blur")   # the paper's 2D problems (Table 4's runner)
EMBEDDED_IMAGES = ("grace_hopper", "s1045", "jacksboro_dem")   # matplotlib's bundled sample data


def resolve_op_set(op_set) -> tuple[str, ...]:
    """'good' / 'all' or an explicit sequence of op names -> tuple of op names."""
    if isinstance(op_set, str):
        if op_set in OP_SETS:
            return OP_SETS[op_set]
        raise ValueError(f"op_set={op_set!r} is not allowed; choose one of {list(OP_SETS)} "
                         f"or a tuple of op names from {list(op_names())}")
    ops = tuple(op_set)
    if not ops:
        raise ValueError("op_set must name at least one operation")
    for op in ops:
        if op not in op_names():
            raise ValueError(f"op_set contains unknown operation {op!r}; allowed: {list(op_names())} "
                             "(add one with dasjax.operations.register_op)")
    if len(set(ops)) != len(ops):
        raise ValueError(f"op_set={ops!r} names an operation twice")
    return ops


@dataclass(frozen=True)
class ProblemConfig(Checked):
    """The inverse problem: 1D cosine signals (paper §4.1) or 2D natural images (paper §4.4).

    The 2D problems (``image_denoise``: A = I; ``image_blur``: a 7x7 Gaussian blur) read
    grayscale images from a BSDS300 folder (``data_dir``, see :mod:`dasjax.bsds`) and train on
    random ``crop_size`` crops; they ignore the 1D-only fields (n_points, blur_sigma/blur_units,
    blur_alignment, ds_*, noise_stage, amplitude, freq_max); x0 "zero_fill" and "data" are y there.  ``noise_std``, ``kernel_size``, ``boundary``, ``x0`` and the
    PSNR fields apply to both.
    """
    name: str = registered("blur", PROBLEM_REGISTRY, label="problem")   # any registered problem
    n_points: int = positive(50, integer=True)          # grid on [-pi/2, pi/2]
    noise_std: float = nonneg(0.10)                     # register #1 (0.01 = literal text)
    blur_sigma: float = positive(0.2)
    blur_units: str = choice("omega", ("omega", "linspace", "pixel"))          # register #3
    kernel_size: int = positive(7, odd=True)
    boundary: str = choice("zero", ("zero", "circular"))                       # register #4
    # register #40: the blur's alignment with the signal: "centred" ('same' convolution) or "causal"
    # (y_i = sum_k g_k x_(i-k): a filter, delayed by half the kernel; stage 7's default, calibration stage 8)
    blur_alignment: str = choice("centred", ("centred", "causal"))
    ds_factor: int = positive(4, integer=True)
    ds_mode: str = choice("stride", ("stride", "avgpool"))                     # register #5
    # register #36 (calibration stage 7): the first kept sample (2 -> indices 2, 6, ..., 46; 0 -> 0,
    # 4, ..., 48, before stage 7) and how many are kept (None: every one that fits, 12 at 2, 13 at 0)
    ds_offset: int = nonneg(2, integer=True)
    ds_samples: int | None = positive(None, integer=True, optional=True)
    # register #37: the blur's sigma units in the downsampling problem ("same" = blur_units); the
    # paper states sigma_b = 0.2 once, for the blur it reuses before subsampling
    ds_blur_units: str = choice("same", ("same", "omega", "linspace", "pixel"))
    # register #38: where the measurement noise enters the downsampling problem: "measurement"
    # (y = S B x + n, on the 13 samples) or "before_subsampling" (y = S (B x + n))
    noise_stage: str = choice("measurement", ("measurement", "before_subsampling"))
    # register #6: "zero_fill" = the measurements on the signal grid: y itself (blur, images), S^T y
    # (downsampling: each measurement at its own sample, zeros between), calibration stage 7;
    # "data" = y on blur, A^T y on downsampling (stages 2-6); "adjoint" = A^T y always (the spec's
    # proposal, used by the H100 Table 1 run); "measurement" = y; "interp"
    x0: str = choice("zero_fill", ("data", "adjoint", "measurement", "interp", "zero_fill"))
    amplitude: tuple[float, float] | None = None   # register #8: None -> amplitude 1
    freq_max: float = positive(2 * math.pi)             # f ~ U[0, freq_max]
    psnr_peak: float = positive(1.0)                    # register #7
    psnr_mode: str = choice("per_sample", ("per_sample", "pooled"))   # register #7: mean of PSNRs | pooled
    # --- 2D images (docs/bsds.md; every item NOT STATED in the paper) ---
    data_dir: str | None = None        # BSDS300 folder (images/train, images/test); None: $DASJAX_BSDS300,
    #                                    and without it the embedded sample images; "embedded" forces those
    crop_size: int = positive(40, integer=True)          # random square training crops (DnCNN standard)
    image_blur_sigma: float = positive(1.0)   # image_blur: Gaussian sigma in pixels (kernel_size x kernel_size taps)
    val_split: str = choice("train", ("train", "test"))  # crops for the search's alpha step / retraining val curve
    eval_images: str = choice("full", ("full", "center_crop"))   # architecture / one-shot PSNR on the test images
    eval_crop_size: int = positive(256, integer=True)    # side of the centre crop when eval_images = "center_crop"
    # test images per evaluation batch (memory; results only change through the noise op's random
    # draws, which follow the batches)
    eval_images_per_batch: int = positive(4, integer=True)
    # fixed noise of the test images (same for every trial and method); None: fresh noise per trial
    # from the trial's EVAL stream
    eval_noise_seed: int | None = nonneg(0, integer=True, optional=True)
    # evaluate on the first N test images only (None: all, 100 in BSDS300)
    max_test_images: int | None = positive(None, integer=True, optional=True)
    embedded_images: tuple[str, ...] = EMBEDDED_IMAGES   # the fallback images (NOT BSDS300)
    # right columns of each embedded image held out as its test image
    embedded_test_fraction: float = interval(0.25, 0, 1, high_open=True)
    # overrides of a registered problem's own options ((name, value), ...; make_config also takes a
    # dict): dasjax.options, read by the problem with dasjax.problem_options(cfg)
    problem_options: tuple = ()

    def __repr__(self):
        return _silent_repr(self, "problem")

    @property
    def is_image(self) -> bool:
        """True for the 2D image problems (paper §4.4) and user problems registered as images."""
        return PROBLEM_REGISTRY.get(self.name).image

    def _normalize(self):
        if self.amplitude is not None:
            a = tuple(self.amplitude)
            if len(a) != 2 or not all(isinstance(v, (int, float)) for v in a) or not (0 <= a[0] <= a[1]):
                raise ValueError(f"amplitude={self.amplitude!r} must be None or a pair (low, high) with 0 <= low <= high")
            object.__setattr__(self, "amplitude", (float(a[0]), float(a[1])))
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            object.__setattr__(self, "data_dir", str(self.data_dir))     # e.g. a pathlib.Path
        names = (self.embedded_images,) if isinstance(self.embedded_images, str) else tuple(self.embedded_images)
        object.__setattr__(self, "embedded_images", names)
        object.__setattr__(self, "problem_options", component_options.as_pairs(self.problem_options, "problem_options"))

    def _check(self):
        if self.x0 == "measurement" and self.name == "downsampling":
            raise ValueError("x0='measurement' needs a measurement of signal length; use it with problem='blur' "
                             "or an image problem")
        if self.data_dir == "":
            raise ValueError("data_dir='' is empty; give a BSDS300 folder, 'embedded', or None")
        if self.crop_size < 3:
            raise ValueError(f"crop_size={self.crop_size} must be at least 3 pixels")
        if not self.embedded_images:
            raise ValueError("embedded_images must name at least one image")
        one_image = Rule("choice", choices=EMBEDDED_IMAGES)     # each name is a choice
        for n in self.embedded_images:
            one_image.check("embedded_images", n)
        if self.name in PROBLEM_REGISTRY:
            component_options.build("problem", self.name, dict(self.problem_options))
        if self.is_image and self.x0 not in ("data", "adjoint", "measurement", "zero_fill"):
            raise ValueError(f"x0={self.x0!r} is not allowed for problem={self.name!r}; "
                             "choose one of ['data', 'adjoint', 'measurement', 'zero_fill']")


@dataclass(frozen=True)
class SpaceConfig(Checked):
    """Search space and candidate operations (paper §3.1).

    The cell fields (register #19-#22) only matter for ``space="cell"``; ``n_layers``
    only for ``space="sequential"``.  The cell space appends the zero op to the op set.
    """
    space: str = registered("sequential", SPACE_REGISTRY)   # "sequential" | "cell" (paper §3.1.2) | a user's
    op_set: Any = "good"               # "good" | "all" | tuple of op names
    n_layers: int = positive(10, integer=True)
    width: int = positive(64, integer=True)             # register #10
    kernel_size: int = positive(3, odd=True)            # register #10
    bias: bool = flag(True)                  # register #10
    global_skip: bool = flag(True)           # register #12
    tau_init: Any = 1.0                # register #9: float or "inverse_norm" (1/||A||^2)
    tau_learnable: bool = flag(True)         # register #9
    # (ext. register) F inside the learnable gradient layer is trained (False: F stays at its random
    # init; a calibration hypothesis)
    lg_train_f: bool = flag(True)
    # (ext. register) the data-term gradient A^T(Ax - y) of the gradient layers (lg, noise):
    # "differentiable" = part of the graph (the gradient of the loss flows through it), or
    # "detached" = a constant of the backward pass, as torch.autograd.grad(D, x) without
    # create_graph=True computes it (the paper writes the layer with "grad_x D(Ax, y)")
    grad_term: str = choice("detached", ("differentiable", "detached"))   # calibration stage 4 (docs/calibration.md)
    # register #2: unit white noise (calibration stages 5 and 8; 0.10, Table 6's "Noise Level", in
    # stage 7, with the causal blur)
    noise_layer_std: float = nonneg(1.0)
    # register #2: the noise layer draws fresh noise in eval mode too (False: only in train mode, so
    # the evaluated network sees a plain gradient step)
    noise_eval: bool = flag(True)
    # register #2, where the noise enters: "additive" = x - tau A^T(Ax - y) + std * eps (after the step);
    # "gradient" = x - tau (A^T(Ax - y) + std * eps), a noisy gradient whose noise the learnable step
    # size tau scales (the paper's "gradient layer with white Gaussian noise" read as a noisy gradient)
    noise_form: str = choice("gradient", ("additive", "gradient"))   # calibration stage 5 (was "additive")
    noise_tau_learnable: bool = flag(True)   # register #9 flag
    roll_shift: int = integer(1)       # register #11
    # register #11, "rolls the inputs in all dimensions": "signal" = the signal axes only (a spatial
    # roll, which the next convolution can undo); "all" = every axis, the batch axis included
    # (torch.roll over all dims: each sample receives a neighbour's signal); "flat" = the flattened
    # batch tensor (torch.roll without dims: one element per sample crosses to the next sample)
    roll_axes: str = choice("all", ("signal", "all", "flat"))   # calibration stage 5 (was "signal")
    alpha_init_std: float = nonneg(1e-3)                # register #13
    bn_momentum: float = interval(0.1, 0, 1)            # PyTorch convention (weight of the new batch)
    bn_eps: float = positive(1e-5)
    bn_unbiased_running_var: bool = flag(True)   # PyTorch updates running_var with the unbiased variance
    # the BatchNorm statistics of an evaluation (architecture / one-shot PSNR, validation loss):
    # "running" (model.eval(), PyTorch's convention) or "batch" (each evaluation batch's own, what a
    # network never switched to eval mode computes); register #39, calibration stage 7
    bn_eval: str = choice("running", ("running", "batch"))
    # float32 matmuls: "float32" = true float32 everywhere.  JAX's own default ("default") runs
    # float32 dots in TF32 on Ampere/Hopper GPUs (10-bit mantissa), which the analytic BatchNorm
    # statistics (E[x^2] - E[x]^2 of patch covariances) do not tolerate well; on CPU both are float32.
    matmul_precision: str = choice("float32", ("float32", "tensorfloat32", "bfloat16", "default"))
    # --- cell space (docs/cell_space.md) ---
    # register #19: states s_1..s_N per cell, each fed by all predecessors (>= 2: the last two are merged)
    cell_states: int = positive(5, integer=True)
    n_cells: int = positive(2, integer=True)            # cells in succession (cell 2's input = cell 1's output)
    merge_kernel: int = positive(1, odd=True)           # register #22: kernel of the conv merging concat(s_N-1, s_N)
    share_cell_alpha: bool = flag(True)                 # register #21: one alpha for all cells (False: one per cell)
    # register #20: "argmax" (per edge, incl. zero) | "top2" (DARTS)
    cell_discretization: str = choice("argmax", ("argmax", "top2"))
    # the rest of the cell's structure, which the paper does not state (calibration stage 6):
    # where the skip connection goes: "global" = x_hat = x0 + cells(x0) (as global_skip in the
    # sequential space), "per_cell" = every cell adds its input to its merged output, "none"
    cell_skip: str = choice("global", ("global", "per_cell", "none"))
    # how a state combines its incoming edges: "sum" (DARTS) or "mean" (the sum over its i edges / i,
    # zero edges included, so a state's scale does not grow with its number of inputs)
    cell_combine: str = choice("sum", ("sum", "mean"))
    # the input node s_0 of every cell after the first: "previous" = the previous cell's output (the
    # paper's "in succession"); "network_input" = x0 for every cell, so only the last cell reaches
    # the output (what a loop that passes the network input to every cell computes)
    cell_input: str = choice("previous", ("previous", "network_input"))
    merge_bias: bool = flag(True)      # the merge conv has a bias
    # after the merge conv: "none", or "batch" = a BatchNorm over its one channel (affine, running
    # statistics as the CNNs' BN); calibration stage 6 (docs/calibration.md; was "none")
    merge_norm: str = choice("batch", ("none", "batch"))
    # the merge conv's init: "pytorch" (weight and bias U(+-1/sqrt(fan_in)), Conv1d's default),
    # "average" (the mean of the two states: 1/2 at the centre tap, no bias), "zero" (all zeros: with
    # a skip the network starts as the identity)
    merge_init: str = choice("pytorch", ("pytorch", "average", "zero"))
    # overrides of a registered space's and ops' own options (dasjax.options): ((name, value), ...)
    # and (("<op>.<name>", value), ...); make_config also takes dicts
    space_options: tuple = ()
    op_options: tuple = ()

    def __repr__(self):
        return _silent_repr(self, "space")

    def _normalize(self):
        ops = resolve_op_set(self.op_set)           # validates; keeps "good"/"all" as names
        if not isinstance(self.op_set, str):
            object.__setattr__(self, "op_set", ops)
        for name in ("space_options", "op_options"):
            object.__setattr__(self, name, component_options.as_pairs(getattr(self, name), name))

    def _check(self):
        if self.space == "sequential" and "zero" in self.ops:
            raise ValueError("op 'zero' is only for the cell space; the sequential space has no zero op")
        if not (self.tau_init == "inverse_norm" or
                (isinstance(self.tau_init, (int, float)) and not isinstance(self.tau_init, bool))):
            raise ValueError(f"tau_init={self.tau_init!r} must be a number or 'inverse_norm'")
        if self.cell_states < 2:
            raise ValueError(f"cell_states={self.cell_states} must be >= 2 (the last two states are merged)")
        if self.space == "cell" and not self.global_skip and self.cell_skip == "global":
            raise ValueError("global_skip is the sequential space's switch; the cell space's skip is "
                             "cell_skip ('global', 'per_cell' or 'none'): set cell_skip='none' for no skip")
        if self.space == "cell" and all(op == "zero" for op in self.ops):
            raise ValueError("op_set of the cell space needs at least one operation besides 'zero'")
        if self.space in SPACE_REGISTRY:
            component_options.build("space", self.space, dict(self.space_options))
        for op, values in component_options.split_op_pairs(self.op_options).items():
            if op not in op_names():
                raise ValueError(f"op_options: op {op!r} is not registered; registered ops: {list(op_names())}")
            component_options.build("op", op, values)

    @property
    def ops(self) -> tuple[str, ...]:
        return resolve_op_set(self.op_set)

    @property
    def edge_ops(self) -> tuple[str, ...]:
        """The candidates of one mixed layer / edge (alpha's columns): the op set, plus 'zero' in the cell space."""
        ops = self.ops
        return ops + ("zero",) if self.space == "cell" and "zero" not in ops else ops

    @property
    def op_set_name(self) -> str:
        for name, ops in OP_SETS.items():
            if ops == self.ops:
                return name
        return "+".join(self.ops)


@dataclass(frozen=True)
class ScheduleConfig(Checked):
    """Meaning of "warm up" and the "Linear" scheduler (register #16/#17)."""
    warmup_epochs: int = nonneg(5)     # register #17: W = E // 10
    # "ramp": lr*(e+1)/W | "ramp_from_zero": lr*e/W | "freeze": lr 0 for W epochs
    warmup_mode: str = choice("ramp", ("ramp", "ramp_from_zero", "freeze"))
    # register #16: "multistep" (x gamma at milestones) | "linear_decay"
    kind: str = choice("multistep", ("multistep", "linear_decay"), label="scheduler kind")
    milestone_divisors: tuple[float, ...] = (2.667, 1.6, 1.142)   # milestones = E // d  -> 18, 31, 43 at E=50
    gamma: float = positive(0.1)
    adam_b1: float = interval(0.9, 0, 1, low_open=False, high_open=True)   # DARTS used (0.5, 0.999) for alpha
    adam_b2: float = interval(0.999, 0, 1, low_open=False, high_open=True)
    adam_eps: float = positive(1e-8)
    # optimizer "sgd_nesterov" only ([GC] SGD, Nesterov)
    sgd_momentum: float = interval(0.9, 0, 1, low_open=False, high_open=True)

    def _normalize(self):
        divisors = tuple(self.milestone_divisors)
        for d in divisors:
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not d > 0:
                raise ValueError(f"milestone_divisors={d!r} must be a positive number")
        object.__setattr__(self, "milestone_divisors", tuple(float(d) for d in divisors))

    def milestones(self, epochs: int) -> tuple[int, ...]:
        return tuple(int(epochs // d) for d in self.milestone_divisors)


@dataclass(frozen=True)
class SearchConfig(Checked):
    """The DAS search loop (paper §3, Eq. 2)."""
    epochs: int = positive(50, integer=True)
    steps_per_epoch: int = positive(19, integer=True)   # 19 x 128 = 2432 samples per epoch
    batch_size: int = positive(128, integer=True)
    order: int = choice(1, (1, 2))     # register #14: 1 = first order, 2 = exact one-step unroll
    unroll_lr: float | None = positive(None, optional=True)   # second order xi; None = current theta lr
    bn_update_on_alpha_step: bool = flag(True)   # PyTorch updates BN running stats in the alpha forward too
    eval_batches: int = positive(19, integer=True)      # one-shot PSNR on 19 x 128 = 2432 fresh samples
    single_bn_train: bool = flag(False)      # register #28: DAS-single's frozen ops use eval-mode BN
    curvature_every: int = nonneg(0, integer=True)   # track lambda_max of the alpha Hessian every k epochs (0 = off)
    curvature_iters: int = positive(20, integer=True)   # Lanczos steps (HVPs) / power-iteration steps per estimate
    # register #30: "exact" = eigvalsh of the Hessian from rows x (ops - 1) HVPs; "lanczos" = curvature_iters
    # Lanczos steps; "power" = shifted power iteration (2 (curvature_iters + 1) HVPs); "auto" = exact
    # when it needs at most curvature_iters HVPs, Lanczos otherwise
    curvature_method: str = choice("auto", ("auto", "exact", "lanczos", "power"))
    # --- RobustDARTS early stopping (Zela et al. 2020), register #31-#34 ---
    # "none" | "es" (DARTS-ES: stop, return the earlier state) | "ada" (DARTS-ADA)
    early_stop: str = choice("none", ("none", "es", "ada"))
    es_window: int = positive(5, integer=True)          # lambda_max estimates per local average
    es_lag: int = positive(5, integer=True)   # estimates between the two local averages compared (= rollback distance)
    # fire when the later average > es_factor x the earlier one (> 1: a growth of lambda_max)
    es_factor: float = interval(1.3, 1, None)
    es_start_epoch: int = nonneg(10, integer=True)      # earliest epoch whose state the rule may return (RobustDARTS: 10)
    ada_factor: float = interval(3.0, 1, None)          # DARTS-ADA: theta weight decay x this on every rollback (> 1)
    ada_max_wd: float = positive(2.43e-2)   # DARTS-ADA cap on the theta weight decay (RobustDARTS max_weight_decay)
    ada_max_rollbacks: int = nonneg(4, integer=True)    # DARTS-ADA: rollbacks per trial (bounds the extra epochs to 4 x lag)
    ada_min_wd: float = nonneg(0.0)    # DARTS-ADA: a raised weight decay is at least this (0 = purely x factor)
    # the search algorithm (dasjax.algorithms: "darts", "gdas", "snas", "drnas", "fairdarts", "beta-darts",
    # "sdarts-rs", "sdarts-adv", "darts-pt" or a registered one) and overrides of its components' options
    algorithm: str = registered("darts", ALGORITHM_REGISTRY, label="algorithm")
    algorithm_options: tuple = ()      # ((name, value), ...); make_config also takes a dict

    def __repr__(self):
        return _silent_repr(self, "search")

    def _normalize(self):
        object.__setattr__(self, "algorithm_options",
                           component_options.as_pairs(self.algorithm_options, "algorithm_options"))

    def _check(self):
        if self.algorithm in ALGORITHM_REGISTRY:
            ALGORITHM_REGISTRY.get(self.algorithm).with_options(dict(self.algorithm_options)).check_search(self)
        if self.ada_min_wd > self.ada_max_wd:
            raise ValueError(f"ada_min_wd={self.ada_min_wd!r} must not exceed ada_max_wd={self.ada_max_wd!r}")
        if self.early_stop != "none" and self.curvature_every < 1:
            raise ValueError(f"early_stop={self.early_stop!r} needs lambda_max during the search: set "
                             "curvature_every to a positive interval (e.g. curvature_every=1)")

    @property
    def es_first_fire_epoch(self) -> int:
        """The earliest epoch at which the early-stopping rule can fire (window + lag estimates and
        es_start_epoch)."""
        k = max(1, self.curvature_every)
        m = max(self.es_window + self.es_lag - 1, (self.es_start_epoch + 1 + k - 1) // k - 1 + self.es_lag)
        return (m + 1) * k - 1

    @property
    def search_epoch_budget(self) -> int:
        """Epoch calls a batched search needs: epochs, plus (DARTS-ADA) lag x interval per allowed rollback."""
        extra = self.ada_max_rollbacks * self.es_lag * max(1, self.curvature_every) if self.early_stop == "ada" else 0
        return self.epochs + extra


@dataclass(frozen=True)
class RetrainConfig(Checked):
    """Retraining of discrete architectures (paper §3, register #18)."""
    epochs: int = positive(50, integer=True, label="retrain epochs")
    steps_per_epoch: int = positive(19, integer=True, label="retrain steps_per_epoch")
    batch_size: int = positive(128, integer=True, label="retrain batch_size")
    eval_batches: int = positive(19, integer=True, label="retrain eval_batches")
    share_f: bool = flag(True)               # one CNN per layer shared by lg/net (only one is active): 2x less compute
    n_random_search: int = positive(5, integer=True)    # random search = best of this many random architectures
    # register #35, where random search's candidates come from: "fresh" = the trial's own random
    # architecture and n - 1 more drawn for it alone; "row" = its own and n - 1 others drawn without
    # replacement (seeded by the trial's seed) from the random-sampling row's retrained architectures
    # (the paper's random-search maxima equal its random-sampling maxima in all four cells)
    random_search_pool: str = choice("row", ("fresh", "row"))    # calibration stage 7 (was "fresh")


@dataclass(frozen=True)
class RunConfig(Checked):
    """How trials are executed; never changes results (the F settings: beyond float rounding)."""
    # trials per call of the compiled program; None = per backend: CPU trials_at_once per device
    # (each core runs its own trial, the chunks one after another), accelerators all (fit to memory)
    chunk_size: int | None = positive(None, integer=True, optional=True)
    # per device, vmapped together; None = per backend (CPU 1, GPU all)
    trials_at_once: int | None = positive(None, integer=True, optional=True)
    epochs_per_call: int = positive(1, integer=True)    # epochs fused into one jitted call (between progress updates)
    progress: bool = flag(True)
    fast_compile: bool = flag(False)         # XLA optimisation level 0: quick compiles for tiny configs / tests
    checkpoint_every: int = positive(5, integer=True)   # epochs between checkpoints (when a checkpoint path is given)
    # local devices the trial axis is sharded over (None = all, never more than the trials; a number =
    # exactly that many, fewer trials padded; 1 = off)
    devices: int | None = positive(None, integer=True, optional=True)
    memory_fraction: float = interval(0.9, 0, 1)   # chunk_size=None on an accelerator: fit XLA's estimate in this share
    # how F computes (dasjax.plan; "auto" = per backend, resolved once into the ExecutionPlan):
    # its backward pass ("fused", "fused_f", "autodiff": the same gradients up to float rounding;
    # "fused"/"fused_f" have no forward-mode rule, so jax.jvp / jax.hessian through F need "autodiff"),
    # its row blocks (0 = none, N rows), and one call per F slot of a layer ("loop") or one vmap ("vmap")
    f_backward: str = choice("auto", ("auto", "fused", "fused_f", "autodiff"))
    f_block_rows: int | str = "auto"
    f_slot_calls: str = choice("auto", ("auto", "loop", "vmap"))

    def _check(self):
        if self.f_block_rows != "auto" and (isinstance(self.f_block_rows, bool) or
                                            not isinstance(self.f_block_rows, int) or self.f_block_rows < 0):
            raise ValueError(f"f_block_rows={self.f_block_rows!r} must be 'auto' or an integer >= 0 (0: no blocks)")


@dataclass(frozen=True)
class Config:
    """Everything static about an experiment.  Build with :func:`make_config`."""
    problem: ProblemConfig = field(default_factory=ProblemConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def replace(self, **overrides: Any) -> Config:
        return make_config(self, **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def science_dict(self) -> dict:
        """Everything that can change results: not the run section (it only changes how trials
        execute), and not the cell space's fields in a sequential config (they change nothing it
        computes, so a new cell-space default does not make sequential results folders "another
        configuration")."""
        d = self.to_dict()
        d.pop("run")
        if d["space"]["space"] == "sequential":
            for name in CELL_FIELDS:
                d["space"].pop(name, None)
        for (sec, name), value in SILENT_DEFAULTS.items():   # fields newer than the saved results
            if d[sec].get(name) == value:
                d[sec].pop(name)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=list)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        subs = {f.name: f.type for f in dataclasses.fields(cls)}
        d = {name: dict(sub) for name, sub in d.items()}
        for (old_sec, key), new_sec in MOVED_FIELDS.items():     # saved where the field used to live
            if key in d.get(old_sec, {}):
                d.setdefault(new_sec, {}).setdefault(key, d[old_sec].pop(key))
        kw = {}
        for name, sub in d.items():
            if name not in subs:
                raise ValueError(f"unknown config section {name!r}; allowed: {list(subs)}")
            sub_cls = SECTIONS[name]
            vals = {k: (tuple(v) if isinstance(v, list) else v) for k, v in sub.items()}
            for (sec, key), value in LEGACY_DEFAULTS.items():
                if sec == name and key not in vals:      # saved before the field existed
                    value = value(vals) if callable(value) else value
                    if value is not _TODAYS_DEFAULT:
                        vals[key] = value
            kw[name] = sub_cls(**vals)
        return cls(**kw)


_TODAYS_DEFAULT = object()       # a legacy rule's answer: the field's default applies

# fields left out of the science dict (config fingerprints) at these values: they arrived after
# results were fingerprinted, and at these values compute what came before them
SILENT_DEFAULTS = {("search", "algorithm"): "darts", ("search", "algorithm_options"): (),
                   ("problem", "problem_options"): (), ("space", "space_options"): (), ("space", "op_options"): ()}
_NO_VALUE = object()


def _silent_repr(section, name: str) -> str:
    """The section's repr without the SILENT_DEFAULTS fields at their silent value, so that the repr
    (part of the compiled programs' cache keys and checkpoint fingerprints) is the one from before them."""
    shown = [f"{f.name}={getattr(section, f.name)!r}" for f in dataclasses.fields(section)
             if SILENT_DEFAULTS.get((name, f.name), _NO_VALUE) != getattr(section, f.name)]
    return f"{type(section).__qualname__}({', '.join(shown)})"

# the SpaceConfig fields only the cell space reads
CELL_FIELDS = ("cell_states", "n_cells", "merge_kernel", "share_cell_alpha", "cell_discretization", "cell_skip",
               "cell_combine", "cell_input", "merge_bias", "merge_norm", "merge_init")


def _cell_only(value):
    """A legacy rule for a field only the cell space reads: ``value`` (or ``value(vals)``) for a saved
    cell-space config, today's default for a sequential one (which the field does not change), so
    that changing the cell space's default does not orphan sequential results folders."""
    def rule(vals):
        if vals.get("space", "sequential") != "cell":
            return _TODAYS_DEFAULT
        return value(vals) if callable(value) else value
    return rule


# Fields added with a default that changed behaviour: a config saved before the field existed ran
# with this value, so :meth:`Config.from_dict` reads it when the field is missing (results stay
# comparable and resumable under their own settings).  A value may be a function of the saved
# section's values.
LEGACY_DEFAULTS = {("space", "grad_term"): "differentiable",   # calibration stage 4
                   ("space", "roll_axes"): "signal",            # calibration stage 5
                   ("space", "noise_eval"): True,
                   ("space", "noise_form"): "additive",
                   # calibration stage 6 (cell-space fields; a sequential config reads today's
                   # default, which changes nothing it computes): before cell_skip existed the cell
                   # space read global_skip
                   ("space", "cell_skip"): _cell_only(lambda vals: "global" if vals.get("global_skip", True) else "none"),
                   ("space", "cell_combine"): _cell_only("sum"), ("space", "cell_input"): _cell_only("previous"),
                   ("space", "merge_bias"): _cell_only(True), ("space", "merge_norm"): _cell_only("none"),
                   ("space", "merge_init"): _cell_only("pytorch"),
                   # calibration stage 7; x0 was always saved, so a saved "data" keeps
                   # its meaning with no entry here
                   ("problem", "blur_alignment"): "centred", ("problem", "ds_offset"): 0,
                   ("retrain", "random_search_pool"): "fresh"}
# Fields that moved to another section: a config saved before the move names them in the old one.
# F's execution settings only change speed, so they left the search space for the run settings
MOVED_FIELDS = {("space", "f_backward"): "run", ("space", "f_block_rows"): "run"}

# noise_layer_std existed before stage 5 and is saved in every config, so its old defaults (0.10,
# 1.0) need no entry: a saved config states it; blur_alignment too since stage 7 (a config without
# it predates stage 7 and reads "centred", today's default again since stage 8)

SECTIONS = {"problem": ProblemConfig, "space": SpaceConfig, "schedule": ScheduleConfig,
            "search": SearchConfig, "retrain": RetrainConfig, "run": RunConfig}

# Flat make_config names that differ from the field name ("problem" -> problem.name), and names
# that set the same field in two sections (search and retraining)
ALIASES = {"problem": ("problem", "name"), "retrain_epochs": ("retrain", "epochs"),
           "search_epochs": ("search", "epochs"), "scheduler": ("schedule", "kind"),
           "cnn_kernel_size": ("space", "kernel_size"), "blur_kernel_size": ("problem", "kernel_size")}
SHARED = {"epochs": ("search", "retrain"), "batch_size": ("search", "retrain"),
          "steps_per_epoch": ("search", "retrain"), "eval_batches": ("search", "retrain")}


def flat_field(name: str) -> list[tuple[str, dataclasses.Field]]:
    """The (section, field) pairs a flat :func:`make_config` name sets: one, or two for the shared
    search / retraining names, or several when the name is ambiguous; [] when it is unknown."""
    fields = {sec: {f.name: f for f in dataclasses.fields(cls)} for sec, cls in SECTIONS.items()}
    if name in SHARED:
        return [(sec, fields[sec][name]) for sec in SHARED[name]]
    if name in ALIASES:
        sec, fname = ALIASES[name]
        return [(sec, fields[sec][fname])]
    return [(sec, by_name[name]) for sec, by_name in fields.items() if name in by_name]


def flat_names() -> list[str]:
    """Every name :func:`make_config` accepts."""
    names = {f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)}
    return sorted(names | set(ALIASES) | set(SHARED))


def field_choices(name: str) -> tuple:
    """The values a flat config name allows, when it is a choice field (registries: as they are now);
    () for a number, a flag or a free field."""
    owners = flat_field(name)
    rule = rule_of(owners[0][1]) if owners else None
    return rule.allowed() if rule is not None else ()


def flat_name(section: str, field: str) -> str | None:
    """The flat :func:`make_config` name that sets ``section.field``: its alias ("scheduler",
    "search_epochs"), else the field's own name when that sets this field alone or the search /
    retraining pair (SHARED); None when the name is ambiguous (kernel_size)."""
    for alias, owner in ALIASES.items():
        if owner == (section, field):
            return alias
    return field if field in SHARED or {s for s, _ in flat_field(field)} == {section} else None


def flat_overrides(cfg: Config, skip=()) -> dict:
    """The :func:`make_config` overrides that rebuild ``cfg`` from today's defaults (only the fields
    that differ), leaving out the flat names in ``skip``; e.g. to rerun a saved config.json.
    ValueError if a difference has no flat name (search and retraining sizes that differ where no
    alias tells them apart)."""
    default, out = Config(), {}
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            value = getattr(getattr(cfg, sec), f.name)
            if value == getattr(getattr(default, sec), f.name):
                continue
            name = flat_name(sec, f.name)
            if name is None:
                raise ValueError(f"{sec}.{f.name} has no unambiguous flat name")
            if name in SHARED:
                partner = [o for o in SHARED[name] if o != sec][0]
                if getattr(getattr(cfg, partner), f.name) != value:
                    raise ValueError(f"{sec}.{f.name}={value!r} differs from {partner}.{f.name}; the flat name "
                                     f"{f.name!r} sets both (pass make_config(base=...) instead)")
            if name not in skip:
                out[name] = value
    return out


def make_config(base: Config | None = None, **overrides: Any) -> Config:
    """Build a :class:`Config` from flat keyword overrides.

    ``make_config(problem="downsampling", op_set="all", width=16, epochs=3)``.
    ``epochs``, ``batch_size``, ``steps_per_epoch`` and ``eval_batches`` set both
    the search and the retraining value.  Unknown names raise ``ValueError``.
    """
    base = base or Config()
    sections = {name: {} for name in SECTIONS}
    for key, value in overrides.items():
        owners = flat_field(key)
        if len({sec for sec, _ in owners}) > 1 and key not in SHARED:
            raise ValueError(f"config field {key!r} is ambiguous between sections {[s for s, _ in owners]}; "
                             f"pass e.g. {owners[0][0]}=dataclasses.replace(...)")
        if not owners:
            if key in SECTIONS:
                raise ValueError(f"pass section {key!r} fields directly, e.g. make_config(width=16)")
            close = difflib.get_close_matches(key, flat_names(), n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"unknown config field {key!r}{hint} (all {len(flat_names())} names with their "
                             "defaults and meaning: `dasjax fields`)")
        for sec, f in owners:
            sections[sec][f.name] = value
    kw = {}
    for sec in SECTIONS:
        cur = getattr(base, sec)
        kw[sec] = dataclasses.replace(cur, **sections[sec]) if sections[sec] else cur
    return Config(**kw)
