"""Checkpoints of a batched run: the full state of the running chunk plus every finished output,
written atomically and resumed only by the run that wrote them (:func:`fingerprint`)."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def flatten_named(tree) -> dict:
    """{"a": {"b": x}} -> {"a/b": x}: nested outputs (e.g. trained params) as named arrays."""
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        flat["/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)] = leaf
    return flat


def unflatten_named(flat: dict, prefix: str, like):
    """Inverse of :func:`flatten_named` for the subtree ``prefix`` shaped like ``like``."""
    paths = [prefix + "/" + "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
                                     for k in path)
             for path, _ in jax.tree_util.tree_flatten_with_path(like)[0]]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), [flat[p] for p in paths])


def fingerprint(program, keys, hp, inputs, n_epochs, chunk) -> str:
    """Identifies a run: "<trials>/<chunk>", the hash of what the trials compute (program, keys,
    hparams, inputs, epochs) and the chunk size.  A checkpoint is resumed in full only by the run
    that wrote it; a run of the same trials in other chunks (another device or process count)
    keeps its finished trials, which do not depend on the chunking."""
    base = _trials_hasher(program, keys, hp, inputs)
    today, before = base.copy(), base                # before 2026-12-01: one hash of trials and chunk
    today.update(f"{n_epochs}".encode())
    before.update(f"{n_epochs}/{chunk}".encode())
    return f"{today.hexdigest()}/{chunk}|{before.hexdigest()}"


def _trials_hasher(program, keys, hp, inputs):
    """A sha256 of a program's identity and the trials' keys, hparams and inputs."""
    h = hashlib.sha256(repr(program.cache_key).encode())
    h.update(np.asarray(jax.random.key_data(keys)).tobytes())
    for leaf in jax.tree_util.tree_leaves((hp, tuple(inputs))):
        h.update(np.asarray(leaf).tobytes())
    return h


def _matches(saved: str, fingerprint: str) -> bool:
    """A saved fingerprint (today's "<trials>/<chunk>", or the single hash of a checkpoint written
    before 2026-12-01, so that a run started then still resumes in full) names the run
    ``fingerprint`` describes."""
    today, before = fingerprint.split("|")
    return saved == today or saved == before


def same_trials(saved: str, fingerprint: str) -> bool:
    """Whether a saved fingerprint describes the same trials as ``fingerprint`` (maybe in other chunks)."""
    return "/" in saved and saved.split("/")[0] == fingerprint.split("/")[0]


def _to_host(leaf):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf)), str(jax.random.key_impl(leaf))
    return np.asarray(leaf), None


def save_checkpoint(path, fingerprint, c0, epochs_done, state, metrics, done_final, done_metrics) -> None:
    """The full batched state of the running chunk (params, BN stats, optimizer states, step
    counters, alive flags; typed keys as key data) + everything finished so far, written atomically."""
    leaves = jax.tree_util.tree_leaves(state)
    arrays, key_impls = {}, {}
    for i, leaf in enumerate(leaves):
        arrays[f"state/{i}"], impl = _to_host(leaf)
        if impl is not None:
            key_impls[i] = impl
    for prefix, tree in (("metrics", metrics), ("done_final", done_final), ("done_metrics", done_metrics)):
        for name, v in tree.items():
            arrays[f"{prefix}/{name}"] = np.asarray(v)
    meta = {"fingerprint": fingerprint.split("|")[0], "c0": c0, "epochs_done": epochs_done, "n_leaves": len(leaves),
            "key_impls": key_impls}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    from .results import atomic_write_bytes
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, fingerprint, state_like):
    """Restore what :func:`save_checkpoint` wrote, or None if absent / from another run.  A
    checkpoint of the same trials in other chunks gives back its finished trials only (the meta's
    ``rechunked`` names the chunk it was written with; the running chunk starts over)."""
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path) as z:
        meta = json.loads(bytes(z["__meta__"]).decode())
        if not _matches(meta["fingerprint"], fingerprint) and not same_trials(meta["fingerprint"], fingerprint):
            return None
        groups = {p: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(p + "/")}
                  for p in ("metrics", "done_final", "done_metrics")}
        if not _matches(meta["fingerprint"], fingerprint):
            n_done = len(next(iter(groups["done_final"].values()), []))
            meta = dict(meta, c0=n_done, epochs_done=0, n_leaves=0,
                        rechunked=int(meta["fingerprint"].split("/")[1]))
            return meta, None, dict(groups, metrics={})
        if meta["n_leaves"] == 0:          # saved at a chunk boundary: no running state
            return meta, None, groups
        treedef = jax.tree_util.tree_structure(state_like)
        leaves = []
        for i, like in enumerate(jax.tree_util.tree_leaves(state_like)):
            a = z[f"state/{i}"]
            impl = meta["key_impls"].get(str(i))
            leaves.append(jax.random.wrap_key_data(a, impl=impl) if impl else jnp.asarray(a, like.dtype))
    return meta, jax.tree_util.tree_unflatten(treedef, leaves), groups


