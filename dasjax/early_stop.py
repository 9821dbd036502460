"""DARTS-ES and DARTS-ADA (RobustDARTS, Zela et al. 2020) inside the batched search.

Both watch lambda_max, the dominant eigenvalue of the alpha Hessian of L_val, estimated after every
``curvature_every``-th epoch (:meth:`dasjax.search.SearchProgram.curvature`).  The rule
(:func:`dasjax.curvature.es_fires`) fires at estimate m when the local average of the last
``es_window`` estimates exceeds ``es_factor`` x the average ``es_lag`` estimates earlier.  Then

* **DARTS-ES** (``early_stop="es"``): the trial stops and returns its state at estimate m - lag
  (the epoch before the growth): alpha, weights, BN statistics, so its one-shot PSNR and
  architecture are those of that epoch.  The stopped trial freezes inside the batch.
* **DARTS-ADA** (``early_stop="ada"``): the trial rolls back to that state (theta, alpha, both
  optimizer states with their step counters, BN statistics) and goes on with its theta weight
  decay raised: ``wd <- min(max(wd * ada_factor, ada_min_wd), ada_max_wd)``.  At most
  ``ada_max_rollbacks`` rollbacks, and none once the weight decay sits at the cap (RobustDARTS's
  final iteration: the search then runs to its end).  A rolled-back trial re-trains the lost epochs,
  so the batch runs ``epochs + ada_max_rollbacks * es_lag * curvature_every`` epoch calls at most
  (``SearchConfig.search_epoch_budget``); a trial that has trained all its epochs freezes, and the
  run stops early once every trial of a chunk has (:func:`dasjax.batch.run_batched`).

Per-trial state (:class:`EarlyStopState`): the search state of one trial, its current theta weight
decay (a traced per-trial number, so ADA can raise it for one trial only), its effective epoch, the
lambda_max estimates along its current path and a snapshot of its search state at every estimate
(the rollback targets; a few MB per trial at width 64).  Every update is a per-trial
``jnp.where``: a stopped, finished or diverged trial's state stays bitwise unchanged and its
neighbours never see it.  Since a rollback moves a trial back by a multiple of the estimate
interval, "estimate after this epoch" is the same for every trial and stays a real ``lax.cond``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from .curvature import es_fires
from .program import keep_if
from .search import SearchProgram, SearchState

#: per-trial outputs of the curvature-tracked search besides the usual ones
FINAL_COLUMNS = ("lambda_max_final", "stop_epoch", "early_stopped", "n_rollbacks", "theta_wd_final",
                 "search_epochs")


@struct.dataclass
class EarlyStopState:
    search: SearchState          # what one search step updates
    theta_wd: jnp.ndarray        # () float32: the trial's current theta weight decay (ADA raises it)
    epoch: jnp.ndarray           # () int32: epochs completed along the current path (ADA rolls it back)
    lam: jnp.ndarray             # (M,) lambda_max per estimate along the current path; NaN = none yet
    snapshots: SearchState       # leaves (M, ...): the search state right after each estimate
    stopped: jnp.ndarray         # () bool: DARTS-ES fired; the trial holds its returned state
    stop_epoch: jnp.ndarray      # () int32: the epoch whose state DARTS-ES returned (-1 = never fired)
    n_rollbacks: jnp.ndarray     # () int32: DARTS-ADA rollbacks so far
    epochs_run: jnp.ndarray      # () int32: epochs trained, rolled-back ones included


class EarlyStopProgram(SearchProgram):
    """The DAS search of one trial with DARTS-ES or DARTS-ADA (``SearchConfig.early_stop``).

    Same ``init`` / ``epoch`` / ``finalize`` contract as :class:`SearchProgram`, plus ``finished``
    (per trial: nothing left to do), which lets :func:`dasjax.batch.run_batched` end a chunk early.
    A finished trial's epoch metrics are NaN (integers -1), whichever chunk it runs in.
    """

    def __init__(self, cfg, space, optimizer_types=("adam", "sgd"), algorithm=None):
        super().__init__(cfg, space, optimizer_types, algorithm)
        s = cfg.search
        if s.early_stop not in ("es", "ada"):
            raise ValueError(f"EarlyStopProgram needs early_stop 'es' or 'ada', got {s.early_stop!r}")
        self.mode, self.every = s.early_stop, int(s.curvature_every)
        self.n_estimates = max(1, self.search_epochs // self.every)
        # smallest estimate index the rule may return: its epoch (j + 1) * every - 1 >= es_start_epoch
        self.start_index = -(-(s.es_start_epoch + 1) // self.every) - 1
        self.epochs = s.search_epoch_budget       # epoch calls: the search's, plus DARTS-ADA's re-trained ones

    @property
    def cache_key(self):
        return ("early_stop",) + super().cache_key

    # --- state ----------------------------------------------------------------------------
    def init(self, key, hp) -> EarlyStopState:
        st = super().init(key, hp)
        M = self.n_estimates
        return EarlyStopState(
            search=st, theta_wd=jnp.asarray(hp.theta_wd, jnp.float32), epoch=jnp.zeros((), jnp.int32),
            lam=jnp.full((M,), jnp.nan, jnp.float32),
            snapshots=jax.tree_util.tree_map(lambda x: jnp.zeros((M,) + x.shape, x.dtype), st),
            stopped=jnp.asarray(False), stop_epoch=jnp.asarray(-1, jnp.int32),
            n_rollbacks=jnp.zeros((), jnp.int32), epochs_run=jnp.zeros((), jnp.int32))

    def active(self, ts: EarlyStopState):
        """The trial still trains: not diverged, not stopped, epochs left on its path."""
        return ts.search.alive & ~ts.stopped & (ts.epoch < self.search_epochs)

    def finished(self, ts: EarlyStopState):
        return ~self.active(ts)

    def with_theta_wd(self, hp, ts: EarlyStopState):
        """The trial's hyperparameters with its current (possibly raised) theta weight decay."""
        return hp.replace(theta_wd=ts.theta_wd)

    # --- one epoch --------------------------------------------------------------------------
    def epoch(self, ts: EarlyStopState, key, hp, epoch=None):
        s = self.cfg.search
        act = self.active(ts)
        hp_t = self.with_theta_wd(hp, ts)
        st, (lt, lv) = jax.lax.scan(lambda c, _: self.step(c, key, hp_t), ts.search, None,
                                    length=self.steps_per_epoch)
        e = ts.epoch                                   # the epoch of the trial's path just trained
        # estimate after this epoch?  e and the call index agree modulo `every` (rollbacks move by
        # lag * every), so the unbatched call index keeps the branch a real conditional under vmap
        when = (epoch if epoch is not None else e) + 1
        lam_now = jax.lax.cond(when % self.every == 0, lambda c: self.curvature(c, key),
                               lambda c: jnp.float32(jnp.nan), st)
        has_est = (e + 1) % self.every == 0
        m = (e + 1) // self.every - 1                   # this estimate's index
        mi = jnp.clip(m, 0, self.n_estimates - 1)
        write = act & has_est & (m >= 0) & (m < self.n_estimates)
        lam = ts.lam.at[mi].set(jnp.where(write, lam_now, ts.lam[mi]))
        snapshots = jax.tree_util.tree_map(lambda buf, x: buf.at[mi].set(jnp.where(write, x, buf[mi])),
                                           ts.snapshots, st)
        fires = write & es_fires(lam, m, s.es_window, s.es_lag, s.es_factor, self.start_index)
        j = jnp.clip(m - s.es_lag, 0, self.n_estimates - 1)   # the estimate before the growth
        back = jax.tree_util.tree_map(lambda buf: buf[j], snapshots)
        epoch_at_j = (j + 1) * self.every                      # epochs completed at snapshot j

        # the snapshot buffer is written in place above (only by active trials); the per-trial selects
        # below leave it out so that they do not copy it
        old = ts.replace(snapshots=None)
        new = old.replace(search=st, epoch=e + 1, lam=lam, epochs_run=ts.epochs_run + 1)
        if self.mode == "es":
            new = keep_if(fires, new.replace(search=back, epoch=epoch_at_j, stopped=jnp.asarray(True),
                                             stop_epoch=(epoch_at_j - 1).astype(jnp.int32)), new)
        else:
            can = (ts.n_rollbacks < s.ada_max_rollbacks) & (ts.theta_wd < s.ada_max_wd)
            roll = fires & can
            raised = jnp.minimum(jnp.maximum(ts.theta_wd * s.ada_factor, s.ada_min_wd), s.ada_max_wd)
            forget = jnp.arange(self.n_estimates) > j           # estimates of the abandoned epochs
            rolled = new.replace(search=back, epoch=epoch_at_j, theta_wd=raised.astype(jnp.float32),
                                 lam=jnp.where(forget, jnp.nan, lam), n_rollbacks=ts.n_rollbacks + 1)
            new = keep_if(roll, rolled, new)
        out = keep_if(act, new, old).replace(snapshots=snapshots)

        nan = jnp.float32(jnp.nan)
        metrics = {"search_train_loss": jnp.where(act, jnp.mean(lt), nan),
                   "search_val_loss": jnp.where(act, jnp.mean(lv), nan),
                   "alpha_history": jnp.where(act, self.space.weights(st.alpha), nan),
                   "lambda_max": jnp.where(act, lam_now, nan),
                   "search_epoch": jnp.where(act, e, -1).astype(jnp.int32),
                   "theta_wd": jnp.where(act, ts.theta_wd, nan),
                   "es_fired": jnp.where(act, fires.astype(jnp.int32), -1)}
        return out, metrics

    def finalize(self, ts: EarlyStopState, key, hp):
        out = super().finalize(ts.search, key, hp)
        last = jnp.where(ts.stopped, (ts.stop_epoch + 1) // self.every - 1, self.n_estimates - 1)
        out.update({
            "lambda_max_path": ts.lam,
            "lambda_max_final": jnp.where(out["diverged"], jnp.nan, ts.lam[jnp.clip(last, 0, self.n_estimates - 1)]),
            "stop_epoch": jnp.where(ts.stopped, ts.stop_epoch, ts.epoch - 1).astype(jnp.int32),
            "early_stopped": ts.stopped.astype(jnp.int32),
            "n_rollbacks": ts.n_rollbacks,
            "theta_wd_final": ts.theta_wd,
            "search_epochs": ts.epochs_run,
        })
        return out
