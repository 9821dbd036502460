"""Search spaces.  Each space exposes the same interface:

``kind``, ``ops`` (alpha's columns), ``arch_shape``, ``layer`` (the :class:`dasjax.ops.OpLayer`
of one layer / edge), ``init(key) -> (params, state)``, ``init_alpha(key)``, ``weights(alpha)``,
``apply(params, state, weights, batch, key, train) -> (x_hat, state)``,
``discretize(alpha) -> one-hot``, ``random_architecture(key) -> one-hot``,
``fixed_architecture(op) -> one-hot``, ``arch_string(one_hot) -> str``, ``parse_arch(str)``.
"""
from .cell import CellSpace
from .sequential import SequentialSpace

SPACES = {"sequential": SequentialSpace, "cell": CellSpace}


def make_space(cfg, problem, share_f: bool = False):
    """The search space named by ``cfg.space.space``."""
    if cfg.space.space not in SPACES:
        raise ValueError(f"space={cfg.space.space!r} is not allowed; choose one of {list(SPACES)}")
    return SPACES[cfg.space.space](cfg.space, problem, share_f=share_f)


__all__ = ["CellSpace", "SequentialSpace", "SPACES", "make_space"]
