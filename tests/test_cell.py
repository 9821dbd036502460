"""The non-sequential (cell) search space (paper §3.1.2): topology, the zero cell, the discrete cell
against the cell written out by hand, batch invariance / determinism, Table 2 end to end."""
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import load_script, tiny

import analysis
import dasjax
from dasjax.runners import common as table_runner  # the runners' shared machinery
from dasjax.ops import f_apply
from dasjax.spaces import CellSpace, make_space
from dasjax.spaces.cell import edge_schedule

EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
         (0, 5), (1, 5), (2, 5), (3, 5), (4, 5)]


def cell_cfg(**kw):
    return tiny(space="cell", **kw)


def cell_space(share_f=False, **kw):
    cfg = cell_cfg(**kw)
    return cfg, make_space(cfg, dasjax.make_problem(cfg.problem), share_f=share_f)


FAST = {"xla_backend_optimization_level": 0}       # quick compiles for tiny shapes


def init(space, seed=0):
    return jax.jit(space.init, compiler_options=FAST)(jax.random.key(seed))


def apply_fn(space):
    return jax.jit(space.apply, static_argnames="train", compiler_options=FAST)


# --- topology ------------------------------------------------------------------------------------
def test_edge_count_and_topology():
    for op_set, ops in (("good", ("lg", "net", "zero")), ("all", ("lg", "net", "roll", "noise", "zero"))):
        cfg, space = cell_space(op_set=op_set)
        assert isinstance(space, CellSpace) and space.kind == "cell"
        assert space.ops == ops and cfg.space.ops == ops[:-1]          # the space appends zero
        assert space.arch_shape == (15, len(ops))
    # 15 edges, ordered by target then source; state i is fed by every predecessor s_0..s_{i-1}
    assert space.edges == EDGES and space.n_edges == 15
    for i in range(1, 6):
        assert [j for j, t in space.edges if t == i] == list(range(i))
    # own parameters per cell and edge; one merge conv per cell
    params, state = init(space)
    for leaf in jax.tree_util.tree_leaves((params["edges"], state["edges"])):
        assert leaf.shape[:2] == (2, 15)
    w1 = params["edges"]["f"]["w1"]
    assert not np.allclose(w1[0, 0], w1[0, 1]) and not np.allclose(w1[0, 0], w1[1, 0])
    assert params["merge"]["w"].shape == (2, 2, 1) and params["merge"]["b"].shape == (2,)
    # alpha: shared by both cells (default) or one block of 15 rows per cell
    assert cell_space(op_set="all", share_cell_alpha=False)[1].arch_shape == (30, 5)
    # the evaluation schedule runs every edge once, after its source is complete, before its target is read
    sched = edge_schedule(5)
    assert sorted(e for row in sched for e in row if e >= 0) == list(range(15))
    for k, row in enumerate(sched):
        for e in row:
            j, i = EDGES[e]
            assert j <= k <= i - 1


def test_architecture_strings():
    cfg, space = cell_space(op_set="all")
    text = space.arch_string(space.fixed_architecture("net"))
    assert text.split(";")[:4] == ["0>1:net", "0>2:net", "1>2:net", "0>3:net"] and text.count(";") == 14
    assert [(e.source, e.target, e.op) for e in analysis.parse_cell(text)] == [(j, i, "net") for j, i in EDGES]
    for k in range(3):
        arch = space.random_architecture(jax.random.key(k))
        np.testing.assert_array_equal(space.parse_arch(space.arch_string(arch)), arch)
    with pytest.raises(ValueError, match="j>i:op"):
        space.parse_arch("0>1:net;0>2:lg")
    with pytest.raises(ValueError, match="bad or repeated edge"):
        space.parse_arch(text.replace("0>1:net", "0>1:conv"))
    # random architectures draw every candidate, zero included
    drawn = jax.vmap(space.random_architecture)(jax.random.split(jax.random.key(9), 40)).sum((0, 1))
    assert np.all(np.asarray(drawn) > 0)
    # one alpha per cell: the cells' strings joined by " | "
    _, sp2 = cell_space(op_set="good", share_cell_alpha=False)
    two = sp2.arch_string(sp2.random_architecture(jax.random.key(0)))
    assert two.count(" | ") == 1
    np.testing.assert_array_equal(sp2.parse_arch(two), sp2.random_architecture(jax.random.key(0)))


def test_discretization_argmax_and_top2():
    _, space = cell_space(op_set="good")                         # ops: lg, net, zero
    alpha = np.zeros((15, 3), np.float32)
    alpha[:, 2] = 5.0                                              # zero wins every edge ...
    alpha[EDGES.index((2, 5)), 0] = 6.0                            # ... except 2>5 (lg)
    for e, strength in zip([EDGES.index((j, 4)) for j in range(4)], [1.0, 3.0, 2.0, 4.0]):
        alpha[e, 1] = strength                                     # net weights into s_4
    argmax = space.arch_string(jax.jit(space.discretize, compiler_options=FAST)(alpha))
    assert [e.op for e in analysis.parse_cell(argmax)] == ["lg" if (j, i) == (2, 5) else "zero" for j, i in EDGES]
    _, top2 = cell_space(op_set="good", cell_discretization="top2")
    found = top2.arch_string(jax.jit(top2.discretize, compiler_options=FAST)(alpha))
    ops = {(e.source, e.target): e.op for e in analysis.parse_cell(found)}
    # s_4 keeps its two strongest non-zero edges (3>4, 1>4); every state keeps min(2, i) edges
    assert [ops[(j, 4)] for j in range(4)] == ["zero", "net", "zero", "net"]
    assert ops[(0, 1)] != "zero" and ops[(2, 5)] == "lg"
    for i in range(1, 6):
        assert sum(ops[(j, i)] != "zero" for j in range(i)) == min(2, i)


# --- the zero cell ---------------------------------------------------------------------------------
@pytest.mark.parametrize("skip,kernel,train", [("global", 1, True), ("none", 3, False), ("per_cell", 1, False)])
def test_zero_only_cell_is_the_skip_path(skip, kernel, train):
    """Every edge zero: all states are 0, each cell outputs its merge bias (no norm after the merge), so
    x_hat = x0 + bias of cell 2 (global skip), the bias alone (no skip), or x0 + both biases (a skip
    per cell).  With the BatchNorm after the merge (the default), a train-mode cell outputs its BN's
    shift beta = 0 for the constant, so x_hat = x0 under the global skip."""
    if skip == "global" and train:
        _, space = cell_space(op_set="all", cell_skip=skip, merge_kernel=kernel, merge_norm="batch")
        params, state = init(space)
        batch = space.problem.sample(jax.random.key(1), 16)
        x_hat, _ = apply_fn(space)(params, state, space.fixed_architecture("zero"), batch, jax.random.key(2),
                                   train=True)
        # the BN of a constant is 0 up to its rounding, amplified by 1 / sqrt(eps); without the norm: bias2
        np.testing.assert_allclose(np.asarray(x_hat), np.asarray(batch.x0), rtol=0, atol=2e-3)
        assert float(np.abs(np.asarray(params["merge"]["b"][1]))) > 2e-3
    _, space = cell_space(op_set="all", cell_skip=skip, merge_kernel=kernel, merge_norm="none")
    params, state = init(space)
    batch = space.problem.sample(jax.random.key(1), 16)
    zero = space.fixed_architecture("zero")
    bias1, bias2 = params["merge"]["b"]
    assert float(bias2) != 0.0
    x_hat, _ = apply_fn(space)(params, state, zero, batch, jax.random.key(2), train=train)
    expected = {"global": batch.x0 + bias2, "none": jnp.full_like(batch.x0, bias2),
                "per_cell": batch.x0 + bias1 + bias2}[skip]
    np.testing.assert_allclose(np.asarray(x_hat), np.asarray(expected), rtol=0, atol=1e-6)


def test_cell_skip_replaces_global_skip_in_the_cell_space():
    with pytest.raises(ValueError, match="cell_skip='none'"):
        cell_cfg(global_skip=False)
    assert cell_cfg(global_skip=False, cell_skip="none").space.cell_skip == "none"
    for field, bad in (("cell_skip", "both"), ("cell_combine", "max"), ("cell_input", "x0"),
                       ("merge_norm", "layer"), ("merge_init", "xavier"), ("merge_bias", 1)):
        with pytest.raises(ValueError, match=field):
            cell_cfg(**{field: bad})


def test_merge_init_readings():
    for init_name, bias in (("average", True), ("zero", False)):
        _, space = cell_space(merge_kernel=3, merge_init=init_name, merge_bias=bias)
        merge = init(space)[0]["merge"]
        want = np.zeros((2, 2, 3))
        if init_name == "average":
            want[:, :, 1] = 0.5                        # the centre tap of kernel 3
        np.testing.assert_array_equal(np.asarray(merge["w"]), want)
        assert ("b" in merge) == bias and (not bias or not np.any(np.asarray(merge["b"])))
    _, space = cell_space(merge_norm="batch")
    params, state = init(space)
    assert params["merge"]["gamma"].shape == (2,) and state["merge"]["var"].shape == (2,)


def test_cell_structure_fields_change_the_computation():
    """Each stage-6 reading changes the supernet's output from the default's (same parameters)."""
    def out(**kw):
        _, space = cell_space(op_set="good", **kw)
        params, state = init(space)
        weights = space.weights(space.init_alpha(jax.random.key(3)) * 300.0)
        batch = space.problem.sample(jax.random.key(1), 16)
        return np.asarray(apply_fn(space)(params, state, weights, batch, jax.random.key(2), train=True)[0])

    default = out()
    for kw in ({"cell_combine": "mean"}, {"cell_input": "network_input"}, {"merge_norm": "none"}):
        assert not np.allclose(out(**kw), default, atol=1e-4), kw
    # the merge bias shows without the norm (a BatchNorm after the conv subtracts any constant)
    assert not np.allclose(out(merge_norm="none", merge_bias=False), out(merge_norm="none"), atol=1e-4)
    np.testing.assert_allclose(out(merge_bias=False), default, atol=1e-4)


# --- discrete cell == the cell written out by hand -----------------------------------------------
CELL_1 = "0>1:lg;0>2:net;1>2:roll;0>3:noise;1>3:zero;2>3:net;0>4:lg;1>4:net;2>4:zero;3>4:roll;" \
         "0>5:zero;1>5:lg;2>5:noise;3>5:net;4>5:lg"
CELL_2 = "0>1:net;0>2:zero;1>2:lg;0>3:lg;1>3:net;2>3:noise;0>4:roll;1>4:zero;2>4:net;3>4:lg;" \
         "0>5:net;1>5:zero;2>5:lg;3>5:roll;4>5:net"


def direct_cells(params, state, cells, batch, problem, cfg, key, train):
    """Two cells written out: loop over states, sum (or average) the selected op of each incoming
    edge, conv(2->1) of concat(s4, s5) by lax.conv, then the merge BN and the skip the config names.
    lg/net share the CNN (share_f).  Returns (x_hat, {(cell, edge): F's BN state}, merge BN states)."""
    sp = cfg.space
    keys = jax.random.split(key, (2, 15))
    x, new_bn, merge_bn = batch.x0, {}, []
    for c, cell in enumerate(cells):
        ops = dict(((e.source, e.target), e.op) for e in analysis.parse_cell(cell))
        cell_in = batch.x0 if sp.cell_input == "network_input" else x
        s, e = [cell_in], 0
        for i in range(1, 6):
            total = jnp.zeros_like(x)
            for j in range(i):
                op, h = ops[(j, i)], s[j]
                pe = jax.tree_util.tree_map(lambda a: a[c, e], params["edges"])
                if op in ("lg", "net"):
                    fx, new_bn[(c, e)] = f_apply(jax.tree_util.tree_map(lambda a: a[0], pe["f"]),
                                                 jax.tree_util.tree_map(lambda a: a[c, e, 0], state["edges"]["f"]),
                                                 h, train, cfg.space)
                if op == "lg":
                    tau = pe["tau"]["lg"]
                    out = h - tau * (problem.forward(h) - batch.y) @ problem.matrix.astype(np.float32) - tau * fx
                elif op == "net":
                    out = fx
                elif op == "roll":
                    out = jnp.roll(h, 1, axis=(0, 1))          # roll_axes="all": batch and signal
                elif op == "noise":
                    tau = pe["tau"]["noise"]
                    # noise_form="gradient": a noisy gradient step
                    out = h - tau * (problem.data_grad(h, batch.y)
                                     + sp.noise_layer_std * jax.random.normal(keys[c, e], h.shape))
                else:
                    out = jnp.zeros_like(h)
                total = total + out
                e += 1
            s.append(total / i if sp.cell_combine == "mean" else total)
        mp = jax.tree_util.tree_map(lambda a: a[c], params["merge"])
        lhs = jnp.stack([s[4], s[5]], axis=1)                                   # (B, 2, L)
        x = jax.lax.conv_general_dilated(lhs, mp["w"][None], (1,), "SAME")[:, 0]  # PyTorch Conv1d(2, 1, k)
        x = x + mp.get("b", 0.0)
        if sp.merge_norm == "batch":                      # BatchNorm1d(1)
            n = x.size
            mean, var = (jnp.mean(x), jnp.var(x)) if train else (state["merge"]["mean"][c], state["merge"]["var"][c])
            x = (x - mean) / jnp.sqrt(var + sp.bn_eps) * mp["gamma"] + mp["beta"]
            merge_bn.append((0.9 * state["merge"]["mean"][c] + 0.1 * mean,
                             0.9 * state["merge"]["var"][c] + 0.1 * var * n / (n - 1)))
        if sp.cell_skip == "per_cell":
            x = cell_in + x
    return (batch.x0 + x if sp.cell_skip == "global" else x), new_bn, merge_bn


@pytest.mark.parametrize("structure", [
    {}, {"cell_combine": "mean", "cell_skip": "per_cell", "merge_bias": False},
    {"cell_input": "network_input", "merge_norm": "none", "cell_skip": "none"}], ids=["default", "mean-per_cell", "x0-no_norm"])
def test_discrete_cell_equals_direct_cell(structure):
    """One-hot weights through the supernet == the cells written out (two different cells, kernel 3),
    under the default cell structure and the stage-6 readings."""
    cfg, space = cell_space(share_f=True, op_set="all", share_cell_alpha=False, merge_kernel=3, **structure)
    params, state = init(space)
    params["merge"]["w"] = params["merge"]["w"] * 3.0                 # keep the signal from shrinking
    arch = space.parse_arch(CELL_1 + " | " + CELL_2)
    batch = space.problem.sample(jax.random.key(1), 16)
    key = jax.random.key(2)

    def both(p, s, train):
        return (space.apply(p, s, arch, batch, key, train),
                direct_cells(p, s, [CELL_1, CELL_2], batch, space.problem, cfg, key, train))

    both = jax.jit(both, static_argnames="train", compiler_options=FAST)
    if "merge" in state:                                                  # running stats away from (0, 1)
        state["merge"] = {"mean": jnp.asarray([0.1, -0.2]), "var": jnp.asarray([2.0, 0.5])}
    for train in (True, False):
        (x_hat, new_state), (ref, ref_bn, ref_merge_bn) = both(params, state, train=train)
        assert float(jnp.std(x_hat - batch.x0)) > 1e-2                   # the cells do something
        np.testing.assert_allclose(np.asarray(x_hat), np.asarray(ref), rtol=1e-5, atol=1e-5)
        for c, (mean, var) in enumerate(ref_merge_bn):                     # the merge BN's running stats
            if train:
                np.testing.assert_allclose(np.asarray(new_state["merge"]["mean"][c]), np.asarray(mean), rtol=1e-5)
                np.testing.assert_allclose(np.asarray(new_state["merge"]["var"][c]), np.asarray(var), rtol=1e-5)
            else:
                np.testing.assert_array_equal(np.asarray(new_state["merge"]["var"]), np.asarray(state["merge"]["var"]))
        for (c, e), bn in ref_bn.items():                                  # BN of every used CNN
            for name in ("mean", "var"):
                np.testing.assert_allclose(np.asarray(new_state["edges"]["f"][name][c, e, 0]),
                                           np.asarray(bn[name]), rtol=1e-5, atol=1e-6)


# --- batch invariance and determinism -------------------------------------------------------------
# The same config and seeds as the DAS row of the Table 2 smoke test below, which then reuses
# this compiled search program (a compile is the slow part of these tests on 2 CPU cores).
def search_cfg():
    return cell_cfg(op_set="good", problem="blur")


@pytest.fixture(scope="module")
def batched():
    return dasjax.search(search_cfg(), [0, 1])


def test_cell_search_outputs(batched):
    assert batched.alpha.shape == (2, 15, 3)
    assert batched.history["alpha_history"].shape == (2, 2, 15, 3)
    assert np.all(np.isfinite(batched.one_shot_psnr)) and not batched.diverged.any()
    assert all(len(analysis.parse_cell(s)) == 15 for s in batched.arch_strings)
    assert np.abs(batched.alpha).max() > 1e-3 and not np.allclose(batched.alpha[0], batched.alpha[1])


def test_cell_trial_does_not_depend_on_its_batch_partner(batched):
    """The seeds swapped: each trial at the other place in the same compiled program."""
    swapped = dasjax.search(search_cfg(), [1, 0])
    assert np.abs(swapped.alpha[::-1] - batched.alpha).max() <= 1e-5
    assert np.abs(swapped.one_shot_psnr[::-1] - batched.one_shot_psnr).max() <= 1e-5


def test_cell_search_is_deterministic(batched):
    again = dasjax.search(search_cfg(), [0, 1])
    np.testing.assert_array_equal(again.alpha, batched.alpha)
    np.testing.assert_array_equal(again.one_shot_psnr, batched.one_shot_psnr)


# --- Table 2 end to end ----------------------------------------------------------------------------
def test_table2_smoke_end_to_end(batched, tmp_path, capsys):
    """A reduced run_table2.py: the good-ops rows on blur, 2 trials, then every output file."""
    table2 = load_script("run_table2")
    out = tmp_path / "t2"
    # smoke preset shrunk to the tiny() shapes, so the DAS search is the compiled one of `batched`
    tiny_shapes = ["--width", "4", "--batch-size", "16", "--set", "steps_per_epoch=3", "--set", "n_layers=3",
                   "--set", "progress=false"]
    args = ["--preset", "smoke", "--out", str(out), "--trials", "2", "--problems", "blur",
            "--rows", "lg_only,nets_only,das_good,rs_good"] + tiny_shapes
    assert table_runner.main_guard(table2.main, args) == 0
    printed = capsys.readouterr().out
    assert "| Op set | Method |" in printed and "Learn" in printed
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == 8 and set(df["space"]) == {"cell"}
    assert set(df["method"]) == {"Learnable Grad. only", "Nets only", "DAS", "Random Sampling"}
    assert df[df.method == "DAS"]["one_shot_psnr"].notna().all()
    assert all(len(analysis.parse_cell(a)) == 15 for a in df["architecture"])
    assert set(df[df.method == "Nets only"]["architecture"]) == {";".join(f"{j}>{i}:net" for j, i in EDGES)}
    das = df[df.method == "DAS"].iloc[0]
    assert np.asarray(analysis.parse_alpha(das["alpha_softmax"])).shape == (15, 3)
    assert analysis.parse_ops(das["ops"]) == ["lg", "net", "zero"]
    for f in ["table2.md", "table2.tex", "summary.csv", "wall_times.csv", "figures/fig8_scatter.png",
              "figures/fig11_cell_blur_good.png", "report/report.md", "runs/blur/das_good/arrays.npz"]:
        assert (out / f).exists() and (out / f).stat().st_size > 0, f
    # the paper's released single-op rows beside ours; the withheld DAS / random rows ours alone
    lines = {ln.split("|")[2].strip(): ln for ln in (out / "table2.md").read_text().splitlines() if ln.count("|") > 4}
    assert "(12.38," in lines["Learnable Grad. only"] and "(15.82," in lines["Nets only"]
    assert not re.search(r"\d\.\d\d \(", lines["DAS"] + lines["Random Sampling"])
    # a cell-space folder written before the stage-6 fields existed reads the cell it ran with (no
    # BatchNorm after the merge): today's default is another configuration, and the old cell resumes
    for manifest in out.glob("runs/*/*/manifest.json"):
        manifest.unlink()                        # such a folder had no manifest either
    for f in [out / "run.json", *out.glob("runs/*/*/config.json")]:
        d = json.loads(f.read_text())
        for field in ("cell_skip", "cell_combine", "cell_input", "merge_bias", "merge_norm", "merge_init"):
            del (d if f.name == "run.json" else d["run"])["config"]["space"][field]
        f.write_text(json.dumps(d))
    capsys.readouterr()
    assert table_runner.main_guard(table2.main, args) == 2
    assert "different configuration" in capsys.readouterr().err
    assert table_runner.main_guard(table2.main, args + ["--set", "merge_norm=none", "--no-figures"]) == 0
    assert capsys.readouterr().out.count("already done, skipped") == 4
