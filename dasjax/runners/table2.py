#!/usr/bin/env python
"""Table 2 of the paper: non-sequential (cell) space, 6 method rows x {blur, downsampling}, Figs. 8 and 11.

    dasjax table2                   # 'paper' on a GPU, 'smoke' otherwise
    dasjax table2 --preset paper    # 100 trials per row (the Table 2 caption)
    dasjax table2 --preset smoke --rows das_good,rs_good --problems blur
    dasjax table2 --set merge_kernel=3 --set cell_discretization=top2

The cell space (docs/cell_space.md): 2 cells of 5 states, 15 mixed edges per cell over the op
set plus zero, alpha shared by the cells.  Its fields can be changed with --set (cell_states,
n_cells, cell_skip, cell_combine, cell_input, merge_kernel, merge_bias, merge_norm, merge_init,
share_cell_alpha, cell_discretization).  Each row x problem is one batched program over its
trials.  Of the paper's Table 2 only the two single-op rows are released (for calibrating the
cell space), so table2.md shows the paper's values beside those rows and ours alone elsewhere.  Outputs (``--out``, default results/table2-<preset>/): trials.csv,
runs/<problem>/<row>/ (per-row trials.csv, config.json, arrays.npz), table2.md, table2.tex,
summary.csv, wall_times.csv, figures/ (fig8 scatter, fig11 best DAS cells on blur) and report/.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from dasjax.logs import say
from dasjax.config import make_config
from .common import (reports_here, Row, UsageError, build_parser, check_out_dir, env_summary,
                               finish_table, main_guard, resolve, run_fingerprint, run_rows)
from .common import trials_label

ROWS = [
    Row("lg_only", "good", "Learnable Grad. only"),
    Row("nets_only", "good", "Nets only"),
    Row("das_good", "good", "DAS"),
    Row("rs_good", "good", "Random Sampling"),
    Row("das_all", "all", "DAS"),
    Row("rs_all", "all", "Random Sampling"),
]
PAPER_TRIALS = 100          # Table 2 caption: "over 100 trials" (register #23; Table 5 says 75)


def figures(df, out: Path) -> list[Path]:
    """Fig. 8 (architecture vs one-shot PSNR of the DAS trials) and Fig. 11 (best DAS cells on blur)."""
    import numpy as np

    import analysis
    from analysis.labels import label
    fig_dir = out / "figures"
    das = df[df["method"] == "DAS"]
    written = []
    if das["one_shot_psnr"].notna().any():
        written.append(analysis.save_figure(analysis.scatter_figure(das), fig_dir / "fig8_scatter.png"))
    for op_set in ("all", "good"):
        sub = das[(das["problem"] == "blur") & (das["op_set"] == op_set)]
        sub = sub[np.isfinite(sub["arch_psnr"].to_numpy(float))]
        if not len(sub):
            continue
        best = sub.loc[sub["arch_psnr"].idxmax()]
        cells = str(best["architecture"]).split(" | ")          # one string per cell without shared alpha
        for c, cell in enumerate(cells):
            suffix = "" if len(cells) == 1 else f"_cell{c + 1}"
            title = (f"Best DAS cell{suffix.replace('_cell', ' ')}, {label('op_set', op_set)}, "
                     f"blur (seed {best['seed']}, {best['arch_psnr']:.2f} dB)")
            fig = analysis.cell_graph_figure(cell, title=title, op_meta=analysis.parse_op_meta(best.get("op_meta")))
            written.append(analysis.save_figure(fig,
                                                fig_dir / f"fig11_cell_blur_{op_set}{suffix}.png"))
    return written


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS)
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, hp, out = resolve(args, "table2", ROWS)
    if args.trials is None and preset == "paper":
        seeds = list(range(args.seed, args.seed + PAPER_TRIALS))
    if overrides.get("space", "cell") != "cell":
        raise UsageError(f"--set space={overrides['space']!r}: Table 2 is the cell space; drop this --set")
    overrides["space"] = "cell"
    try:
        make_config(**overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None
    check_out_dir(out, run_fingerprint("table2", preset, overrides, seeds, hp, adaptive=args.adaptive), args.overwrite)
    say(f"[table2] preset '{preset}', cell space, {trials_label(seeds, args.adaptive)}, rows {[r.key for r in rows]}, "
          f"problems {problems}, hparams {hp.name}; {env_summary()}")
    say(f"[table2] writing to {out}/")
    t0 = time.perf_counter()
    df = run_rows(
        adaptive=args.adaptive, table="table2", rows=rows, problems=problems, seeds=seeds, overrides=overrides,
        hp=hp, out=out)
    if not reports_here():
        return 0
    finish_table(df, out, name="table2", heading=f"Table 2 (cell space, preset {preset}, "
                 f"{trials_label(seeds, args.adaptive)})\n\n"
                 "Architecture validation PSNR. Single-op rows: ours (paper, ours - paper); the paper's "
                 "DAS and random-sampling rows are withheld, so those rows are ours alone.",
                 reference="table2", figures=figures, no_figures=args.no_figures, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
