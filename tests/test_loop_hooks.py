"""The loop's hooks: a user's hook sees every event in order, reads the metrics, and changes nothing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dasjax import stages
from dasjax.batch import run_batched, trial_keys
from dasjax.loop_hooks import LoopHook


class _Walk:
    """A toy program: x += hp + noise each epoch."""
    epochs = 4
    cache_key = ("walk",)

    def init(self, key, hp):
        return {"x": jnp.float32(0.0)}

    def epoch(self, s, key, hp, epoch=None):
        x = s["x"] + hp["step"] + jax.random.uniform(jax.random.fold_in(key, epoch))
        return {"x": x}, {"x": x}

    def finalize(self, s, key, hp):
        return {"x": s["x"]}


class Recorder(LoopHook):
    def __init__(self):
        self.events = []

    def start(self, info):
        self.events.append(("start", info.n_trials, info.chunk, info.calls))

    def after_call(self, info, point):
        self.events.append(("call", point.c0, point.epochs_done))

    def save_point(self, info, point):
        self.events.append(("save", point.c0, point.epochs_done, point.metrics["x"].shape,
                            round(point.fraction(info), 3)))

    def chunk_done(self, info, point):
        self.events.append(("chunk", point.c0, point.n_real, len(point.done_final["x"])))

    def end(self, info):
        self.events.append(("end",))


class OnlyEnd:                    # a hook needs only the methods it uses
    def __init__(self):
        self.ended = 0

    def end(self, info):
        self.ended += 1


KW = dict(n_epochs=4, chunk_size=2, devices=1, checkpoint_every=2, progress=False, fast_compile=True)
HP = {"step": jnp.asarray([1.0, 2.0, 3.0])}
KEYS = trial_keys([0, 1, 2])


def test_a_user_hook_sees_every_event_in_order_and_changes_nothing():
    plain = run_batched(_Walk(), KEYS, HP, **KW)
    rec, end = Recorder(), OnlyEnd()
    hooked = run_batched(_Walk(), KEYS, HP, hooks=[rec, end], **KW)
    np.testing.assert_array_equal(hooked.final["x"], plain.final["x"])
    np.testing.assert_array_equal(hooked.metrics["x"], plain.metrics["x"])
    assert rec.events == [
        ("start", 3, 2, 4),
        ("call", 0, 1), ("call", 0, 2), ("save", 0, 2, (2, 2), 0.25), ("call", 0, 3), ("call", 0, 4),
        ("chunk", 0, 2, 2),
        ("call", 2, 1), ("call", 2, 2), ("save", 2, 2, (2, 2), 0.75), ("call", 2, 3), ("call", 2, 4),
        ("chunk", 2, 1, 3),
        ("end",)]
    assert end.ended == 1


class AbortInChunk2(LoopHook):
    """Stops the run at the second chunk's first save point (after its checkpoint is written)."""

    def save_point(self, info, point):
        if point.c0 == 2:
            raise KeyboardInterrupt


def _aborted_run(ckpt):
    """The uninterrupted run's output, and a checkpointed run stopped in chunk 2 at ``ckpt``."""
    ref = run_batched(_Walk(), KEYS, HP, **KW)
    with pytest.raises(KeyboardInterrupt):
        run_batched(_Walk(), KEYS, HP, checkpoint=ckpt, hooks=[AbortInChunk2()], **KW)
    return ref


def test_a_hook_that_raises_stops_the_run_and_a_checkpointed_run_resumes(tmp_path):
    ckpt = tmp_path / "walk.npz"
    ref = _aborted_run(ckpt)
    rec = Recorder()
    resumed = run_batched(_Walk(), KEYS, HP, checkpoint=ckpt, hooks=[rec], **KW)
    np.testing.assert_array_equal(resumed.final["x"], ref.final["x"])
    assert rec.events[1:] == [("call", 2, 3), ("call", 2, 4), ("chunk", 2, 1, 3), ("end",)]


def test_search_and_retrain_pass_hooks_to_the_loop(monkeypatch, tiny_cfg):
    seen = {}

    def fake_run_batched(*args, hooks=(), **kw):
        seen["hooks"] = hooks
        raise KeyboardInterrupt

    monkeypatch.setattr(stages, "run_batched", fake_run_batched)
    hook = OnlyEnd()
    with pytest.raises(KeyboardInterrupt):
        stages.search(tiny_cfg, [0], hooks=[hook])
    assert seen["hooks"] == [hook]
    arch = np.zeros((1, tiny_cfg.space.n_layers, len(tiny_cfg.space.ops)), np.float32)
    arch[..., 0] = 1
    with pytest.raises(KeyboardInterrupt):
        stages.retrain(tiny_cfg, arch, [0], hooks=[hook])
    assert seen["hooks"] == [hook]


def test_another_chunking_keeps_the_finished_trials_and_restarts_the_running_chunk(tmp_path):
    """A checkpoint written with chunks of 2 (say 2 devices or processes), resumed with chunks of 1:
    trials 0-1 come from the checkpoint, trial 2 runs from its start, and the numbers are the plain run's."""
    ckpt = tmp_path / "walk.npz"
    ref = _aborted_run(ckpt)
    rec, said = Recorder(), []
    resumed = run_batched(_Walk(), KEYS, HP, checkpoint=ckpt, hooks=[rec], log=said.append, **dict(KW, chunk_size=1))
    np.testing.assert_array_equal(resumed.final["x"], ref.final["x"])
    np.testing.assert_array_equal(resumed.metrics["x"], ref.metrics["x"])
    assert [e for e in rec.events if e[0] == "call"] == [("call", 2, e) for e in (1, 2, 3, 4)]
    assert "chunks of 2 trials" in said[0] and "starts over" in said[0]
    # other trials (another seed): nothing is reused
    other = run_batched(_Walk(), trial_keys([0, 1, 5]), HP, checkpoint=ckpt, **dict(KW, chunk_size=1))
    assert other.final["x"][2] != ref.final["x"][2]


def test_a_checkpoint_written_before_rechunking_still_resumes_in_full(tmp_path, monkeypatch):
    """Checkpoints saved before the fingerprint named the chunk on its own (one hash) resume as before."""
    from dasjax import batch, checkpoints
    def old_style(*args):
        old = checkpoints.fingerprint(*args).split("|")[1]
        return f"{old}|{old}"                       # what the old code saved: the single hash

    ckpt = tmp_path / "walk.npz"
    monkeypatch.setattr(batch, "fingerprint", old_style)
    ref = _aborted_run(ckpt)
    monkeypatch.undo()
    rec = Recorder()
    resumed = run_batched(_Walk(), KEYS, HP, checkpoint=ckpt, hooks=[rec], **KW)
    np.testing.assert_array_equal(resumed.final["x"], ref.final["x"])
    assert rec.events[1:] == [("call", 2, 3), ("call", 2, 4), ("chunk", 2, 1, 3), ("end",)]
