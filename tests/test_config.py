"""Config validation and the spec's register: every default is a field, every variant is live."""
import dataclasses
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

import dasjax
from dasjax.api import resolve_hparams
from dasjax.config import SECTIONS, field_choices, flat_field
from dasjax.fields import rule_of
from dasjax.evaluate import evaluate_psnr
from dasjax.optim import lr_factor
from dasjax.search import SearchProgram
from dasjax.spaces import make_space

# (flat override, section, field) for every unstated choice of docs/register.md that the core implements
REGISTER_VARIANTS = [
    ({"noise_std": 0.01}, "problem", "noise_std"),                  # 1
    ({"noise_layer_std": 0.3}, "space", "noise_layer_std"),         # 2
    ({"noise_eval": False}, "space", "noise_eval"),                 # calibration stage 5
    ({"noise_form": "additive"}, "space", "noise_form"),
    ({"blur_units": "linspace"}, "problem", "blur_units"),          # 3
    ({"blur_units": "pixel"}, "problem", "blur_units"),
    ({"boundary": "circular"}, "problem", "boundary"),              # 4
    ({"blur_alignment": "causal"}, "problem", "blur_alignment"),    # 40 (calibration stages 7-8; default centred)
    ({"problem": "downsampling", "ds_mode": "avgpool"}, "problem", "ds_mode"),   # 5
    ({"x0": "adjoint"}, "problem", "x0"),                           # 6 (default "zero_fill" = y on blur)
    ({"problem": "downsampling", "x0": "interp"}, "problem", "x0"),
    ({"problem": "downsampling", "x0": "data"}, "problem", "x0"),   # A^T y (stage 7's default: S^T y)
    ({"problem": "downsampling", "ds_offset": 0}, "problem", "ds_offset"),   # stage 7's default: 2
    ({"problem": "downsampling", "ds_samples": 11}, "problem", "ds_samples"),
    ({"problem": "downsampling", "ds_blur_units": "pixel"}, "problem", "ds_blur_units"),
    ({"problem": "downsampling", "ds_blur_units": "linspace"}, "problem", "ds_blur_units"),
    ({"problem": "downsampling", "noise_stage": "before_subsampling"}, "problem", "noise_stage"),
    ({"bn_eval": "batch"}, "space", "bn_eval"),
    ({"psnr_mode": "pooled"}, "problem", "psnr_mode"),              # 7
    ({"psnr_peak": 2.0}, "problem", "psnr_peak"),
    ({"amplitude": (0.5, 1.5)}, "problem", "amplitude"),            # 8
    ({"tau_learnable": False}, "space", "tau_learnable"),           # 9
    ({"tau_init": "inverse_norm", "problem": "downsampling"}, "space", "tau_init"),
    ({"noise_tau_learnable": False}, "space", "noise_tau_learnable"),
    ({"grad_term": "differentiable"}, "space", "grad_term"),         # calibration stage 4
    ({"width": 6}, "space", "width"),                               # 10
    ({"cnn_kernel_size": 5}, "space", "kernel_size"),
    ({"bias": False}, "space", "bias"),
    ({"roll_shift": 2}, "space", "roll_shift"),                     # 11
    ({"roll_axes": "signal"}, "space", "roll_axes"),                # calibration stage 5 (default "all")
    ({"roll_axes": "flat"}, "space", "roll_axes"),
    ({"global_skip": False}, "space", "global_skip"),               # 12
    ({"alpha_init_std": 0.5}, "space", "alpha_init_std"),           # 13
    ({"order": 2}, "search", "order"),                              # 14
    ({"kind": "linear_decay"}, "schedule", "kind"),                 # 16
    ({"milestone_divisors": (2.0,)}, "schedule", "milestone_divisors"),
    ({"warmup_epochs": 1}, "schedule", "warmup_epochs"),            # 17
    ({"warmup_mode": "ramp_from_zero"}, "schedule", "warmup_mode"),
    ({"warmup_mode": "freeze"}, "schedule", "warmup_mode"),
    ({"adam_b1": 0.5}, "schedule", "adam_b1"),
    ({"bn_update_on_alpha_step": False}, "search", "bn_update_on_alpha_step"),
    ({"bn_unbiased_running_var": False}, "space", "bn_unbiased_running_var"),
    ({"unroll_lr": 0.3, "order": 2}, "search", "unroll_lr"),
]

HP = dasjax.H1.replace(name="probe", alpha_lr=0.05, alpha_warmup=True, theta_scheduler=True)


class Probe:
    """Cheap fingerprint of everything a config drives, in parts computed on demand, cheapest first:
    the schedule, the data, one search step, then a second step and the eval.  A field that changes
    an early part is told apart without the later ones (run eagerly under ``jax.disable_jit``: no
    whole-program compile per variant)."""

    PARTS = ("sched", "data", "step1", "step2")

    def __init__(self, cfg, hp=HP):
        self.cfg, self.hp, self._done = cfg, hp, {}

    def part(self, name) -> dict:
        if name not in self._done:
            with jax.disable_jit():
                self._done[name] = getattr(self, "_" + name)()
        return self._done[name]

    def _sched(self):
        cfg = self.cfg
        return {"sched": np.asarray(jnp.stack([
            lr_factor(e * cfg.search.steps_per_epoch, warmup=1.0, scheduler=1.0, epochs=50,
                      steps_per_epoch=cfg.search.steps_per_epoch, cfg=cfg.schedule) for e in range(50)]))}

    def _data(self):
        batch = dasjax.make_problem(self.cfg.problem).sample(jax.random.key(1), 4)
        return {"x0": np.asarray(batch.x0), "x": np.asarray(batch.x)}

    def _step(self, st):
        st, m = self._prog.step(st, jax.random.key(0), self._hps)
        leaves = [jnp.ravel(x) for x in jax.tree_util.tree_leaves((st.params, st.bn))]
        return st, {"alpha": np.asarray(st.alpha), "loss": np.asarray(jnp.stack(m)),
                    "theta": np.asarray(jnp.concatenate(leaves)) if self.cfg.space.width == 4 else None}

    def _step1(self):
        cfg = self.cfg
        self._space = make_space(cfg, dasjax.make_problem(cfg.problem))
        hps, types, _ = resolve_hparams(self.hp, 1)
        self._hps = jax.tree_util.tree_map(lambda x: x[0], hps)
        self._prog = SearchProgram(cfg, self._space, types)
        self._state, out = self._step(self._prog.init(jax.random.key(0), self._hps))
        return out

    def _step2(self):
        self.part("step1")
        st, out = self._step(self._state)
        out["psnr"] = float(evaluate_psnr(self._space, st.params, st.bn, self._space.weights(st.alpha),
                                          jax.random.key(0), n_batches=1, batch_size=4))
        return out


def differs(a: Probe, b: Probe) -> bool:
    """Whether the two fingerprints differ, comparing part by part and stopping at the first difference."""
    for name in Probe.PARTS:
        pa, pb = a.part(name), b.part(name)
        for k in pa:
            x, y = pa[k], pb[k]
            if x is None or y is None or np.shape(x) != np.shape(y):
                return True
            if not np.allclose(x, y, rtol=1e-6, atol=1e-7):
                return True
    return False


# one layer, which is what makes a probe cheap (an eager step's cost grows with the layers); a field
# whose effect needs a layer behind another gets two
PROBE_LAYERS = {("space", "grad_term"): 2}   # the data gradient depends on theta from the 2nd layer on


@pytest.fixture(scope="module")
def default_probes():
    """The defaults' fingerprints per problem and layer count (each part computed only when asked)."""
    return {(p, n): Probe(tiny(op_set="all", problem=p, n_layers=n))
            for p in ("blur", "downsampling") for n in (1, 2)}


@pytest.mark.parametrize("override,section,field", REGISTER_VARIANTS,
                         ids=[f"{s}.{f}={list(o.values())[-1]}" for o, s, f in REGISTER_VARIANTS])
def test_register_variant_is_a_live_field(override, section, field, default_probes):
    layers = PROBE_LAYERS.get((section, field), 1)
    cfg = tiny(op_set="all", n_layers=layers, **override)
    default = dasjax.Config()
    assert getattr(getattr(cfg, section), field) != getattr(getattr(default, section), field)
    assert differs(Probe(cfg), default_probes[cfg.problem.name, layers]), f"{section}.{field} changed nothing"


# choices that compute what the default computes wherever a probe can run them
SAME_AS_DEFAULT = {("problem", "x0"): {"measurement"},   # = "zero_fill" on blur (y is on the grid); refused on downsampling
                   ("problem", "ds_blur_units"): {"omega"}}   # = "same" while blur_units is "omega"


def test_every_choice_of_a_probed_field_is_probed():
    """The register probes cover each choice a probed field declares (dasjax.fields), so a choice
    added to a field's declaration needs its probe."""
    probed: dict = {}
    for override, section, field in REGISTER_VARIANTS:
        probed.setdefault((section, field), set()).add(getattr(getattr(tiny(**override), section), field))
    for (section, field), values in probed.items():
        f = next(f for f in dataclasses.fields(SECTIONS[section]) if f.name == field)
        rule = rule_of(f)
        if rule is not None and rule.kind == "choice":
            missing = set(rule.allowed()) - values - {f.default} - SAME_AS_DEFAULT.get((section, field), set())
            assert not missing, f"{section}.{field}: no probe for {sorted(missing)}"


def _bad_value(rule):
    if rule.kind in ("choice", "registered"):
        return "no-such-choice"
    if rule.kind == "flag":
        return "yes"
    if rule.kind == "integer" or rule.integer:
        return 1.5
    return (rule.low - 1.0) if rule.low is not None else float("inf")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_declared_field_refuses_a_bad_value_by_name(section):
    """One validator for all declared fields: a bad value raises ValueError naming the field (and,
    for a choice, the allowed values)."""
    cls = SECTIONS[section]
    checked = 0
    for f in dataclasses.fields(cls):
        rule = rule_of(f)
        if rule is None:
            continue
        with pytest.raises(ValueError, match=re.escape(rule.label or f.name)) as err:
            cls(**{f.name: _bad_value(rule)})
        if rule.kind in ("choice", "registered"):
            assert all(repr(c) in str(err.value) for c in rule.allowed()), str(err.value)
        checked += 1
    assert checked >= 5


def test_choices_come_from_the_registries():
    assert set(field_choices("problem")) >= {"blur", "downsampling", "image_denoise", "image_blur"}
    assert field_choices("space") == dasjax.registry.SPACES.names()
    assert field_choices("merge_norm") == ("none", "batch") and field_choices("width") == ()
    assert [s for s, _ in flat_field("epochs")] == ["search", "retrain"] and flat_field("nope") == []


def test_register_defaults_match_spec():
    c = dasjax.Config()
    assert (c.problem.noise_std, c.space.noise_layer_std, c.problem.blur_units, c.problem.boundary,
            c.problem.ds_mode, c.problem.x0, c.problem.psnr_peak, c.problem.amplitude) == \
        (0.10, 1.0, "omega", "zero", "stride", "zero_fill", 1.0, None)   # x0: stages 2 and 7, noise std: stage 8
    assert (c.problem.blur_alignment, c.problem.ds_offset, c.retrain.random_search_pool) == ("centred", 2, "row")  # stages 7-8
    assert (c.space.tau_learnable, c.space.tau_init, c.space.width, c.space.kernel_size, c.space.bias,
            c.space.roll_shift, c.space.global_skip, c.space.alpha_init_std, c.space.n_layers) == \
        (True, 1.0, 64, 3, True, 1, True, 1e-3, 10)
    assert c.space.grad_term == "detached"                               # calibration stage 4
    assert (c.space.roll_axes, c.space.noise_form, c.space.noise_eval) == ("all", "gradient", True)   # stage 5
    assert (c.search.order, c.search.epochs, c.search.steps_per_epoch, c.search.batch_size) == (1, 50, 19, 128)
    assert c.schedule.milestones(50) == (18, 31, 43) and c.schedule.warmup_epochs == 5
    assert (c.retrain.epochs, dasjax.H1.theta_optimizer) == (50, "adam")


def test_theta_optimizer_variant_and_schedule_values(default_probes):
    """Register #15 (theta optimizer) and the exact "Linear" step / warm-up values of register #16/#17."""
    sgd = dasjax.H1.replace(name="H1-sgd", theta_optimizer="Gradient Descent")
    assert sgd.theta_optimizer == "sgd"
    assert differs(Probe(tiny(op_set="all", n_layers=1), sgd.replace(alpha_lr=0.05, theta_scheduler=True)),
                   default_probes["blur", 1])
    cfg = dasjax.ScheduleConfig()
    f = [float(lr_factor(e, warmup=0.0, scheduler=1.0, epochs=50, steps_per_epoch=1, cfg=cfg)) for e in range(50)]
    assert f[17] == 1.0 and f[18] == pytest.approx(0.1) and f[31] == pytest.approx(0.01) and f[43] == pytest.approx(1e-3)
    w = [float(lr_factor(e, warmup=1.0, scheduler=1.0, epochs=50, steps_per_epoch=1, cfg=cfg)) for e in range(50)]
    assert w[:6] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert w[22] == 1.0 and w[23] == pytest.approx(0.1)          # milestones counted after the warm-up


def test_retrain_variants():
    problem = dasjax.make_problem(dasjax.ProblemConfig())
    shared = make_space(tiny(op_set="good"), problem, share_f=True)
    separate = make_space(tiny(op_set="good", share_f=False), problem, share_f=False)
    assert shared.layer.n_slots == 1 and separate.layer.n_slots == 2
    assert tiny(n_random_search=3).retrain.n_random_search == 3


@pytest.mark.parametrize("kw,field", [
    ({"op_set": ("lg", "conv")}, "op_set"),
    ({"op_set": "best"}, "op_set"),
    ({"width": 0}, "width"),
    ({"width": -3}, "width"),
    ({"epochs": 0}, "epochs"),
    ({"n_layers": 0}, "n_layers"),
    ({"batch_size": -1}, "batch_size"),
    ({"problem": "deblur"}, "problem"),
    ({"blur_units": "inch"}, "blur_units"),
    ({"order": 3}, "order"),
    ({"roll_axes": "batch"}, "roll_axes"),
    ({"roll_shift": 1.5}, "roll_shift"),
    ({"noise_eval": "yes"}, "noise_eval"),
    ({"noise_form": "multiplicative"}, "noise_form"),
    ({"no_such_field": 1}, "no_such_field"),
])
def test_bad_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        dasjax.make_config(**kw)


def test_a_misspelt_field_names_the_closest_ones_not_all():
    with pytest.raises(ValueError) as err:
        dasjax.make_config(noise_layr_std=0.3)
    msg = str(err.value)
    assert "'noise_layer_std'" in msg and "did you mean" in msg and "'ada_factor'" not in msg


@pytest.mark.parametrize("kw,field", [({"theta_lr": 0.0}, "theta_lr"), ({"alpha_lr": -1e-3}, "alpha_lr"),
                                      ({"alpha_optimizer": "rmsprop"}, "alpha_optimizer"),
                                      ({"theta_wd": -1.0}, "theta_wd")])
def test_bad_hparams_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        dasjax.H1.replace(**kw)


def test_mismatched_trial_axes_name_the_field(tiny_cfg):
    with pytest.raises(ValueError, match="hparams"):
        dasjax.search(tiny_cfg, [0, 1, 2], [dasjax.H1, dasjax.H2])
    archs = dasjax.fixed_architectures(tiny_cfg, "net", 2)
    with pytest.raises(ValueError, match="architectures"):
        dasjax.retrain(tiny_cfg, archs, [0, 1, 2])
    with pytest.raises(ValueError, match="hparams"):
        dasjax.search(tiny_cfg, [0], [dasjax.H1, dasjax.BOHB_BLUR] if hasattr(dasjax, "BOHB_BLUR")
                      else [dasjax.H1, dasjax.hparams.BOHB_BLUR])
    with pytest.raises(ValueError, match="method"):
        dasjax.run_method(tiny_cfg, "Grid Search", [0])
    with pytest.raises(ValueError, match="seeds"):
        dasjax.search(tiny_cfg, [])


def test_config_roundtrip_json():
    cfg = tiny(op_set=("lg", "roll"), amplitude=(0.5, 1.0))
    back = dasjax.Config.from_dict(json.loads(cfg.to_json()))
    assert back == cfg


def test_saved_config_without_grad_term_reads_the_behaviour_it_ran_with():
    """grad_term's default changed when the field was added (calibration stage 4): a config saved
    before it existed ran with the gradient differentiable, and reads back that way."""
    d = json.loads(json.dumps(dasjax.make_config().science_dict(), default=list))
    assert d["space"]["grad_term"] == "detached"                       # today's default
    old = json.loads(json.dumps(d))
    del old["space"]["grad_term"]
    assert dasjax.Config.from_dict(old).space.grad_term == "differentiable"
    assert dasjax.Config.from_dict(d).space.grad_term == "detached"


@pytest.mark.parametrize("field,legacy", [("roll_axes", "signal"), ("noise_eval", True), ("noise_form", "additive")])
def test_saved_config_without_a_harmful_op_field_reads_the_behaviour_it_ran_with(field, legacy):
    """The harmful-op fields of calibration stage 5: a config saved before a field existed ran with
    the behaviour of the time (signal-axis roll, noise in eval mode, noise added after the step)."""
    d = json.loads(json.dumps(dasjax.make_config().science_dict(), default=list))
    old = json.loads(json.dumps(d))
    del old["space"][field]
    assert getattr(dasjax.Config.from_dict(old).space, field) == legacy
    assert dasjax.Config.from_dict(d) == dasjax.make_config()


STAGE6_FIELDS = ("cell_skip", "cell_combine", "cell_input", "merge_bias", "merge_norm", "merge_init")


@pytest.mark.parametrize("global_skip", [True, False])
def test_saved_config_without_the_cell_structure_fields_reads_the_cell_it_ran_with(global_skip):
    """The cell fields of calibration stage 6: a cell config saved before they existed ran with a
    summed state, the previous cell's output as input, a biased PyTorch-initialised merge conv and
    no norm, and the skip global_skip said; it reads back that way whatever the defaults.  A
    sequential config reads today's defaults (the fields change nothing it computes)."""
    def saved(space):
        d = json.loads(json.dumps(dasjax.make_config(space=space).science_dict(), default=list))
        d["space"]["global_skip"] = global_skip
        for f in STAGE6_FIELDS:
            d["space"].pop(f, None)          # a sequential science_dict holds no cell fields
        return d

    cell = dasjax.Config.from_dict(saved("cell")).space
    assert [getattr(cell, f) for f in STAGE6_FIELDS] == [
        "global" if global_skip else "none", "sum", "previous", True, "none", "pytorch"]
    seq = dasjax.Config.from_dict(saved("sequential")).space
    assert seq == dasjax.make_config(global_skip=global_skip).space          # today's defaults
    # a sequential results folder's fingerprint does not see the cell fields, so a new cell default
    # does not turn it into "another configuration"; a cell folder's does
    assert dasjax.make_config(merge_norm="none").science_dict() == dasjax.make_config().science_dict()
    assert dasjax.make_config(space="cell", merge_norm="none").science_dict() != \
        dasjax.make_config(space="cell").science_dict()


# calibration stage 7: each new field and the behaviour every config saved before it ran with
STAGE7_FIELDS = {("problem", "blur_alignment"): "centred", ("problem", "ds_offset"): 0,
                 ("problem", "ds_samples"): None, ("problem", "ds_blur_units"): "same",
                 ("problem", "noise_stage"): "measurement", ("space", "bn_eval"): "running",
                 ("retrain", "random_search_pool"): "fresh"}


@pytest.mark.parametrize("section,field", list(STAGE7_FIELDS), ids=[f for _, f in STAGE7_FIELDS])
def test_saved_config_without_a_stage7_field_reads_the_behaviour_it_ran_with(section, field):
    """A config (and so a results folder) saved before a stage-7 field existed reads the behaviour
    it ran with, whatever today's default is; a config that names the field keeps its value."""
    d = json.loads(json.dumps(dasjax.make_config(problem="downsampling").to_dict(), default=list))
    old = json.loads(json.dumps(d))
    del old[section][field]
    assert getattr(getattr(dasjax.Config.from_dict(old), section), field) == STAGE7_FIELDS[section, field]
    assert dasjax.Config.from_dict(d) == dasjax.make_config(problem="downsampling")
