#!/usr/bin/env python
"""Table 5 of the paper: DAS in the cell (non-sequential) space on blur under seven hyperparameter sets.

    dasjax table5 --preset smoke
    dasjax table5 --preset paper                    # 75 trials per set (GPU)

Rows: H1, H2, BOHB-one-shot-Blur, BOHB-one-shot-DS, BOHB-Blur (the sequential-space sets, reused as in
the paper) and BOHB-Non-Seq-one-shot-Blur, BOHB-Non-Seq-Blur; columns: good ops / all ops (max, mean,
median).  Sets that share optimizer types run as one batched program.  The paper's values are
withheld: ours are printed alone, in its layout.  Figures: fig8/9/10-style scatters per set.
"""
from __future__ import annotations

import sys
import time


from .common import (reports_here, Row, UsageError, add_sets_option, build_parser, check_out_dir,
                               env_summary, finish_table, main_guard, parse_sets, resolve, run_fingerprint,
                               run_set_rows)
from .common import trials_label

from dasjax.logs import say

SETS = ["H1", "H2", "BOHB-one-shot-Blur", "BOHB-one-shot-DS", "BOHB-Blur", "BOHB-Non-Seq-one-shot-Blur",
        "BOHB-Non-Seq-Blur"]
ROWS = [Row(o, o, "DAS") for o in ("good", "all")]


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS, problems=("blur",))
    add_sets_option(parser, SETS)
    parser.set_defaults(rows="good,all")
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, _, out = resolve(args, "table5", ROWS, problems=("blur",))
    if overrides.get("space", "cell") != "cell":
        raise UsageError(f"--set space={overrides['space']!r}: Table 5 is the cell space; drop this --set")
    overrides["space"] = "cell"
    sets = parse_sets(args.sets, args.hparams)
    check_out_dir(out, run_fingerprint("table5", preset, overrides, seeds, sets, adaptive=args.adaptive), args.overwrite)
    say(f"[table5] preset '{preset}', cell space, {trials_label(seeds, args.adaptive)}, sets {[s.name for s in sets]}; "
          f"{env_summary()}")
    t0 = time.perf_counter()
    df = run_set_rows(
        adaptive=args.adaptive, table="table5", method="DAS", sets=sets, op_sets=[r.op_set for r in rows],
        problems=problems, seeds=seeds, overrides=overrides, out=out)
    if not reports_here():
        return 0

    def figures(df, out):
        import analysis
        for s in sets:
            fig = analysis.scatter_figure(df[df["hparams"] == s.name], hue="op_set")
            fig.suptitle(f"Table 5 (cell space, blur), {s.name}: architecture vs one-shot PSNR")
            analysis.save_figure(fig, out / "figures" / f"scatter_{s.name}.png")

    finish_table(df, out, name="table5", heading=f"Table 5 (cell space, blur, preset {preset}, "
                 f"{trials_label(seeds, args.adaptive)})\n\nThe paper's values are withheld; ours alone.",
                 rows=("hparams",), column="op_set", figures=figures, no_figures=args.no_figures, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
