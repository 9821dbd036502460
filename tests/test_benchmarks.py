"""benchmarks/formulations.py: every way of writing F computes the production F (no timing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_script

from dasjax.config import make_config


@pytest.fixture(scope="module")
def formulations():
    return load_script("formulations", folder="benchmarks")


def test_formulations_agree_with_production_f(formulations):
    scfg = make_config(problem="blur", op_set="good", width=4).space
    # raises when a formulation's loss differs from dasjax.ops.f_apply's (matmul) on 3 trials
    formulations.check_equal(formulations.FORMULATIONS, scfg, n_layers=2, batch=6, length=9)


def test_grouped_conv_is_per_trial(formulations):
    """Folding trials into feature groups keeps them apart: trial 1's output ignores trial 0's input."""
    scfg = make_config(problem="blur", op_set="good", width=4).space
    key = jax.random.key(0)
    layers = [jax.tree.map(lambda *a: jnp.stack(a), *ps) for ps in zip(
        *[formulations.init_layers(jax.random.fold_in(key, t), scfg, 2) for t in range(2)])]
    x = jax.random.normal(key, (2, 6, 9))
    out = formulations.net_batched("groups_nwc", layers, x, scfg)
    out2 = formulations.net_batched("groups_nwc", layers, x.at[0].multiply(3.0), scfg)
    np.testing.assert_allclose(out[1], out2[1], rtol=1e-6)
    assert not np.allclose(out[0], out2[0])
