"""Non-sequential (cell) search space (paper §3.1.2, register #19-#23).

A cell has one input node s_0 and ``N = cell_states`` (5) states.  State s_i receives one
mixed edge from every predecessor s_0..s_{i-1}, so a cell has N(N+1)/2 = 15 edges::

    s_i = sum_{j<i} sum_t w_{(j>i), t} o_t(s_j)          (candidates: op set + zero)
    cell(s_0) = conv_{2->1, k}(concat(s_{N-1}, s_N))     (the merge convolution, bias on)

``n_cells`` (2) cells run in succession (cell 2's input is cell 1's output), then the global
skip: ``x_hat = x0 + cell_2(cell_1(x0))``.  The paper states none of this structure beyond the 5
states, the merge of the last two by a 1D convolution and the two cells in succession; each other
choice is a field (``cell_skip``, ``cell_combine`` = sum or mean of a state's edges, ``cell_input``,
``merge_kernel``, ``merge_bias``, ``merge_norm``, ``merge_init``; the defaults above, calibration
stage 6 in docs/calibration.md).  Every edge is an :class:`dasjax.ops.OpLayer`
with its own parameters (separate per cell and edge).  alpha has one row per edge,
ordered by target state then source (0>1, 0>2, 1>2, 0>3, 1>3, 2>3, ...), shared by all
cells (``share_cell_alpha``, default) or one block of rows per cell.

Like the sequential space, one :meth:`CellSpace.apply` evaluates the supernet
(``weights = softmax(alpha)``) and a discrete cell (one-hot ``weights``), so different
architectures batch together.

Evaluation order: the 15 edges of a cell run in N = 5 steps of 3 edges each (one vmapped
:class:`OpLayer` over stacked edge parameters), so the program holds one edge body instead
of 15 and computes no edge twice.  An edge j -> i may run at any step from j (its source is
complete) to i - 1 (its target is needed next); an earliest-deadline-first schedule fills
every step exactly (15 = 5 x 3; for other state counts the last steps are padded with
masked dummy edges).  State contributions are added with ``jnp.where`` masks in a fixed
order, so results are deterministic.  All cells' steps form one ``lax.scan`` (2 x 5 steps).

Architecture string: the edges in alpha's row order as ``"j>i:op"`` joined by ``";"``, e.g.
``"0>1:net;0>2:zero;1>2:lg;..."`` (a zero edge is a deleted edge).  With one alpha per cell
the cells' strings are joined by ``" | "``.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..config import SpaceConfig
from ..ops import OpLayer, mix, shift, tap_offsets

CELL_SEPARATOR = " | "


def cell_edges(n_states: int) -> list[tuple[int, int]]:
    """(source j, target i) of every edge of a cell, in alpha's row order: by i, then j."""
    return [(j, i) for i in range(1, n_states + 1) for j in range(i)]


def edge_index(j: int, i: int) -> int:
    """Row of edge j -> i (j < i) in alpha / the architecture."""
    return i * (i - 1) // 2 + j


def edge_schedule(n_states: int) -> list[list[int]]:
    """Edges (rows) evaluated at each of the ``n_states`` steps, ``width`` per step, -1 = padding.

    Edge j -> i is released at step j and due at step i - 1; earliest deadline first fills
    the steps (EDF is optimal for unit jobs with release times and deadlines).
    """
    edges = cell_edges(n_states)
    width = math.ceil(len(edges) / n_states)
    while True:
        left, steps, ok = list(range(len(edges))), [], True
        for k in range(n_states):
            ready = sorted((e for e in left if edges[e][0] <= k), key=lambda e: (edges[e][1], edges[e][0]))
            take = ready[:width]
            if any(edges[e][1] == k + 1 for e in ready[width:]):
                ok = False
                break
            steps.append(take + [-1] * (width - len(take)))
            left = [e for e in left if e not in take]
        if ok and not left:
            return steps
        width += 1  # pragma: no cover - never needed: ceil((N+1)/2) per step always suffices


class CellSpace:
    kind = "cell"

    def __init__(self, cfg: SpaceConfig, problem, share_f: bool = False, plan=None):
        self.cfg, self.problem = cfg, problem
        self.ops = cfg.edge_ops                        # op set + "zero"
        self.zero_index = self.ops.index("zero")
        self.n_states = cfg.cell_states
        self.n_cells = cfg.n_cells
        self.edges = cell_edges(self.n_states)
        self.n_edges = len(self.edges)                 # per cell: 15 for 5 states
        self.shared_alpha = cfg.share_cell_alpha or self.n_cells == 1
        self.n_alpha_cells = 1 if self.shared_alpha else self.n_cells
        self.layer = OpLayer(self.ops, cfg, problem, share_f=share_f, plan=plan)   # one edge's candidates
        self.merge_taps = tap_offsets(problem.ndim, cfg.merge_kernel)
        # the evaluation schedule: (steps, width) edge rows; padding slots reuse row 0, masked out
        sched = np.asarray(edge_schedule(self.n_states))
        valid = sched >= 0
        self._sched = np.where(valid, sched, 0)
        self._src = np.asarray([[self.edges[e][0] for e in row] for row in self._sched])
        tgt = np.asarray([[self.edges[e][1] for e in row] for row in self._sched])
        # _tgt_mask[k, e, t]: slot e of step k adds into state t
        self._tgt_mask = valid[..., None] & (tgt[..., None] == np.arange(self.n_states + 1))
        self._to_edge_order = np.argsort(np.where(valid, sched, sched.size).reshape(-1))[:self.n_edges]
        # each slot's contribution to its target state: 1 (sum) or 1 / (the target's i inputs) (mean)
        scale = 1.0 / np.maximum(tgt, 1) if cfg.cell_combine == "mean" else np.ones(tgt.shape)
        self._edge_scale = np.where(valid, scale, 0.0).astype(np.float32)

    @property
    def arch_shape(self) -> tuple[int, int]:
        return (self.n_alpha_cells * self.n_edges, len(self.ops))

    # --- parameters ---------------------------------------------------------------------
    def init(self, key):
        """Edge op parameters / BN state stacked as (cells, edges, ...), and the merge convs (with
        their BN's running statistics under ``merge_norm="batch"``)."""
        k_edges, k_merge = jax.random.split(key)
        keys = jax.random.split(k_edges, (self.n_cells, self.n_edges))
        edge_p, edge_s = jax.vmap(jax.vmap(self.layer.init))(keys)
        merge = jax.vmap(self._merge_init)(jax.random.split(k_merge, self.n_cells))
        state = {"edges": edge_s}
        if self.cfg.merge_norm == "batch":
            state["merge"] = {"mean": jnp.zeros((self.n_cells,)), "var": jnp.ones((self.n_cells,))}
        return {"edges": edge_p, "merge": merge}, state

    def _merge_init(self, key):
        """The merge conv by ``merge_init``: "pytorch" = Conv's default, weight and bias
        U(+-1/sqrt(fan_in)) with fan_in = 2 * k^ndim; "average" = 1/2 per state at the centre tap;
        "zero".  No bias under ``merge_bias=False``; BN's affine (1, 0) under ``merge_norm="batch"``."""
        K = len(self.merge_taps)
        init = self.cfg.merge_init
        if init == "pytorch":
            bound = 1.0 / math.sqrt(2 * K)
            kw, kb = jax.random.split(key)
            p = {"w": jax.random.uniform(kw, (2, K), minval=-bound, maxval=bound),
                 "b": jax.random.uniform(kb, (), minval=-bound, maxval=bound)}
        else:
            centre = self.merge_taps.index((0,) * self.problem.ndim)
            w = jnp.zeros((2, K)).at[:, centre].set(0.5) if init == "average" else jnp.zeros((2, K))
            p = {"w": w, "b": jnp.zeros(())}
        if not self.cfg.merge_bias:
            del p["b"]
        if self.cfg.merge_norm == "batch":
            p.update(gamma=jnp.ones(()), beta=jnp.zeros(()))
        return p

    def init_alpha(self, key):
        return self.cfg.alpha_init_std * jax.random.normal(key, self.arch_shape)

    @staticmethod
    def weights(alpha):
        return jax.nn.softmax(alpha, axis=-1)

    # --- forward ------------------------------------------------------------------------
    def merge(self, mp, ms, a, b, train: bool):
        """conv(2 -> 1, k, 'same', bias) of the channel concatenation of a and b, then the merge
        norm.  ``ms``: this cell's running BN statistics (None without a norm).  Returns (out, the
        batch's (mean, var) for the running statistics, or None)."""
        out = mp.get("b", 0.0)
        for t, off in enumerate(self.merge_taps):
            out = out + mp["w"][0, t] * shift(a, off) + mp["w"][1, t] * shift(b, off)
        if self.cfg.merge_norm == "none":
            return out, None
        if train or self.cfg.bn_eval == "batch":    # BatchNorm over its one channel: every element
            mean, var = jnp.mean(out), jnp.var(out)
        else:
            mean, var = ms["mean"], ms["var"]
        out = (out - mean) * jax.lax.rsqrt(var + self.cfg.bn_eps) * mp["gamma"] + mp["beta"]
        return out, (mean, var)

    def _running(self, ms, stats, n):
        """PyTorch's running-statistics update of the merge BN from a batch's (mean, biased var)."""
        mean, var = (jax.lax.stop_gradient(v) for v in stats)
        if self.cfg.bn_unbiased_running_var:
            var = var * (n / (n - 1))
        m = self.cfg.bn_momentum
        return {"mean": (1 - m) * ms["mean"] + m * mean, "var": (1 - m) * ms["var"] + m * var}

    def cell_weights(self, weights):
        """(alpha rows, ops) -> (cells, edges, ops)."""
        w = weights.reshape(self.n_alpha_cells, self.n_edges, weights.shape[-1])
        return jnp.broadcast_to(w, (self.n_cells,) + w.shape[1:])

    def apply(self, params, state, weights, batch, key, train: bool):
        """x_hat = x0 + cells(x0) (or as ``cell_skip`` says).  Returns (x_hat, new_state).

        One ``lax.scan`` over cells x schedule steps; a step that starts a cell first resets the
        state buffer to (cell input, 0, ..., 0), the cell input being x0 or the previous cell's
        output (``cell_input``).
        """
        C, N, cfg = self.n_cells, self.n_states, self.cfg
        cells = np.repeat(np.arange(C), N)                     # cell of each step
        rows = np.tile(self._sched, (C, 1))                    # (C*N, width) edge rows

        def by_step(tree):                                     # (C, E, ...) -> (C*N, width, ...)
            return jax.tree_util.tree_map(lambda a: a[cells[:, None], rows], tree)

        starts = np.tile(np.arange(N) == 0, C)                 # the step starts a cell
        from_x0 = starts & ((cells == 0) | (cfg.cell_input == "network_input"))
        prev = np.maximum(cells - 1, 0)                        # the cell a start step finishes
        merge_prev = jax.tree_util.tree_map(lambda a: a[prev], params["merge"])
        norm_state = state.get("merge")                        # (C,) running stats, merge_norm="batch"
        norm_prev = jax.tree_util.tree_map(lambda a: a[prev], norm_state)
        keys = jax.random.split(key, (C, self.n_edges))
        y = batch.y

        def cell_output(mp, ms, buf):
            """The finished cell held in buf: its merged last two states (plus its input s_0 under
            cell_skip="per_cell"), and the merge BN's batch statistics."""
            out, stats = self.merge(mp, ms, buf[-2], buf[-1], train)
            return (buf[0] + out if cfg.cell_skip == "per_cell" else out), stats

        def step(buf, xs):
            p, s, w, k, src, tgt_mask, scale, start, first, mp, ms = xs
            prev_out, stats = cell_output(mp, ms, buf)
            cell_in = jnp.where(first, batch.x0, prev_out)
            buf = jnp.where(start, jnp.zeros_like(buf).at[0].set(cell_in), buf)
            inputs = buf[src]                                                  # (width, B, *S)
            outs, s_new = jax.vmap(lambda pe, se, xe, ke: self.layer.apply(pe, se, xe, y, ke, train))(
                p, s, inputs, k)                                               # (width, n_ops, B, *S)
            mixed = jax.vmap(mix)(outs, w)                                     # (width, B, *S)
            if cfg.cell_combine != "sum":
                mixed = mixed * scale.reshape(scale.shape + (1,) * (mixed.ndim - 1))
            m = tgt_mask.reshape(tgt_mask.shape + (1,) * (mixed.ndim - 1))     # (width, N+1, 1, ...)
            return buf + jnp.sum(jnp.where(m, mixed[:, None], 0.0), axis=0), (s_new, stats)

        buf = jnp.zeros((N + 1,) + batch.x0.shape, batch.x0.dtype)
        xs = (by_step(params["edges"]), by_step(state["edges"]), by_step(self.cell_weights(weights)),
              by_step(keys), np.tile(self._src, (C, 1)), np.tile(self._tgt_mask, (C, 1, 1)),
              np.tile(self._edge_scale, (C, 1)), starts, from_x0, merge_prev, norm_prev)
        buf, (edge_state, step_stats) = jax.lax.scan(step, buf, xs)
        last = jax.tree_util.tree_map(lambda a: a[-1], params["merge"])
        x_last, last_stats = cell_output(last, jax.tree_util.tree_map(lambda a: a[-1], norm_state), buf)
        new_state = {"edges": jax.tree_util.tree_map(
            lambda a: a.reshape((C, -1) + a.shape[2:])[:, self._to_edge_order], edge_state)}
        if norm_state is not None:
            if train:   # cell c's statistics: from the step starting cell c + 1, the last cell's from above
                stats = [jnp.concatenate([a[starts][1:], b[None]]) for a, b in zip(step_stats, last_stats)]
                new_state["merge"] = self._running(norm_state, stats, batch.x0.size)
            else:
                new_state["merge"] = norm_state
        x_hat = batch.x0 + x_last if cfg.cell_skip == "global" else x_last
        return x_hat, new_state

    # --- architectures ------------------------------------------------------------------
    def discretize(self, alpha):
        """alpha -> one-hot architecture, by ``cfg.cell_discretization``.

        "argmax": per edge, over all candidates including zero (a zero argmax deletes the edge).
        "top2" (DARTS): per state keep the 2 incoming edges whose best non-zero op has the
        largest softmax weight, with that op; the other edges become zero.
        """
        n = len(self.ops)
        if self.cfg.cell_discretization == "argmax":
            return jax.nn.one_hot(jnp.argmax(alpha, axis=-1), n)
        a = alpha.reshape(self.n_alpha_cells, self.n_edges, n)
        p = jax.nn.softmax(a, axis=-1)
        nonzero = np.asarray([t for t in range(n) if t != self.zero_index])
        strength = jnp.max(p[..., nonzero], axis=-1)                       # (cells, edges)
        best = jnp.asarray(nonzero)[jnp.argmax(p[..., nonzero], axis=-1)]  # (cells, edges)
        keep = jnp.zeros(strength.shape, bool)
        for i in range(1, self.n_states + 1):
            idx = np.asarray([edge_index(j, i) for j in range(i)])
            order = jnp.argsort(-strength[:, idx], axis=-1, stable=True)[:, :2]   # ties: smaller j
            rows = jnp.arange(strength.shape[0])[:, None]
            keep = keep.at[rows, jnp.asarray(idx)[order]].set(True)
        choice = jnp.where(keep, best, self.zero_index)
        return jax.nn.one_hot(choice.reshape(-1), n)

    def random_architecture(self, key):
        """Each edge's op drawn uniformly from all candidates, zero included."""
        idx = jax.random.randint(key, (self.arch_shape[0],), 0, len(self.ops))
        return jax.nn.one_hot(idx, len(self.ops))

    def fixed_architecture(self, op: str):
        """Every edge uses ``op``, no zero (Learnable-Grad-only / Nets-only baselines)."""
        if op not in self.ops:
            raise ValueError(f"op {op!r} is not in the op set {list(self.ops)}")
        return jax.nn.one_hot(jnp.full((self.arch_shape[0],), self.ops.index(op)), len(self.ops))

    def arch_string(self, one_hot) -> str:
        idx = np.argmax(np.asarray(one_hot), axis=-1).reshape(self.n_alpha_cells, self.n_edges)
        return CELL_SEPARATOR.join(
            ";".join(f"{j}>{i}:{self.ops[k]}" for (j, i), k in zip(self.edges, row)) for row in idx)

    def parse_arch(self, text: str):
        """Inverse of :meth:`arch_string` (edges may come in any order, each exactly once)."""
        cells = text.split(CELL_SEPARATOR.strip())
        fmt = (f"{self.n_alpha_cells} cell(s) of {self.n_edges} edges 'j>i:op' (0 <= j < i <= {self.n_states}, "
               f"op from {list(self.ops)}) joined by ';'"
               + ("" if self.n_alpha_cells == 1 else f", cells joined by {CELL_SEPARATOR!r}"))
        if len(cells) != self.n_alpha_cells:
            raise ValueError(f"architecture {text!r} must be {fmt}")
        idx = []
        for cell in cells:
            found = {}
            for part in filter(None, (p.strip() for p in cell.split(";"))):
                try:
                    nodes, op = part.split(":", 1)
                    j, i = (int(n) for n in nodes.split(">", 1))
                except ValueError:
                    raise ValueError(f"bad edge {part!r} in architecture {text!r}; must be {fmt}") from None
                op = op.strip()
                if (j, i) not in self.edges or op not in self.ops or (j, i) in found:
                    raise ValueError(f"bad or repeated edge {part!r} in architecture {text!r}; must be {fmt}")
                found[(j, i)] = self.ops.index(op)
            if len(found) != self.n_edges:
                raise ValueError(f"architecture {text!r} must be {fmt}")
            idx += [found[e] for e in self.edges]
        return jax.nn.one_hot(jnp.asarray(idx), len(self.ops))
