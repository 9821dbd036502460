"""Hyperparameter sets as data (paper App. E).

A :class:`HParamSet` is a named, hashable record.  Its numeric fields become
per-trial arrays (:class:`HParams`) that are *traced*, so trials with different
learning rates, weight decays or warm-up / scheduler switches run in one
compiled program.  The optimizer *types* are static: sets that differ in them
form separate batched groups (:func:`group_by_optimizer`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, Union

import jax.numpy as jnp
import numpy as np
from flax import struct

from .registry import Registry

OPTIMIZERS = ("sgd", "adam", "sgd_nesterov")
_OPT_ALIASES = {"gradient descent": "sgd", "sgd": "sgd", "adam": "adam", "sgd_nesterov": "sgd_nesterov"}


def _opt(name: str, field_name: str) -> str:
    key = str(name).strip().lower()
    if key not in _OPT_ALIASES:
        raise ValueError(f"{field_name}={name!r} is not allowed; choose one of "
                         f"['adam', 'sgd' (= 'Gradient Descent'), 'sgd_nesterov' (momentum 0.9)]")
    return _OPT_ALIASES[key]


@dataclass(frozen=True)
class HParamSet:
    """One row-set of the paper's Tables 7-9.

    theta_* are the "Param." rows (network weights), alpha_* the "Alpha" rows.
    The theta scheduler is not a listed hyperparameter in the paper: constant by default.
    """
    name: str
    theta_lr: float
    theta_wd: float
    theta_warmup: bool
    alpha_lr: float
    alpha_wd: float
    alpha_warmup: bool
    alpha_scheduler: bool          # True = "Linear" (step schedule), False = "None"
    alpha_optimizer: str           # "sgd" (Gradient Descent) | "adam"
    theta_optimizer: str = "adam"  # register #15
    theta_scheduler: bool = False

    def __post_init__(self):
        for f in ("theta_lr", "alpha_lr"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{f}={v!r} must be a positive number (hparams {self.name!r})")
        for f in ("theta_wd", "alpha_wd"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{f}={v!r} must be a non-negative number (hparams {self.name!r})")
        for f in ("theta_warmup", "alpha_warmup", "alpha_scheduler", "theta_scheduler"):
            if not isinstance(getattr(self, f), (bool, np.bool_)):
                raise ValueError(f"{f}={getattr(self, f)!r} must be True or False (hparams {self.name!r})")
        object.__setattr__(self, "alpha_optimizer", _opt(self.alpha_optimizer, "alpha_optimizer"))
        object.__setattr__(self, "theta_optimizer", _opt(self.theta_optimizer, "theta_optimizer"))

    @property
    def optimizer_types(self) -> tuple[str, str]:
        return (self.theta_optimizer, self.alpha_optimizer)

    def replace(self, **kw: Any) -> HParamSet:
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "HParamSet":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown hyperparameter fields {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**d)


# --- The paper's named sets (exact values of paper Tables 7, 8, 9) --------------------------
H1 = HParamSet("H1", theta_lr=0.001, theta_wd=1e-8, theta_warmup=False,
               alpha_lr=0.001, alpha_wd=0.001, alpha_warmup=True, alpha_scheduler=True,
               alpha_optimizer="sgd")
H2 = HParamSet("H2", theta_lr=0.001, theta_wd=1e-8, theta_warmup=False,
               alpha_lr=0.0001, alpha_wd=0.0001, alpha_warmup=True, alpha_scheduler=True,
               alpha_optimizer="sgd")
BOHB_ONE_SHOT_BLUR = HParamSet("BOHB-one-shot-Blur", theta_lr=0.0014232405, theta_wd=8.616e-07,
                               theta_warmup=False, alpha_lr=0.0836808765, alpha_wd=5.05099e-05,
                               alpha_warmup=False, alpha_scheduler=True, alpha_optimizer="adam")
BOHB_ONE_SHOT_DS = HParamSet("BOHB-one-shot-DS", theta_lr=0.0020448382, theta_wd=5.04e-08,
                             theta_warmup=True, alpha_lr=0.0100063746, alpha_wd=0.0058022776,
                             alpha_warmup=True, alpha_scheduler=True, alpha_optimizer="sgd")
BOHB_BLUR = HParamSet("BOHB-Blur", theta_lr=0.0020882283, theta_wd=4.4e-08, theta_warmup=False,
                      alpha_lr=8.43195e-05, alpha_wd=0.0127425783, alpha_warmup=True,
                      alpha_scheduler=True, alpha_optimizer="adam")
BOHB_DAS_SINGLE = HParamSet("BOHB-DAS-single", theta_lr=0.0014232405, theta_wd=8.616e-07,
                            theta_warmup=False, alpha_lr=0.025012337102395577,
                            alpha_wd=1.390640076980444e-05, alpha_warmup=False,
                            alpha_scheduler=False, alpha_optimizer="adam")
BOHB_NON_SEQ_ONE_SHOT_BLUR = HParamSet("BOHB-Non-Seq-one-shot-Blur", theta_lr=0.0050969066,
                                       theta_wd=2.423e-07, theta_warmup=False, alpha_lr=1.32499e-05,
                                       alpha_wd=0.0010171142, alpha_warmup=False,
                                       alpha_scheduler=False, alpha_optimizer="adam")
BOHB_NON_SEQ_BLUR = HParamSet("BOHB-Non-Seq-Blur", theta_lr=0.0037014752, theta_wd=1.4573e-06,
                              theta_warmup=False, alpha_lr=0.0012395056, alpha_wd=0.0002855732,
                              alpha_warmup=False, alpha_scheduler=False, alpha_optimizer="adam")

#: what ``hparams=`` takes: a set's name, a :class:`HParamSet` (both: every trial), or one per trial
HParamsLike = Union[str, HParamSet, Sequence[Union[str, HParamSet]]]

SETS = Registry("hyperparameter set", "dasjax.hparams.register", replace_flag="overwrite")


def register(hp: HParamSet, overwrite: bool = False) -> HParamSet:
    """Add a user-defined set so that it can be named in configs and on the command line."""
    if not isinstance(hp, HParamSet):
        raise TypeError(f"register takes a HParamSet, got {type(hp).__name__}")
    SETS.add(hp.name, hp, replace=overwrite)
    return hp


for _hp in (H1, H2, BOHB_ONE_SHOT_BLUR, BOHB_ONE_SHOT_DS, BOHB_BLUR, BOHB_DAS_SINGLE,
            BOHB_NON_SEQ_ONE_SHOT_BLUR, BOHB_NON_SEQ_BLUR):
    SETS.add(_hp.name, _hp, builtin=True)


def named_sets() -> dict[str, HParamSet]:
    return dict(SETS.items())


def get(name_or_set: str | HParamSet) -> HParamSet:
    """Look a set up by name (case-insensitive), or pass a HParamSet through."""
    if isinstance(name_or_set, HParamSet):
        return name_or_set
    for key, hp in SETS.items():
        if key.lower() == str(name_or_set).lower():
            return hp
    raise ValueError(f"hparams={name_or_set!r} is not a known hyperparameter set; "
                     f"known: {sorted(SETS)} (or register your own with dasjax.hparams.register)")


def load(path: str | os.PathLike[str]) -> HParamSet:
    """Read a set written by :meth:`HParamSet.to_json` (e.g. by the HPO runner)."""
    with open(path) as fh:
        return HParamSet.from_dict(json.load(fh))


@struct.dataclass
class HParams:
    """Traced per-trial hyperparameters: every field has shape (T,) (or () for one trial)."""
    theta_lr: jnp.ndarray
    theta_wd: jnp.ndarray
    theta_warmup: jnp.ndarray      # 0/1
    theta_scheduler: jnp.ndarray   # 0/1
    alpha_lr: jnp.ndarray
    alpha_wd: jnp.ndarray
    alpha_warmup: jnp.ndarray
    alpha_scheduler: jnp.ndarray


_NUMERIC = ("theta_lr", "theta_wd", "theta_warmup", "theta_scheduler",
            "alpha_lr", "alpha_wd", "alpha_warmup", "alpha_scheduler")


def stack(sets: Sequence[HParamSet]) -> tuple[HParams, tuple[str, str]]:
    """Per-trial sets -> (HParams with a leading trial axis, static optimizer types).

    All sets must share optimizer types; use :func:`group_by_optimizer` first otherwise.
    """
    sets = [get(s) for s in sets]
    if not sets:
        raise ValueError("hparams: need at least one hyperparameter set")
    types = {s.optimizer_types for s in sets}
    if len(types) > 1:
        raise ValueError(f"hparams: sets with different optimizer types {sorted(types)} cannot share "
                         "one batched program; split them with dasjax.hparams.group_by_optimizer")
    cols = {k: np.asarray([float(getattr(s, k)) for s in sets], np.float32) for k in _NUMERIC}
    return HParams(**{k: jnp.asarray(v) for k, v in cols.items()}), types.pop()


def group_by_optimizer(sets: Iterable[HParamSet]) -> dict[tuple[str, str], list[int]]:
    """Indices of ``sets`` grouped by (theta_optimizer, alpha_optimizer)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(sets):
        groups.setdefault(get(s).optimizer_types, []).append(i)
    return groups
