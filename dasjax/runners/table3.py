#!/usr/bin/env python
"""Table 3 of the paper: DAS in the sequential space under five hyperparameter sets, and Figure 5.

    dasjax table3 --preset smoke
    dasjax table3 --preset cpu --problems blur
    dasjax table3 --preset paper                     # 75 trials per set (GPU)

Rows: {good, all} ops x {H1, H2, BOHB-one-shot-Blur, BOHB-one-shot-DS, BOHB-Blur}, columns blur /
downsampling.  For each problem x op set, the sets that share optimizer types (H1, H2 and
BOHB-one-shot-DS use gradient descent for alpha; the two BOHB Adam sets use Adam) run as ONE batched
program over (sets x trials).  The paper's values for this table are withheld: ours are printed
alone, in the paper's layout.  Outputs as dasjax table1, plus figures/fig5_scatter_<set>.png
(one-shot vs architecture PSNR per set, correlation in the legend).
"""
from __future__ import annotations

import sys
import time


from .common import (reports_here, Row, add_sets_option, build_parser, check_out_dir, env_summary,
                               finish_table, main_guard, parse_sets, resolve, run_fingerprint, run_set_rows)
from .common import trials_label

from dasjax.logs import say

SETS = ["H1", "H2", "BOHB-one-shot-Blur", "BOHB-one-shot-DS", "BOHB-Blur"]
OP_SETS = ["good", "all"]
# build_parser / resolve select rows by key; here a "row" is an op set (sets are chosen with --sets)
ROWS = [Row(o, o, "DAS") for o in OP_SETS]


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS)
    add_sets_option(parser, SETS)
    parser.set_defaults(rows=",".join(r.key for r in ROWS))   # the row named "all" is an op set
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, _, out = resolve(args, "table3", ROWS)
    sets = parse_sets(args.sets, args.hparams)
    op_sets = [r.op_set for r in rows]
    check_out_dir(out, run_fingerprint("table3", preset, overrides, seeds, sets, adaptive=args.adaptive), args.overwrite)
    say(f"[table3] preset '{preset}', {trials_label(seeds, args.adaptive)}, sets {[s.name for s in sets]}, "
          f"op sets {op_sets}, problems {problems}; {env_summary()}")
    t0 = time.perf_counter()
    df = run_set_rows(
        adaptive=args.adaptive, table="table3", method="DAS", sets=sets, op_sets=op_sets, problems=problems,
        seeds=seeds, overrides=overrides, out=out)
    if not reports_here():
        return 0

    def figures(df, out):
        import analysis
        for s in sets:
            fig = analysis.scatter_figure(df[df["hparams"] == s.name])
            fig.suptitle(f"Table 3, {s.name}: architecture vs one-shot PSNR")
            analysis.save_figure(fig, out / "figures" / f"fig5_scatter_{s.name}.png")
        analysis.save_figure(analysis.scatter_figure(df, hue="hparams"), out / "figures" / "fig5_scatter_all_sets.png")

    finish_table(df, out, name="table3", heading=f"Table 3 (preset {preset}, {trials_label(seeds, args.adaptive)})\n\n"
                 "The paper's values are withheld; ours alone.", rows=("op_set", "hparams"), figures=figures,
                 no_figures=args.no_figures, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
