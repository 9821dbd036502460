"""Search spaces.  Each space exposes the same interface:

``init(key) -> (params, state)``, ``init_alpha(key)``, ``weights(alpha)``,
``apply(params, state, weights, batch, key, train) -> (x_hat, state)``,
``discretize(alpha) -> one-hot``, ``random_architecture(key) -> one-hot``,
``fixed_architecture(op) -> one-hot``, ``arch_string(one_hot) -> str``.
"""
from .sequential import SequentialSpace


def make_space(cfg, problem, share_f: bool = False):
    """The search space named by ``cfg.space.space``."""
    if cfg.space.space == "sequential":
        return SequentialSpace(cfg.space, problem, share_f=share_f)
    raise ValueError(f"space={cfg.space.space!r} is not allowed; choose one of ['sequential']")


__all__ = ["SequentialSpace", "make_space"]
