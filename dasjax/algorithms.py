"""Search algorithms as components: DARTS and its variants.

A :class:`SearchAlgorithm` is three kinds of pure, single-trial components that
:class:`dasjax.search.SearchProgram` calls at fixed points of its step:

- a **relaxation** turns alpha into the supernet's mixing weights: in each search forward
  (``sample``, may draw random numbers), for the alpha history (``expected``) and for the
  one-shot evaluation (``evaluation``);
- **regularisers** add a penalty of alpha to the alpha step's loss;
- a **perturbation** changes the mixing weights the theta step sees (SDARTS);
- a **discretisation** turns the searched supernet into an architecture (None: the argmax of
  alpha; DARTS-PT's projection, :mod:`dasjax.projection`, brings its own program).

DARTS is the space's own weights (softmax) with neither of the others, and computes exactly what
the search computed before algorithms existed.  Every component is a frozen dataclass whose
fields are its options (with the defaults of its authors' code, cited in docs/register.md), so it
is hashable and part of the compiled program's cache key.  Algorithms are registered by name
(:func:`register_algorithm`); ``SearchConfig.algorithm`` names one and
``SearchConfig.algorithm_options`` overrides its components' options::

    cfg = dasjax.make_config(algorithm="gdas", algorithm_options={"tau_min": 0.5})

A user's algorithm is a :class:`SearchAlgorithm` built from these components or their own (any
object with the same methods); docs/design.md shows one in a few lines.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

import jax
import jax.numpy as jnp

from .options import coerce
from .registry import ALGORITHMS

if TYPE_CHECKING:
    from .config import SearchConfig


# --- the clock: where in the search a step is ----------------------------------------------------
@dataclass(frozen=True)
class SearchClock:
    """The search's progress as components see it: the update counter ``step`` (traced) and the
    static epoch counts.  ``epoch`` is the (float) epoch of the step, 0 .. epochs - 1."""
    step: Any
    steps_per_epoch: int
    epochs: int

    @property
    def epoch(self):
        return (self.step // self.steps_per_epoch).astype(jnp.float32)

    def linear(self, start: float, end: float, last_epoch: int | None = None):
        """A value going linearly from ``start`` at epoch 0 to ``end`` at ``last_epoch`` (default:
        the last epoch, epochs - 1), constant after it."""
        last = max(1, (self.epochs - 1) if last_epoch is None else last_epoch)
        frac = jnp.minimum(self.epoch / last, 1.0)
        return start + (end - start) * frac


# --- the component protocols ------------------------------------------------------------------
class Relaxation(Protocol):
    def sample(self, alpha, key, clock: SearchClock, space): ...   # weights of one search forward
    def expected(self, alpha, space): ...                          # deterministic weights (history)
    def evaluation(self, alpha, space): ...                        # weights of the one-shot evaluation


class Regulariser(Protocol):
    def penalty(self, alpha, clock: SearchClock): ...              # a scalar added to the alpha loss


class Perturbation(Protocol):
    # the theta step's mixing weights -> perturbed ones; loss_of_weights(w) is that step's
    # training loss (for adversarial perturbations)
    def perturb(self, weights, key, clock: SearchClock, loss_of_weights: Callable): ...


# --- relaxations ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceSoftmax:
    """DARTS: the space's own ``weights(alpha)`` (softmax over each row's candidates)."""

    def sample(self, alpha, key, clock, space):
        return space.weights(alpha)

    def expected(self, alpha, space):
        return space.weights(alpha)

    def evaluation(self, alpha, space):
        return space.weights(alpha)


def _one_hot_argmax(x):
    return jax.nn.one_hot(jnp.argmax(x, axis=-1), x.shape[-1], dtype=x.dtype)


@dataclass(frozen=True)
class HardGumbel:
    """GDAS (Dong & Yang 2019): one op per row, drawn from softmax((log_softmax(alpha) + g) / tau)
    with Gumbel noise g, a new draw in every forward.  The forward uses the one-hot draw; the
    gradient reaches alpha through the drawn op's weight hard - stop_gradient(probs) + probs
    (straight-through), as GDAS's cell computes op[index](x) x hardwts[index] alone.  tau goes
    linearly from ``tau_max`` at the first epoch to ``tau_min`` at the last.  The one-shot
    evaluation uses the argmax path (the architecture GDAS derives)."""
    tau_max: float = 10.0
    tau_min: float = 0.1

    def sample(self, alpha, key, clock, space):
        tau = clock.linear(self.tau_max, self.tau_min)
        g = jax.random.gumbel(key, alpha.shape, alpha.dtype)
        probs = jax.nn.softmax((jax.nn.log_softmax(alpha, axis=-1) + g) / tau, axis=-1)
        hard = _one_hot_argmax(probs)
        return hard * (hard - jax.lax.stop_gradient(probs) + probs)

    def expected(self, alpha, space):
        return jax.nn.softmax(alpha, axis=-1)

    def evaluation(self, alpha, space):
        return _one_hot_argmax(alpha)


@dataclass(frozen=True)
class SoftGumbel:
    """SNAS (Xie et al. 2019): the concrete (Gumbel-softmax) relaxation softmax((alpha + g) / tau)
    with Gumbel noise g, a new draw in every forward; tau goes linearly from ``tau_init`` at the
    first epoch to ``tau_min`` at the last (SNAS's Temp_Scheduler: 1 to 0.03 over its 150 epochs).
    The one-shot evaluation uses the argmax path (the child network SNAS derives)."""
    tau_init: float = 1.0
    tau_min: float = 0.03

    def sample(self, alpha, key, clock, space):
        tau = clock.linear(self.tau_init, self.tau_min, last_epoch=clock.epochs)
        g = jax.random.gumbel(key, alpha.shape, alpha.dtype)
        return jax.nn.softmax((alpha + g) / tau, axis=-1)

    def expected(self, alpha, space):
        return jax.nn.softmax(alpha, axis=-1)

    def evaluation(self, alpha, space):
        return _one_hot_argmax(alpha)


def dirichlet_concentration(alpha):
    """DrNAS's concentration of alpha: elu(alpha) + 1 (positive)."""
    return jax.nn.elu(alpha) + 1.0


@dataclass(frozen=True)
class Dirichlet:
    """DrNAS (Chen et al. 2021): mixing weights drawn from Dirichlet(elu(alpha) + 1) with
    reparameterised (implicit) gradients; the evaluation and the history use its mean."""

    def sample(self, alpha, key, clock, space):
        return jax.random.dirichlet(key, dirichlet_concentration(alpha)).astype(alpha.dtype)

    def expected(self, alpha, space):
        c = dirichlet_concentration(alpha)
        return c / jnp.sum(c, axis=-1, keepdims=True)

    def evaluation(self, alpha, space):
        return self.expected(alpha, space)


@dataclass(frozen=True)
class Sigmoid:
    """FairDARTS (Chu et al. 2020): independent sigmoid(alpha) per candidate, no competition
    between the candidates of a row (the weights need not sum to one)."""

    def sample(self, alpha, key, clock, space):
        return jax.nn.sigmoid(alpha)

    def expected(self, alpha, space):
        return jax.nn.sigmoid(alpha)

    def evaluation(self, alpha, space):
        return jax.nn.sigmoid(alpha)


# --- regularisers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZeroOneLoss:
    """FairDARTS's zero-one loss, weight x -mean((sigmoid(alpha) - 0.5)^2): pushes every sigmoid
    weight towards 0 or 1."""
    weight: float = 10.0

    def penalty(self, alpha, clock):
        return -self.weight * jnp.mean(jnp.square(jax.nn.sigmoid(alpha) - 0.5))


@dataclass(frozen=True)
class BetaDecay:
    """beta-DARTS (Ye et al. 2022): lambda x the mean over rows of logsumexp(alpha), whose gradient
    is lambda softmax(alpha) / rows; lambda = ``weight_per_epoch`` x epoch (its code: 50 x epoch /
    100)."""
    weight_per_epoch: float = 0.5

    def penalty(self, alpha, clock):
        return self.weight_per_epoch * clock.epoch * jnp.mean(jax.nn.logsumexp(alpha, axis=-1))


@dataclass(frozen=True)
class DirichletKL:
    """DrNAS's anchor: ``scale`` x KL(Dirichlet(elu(alpha) + 1) || Dirichlet(``prior`` x 1)),
    summed over the rows."""
    scale: float = 1e-3
    prior: float = 1.0

    def penalty(self, alpha, clock):
        return self.scale * jnp.sum(dirichlet_kl(dirichlet_concentration(alpha), self.prior))


def dirichlet_kl(c, prior: float):
    """KL(Dir(c) || Dir(prior, ..., prior)) per row of ``c`` (closed form)."""
    from jax.scipy.special import digamma, gammaln
    k = c.shape[-1]
    c0 = jnp.sum(c, axis=-1)
    b = jnp.full_like(c, prior)
    return (gammaln(c0) - jnp.sum(gammaln(c), -1) - gammaln(k * prior) + jnp.sum(gammaln(b), -1)
            + jnp.sum((c - b) * (digamma(c) - digamma(c0)[..., None]), -1))


# --- perturbations ----------------------------------------------------------------------------------
def project_to_simplex_rows(p):
    """SDARTS's clip(): clamp each row to [0, 1]; a row left all zero becomes the one-hot of its
    argmax before the clamp; then divide each row by its sum."""
    clamped = jnp.clip(p, 0.0, 1.0)
    empty = jnp.sum(clamped, axis=-1, keepdims=True) == 0
    clamped = jnp.where(empty, _one_hot_argmax(p), clamped)
    return clamped / jnp.sum(clamped, axis=-1, keepdims=True)


@dataclass(frozen=True)
class RandomSmoothing:
    """SDARTS-RS (Chen & Hsieh 2020): the theta step mixes with the weights w + U(-eps, eps),
    projected back onto each row's simplex; eps grows per epoch as 0.03 + (``epsilon`` - 0.03) x
    epoch / epochs (``epsilon_start`` = 0.03).  alpha itself is never changed."""
    epsilon: float = 0.3
    epsilon_start: float = 0.03

    def radius(self, clock):
        return clock.linear(self.epsilon_start, self.epsilon, last_epoch=clock.epochs)

    def perturb(self, weights, key, clock, loss_of_weights):
        eps = self.radius(clock)
        noise = jax.random.uniform(key, weights.shape, weights.dtype, -1.0, 1.0) * eps
        return project_to_simplex_rows(weights + noise)


@dataclass(frozen=True)
class AdversarialPGD(RandomSmoothing):
    """SDARTS-ADV: ``steps`` steps of projected sign-gradient ascent of the theta step's training
    loss on the mixing weights, from a random start in the L-infinity ball of radius eps (eps as in
    SDARTS-RS), each of size 2 eps / steps, projected onto the ball and each row's simplex; kept
    only if it raised the loss (else the unperturbed weights)."""
    steps: int = 7

    def perturb(self, weights, key, clock, loss_of_weights):
        eps = self.radius(clock)
        step = 2.0 * eps / self.steps
        p0 = weights
        p = project_to_simplex_rows(p0 + jax.random.uniform(key, p0.shape, p0.dtype, -1.0, 1.0) * eps)
        grad = jax.grad(loss_of_weights)

        def ascend(p, _):
            p = p + step * jnp.sign(grad(p))
            p = p0 + jnp.clip(p - p0, -eps, eps)
            return project_to_simplex_rows(p), None

        p, _ = jax.lax.scan(ascend, p, None, length=self.steps)
        p = jax.lax.stop_gradient(p)
        return jnp.where(loss_of_weights(p) < loss_of_weights(p0), p0, p)


# --- the algorithm ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchAlgorithm:
    """A named composition of a relaxation, regularisers, an optional perturbation and an optional
    discretisation (None: the argmax of alpha after the search; otherwise an object whose
    ``program(cfg, space, optimizer_types, algorithm)`` returns the batched program that searches
    and discretises, e.g. :class:`dasjax.projection.PerturbationProjection`)."""
    name: str
    relaxation: Any = SpaceSoftmax()
    regularisers: tuple = ()
    perturbation: Any = None
    reference: str = ""            # where the equations and default options come from
    discretisation: Any = None

    @property
    def is_darts(self) -> bool:
        """The plain DARTS computation (the space's softmax itself, not a subclass; nothing added)."""
        return (type(self.relaxation) is SpaceSoftmax and not self.regularisers and self.perturbation is None
                and self.discretisation is None)

    def check_search(self, search_cfg: SearchConfig) -> None:
        """Refuse lambda_max tracking and early stopping (``SearchConfig``) for an algorithm other
        than DARTS: both measure DARTS's softmax relaxation."""
        if not self.is_darts and (search_cfg.curvature_every or search_cfg.early_stop != "none"):
            raise ValueError(f"algorithm={self.name!r}: lambda_max tracking and early stopping measure the "
                             "softmax relaxation of DARTS; use them with algorithm='darts'")

    def components(self) -> list:
        optional = [c for c in (self.perturbation, self.discretisation) if c is not None]
        return [self.relaxation, *self.regularisers, *optional]

    def options(self) -> dict:
        """Every component option with its value: {name: value}."""
        out = {}
        for c in self.components():
            if dataclasses.is_dataclass(c):
                out.update({f.name: getattr(c, f.name) for f in dataclasses.fields(c)})
        return out

    def with_options(self, options: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> SearchAlgorithm:
        """A copy with component options replaced ({name: value}); an unknown name raises
        ValueError naming the closest ones."""
        options = dict(options)
        known = self.options()
        for name in options:
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=3)
                hint = f"; did you mean {close}?" if close else ""
                raise ValueError(f"search algorithm {self.name!r} has no option {name!r}{hint} "
                                 f"(its options: {sorted(known) or 'none'})")
        if not options:
            return self

        def update(c):
            if not dataclasses.is_dataclass(c):
                return c
            mine = {k: v for k, v in options.items() if k in {f.name for f in dataclasses.fields(c)}}
            for k, v in mine.items():
                mine[k] = coerce(f"search algorithm {self.name!r}", k, v, getattr(c, k))
            return dataclasses.replace(c, **mine) if mine else c

        return dataclasses.replace(
            self, relaxation=update(self.relaxation), regularisers=tuple(update(r) for r in self.regularisers),
            perturbation=None if self.perturbation is None else update(self.perturbation),
            discretisation=None if self.discretisation is None else update(self.discretisation))


def register_algorithm(algorithm: SearchAlgorithm, replace: bool = False) -> SearchAlgorithm:
    """Make ``SearchConfig(algorithm=algorithm.name)`` run ``algorithm``."""
    return ALGORITHMS.register(algorithm, SearchAlgorithm, replace=replace)


def get_algorithm(name: str) -> SearchAlgorithm:
    return ALGORITHMS.get(name)


def algorithm_names() -> tuple[str, ...]:
    return ALGORITHMS.names()


def resolve_algorithm(cfg, algorithm=None) -> SearchAlgorithm:
    """The algorithm a search runs: ``algorithm`` (a SearchAlgorithm or a registered name) or the
    config's, with the config's ``algorithm_options`` on top."""
    if algorithm is None:
        algorithm = cfg.search.algorithm
    alg = get_algorithm(algorithm) if isinstance(algorithm, str) else algorithm
    if not isinstance(alg, SearchAlgorithm):
        raise TypeError(f"algorithm must be a SearchAlgorithm or a registered name, got {type(alg).__name__}")
    return alg.with_options(dict(cfg.search.algorithm_options))


BUILTIN_ALGORITHMS = (
    SearchAlgorithm("darts", reference="Liu et al. 2019 (DARTS); the paper's DAS"),
    SearchAlgorithm("gdas", relaxation=HardGumbel(), reference="Dong & Yang 2019; D-X-Y/AutoDL-Projects"),
    SearchAlgorithm("snas", relaxation=SoftGumbel(), reference="Xie et al. 2019"),
    SearchAlgorithm("drnas", relaxation=Dirichlet(), regularisers=(DirichletKL(),),
                    reference="Chen et al. 2021; xiangning-chen/DrNAS"),
    SearchAlgorithm("fairdarts", relaxation=Sigmoid(), regularisers=(ZeroOneLoss(),),
                    reference="Chu et al. 2020; xiaomi-automl/FairDARTS"),
    SearchAlgorithm("beta-darts", regularisers=(BetaDecay(),), reference="Ye et al. 2022; Sunshine-Ye/Beta-DARTS"),
    SearchAlgorithm("sdarts-rs", perturbation=RandomSmoothing(), reference="Chen & Hsieh 2020; xiangning-chen/SmoothDARTS"),
    SearchAlgorithm("sdarts-adv", perturbation=AdversarialPGD(), reference="Chen & Hsieh 2020; xiangning-chen/SmoothDARTS"),
)
for _a in BUILTIN_ALGORITHMS:
    ALGORITHMS.add(_a.name, _a, builtin=True)
