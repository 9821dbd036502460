"""The public API used the way the README, docs/ and examples/custom_study.ipynb use it, for a type
checker: tests/test_typing.py runs mypy on this file (settings: pyproject.toml, [tool.mypy]).

It is never run, so nothing here computes.  ``assert_type`` pins what a call returns (an annotation
that goes missing turns into ``Any`` and fails it), and every ``# type: ignore[code]`` line is a
call mypy must refuse: ``warn_unused_ignores`` fails the check if the refusal goes away.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from typing_extensions import assert_type

import analysis
import dasjax


def quick_use() -> None:
    """The README's quick use: a config, a batched search, the retraining of its architectures."""
    cfg = dasjax.make_config(problem="blur", op_set="all", width=16, epochs=5)
    assert_type(cfg, dasjax.Config)
    found = dasjax.search(cfg, seeds=range(8))
    assert_type(found, dasjax.SearchResult)
    final = dasjax.retrain(cfg, found.architecture, seeds=range(8))
    assert_type(final, dasjax.RetrainResult)
    assert_type(final.arch_psnr, np.ndarray)
    print(found.arch_strings, found.one_shot_psnr, final.arch_psnr)

    longer = cfg.replace(search_epochs=2 * cfg.search.epochs)
    assert_type(longer, dasjax.Config)
    assert_type(dasjax.make_config(longer, width=8), dasjax.Config)
    dasjax.search(cfg, 4, "H2", progress=False, checkpoint=Path("ckpt/search.npz"))
    dasjax.search(cfg, [0, 1, 2], algorithm="gdas", desc="GDAS")
    dasjax.retrain(cfg, found.architecture, np.arange(8), dasjax.H2, keep_params=True, checkpoint="r.npz")
    assert_type(dasjax.fixed_architectures(cfg, "lg", 4), np.ndarray)
    keys = jax.random.split(jax.random.key(0), 4)
    assert_type(dasjax.random_architectures(cfg, keys), np.ndarray)

    dasjax.search(cfg, seeds=["0", "1"])                      # type: ignore[list-item]
    dasjax.search(cfg, range(8), progress="yes")              # type: ignore[arg-type]
    dasjax.retrain(cfg, found.architecture, range(8), hparams=0.001)   # type: ignore[arg-type]
    dasjax.make_config(cfg.problem)                           # type: ignore[arg-type]
    n_trials: int = dasjax.search(cfg, range(8))              # type: ignore[assignment]


def methods_and_results(out: Path) -> pd.DataFrame:
    """Table rows by name, hyperparameter sets, the random baselines, and results folders."""
    cfg = dasjax.make_config(problem="downsampling", op_set="good", width=4, epochs=2)
    r = dasjax.run_method(cfg, "Random Search", range(4))
    assert_type(r, dasjax.MethodResult)
    mine = dasjax.HParamSet("mine", theta_lr=1e-3, theta_wd=0.0, theta_warmup=False, alpha_lr=1e-3,
                            alpha_wd=0.0, alpha_warmup=True, alpha_scheduler=False, alpha_optimizer="adam")
    dasjax.hparams.register(mine)
    dasjax.run_method(cfg, "DAS", [0, 1], hparams=[dasjax.H1, "H2"], progress=False, checkpoint_dir=out / "ckpt")
    dasjax.run_method(cfg, "DAS", 2, hparams=mine.replace(alpha_lr=1e-2), checkpoint_dir=str(out))
    per_set = dasjax.run_sets(cfg, "DAS", [dasjax.H1, dasjax.H2, "mine"], seeds=range(4))
    assert_type(per_set, dict[str, dasjax.MethodResult])
    sampling, searching = dasjax.random_methods(cfg, range(4), n_candidates=3)
    assert_type(sampling, dasjax.MethodResult)
    assert_type(searching, dasjax.MethodResult)

    rows, arrays = dasjax.method_records(r, experiment="mine", cfg=cfg)
    assert_type(rows, list[dict])
    assert_type(arrays, dict[str, np.ndarray])
    df = dasjax.save_results(out / "DAS", rows, cfg.to_dict(), arrays)
    adaptive = dasjax.run_adaptive(cfg, "DAS", target_ci=0.5, max_trials=40, chunk=10, log=print)
    assert_type(adaptive, dict[str, dasjax.AdaptiveResult])

    dasjax.run_method(cfg, "DAS", range(4), checkpoint_dir=3)      # type: ignore[arg-type]
    dasjax.run_sets(cfg, "DAS", [1e-3], seeds=range(4))            # type: ignore[list-item]
    dasjax.method_records(r, experiment="mine", cfg=cfg.problem)   # type: ignore[arg-type]
    return pd.concat([df, r.to_dataframe(cfg, experiment="mine")])


def soft_threshold_step(inp: dasjax.OpInputs) -> jax.Array:
    z = inp.x - inp.step * inp.data_grad
    lam = jnp.abs(inp.params["lam"])
    return jnp.sign(z) * jnp.maximum(jnp.abs(z) - lam, 0.0)


class Inpainting(dasjax.Problem):
    """The notebook's problem: keep half the samples."""

    @property
    def matrix(self) -> np.ndarray:
        keep = np.sort(np.random.default_rng(0).permutation(self.cfg.n_points)[: self.cfg.n_points // 2])
        return np.eye(self.cfg.n_points, dtype=np.float32)[keep]


@dataclasses.dataclass(frozen=True)
class StrideOptions:
    stride: int = 2


def extensions() -> None:
    """The registries (docs/design.md, "Extending"): an op, a problem, a method, an algorithm."""
    op = dasjax.register_op(dasjax.Operation(
        "ista", soft_threshold_step, label="ISTA step", color="#2ca02c", step=True, needs_data_grad=True,
        preserves_zero=True, init=lambda key, cfg, problem: {"lam": jnp.asarray(0.02)}), replace=True)
    assert_type(op, dasjax.Operation)
    dasjax.register_problem("inpainting", Inpainting, replace=True, options=StrideOptions)
    cfg = dasjax.make_config(problem="inpainting", op_set=("lg", "net", "ista"))
    problem = dasjax.make_problem(cfg.problem)
    assert_type(problem, dasjax.InverseProblem)
    print(problem.measurement_shape, dasjax.problem_options(cfg).stride, dasjax.op_options(cfg.space, "ista"))
    space = dasjax.make_space(cfg, problem)
    print(space.arch_shape, dasjax.space_options(cfg))
    x = jnp.zeros((2, 50))
    assert_type(dasjax.psnr(x, x), jax.Array)

    def das_long(cfg: dasjax.Config, seeds: Any, hparams: Any, **kw: Any) -> dasjax.MethodResult:
        return dasjax.run_method(cfg.replace(search_epochs=2 * cfg.search.epochs), "DAS", seeds, hparams, **kw)

    method = dasjax.register_method(dasjax.Method("DAS-long", das_long), replace=True)
    assert_type(method, dasjax.Method)
    alg = dasjax.register_algorithm(dasjax.SearchAlgorithm("darts-plain"), replace=True)
    assert_type(alg, dasjax.SearchAlgorithm)
    dasjax.search(cfg, range(2), algorithm=alg)

    dasjax.register_op(soft_threshold_step)                   # type: ignore[arg-type]
    dasjax.register_problem("broken", 3)                      # type: ignore[arg-type]
    dasjax.register_method("DAS-long")                        # type: ignore[arg-type]
    dasjax.search(cfg, range(2), algorithm=3)                 # type: ignore[arg-type]


def analysis_of_results(df: pd.DataFrame) -> None:
    """docs/analysis.md: load results folders, summaries, tests, tables, figures, reports."""
    df = analysis.load_results("results/table1", Path("results/table2"))
    analysis.summarize(df)
    analysis.correlation_table(df)
    analysis.table1_findings(df)
    print(analysis.markdown_table(df, reference=analysis.reference_table("table1")))
    assert_type(analysis.latex_table(df), str)
    analysis.write_report(df, "report/")
    assert_type(analysis.describe(df["arch_psnr"]), dict[str, float])
    assert_type(analysis.describe([30.1, 31.2, float("nan")], ddof=1), dict[str, float])
    assert_type(analysis.bootstrap_ci(np.array([1.0, 2.0]), statistic="mean"), tuple[float, float])
    assert_type(analysis.mann_whitney(df["arch_psnr"], [30.0, 31.0]), dict[str, float])
    assert_type(analysis.correlate(df["one_shot_psnr"], df["arch_psnr"]), dict[str, float])
    analysis.power_curve([30.0, 31.0], [29.0, 30.5], grid=(10, 20))
    states = analysis.check_results("results/table1")
    assert_type(states, list[analysis.RowState])
    assert_type(analysis.parse_alpha("[[0.5, 0.5]]"), np.ndarray | None)
    assert_type(analysis.parse_ops('["lg", "net"]'), list[str])
    assert_type(analysis.parse_op_meta(float("nan")), dict[str, dict])
    best = analysis.best_and_worst(df, "DAS", "blur", "all")
    fig = analysis.architecture_figure(best, title="Best and worst DAS architectures")
    assert_type(fig, Figure)
    assert_type(analysis.hyperband_figure(pd.read_csv("trajectory.csv")), Figure)
    analysis.save_figure(fig, Path("fig.png"))

    analysis.check_results(42)                                # type: ignore[arg-type]
    analysis.parse_ops(["lg", "net"])                         # type: ignore[arg-type]
    analysis.describe(df["arch_psnr"], ddof="1")              # type: ignore[arg-type]
    analysis.bootstrap_ci([1.0, 2.0], confidence_level="95%")  # type: ignore[arg-type]
    analysis.save_figure(fig, 3)                              # type: ignore[arg-type]
