"""HPO evaluations as an Optuna study, so Optuna's plots and dashboard open a dasjax HPO run.

The batched Hyperband loop stays dasjax's own (:func:`dasjax.hpo.tune`); this module only copies its
evaluations into a study stored in SQLite: one finished Optuna trial per configuration, its
searched hyperparameters as the trial's params, its objective at the largest budget it reached
as the value, and the objective at every rung as intermediate values keyed by epochs (what
``optuna.visualization.plot_intermediate_values`` draws).  A configuration that diverged at
its last rung is a failed trial.  The study is rewritten from the evaluations each time, so
it always equals ``evaluations.csv``.

    optuna-dashboard sqlite:///results/hpo-one-shot-blur-paper/optuna.db
    study = optuna.load_study(study_name="HPO-one-shot-blur-all", storage="sqlite:///.../optuna.db")
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .hpo import quiet_optuna

STUDY_FILE = "optuna.db"


def write_study(evaluations: pd.DataFrame, space, path: Path, study_name: str) -> Path:
    """Write ``evaluations`` (:data:`dasjax.hpo.COLUMNS`) as the study ``study_name`` in the SQLite
    file ``path``, replacing an earlier study of that name.  ``space``: the
    :class:`dasjax.hpo.SearchSpace` the evaluations were drawn from.  Needs Optuna."""
    path = Path(path)
    storage = f"sqlite:///{path.resolve()}"
    with quiet_optuna() as optuna:
        try:
            optuna.delete_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
        dists = space.optuna_distributions()
        for config_id, rows in evaluations.sort_values(["config_id", "epochs"]).groupby("config_id", sort=True):
            last = rows.iloc[-1]
            params = {k: _native(last[k]) for k in dists}
            steps = {int(r.epochs): float(r.objective) for r in rows.itertuples() if _finite(r.objective)}
            failed = bool(last["diverged"]) or not _finite(last["objective"])
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=dists, intermediate_values=steps,
                value=None if failed else float(last["objective"]),
                state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
                user_attrs={"config_id": int(config_id), "epochs": int(last["epochs"]),
                            "proposal": str(last["proposal"]), "rungs": len(rows),
                            "architecture": str(last["architecture"])}))
    return path


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _native(v):
    """A CSV cell as the value Optuna's distribution holds (numpy scalars and 'True' strings out)."""
    if isinstance(v, str) and v in ("True", "False"):
        return v == "True"
    return v.item() if hasattr(v, "item") else v
