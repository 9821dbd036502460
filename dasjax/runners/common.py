"""Shared machinery of the table runners (``dasjax table1`` ..., ``experiments/run_*.py``).

A table is a list of rows (op set x method); each row x problem runs as one batched
program over its trials and is saved as its own results folder
``OUT/runs/<problem>/<row>/`` (trials.csv, config.json, arrays.npz).  A rerun of the same
command skips rows whose folder holds the same configuration, so a killed run resumes
at row granularity.  At the end the rows are gathered into ``OUT/trials.csv``, a
report (tables, figures) and ``OUT/wall_times.csv``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from dasjax import __version__
from dasjax import config as config_mod
from dasjax import distributed, logs
from dasjax.logs import say
from dasjax import hparams as hpmod
from dasjax.config import PROBLEMS, Config, make_config
from dasjax.methods import get_method, method_config, run_group, run_method
from dasjax.presets import PRESETS, default_preset_name, get_preset
from dasjax.results import atomic_write_text, method_records, save_results

from analysis import check, folder_lock
from analysis.files import EXIT_MACHINE, describe_os_error, is_machine_error, write_manifest


class UsageError(ValueError):
    """Bad command-line input: printed as one line, exit code 2, nothing written."""


@dataclass(frozen=True)
class Row:
    key: str          # command-line name, e.g. "das_good"
    op_set: str
    method: str


DEFAULT_HPARAMS = "H1"     # --hparams when not given; set-row tables and dasjax hpo refuse any other value

class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows the runner's docstring as written (its usage examples) and every default that
    is a value (an option whose default is None says in its help what it falls back to)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


_PROGRAM: list[str | None] = [None]    # the command main_guard runs, while it runs: "dasjax table1", ...


def program_name() -> str | None:
    """The name ``--help`` and usage errors give the running command: ``dasjax table1`` when the
    ``dasjax`` command runs it, else None (argparse's default, the script's file name)."""
    return _PROGRAM[-1]


def command_for(runner: str) -> str:
    """The command that runs ``runner`` the way this process was started: ``dasjax table1`` under
    the ``dasjax`` command, the repository's ``experiments/run_table1.py`` under a script there."""
    here = program_name()
    if here is None and sys.argv[0].endswith(".py"):
        script = Path(sys.argv[0]).with_name(f"run_{runner}.py")
        if script.is_file():
            return os.path.relpath(script)
    return f"dasjax {runner.replace('_', '-')}"


def build_parser(description: str, rows: list[Row], problems=PROBLEMS) -> argparse.ArgumentParser:
    """The table runners' shared options; ``description``: the runner's docstring."""
    p = argparse.ArgumentParser(prog=program_name(), description=description.strip(), formatter_class=HelpFormatter)
    p.add_argument("--preset", default=None,
                   help=f"one of {list(PRESETS)}; default: 'paper' on a GPU, 'smoke' otherwise")
    p.add_argument("--trials", type=int, default=None, help="trials per row (overrides the preset)")
    p.add_argument("--epochs", type=int, default=None, help="search and retraining epochs")
    p.add_argument("--width", type=int, default=None, help="CNN width")
    p.add_argument("--batch-size", type=int, default=None, help="samples per batch")
    p.add_argument("--problems", default=",".join(problems), help=f"comma list of {list(problems)}")
    p.add_argument("--rows", default="all", help=f"comma list of {[r.key for r in rows]} or 'all'")
    op_sets = sorted({r.op_set for r in rows}, key=["good", "all"].index)
    p.add_argument("--op-sets", default=",".join(op_sets), help=f"comma list of operation sets: {op_sets}")
    p.add_argument("--hparams", default=DEFAULT_HPARAMS, help=f"hyperparameter set: {sorted(hpmod.named_sets())} "
                                                   "or a JSON file written by dasjax hpo")
    p.add_argument("--seed", type=int, default=0, help="first seed; trials use seed, seed+1, ...")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="trials per compiled batch (default: one per core on a CPU, all on an accelerator)")
    p.add_argument("--out", default=None, help="results folder (default: results/<table>-<preset>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace results of a different configuration in --out")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="start from a saved config (a results folder's run.json, a row's config.json or "
                        "Config.to_json()); each row still sets its problem and op set, and --set goes on top")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any config field, e.g. --set noise_std=0.01 --set global_skip=false "
                        "(`dasjax fields` lists them)")
    p.add_argument("--target-ci", type=float, default=None, metavar="DB",
                   help="adaptive: run each row in chunks of --trial-chunk seeds until the 95%% bootstrap CI "
                        "of its median architecture PSNR has a half-width <= DB (or --max-trials are done)")
    p.add_argument("--max-trials", type=int, default=None,
                   help="with --target-ci: the most trials a row may run (default: --trials or the preset's)")
    p.add_argument("--trial-chunk", type=int, default=10, help="with --target-ci: seeds added per step")
    add_verbosity_options(p)
    add_process_options(p)
    return p


def add_verbosity_options(p: argparse.ArgumentParser) -> None:
    """-v / -q: what the console shows (the run.log in the results folder keeps everything)."""
    p.add_argument("-v", "--verbose", action="count", default=0, help="also show details (debug records)")
    p.add_argument("-q", "--quiet", action="count", default=0, help="show warnings and errors only")


def apply_verbosity(args) -> None:
    logs.set_console_level(logs.level_of(getattr(args, "verbose", 0), getattr(args, "quiet", 0)))


def add_process_options(p: argparse.ArgumentParser) -> None:
    """--coordinator / --num-processes / --process-id: one run over several processes (dasjax.distributed)."""
    g = p.add_argument_group("several processes (also $DASJAX_COORDINATOR, $DASJAX_NUM_PROCESSES, "
                             "$DASJAX_PROCESS_ID; under srun or mpirun none is needed)")
    g.add_argument("--coordinator", default=None, metavar="HOST:PORT", help="process 0's address")
    g.add_argument("--num-processes", type=int, default=None, metavar="N", help="processes in the run")
    g.add_argument("--process-id", type=int, default=None, metavar="I", help="this process, 0..N-1")


def process_argv(args) -> list[str]:
    """The process flags of ``args`` as a command line (dasjax all hands them to every table)."""
    out = []
    for flag in ("coordinator", "num_processes", "process_id"):
        value = getattr(args, flag, None)
        if value is not None:
            out += ["--" + flag.replace("_", "-"), str(value)]
    return out


def join_processes(args) -> None:
    """Join the other processes of a multi-process run (before JAX computes anything); a process
    other than the writer (process 0) then prints nothing to stdout: the writer reports for all."""
    try:
        group = distributed.process_group(getattr(args, "coordinator", None), getattr(args, "num_processes", None),
                                          getattr(args, "process_id", None))
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        heartbeat = int(os.environ.get("DASJAX_HEARTBEAT_S", "60"))
    except ValueError:
        raise UsageError(f"$DASJAX_HEARTBEAT_S={os.environ['DASJAX_HEARTBEAT_S']!r} must be an integer (seconds)") from None
    distributed.initialize(group, heartbeat_s=heartbeat)
    if not distributed.is_writer():
        sys.stdout = open(os.devnull, "w")       # main_guard gives stdout back


def adaptive_plan(args, trials: int) -> dict | None:
    """--target-ci / --max-trials / --trial-chunk as the keyword arguments of dasjax.run_adaptive
    (None for a plain run of ``trials`` seeds)."""
    target = getattr(args, "target_ci", None)
    if target is None:
        if getattr(args, "max_trials", None) is not None:
            raise UsageError("--max-trials needs --target-ci (for a fixed number of trials, use --trials)")
        return None
    if not target > 0:
        raise UsageError(f"--target-ci={target} must be > 0 (dB)")
    _positive("max-trials", args.max_trials)
    _positive("trial-chunk", args.trial_chunk)
    return {"target_ci": float(target), "max_trials": int(args.max_trials or trials),
            "chunk": int(args.trial_chunk), "first_seed": int(args.seed)}


def _parse_value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _takes_text(name: str) -> bool:
    """Whether config field ``name`` (a flat make_config name) has a string default, so that "none"
    is one of its choices (merge_norm=none, cell_skip=none), not Python's None."""
    owners = config_mod.flat_field(name)
    return bool(owners) and isinstance(owners[0][1].default, str)


OPTION_FIELDS = ("algorithm_options", "problem_options", "space_options", "op_options")


def parse_set_items(items) -> dict:
    """``--set FIELD=VALUE`` items -> {field: value}; values read as JSON, true / false / none
    ("none" stays a string for a field whose default is one, e.g. --set merge_norm=none).  A
    component's option is ``--set problem_options.keep=0.3`` (``op_options.<op>.<name>``), or a
    whole JSON object, ``--set 'problem_options={"keep": 0.3}'``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set {item!r} must look like FIELD=VALUE")
        k, v = item.split("=", 1)
        k, value = k.strip(), _parse_value(v.strip())
        field, dot, option = k.partition(".")
        if dot and field in OPTION_FIELDS and option:
            merged = out.get(field, {})
            if not isinstance(merged, dict):
                raise UsageError(f"--set {item!r}: {field} was already given as {merged!r}")
            out[field] = {**merged, option: value}
            continue
        out[k] = "none" if value is None and _takes_text(k) else value
    return out


def _positive(name, value):
    if value is not None and value <= 0:
        raise UsageError(f"--{name}={value} must be a positive integer")


def _choices(name, text, allowed):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["all"] and "all" not in allowed:      # the op set named "all" is a real choice
        return list(allowed)
    for t in items:
        if t not in allowed:
            raise UsageError(f"--{name}: {t!r} is not allowed; choose from {list(allowed)}")
    if not items:
        raise UsageError(f"--{name} is empty; choose from {list(allowed)}")
    return items


def resolve(args, table: str, rows: list[Row], problems=PROBLEMS, log=say):
    """Validate the command line -> (preset name, config overrides, seeds, rows, problems, hparams, out).
    Joins the other processes first in a multi-process run."""
    apply_verbosity(args)
    join_processes(args)
    if args.preset is None:
        name, why = default_preset_name()
        other = "smoke" if name == "paper" else "paper"
        log(f"[{table}] no --preset given: using '{name}' because {why}. "
            f"Pick another with --preset {{{','.join(PRESETS)}}} (e.g. --preset {other}).")
        args.preset = name
    try:
        preset = get_preset(args.preset, table)
    except ValueError as e:
        raise UsageError(f"--preset: {e}") from None
    for name in ("trials", "epochs", "width", "batch_size", "chunk_size"):
        _positive(name.replace("_", "-"), getattr(args, name))
    if args.seed < 0:
        raise UsageError(f"--seed={args.seed} must be >= 0")
    overrides = dict(preset.overrides)
    if getattr(args, "config", None):
        overrides.update(saved_config_overrides(args.config))
    for name in ("epochs", "width", "batch_size", "chunk_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    overrides.update(parse_set_items(args.set))
    try:
        make_config(**overrides)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        hp = hpmod.load(args.hparams) if args.hparams.endswith(".json") else hpmod.get(args.hparams)
    except (ValueError, OSError) as e:
        raise UsageError(f"--hparams: {e}") from None
    trials = args.trials or preset.trials
    args.adaptive = adaptive_plan(args, trials)         # the runners pass it on (None: a plain run)
    if args.adaptive:
        trials = args.adaptive["max_trials"]            # the seeds a row may use, at most
    seeds = list(range(args.seed, args.seed + trials))
    op_sets = _choices("op-sets", args.op_sets, sorted({r.op_set for r in rows}))
    sel_rows = [r for r in rows if r.key in _choices("rows", args.rows, [r.key for r in rows])
                and r.op_set in op_sets]
    if not sel_rows:
        raise UsageError(f"--rows {args.rows} with --op-sets {args.op_sets} selects no row")
    sel_problems = _choices("problems", args.problems, problems)
    out = Path(args.out or f"results/{table}-{preset.name}")
    return preset.name, overrides, seeds, sel_rows, sel_problems, hp, out


ROW_FIELDS = ("problem", "op_set")       # what each row of a table sets itself


def saved_config_overrides(path) -> dict:
    """The overrides that rebuild a saved config (``run.json``: {"config": ...}; a row's
    ``config.json``: {"run": {"config": ...}}; or the sections themselves), less the row fields.
    A config saved under older defaults keeps its meaning (:meth:`Config.from_dict`)."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"--config {path}: {getattr(e, 'strerror', None) or e}") from None
    if isinstance(saved, dict) and isinstance(saved.get("run"), dict) and "config" in saved["run"]:
        saved = saved["run"]
    if isinstance(saved, dict) and isinstance(saved.get("config"), dict):
        saved = saved["config"]
    if not isinstance(saved, dict) or not set(saved) & set(config_mod.SECTIONS):
        raise UsageError(f"--config {path}: no config sections ({list(config_mod.SECTIONS)}) found in it")
    try:
        return config_mod.flat_overrides(Config.from_dict(saved), skip=ROW_FIELDS)
    except (TypeError, ValueError) as e:
        raise UsageError(f"--config {path}: {e}") from None


def add_sets_option(parser: argparse.ArgumentParser, sets: list[str]) -> None:
    """--sets for the tables whose rows are hyperparameter sets (3 and 5); --hparams is hidden there."""
    parser.add_argument("--sets", default=",".join(sets),
                        help=f"comma list of hyperparameter set names or JSON files written by dasjax hpo, "
                             f"e.g. H1,results/hpo-one-shot-blur-cpu/incumbent.json (default: {sets})")
    for action in parser._actions:
        if action.dest == "hparams":
            action.help = argparse.SUPPRESS


def parse_sets(text: str, hparams: str = DEFAULT_HPARAMS) -> list:
    """--sets: comma list of hyperparameter-set names or JSON files written by dasjax hpo.
    ``hparams``: the shared --hparams flag, which set-row tables refuse (it would be ignored)."""
    if hparams != DEFAULT_HPARAMS:
        raise UsageError(f"--hparams {hparams}: this table runs several hyperparameter sets; list them "
                         f"with --sets, e.g. --sets H1,{hparams}")
    try:
        sets = [hpmod.load(s.strip()) if s.strip().endswith(".json") else hpmod.get(s.strip())
                for s in text.split(",") if s.strip()]
    except (ValueError, OSError) as e:
        raise UsageError(f"--sets: {e}") from None
    if not sets:
        raise UsageError(f"--sets is empty; choose from {sorted(hpmod.named_sets())}")
    return sets


def run_fingerprint(table: str, preset: str, overrides: dict, seeds: list[int], hp, adaptive=None) -> dict:
    """What makes two runs of a table comparable: everything but how trials execute.
    ``hp``: one hyperparameter set, or a list of them (set-row tables).  ``adaptive``: the
    adaptive plan (:func:`adaptive_plan`); ``seeds`` are then the most a row may use."""
    hps = [h.to_dict() for h in hp] if isinstance(hp, (list, tuple)) else hp.to_dict()
    fp = {"table": table, "preset": preset, "seeds": seeds, "hparams": hps,
          "config": json.loads(json.dumps(make_config(**overrides).science_dict(), default=list))}
    if adaptive:
        fp["adaptive"] = dict(adaptive)
    return fp


def run_methods(cfg, methods: list[str], seeds: list[int], hp, *, checkpoint_dir, keep_params=False,
                adaptive=None, log=say) -> dict:
    """{method: MethodResult} for ``methods`` (one method, or members of one group sharing one run):
    a plain run over ``seeds``, or with ``adaptive`` a :func:`dasjax.run_adaptive` run whose results
    carry the per-trial columns stop_reason and ci_half_width."""
    if adaptive:
        from dasjax.adaptive import run_adaptive
        got = run_adaptive(cfg, methods, hp, checkpoint_dir=checkpoint_dir, keep_params=keep_params, log=log,
                           **adaptive)
        return {name: a.result for name, a in got.items()}
    if len(methods) > 1 or get_method(methods[0]).group is not None:
        return run_group(cfg, methods, seeds, hp, checkpoint_dir=checkpoint_dir, keep_params=keep_params)
    return {methods[0]: run_method(cfg, methods[0], seeds, hp, checkpoint_dir=checkpoint_dir,
                                   keep_params=keep_params)}


WALL_COLUMNS = ("table", "problem", "row", "op_set", "hparams", "method", "trials", "wall_time_s", "compile_time_s",
                "row_elapsed_s", "group_elapsed_s", "device", "backend")


def walls_frame(walls: list[dict]) -> pd.DataFrame:
    """wall_times.csv in one column order, whether a row ran now or was read back from its folder."""
    df = pd.DataFrame(walls)
    return df[[c for c in WALL_COLUMNS if c in df] + [c for c in df if c not in WALL_COLUMNS]]


def trials_label(seeds: list[int], adaptive=None) -> str:
    """ "25 trials per row", or the adaptive plan in words (for headings and logs)."""
    if not adaptive:
        return f"{len(seeds)} trials per row"
    return (f"trials per row until the median's 95% CI is within ±{adaptive['target_ci']:g} dB "
            f"(chunks of {adaptive['chunk']}, at most {adaptive['max_trials']})")


def stop_fields(res) -> dict:
    """The adaptive stop of a row for wall_times.csv (empty for a plain run)."""
    if "stop_reason" not in res.columns:
        return {}
    return {"stop_reason": str(res.columns["stop_reason"][0]), "ci_half_width": float(res.columns["ci_half_width"][0])}


def _normalized(fingerprint: dict) -> dict:
    """The fingerprint with its config passed through :class:`Config`: a folder written before a
    config field existed reads that field's default, so adding a field does not orphan results."""
    fp = dict(fingerprint)
    if isinstance(fp.get("config"), dict):
        try:
            fp["config"] = json.loads(json.dumps(Config.from_dict(fp["config"]).science_dict(), default=list))
        except (TypeError, ValueError):
            pass
    return fp


def check_out_dir(out: Path, fingerprint: dict, overwrite: bool) -> None:
    """Refuse a folder holding another configuration's results; check that it is writable."""
    marker = out / "run.json"
    fingerprint = _normalized(fingerprint)
    if not distributed.is_writer():      # the writer checks and prepares the folder; the others follow it
        if not distributed.writer_says(True):
            raise UsageError(f"--out {out}: process 0 refused the results folder (its error says why)")
        return
    try:
        _prepare_out_dir(out, marker, fingerprint, overwrite)
    except Exception:                    # a refusal, or anything else: the others stop now, not at the heartbeat
        distributed.writer_says(False)
        raise
    distributed.writer_says(True)


def _prepare_out_dir(out: Path, marker: Path, fingerprint: dict, overwrite: bool) -> None:
    if marker.exists():
        old = _normalized(json.loads(marker.read_text()))
        if old != fingerprint and not overwrite:
            changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
            raise UsageError(f"--out {out} holds results of a different configuration "
                             f"(differs in {changed}); use another --out or pass --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {out} is not writable: {e.strerror or e}") from None
    try:
        folder_lock.acquire(out, log=say)
    except folder_lock.FolderBusy as e:
        raise UsageError(str(e)) from None
    logs.log_to_folder(out)                     # every record of this run, appended to OUT/run.log
    if overwrite and marker.exists() and _normalized(json.loads(marker.read_text())) != fingerprint:
        for child in ("runs", "report", "figures"):
            shutil.rmtree(out / child, ignore_errors=True)
    atomic_write_text(marker, json.dumps(fingerprint, indent=2, sort_keys=True))


def row_dir(out: Path, problem: str, row: Row) -> Path:
    return out / "runs" / problem / row.key


def _row_done(out: Path, path: Path, fingerprint: dict, *, name: str, log=say) -> bool:
    """Whether the row at ``path`` is finished, intact and of this configuration.  A damaged row
    (:func:`analysis.check.row_state`) is named in one line and moved aside, to be computed again."""
    state = check.row_state(path, out)
    if state.state == "damaged":
        if distributed.is_writer():
            dest = check.move_aside(out, path)
            log(f"{name}: damaged ({state.detail}); moved to {dest}, computing it again")
        return False
    if state.state != "complete" or not (path / "config.json").exists():
        return False
    old = json.loads((path / "config.json").read_text()).get("run")
    return isinstance(old, dict) and _normalized(old) == _normalized(fingerprint)


def _gather(out: Path, paths: list[Path], walls: list[dict], log=say) -> pd.DataFrame:
    """The trials of this run's rows (``paths``) and of every other complete row an earlier run on
    the folder planned (``--problems blur`` after ``--problems downsampling``: check_out_dir let
    both in, so they share the configuration) as one table, written with the wall times and their
    manifest to ``out``: the folder's tables, figures and report then show all it holds."""
    paths = list(paths)
    ours = set(paths)
    earlier = [p for p in check.planned_rows(out) if p not in ours]
    done = [p for p in earlier if check.row_state(p, out).state == "complete" and (p / "config.json").exists()]
    if len(done) < len(earlier) and distributed.is_writer():
        log(f"[gather] rows planned by an earlier run and not finished, left out of the tables: "
            + ", ".join(p.relative_to(out).as_posix() for p in earlier if p not in done))
    walls = walls + [json.loads((p / "config.json").read_text())["measured"] for p in done]
    df = pd.concat([pd.read_csv(p / "trials.csv") for p in paths + done], ignore_index=True)
    if distributed.is_writer():
        atomic_write_text(out / "trials.csv", df.to_csv(index=False))
        atomic_write_text(out / "wall_times.csv", walls_frame(walls).to_csv(index=False))
        write_manifest(out, ["trials.csv", "wall_times.csv"], trials=len(df))
    return df


def run_rows(*, table: str, rows: list[Row], problems: list[str], seeds: list[int], overrides: dict,
             hp, out: Path, log=say, keep_params: bool = False, adaptive=None) -> pd.DataFrame:
    """Run every row x problem (skipping finished ones) and return all trials as one DataFrame.
    ``keep_params``: also save each trial's retrained network in the row's arrays.npz.
    ``adaptive``: run each row until its median is tight (:func:`adaptive_plan`)."""
    walls = []
    if distributed.is_writer():
        check.write_plan(out, [row_dir(out, p, r) for p in problems for r in rows])
    for problem in problems:
        pending = list(rows)
        while pending:
            row = pending.pop(0)
            cfg = method_config(make_config(problem=problem, op_set=row.op_set, **overrides), row.method)
            fp = {"table": table, "row": row.key, "method": row.method, "problem": problem,
                  "op_set": row.op_set, "seeds": seeds, "hparams": hp.to_dict(),
                  "config": json.loads(json.dumps(cfg.science_dict(), default=list))}
            if adaptive:
                fp["adaptive"] = dict(adaptive)
            path = row_dir(out, problem, row)
            folder_lock.require_held(out)          # the writer's lock: the folder is still there
            if _row_done(out, path, fp, name=f"[{table}] {problem} / {row.key}", log=log):
                log(f"[{table}] {problem} / {row.key}: already done, skipped")
                walls.append(json.loads((path / "config.json").read_text())["measured"])
                continue
            log(f"[{table}] {problem} / {row.op_set} ops / {row.method}: "
                + (f"{len(seeds)} trials ..." if not adaptive else f"{trials_label(seeds, adaptive)} ..."))
            t0 = time.perf_counter()
            ckpt_dir = path / "checkpoint"
            group = get_method(row.method).group
            partners = [] if group is None else [          # its group's pending rows (same op set) share one run
                r for r in pending if r.op_set == row.op_set and r.method != row.method
                and get_method(r.method).group == group]
            results = run_methods(cfg, [row.method] + [r.method for r in partners], seeds, hp,
                                  checkpoint_dir=ckpt_dir, keep_params=keep_params, adaptive=adaptive, log=log)
            done = [(row, results[row.method])]
            for partner in partners:
                pending.remove(partner)
                done.append((partner, results[partner.method]))
            elapsed = time.perf_counter() - t0
            for r, res in done:
                fp_r = dict(fp, row=r.key, method=r.method)
                measured = {"table": table, "problem": problem, "row": r.key, "op_set": r.op_set,
                            "method": r.method, "trials": len(res.seeds),
                            "wall_time_s": float(res.wall_time_s), "compile_time_s": float(res.compile_time_s),
                            "row_elapsed_s": float(elapsed), "device": jax.devices()[0].device_kind,
                            "backend": jax.default_backend(), **stop_fields(res)}
                recs, arrays = method_records(res, experiment=table, cfg=cfg)
                if distributed.is_writer():
                    save_results(row_dir(out, problem, r), recs,
                                 {"run": fp_r, "measured": measured, "dasjax_version": __version__}, arrays)
                    shutil.rmtree(row_dir(out, problem, r) / "checkpoint", ignore_errors=True)
                walls.append(measured)
                log(f"[{table}] {problem} / {r.key}: median arch PSNR "
                    f"{np.nanmedian(res.arch_psnr) if np.isfinite(res.arch_psnr).any() else float('nan'):.2f} dB, "
                    f"{res.wall_time_s:.1f}s wall ({res.wall_time_s / len(res.seeds):.1f}s per trial)"
                    + (f", {len(res.seeds)} trials ({stop_fields(res)['stop_reason']})" if adaptive else ""))
            if distributed.is_writer():              # only now: a failed save resumes from the checkpoint
                shutil.rmtree(ckpt_dir, ignore_errors=True)
    distributed.barrier("rows written")
    return _gather(out, [row_dir(out, p, r) for p in problems for r in rows], walls, log=log)


def main_guard(fn, argv=None, program: str | None = None) -> int:
    """Run ``fn(argv)``; a UsageError becomes one line on stderr and exit code 2, a file-system
    error (full disk, no permission, read-only, a folder removed) one line and exit code 3
    (:func:`machine_error_line`).  The results folders ``fn`` locked are given back when it
    returns (:mod:`analysis.folder_lock`).  ``program``: the command the resume line names, a
    script (``experiments/run_table1.py``) or a command (``dasjax table1``); default: this
    process's script."""
    mark, stdout, logging_mark = folder_lock.held(), sys.stdout, logs.start_command()
    _PROGRAM.append(program if program and not program.endswith(".py") else None)
    try:
        return fn(argv) or 0
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if not is_machine_error(e):
            raise
        print(machine_error_line(e, folder_lock.held_folders(mark), argv, program), file=sys.stderr)
        return EXIT_MACHINE
    finally:
        _PROGRAM.pop()
        logs.end_command(logging_mark)
        folder_lock.release_since(mark)
        if sys.stdout is not stdout:            # a non-writer process's silenced stdout (join_processes)
            sys.stdout.close()
            sys.stdout = stdout


def machine_error_line(err: OSError, folders: list[Path], argv=None, program: str | None = None) -> str:
    """One line: what failed, what the results folders already hold, and the command that resumes."""
    saved = []
    for out in folders:
        try:
            states = check.check_results(out)
        except OSError:
            saved.append(f"{out} no longer exists, nothing of this run is saved there")
            continue
        rows = [s for s in states if s.path != out]
        done = sum(s.state == "complete" for s in rows)
        kept = sum(s.state in ("running", "interrupted") for s in rows)
        saved.append(f"{out} holds {done} of {len(rows)} rows complete"
                     + (f" and the checkpoint of {kept} more" if kept else ""))
    argv = list(sys.argv[1:] if argv is None else argv)
    program = program or sys.argv[0]
    resume = shlex.join([*(["python", program] if program.endswith(".py") else program.split()), *argv])
    return (f"error: {describe_os_error(err)}. " + ("; ".join(saved) + ". " if saved else "")
            + f"Resume with: {resume}")


def reports_here() -> bool:
    """Whether this process writes the tables, figures and reports after the rows: the writer only
    (process 0 of a multi-process run; the others have nothing left to do)."""
    return distributed.is_writer()


def env_summary() -> str:
    d = jax.devices()[0]
    procs = f" over {jax.process_count()} processes" if jax.process_count() > 1 else ""
    return f"jax {jax.__version__}, backend {jax.default_backend()}, device {d.device_kind}, " \
           f"{len(jax.devices())} device(s){procs}, {os.cpu_count()} CPU cores"


def run_set_rows(*, table: str, method: str, sets: list, op_sets: list[str], problems: list[str],
                 seeds: list[int], overrides: dict, out: Path, log=say, adaptive=None) -> pd.DataFrame:
    """Rows = (op set, hyperparameter set).  For each problem x op set, every set that shares
    optimizer types with another runs in the same batched program (``dasjax.run_sets``); each
    set is saved as ``OUT/runs/<problem>/<op_set>/<set>/`` and skipped when a rerun finds it done.
    ``adaptive``: chunks of seeds for all sets at once until every set's median is tight."""
    from dasjax.adaptive import run_sets_adaptive
    from dasjax.methods import run_sets
    walls = []
    if distributed.is_writer():
        check.write_plan(out, [out / "runs" / p / o / s.name for p in problems for o in op_sets for s in sets])
    for problem in problems:
        for op_set in op_sets:
            cfg = make_config(problem=problem, op_set=op_set, **overrides)
            science = json.loads(json.dumps(cfg.science_dict(), default=list))
            fps = {s.name: {"table": table, "method": method, "problem": problem, "op_set": op_set,
                            "seeds": seeds, "hparams": s.to_dict(), "config": science,
                            **({"adaptive": dict(adaptive)} if adaptive else {})} for s in sets}
            paths = {s.name: out / "runs" / problem / op_set / s.name for s in sets}
            folder_lock.require_held(out)
            todo = [s for s in sets if not _row_done(out, paths[s.name], fps[s.name], log=log,
                                                     name=f"[{table}] {problem} / {op_set} / {s.name}")]
            for s in sets:
                if s not in todo:
                    log(f"[{table}] {problem} / {op_set} / {s.name}: already done, skipped")
                    walls.append(json.loads((paths[s.name] / "config.json").read_text())["measured"])
            if not todo:
                continue
            log(f"[{table}] {problem} / {op_set} ops / {method} x {[s.name for s in todo]}: "
                + (f"{len(seeds)} trials each ..." if not adaptive else f"{trials_label(seeds, adaptive)} ..."))
            ckpt = out / "runs" / problem / op_set / "checkpoint"
            t0 = time.perf_counter()
            if adaptive:
                results = {name: a.result for name, a in
                           run_sets_adaptive(cfg, method, todo, checkpoint_dir=ckpt, log=log, **adaptive).items()}
            else:
                results = run_sets(cfg, method, todo, seeds, checkpoint_dir=ckpt)
            elapsed = time.perf_counter() - t0
            for s in todo:
                res = results[s.name]
                measured = {"table": table, "problem": problem, "op_set": op_set, "hparams": s.name,
                            "method": method, "trials": len(res.seeds), "wall_time_s": float(res.wall_time_s),
                            "compile_time_s": float(res.compile_time_s), "group_elapsed_s": float(elapsed),
                            "device": jax.devices()[0].device_kind, "backend": jax.default_backend(),
                            **stop_fields(res)}
                recs, arrays = method_records(res, experiment=table, cfg=cfg)
                if distributed.is_writer():
                    save_results(paths[s.name], recs, {"run": fps[s.name], "measured": measured,
                                                       "dasjax_version": __version__}, arrays)
                walls.append(measured)
                log(f"[{table}] {problem} / {op_set} / {s.name}: median arch PSNR "
                    f"{np.nanmedian(res.arch_psnr) if np.isfinite(res.arch_psnr).any() else float('nan'):.2f} dB")
            if distributed.is_writer():
                shutil.rmtree(ckpt, ignore_errors=True)
    distributed.barrier("rows written")
    return _gather(out, [out / "runs" / p / o / s.name for p in problems for o in op_sets for s in sets], walls,
                   log=log)


def finish_table(df: pd.DataFrame, out: Path, *, name: str, heading: str, rows=("op_set", "method"),
                 column: str = "problem", reference=None, figures=None, no_figures: bool = False,
                 t0: float | None = None, labels: dict | None = None, runtime: bool = False) -> str:
    """The common tail of a table runner: <name>.md / .tex in the paper's layout, summary.csv with
    bootstrap CIs, the runner's own figures and the analysis report; prints the table.
    ``labels`` overrides display names and ``runtime`` adds a runtime column (see
    :func:`analysis.results_table`)."""
    import analysis
    table = analysis.results_table(df, rows=rows, column=column, reference=reference, labels=labels,
                                   runtime=runtime)
    md = table.to_markdown()
    atomic_write_text(out / f"{name}.md", f"# {heading}\n\n" + md + "\n")
    atomic_write_text(out / f"{name}.tex", table.to_latex())
    atomic_write_text(out / "summary.csv", analysis.summarize(df, n_resamples=999).to_csv(index=False))
    if not no_figures:
        if figures is not None:
            figures(df, out)
        analysis.write_report(df, out / "report", reference=reference, n_resamples=999)
    say("\n" + heading.splitlines()[0] + "\n\n" + md)
    took = "" if t0 is None else f" in {time.perf_counter() - t0:.1f}s"
    say(f"\n[{name}] done{took}; results in {out}/ ({name}.md, trials.csv, wall_times.csv, figures/, report/)")
    return md
