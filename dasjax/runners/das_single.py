#!/usr/bin/env python
"""Figure 7 of the paper (App. B): DAS-single vs DAS on blur, all operations.

    dasjax das-single --preset smoke
    dasjax das-single --preset paper

Left panel: both methods with the BOHB-DAS-single set.  Right panel: each method with its own BOHB
set (DAS: BOHB-one-shot-Blur, DAS-single: BOHB-DAS-single).  DAS-single pretrains Learnable-Grad-only
and Nets-only networks, freezes them inside the supernet, searches alpha alone and retrains the argmax
architecture.  Outputs: trials.csv, runs/, das_single.md (statistics and correlations), figures/fig7_*.png.
"""
from __future__ import annotations

import sys
import time


from dasjax.logs import say
from dasjax import hparams as hpmod
from .common import (Row, reports_here, build_parser, check_out_dir, env_summary, finish_table,
                               main_guard, resolve, run_fingerprint, run_rows)
from .common import trials_label

ROWS = [Row("das", "all", "DAS"), Row("das_single", "all", "DAS-single")]
PANELS = {"left": {"DAS": "BOHB-DAS-single", "DAS-single": "BOHB-DAS-single"},
          "right": {"DAS": "BOHB-one-shot-Blur", "DAS-single": "BOHB-DAS-single"}}


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS, problems=("blur",))
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, _, out = resolve(args, "das_single", ROWS, problems=("blur",))
    check_out_dir(out, run_fingerprint("das_single", preset, overrides, seeds, hpmod.BOHB_DAS_SINGLE,
                                       adaptive=args.adaptive),
                  args.overwrite)
    say(f"[das_single] preset '{preset}', {trials_label(seeds, args.adaptive)}; {env_summary()}")
    t0 = time.perf_counter()
    frames = {}        # per set folder: run_rows gathers every finished row of its folder
    for panel, sets in PANELS.items():
        for method, set_name in sets.items():
            if panel == "right" and method == "DAS-single":
                continue          # the same runs as the left panel's DAS-single
            row = [r for r in rows if r.method == method]
            if not row:
                continue
            frames[set_name] = run_rows(table="das_single", rows=row, problems=problems, seeds=seeds,
                                        overrides=overrides, hp=hpmod.get(set_name), out=out / set_name,
                                        adaptive=args.adaptive)
    if not reports_here():
        return 0
    import pandas as pd
    from dasjax.results import atomic_write_text
    df = pd.concat(frames.values(), ignore_index=True)
    atomic_write_text(out / "trials.csv", df.to_csv(index=False))

    def figures(df, out):
        import analysis
        for panel, sets in PANELS.items():
            sub = pd.concat([df[(df.method == m) & (df.hparams == h)] for m, h in sets.items()])
            fig = analysis.scatter_figure(sub, hue="method")
            fig.suptitle(f"Fig. 7 {panel}: " + ", ".join(f"{m} with {h}" for m, h in sets.items()))
            analysis.save_figure(fig, out / "figures" / f"fig7_{panel}.png")

    finish_table(df, out, name="das_single", heading=f"DAS vs DAS-single (blur, all ops, preset {preset}, "
                 f"{trials_label(seeds, args.adaptive)})", rows=("method", "hparams"), figures=figures,
                 no_figures=args.no_figures, t0=t0)
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
