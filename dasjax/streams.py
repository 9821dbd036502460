"""Independent random streams per purpose (docs/design.md: one key per trial, ``fold_in`` per purpose).

A trial's numbers depend only on its own key, never on how many trials run beside it.
"""
import jax

INIT = 0            # supernet / network parameters
ALPHA_INIT = 1
SEARCH_TRAIN = 2    # training batches of the search (theta step)
SEARCH_VAL = 3      # validation batches of the search (alpha step)
SEARCH_NOISE = 4    # noise-layer noise during the search
RETRAIN_INIT = 5
RETRAIN_TRAIN = 6
RETRAIN_VAL = 7     # one fresh batch per epoch for the retraining validation-loss curve
RETRAIN_NOISE = 8
EVAL = 9            # the 2432 fresh validation samples of the final PSNR
EVAL_NOISE = 10
ARCH = 11           # random architectures
CANDIDATE = 12      # random-search candidates
CURVATURE = 13      # the fixed validation batch of the lambda_max estimate
SEARCH_RELAX = 14   # a search algorithm's own draws (Gumbel / Dirichlet samples, alpha perturbations)
PROJECTION = 15     # DARTS-PT: the order of the rows, each projection's validation batches and noise


def stream(key, purpose: int, *index):
    """Key for ``purpose`` (and optional step / batch indices) derived from a trial key."""
    k = jax.random.fold_in(key, purpose)
    for i in index:
        k = jax.random.fold_in(k, i)
    return k


def candidate_key(key, j: int):
    """Key of random-search candidate j; candidate 0 is the trial itself (= random sampling)."""
    return key if j == 0 else stream(key, CANDIDATE, j)
