#!/usr/bin/env python
"""Table 4 of the paper: 2D image denoising (BSDS300) in the sequential space, good operations only.

    dasjax table4 --preset smoke                            # CI-sized pipeline check
    dasjax table4 --preset cpu                              # sized for 2 CPU cores
    dasjax table4 --preset paper --data-dir /data/BSDS300   # 3 trials per row (GPU)

Rows: DnCNN (= Nets only), DAS and Random Sampling, each one batched program over its trials
(3 at the paper preset), on grayscale 40x40 training crops in batches of 128 with sigma = 0.1
noise (A = I), evaluated on the test images (docs/bsds.md; every unstated choice is a config field:
``--set eval_images=center_crop``, ``--problems image_blur`` for the 7x7 blur + noise variant of
the caption, ...).

Data: a local BSDS300 folder (images/train, images/test) from ``--data-dir`` or $DASJAX_BSDS300.
Nothing is downloaded.  Without it the run uses sample images embedded in matplotlib, and says
so in its log, its records (column ``dataset``) and its table titles: those numbers are NOT
BSDS300 numbers.  The paper's values for this table are withheld: ours are printed alone, in
its layout.  Outputs as dasjax table1, plus figures/table4_examples_<problem>.png (noisy /
reconstructed / clean crops of a test image for the best trial of each method).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path


from dasjax.logs import say
from dasjax.bsds import DatasetError, WHERE_TO_GET, fallback_message, load_images, resolve_source
from dasjax.config import IMAGE_PROBLEMS, make_config
from .common import (reports_here, Row, UsageError, build_parser, check_out_dir, env_summary,
                               finish_table, main_guard, resolve, row_dir, run_fingerprint, run_rows)
from .common import trials_label

ROWS = [
    Row("nets_only", "good", "Nets only"),
    Row("das_good", "good", "DAS"),
    Row("rs_good", "good", "Random Sampling"),
]
METHOD_LABELS = {"Nets only": "DnCNN (Nets only)"}


def textured_window(img, h: int, w: int, steps: int = 8) -> tuple[int, int]:
    """Top-left corner of the h x w window (on a coarse grid) with the most texture (largest std):
    a flat patch of sky says little about a denoiser."""
    import numpy as np
    rows = np.unique(np.linspace(0, img.shape[0] - h, steps).astype(int))
    cols = np.unique(np.linspace(0, img.shape[1] - w, steps).astype(int))
    return max(((r, c) for r in rows for c in cols), key=lambda rc: img[rc[0]:rc[0] + h, rc[1]:rc[1] + w].std())


def example_figure(df, out: Path, overrides: dict, problem: str, crop: int = 128, image_index: int = 0):
    """Noisy / reconstructed / clean crops of one test image, for the best trial of each method
    (the networks are rebuilt from the parameters saved in each row's arrays.npz)."""
    import jax
    import numpy as np
    from matplotlib.figure import Figure

    import analysis
    from dasjax.batch import unflatten_named
    from dasjax.problems import make_problem, psnr
    from dasjax.spaces import make_space

    cfg = make_config(problem=problem, op_set="good", **overrides)
    prob = make_problem(cfg.problem)
    space = make_space(cfg, prob, share_f=cfg.retrain.share_f)
    like_p, like_b = jax.eval_shape(space.init, jax.random.key(0))
    img = prob.test_images()[image_index]
    batch = prob.test_batch(jax.random.key(0), img[None], jax.numpy.asarray([image_index]))
    apply = jax.jit(lambda p, b, a: space.apply(p, b, a, batch, jax.random.key(1), train=False)[0])
    h, w = min(crop, img.shape[0]), min(crop, img.shape[1])
    r0, c0 = textured_window(img, h, w)
    window = (slice(None), slice(r0, r0 + h), slice(c0, c0 + w))
    x, y = np.asarray(batch.x), np.asarray(batch.y)

    panels = []
    for row in ROWS:
        sub = df[(df["problem"] == problem) & (df["method"] == row.method)]
        sub = sub[np.isfinite(sub["arch_psnr"].to_numpy(float))]
        if len(sub) == 0:
            continue
        best = sub.loc[sub["arch_psnr"].astype(float).idxmax()]
        arrays = analysis.load_arrays(row_dir(out, problem, row), best["trial_id"])
        params, bn = unflatten_named(arrays, "params", like_p), unflatten_named(arrays, "bn", like_b)
        x_hat = np.asarray(apply(params, bn, space.parse_arch(best["architecture"])))
        panels.append((row.method, best, x_hat))
    if not panels:
        return None
    names = prob.images.test_names
    fig = Figure(figsize=(7.5, 2.6 * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 3, squeeze=False)
    crop_psnr = lambda a: float(psnr(a[window], x[window]))
    for i, (method, best, x_hat) in enumerate(panels):
        noisy = "noisy y" if prob.identity else "blurred + noisy y"
        shown = [(noisy, y, psnr(y, x)), ("reconstruction", x_hat, psnr(x_hat, x)), ("clean x", x, None)]
        for j, (title, a, full) in enumerate(shown):
            ax = axes[i, j]
            ax.imshow(a[window][0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if full is not None:
                title += f"\n{crop_psnr(a):.2f} dB crop, {float(full):.2f} dB image"
            ax.set_title(title, fontsize=8)
        axes[i, 0].set_ylabel(f"best {METHOD_LABELS.get(method, method)}\n{best['architecture']}\n"
                              f"seed {int(best['seed'])}: {float(best['arch_psnr']):.2f} dB test PSNR",
                              fontsize=7)
    from analysis.labels import label
    fig.suptitle(f"Table 4 examples: {label('problem', problem)}, σ={cfg.problem.noise_std}, on "
                 f"{prob.images.label}\ntest image {names[image_index]}, {h}x{w} crop at row {r0}, column {c0}",
                 fontsize=9)
    return analysis.save_figure(fig, out / "figures" / f"table4_examples_{problem}.png")


def main(argv=None) -> int:
    parser = build_parser(__doc__, ROWS, problems=IMAGE_PROBLEMS)
    parser.set_defaults(problems="image_denoise")
    parser.add_argument("--data-dir", default=None,
                        help="BSDS300 folder holding images/train and images/test (default: $DASJAX_BSDS300; "
                             "without either, the embedded matplotlib sample images, NOT BSDS300); "
                             "'embedded' forces the embedded images")
    args = parser.parse_args(argv)
    preset, overrides, seeds, rows, problems, hp, out = resolve(args, "table4", ROWS, problems=IMAGE_PROBLEMS)
    data_dir = args.data_dir if args.data_dir is not None else overrides.get("data_dir")
    try:
        source = resolve_source(data_dir)
        overrides["data_dir"] = source.data_dir          # the config records exactly which data ran
        images = load_images(make_config(problem=problems[0], **overrides).problem)
    except DatasetError as e:
        raise UsageError(f"--data-dir: {e}") from None
    if source.kind == "embedded":
        note = fallback_message(source) if data_dir != "embedded" else \
            f"NOT BSDS300: {source.reason}; using the {source.label}. {WHERE_TO_GET}"
        say(f"[table4] {note}")
    say(f"[table4] data: {images.describe()}")
    check_out_dir(out, run_fingerprint("table4", preset, overrides, seeds, hp, adaptive=args.adaptive), args.overwrite)
    say(f"[table4] preset '{preset}', {trials_label(seeds, args.adaptive)}, rows {[r.key for r in rows]}, "
          f"problems {problems}, hparams {hp.name}; {env_summary()}")
    say(f"[table4] writing to {out}/")
    t0 = time.perf_counter()
    df = run_rows(
        adaptive=args.adaptive, table="table4", rows=rows, problems=problems, seeds=seeds, overrides=overrides,
        hp=hp, out=out, keep_params=True)
    if not reports_here():
        return 0

    from analysis.labels import label
    noise = make_config(**overrides).problem.noise_std
    tag = "BSDS300" if images.is_bsds else "NOT BSDS300"
    labels = {"method": METHOD_LABELS,
              "problem": {p: f"{label('problem', p)} σ={noise} [{tag}]" for p in problems}}

    def figures(df, out):
        for p in problems:
            example_figure(df, out, overrides, p)

    heading = (f"Table 4 on {images.label} (preset {preset}, {trials_label(seeds, args.adaptive)}): architecture "
               f"validation PSNR on the test images, sequential space, good ops.\n\n"
               f"The paper's values are withheld; ours alone. Data: {images.describe()}.")
    finish_table(df, out, name="table4", heading=heading, rows=("method",), figures=figures, labels=labels,
                 runtime=True, no_figures=args.no_figures, t0=t0)
    report = out / "report" / "report.md"
    if report.exists():
        from dasjax.results import atomic_write_text
        atomic_write_text(report, f"> Data: {images.describe()}\n\n" + report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
