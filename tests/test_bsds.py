"""2D images (paper §4.4): the separable operator and its adjoint, the 2D CNN, the BSDS300 loader
(generated folders with corrupt files, empty folders, absent folders), crops, the test-set
evaluation, and batch invariance of the 2D supernet."""
import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from conftest import tiny

import dasjax
from dasjax import bsds
from dasjax.bsds import (DatasetError, DataSource, EmbeddedFallbackWarning, ImageSet, SkippedImageWarning,
                         load_bsds, load_images, resolve_source)
from dasjax.ops import f_apply, f_init
from dasjax.problems import ImageProblem, gaussian_taps


def smooth_image(rng, h, w):
    """A small natural-ish test image: smoothed noise plus a gradient, uint8."""
    a = rng.normal(size=(h, w)).cumsum(0).cumsum(1)
    a = a - a.min()
    return np.round(a / a.max() * 255).astype(np.uint8)


def image_set(rng, train_shapes=((30, 50), (50, 30)), test_shapes=((24, 36), (36, 24), (24, 36))):
    train = tuple(smooth_image(rng, *s) for s in train_shapes)
    test = tuple(smooth_image(rng, *s) for s in test_shapes)
    return ImageSet(DataSource("bsds300", "/generated", "generated in a test"), train, test,
                    tuple(f"tr{i}.png" for i in range(len(train))), tuple(f"te{i}.png" for i in range(len(test))))


def write_bsds(root, rng, n_train=3, n_test=2, extras=True):
    """A folder in the BSDS300 layout with small generated images (+ a corrupt jpg and a text file)."""
    for split, n in (("train", n_train), ("test", n_test)):
        d = root / "images" / split
        d.mkdir(parents=True)
        for i in range(n):
            rgb = np.stack([smooth_image(rng, 30, 44) for _ in range(3)], -1)
            if i % 2:
                rgb = rgb.transpose(1, 0, 2)            # portrait and landscape, as in BSDS300
            Image.fromarray(rgb).save(d / f"{split}{i}.png")
    if extras:
        (root / "images" / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (root / "images" / "test" / "iids.txt").write_text("not an image\n")
        (root / "images" / "train" / ".DS_Store").write_bytes(b"hidden: ignored")
    return root


# --- operator ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("boundary", ["zero", "circular"])
@pytest.mark.parametrize("shape", [(40, 40), (17, 23)])
def test_2d_adjoint_identity_and_blur_is_a_2d_convolution(boundary, shape):
    """<A x, r> == <x, A^T r>; and A x is the 7x7 Gaussian 'same' convolution (scipy reference)."""
    from scipy.ndimage import correlate
    cfg = dasjax.ProblemConfig(name="image_blur", boundary=boundary, image_blur_sigma=1.3, crop_size=8)
    p = ImageProblem(cfg, image_set(np.random.default_rng(0)))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8,) + shape).astype(np.float32)
    r = rng.normal(size=(8,) + shape).astype(np.float32)
    ax, atr, grad = jax.jit(lambda x, r: (p.forward(x), p.adjoint(r), p.data_grad(x, r)))(x, r)
    lhs = np.sum(np.asarray(ax, np.float64) * r, axis=(1, 2))
    rhs = np.sum(x * np.asarray(atr, np.float64), axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-4)
    g = gaussian_taps(7, 1.3)
    mode = "wrap" if boundary == "circular" else "constant"
    ref = np.stack([correlate(xi.astype(np.float64), np.outer(g, g), mode=mode) for xi in x])
    np.testing.assert_allclose(ax, ref, rtol=1e-4, atol=1e-5)
    ref_grad = np.stack([correlate(ri, np.outer(g, g)[::-1, ::-1], mode=mode) for ri in ref - r])
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-4)
    a8 = p.axis_matrix(8).astype(np.float64)                        # ||A||^2 on a crop, by the Kronecker product
    assert p.operator_norm_sq() == pytest.approx(np.linalg.norm(np.kron(a8, a8), 2) ** 2, rel=1e-5)


def test_denoising_operator_is_the_identity():
    p = ImageProblem(dasjax.ProblemConfig(name="image_denoise", crop_size=8), image_set(np.random.default_rng(0)))
    x = np.ones((2, 9, 7), np.float32)
    assert p.forward(x) is x and p.adjoint(x) is x and p.operator_norm_sq() == 1.0


def test_2d_cnn_matches_lax_conv_reference():
    """F in 2D: Conv2d(1->W, 3x3) -> BN -> ReLU -> Conv2d(W->1, 3x3), PyTorch weight order (train mode)."""
    cfg = dasjax.SpaceConfig(width=5)
    p, s = f_init(jax.random.key(0), cfg, ndim=2)
    x = jax.random.normal(jax.random.key(1), (4, 11, 13)) + 0.5
    dn = ("NCHW", "OIHW", "NCHW")

    @jax.jit
    def both(p, s, x):
        out, new = f_apply(p, s, x, True, cfg)
        w1 = p["w1"].T.reshape(5, 1, 3, 3)
        w2 = p["w2"].reshape(1, 5, 3, 3)
        h = jax.lax.conv_general_dilated(x[:, None], w1, (1, 1), [(1, 1), (1, 1)], dimension_numbers=dn)
        h = h + p["b1"][None, :, None, None]
        mean, var = h.mean((0, 2, 3)), h.var((0, 2, 3))
        h = jax.nn.relu((h - mean[None, :, None, None]) / jnp.sqrt(var[None, :, None, None] + 1e-5))
        ref = jax.lax.conv_general_dilated(h, w2, (1, 1), [(1, 1), (1, 1)], dimension_numbers=dn)[:, 0] + p["b2"]
        return out, new, ref, var
    out, new, ref, var = both(p, s, x)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    n = 4 * 11 * 13
    np.testing.assert_allclose(new["var"], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-4)


# --- loader -----------------------------------------------------------------------------------------
def test_loader_reads_a_generated_bsds_folder_and_skips_bad_files(tmp_path):
    root = write_bsds(tmp_path / "BSDS300", np.random.default_rng(1))
    with pytest.warns(SkippedImageWarning) as rec:
        s = load_bsds(root)
    msgs = [str(w.message) for w in rec]
    assert any("broken.jpg" in m for m in msgs) and any("iids.txt" in m for m in msgs)
    assert not any(".DS_Store" in m for m in msgs)
    assert s.train_names == ("train0.png", "train1.png", "train2.png") and s.test_names == ("test0.png", "test1.png")
    assert [a.shape for a in s.train] == [(30, 44), (44, 30), (30, 44)]
    assert all(a.dtype == np.uint8 for a in s.train + s.test)
    # ITU-R 601 luma, as PIL's convert("L")
    rgb = np.asarray(Image.open(root / "images" / "train" / "train1.png"), dtype=np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert np.abs(s.train[1].astype(float) - luma).max() <= 1.0
    assert s.is_bsds and s.label == "BSDS300" and len(s.skipped) == 2
    # the folder's parent works too, and so does the environment variable
    assert resolve_source(str(tmp_path)).path == str(root.resolve())
    assert resolve_source(None, environ={bsds.ENV_VAR: str(root)}).kind == "bsds300"
    with pytest.warns(SkippedImageWarning):
        assert load_bsds(root, max_test_images=1).test_names == ("test0.png",)


def test_empty_or_unreadable_folders_are_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="is empty") as e:
        resolve_source(str(empty))
    assert bsds.BSDS_URL in str(e.value)
    layout = tmp_path / "layout"
    (layout / "images" / "train").mkdir(parents=True)
    (layout / "images" / "test").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"images/train is empty"):
        load_bsds(layout)
    (layout / "images" / "train" / "junk.jpg").write_bytes(b"junk")
    with pytest.warns(SkippedImageWarning), pytest.raises(DatasetError, match="no readable image"):
        load_bsds(layout)
    wrong = tmp_path / "wrong"
    (wrong / "pictures").mkdir(parents=True)
    with pytest.raises(DatasetError, match="BSDS300 layout"):
        resolve_source(str(wrong))


def test_absent_folder_falls_back_to_the_embedded_images(tmp_path, monkeypatch):
    missing = tmp_path / "no_such_folder"
    src = resolve_source(str(missing))
    assert src.kind == "embedded" and str(missing) in src.reason and src.data_dir == "embedded"
    monkeypatch.delenv(bsds.ENV_VAR, raising=False)
    assert resolve_source(None).kind == "embedded"
    cfg = dasjax.ProblemConfig(name="image_denoise", data_dir=str(missing))
    with pytest.warns(EmbeddedFallbackWarning, match="NOT BSDS300") as rec:
        s = load_images(cfg)
    assert bsds.BSDS_URL in str(rec[0].message)
    assert not s.is_bsds and "NOT BSDS300" in s.label
    assert s.train_names == ("grace_hopper", "s1045", "jacksboro_dem")
    for tr, te, full in zip(s.train, s.test, (bsds.embedded_image(n) for n in s.train_names)):
        # train = left columns, test = the held-out right columns: disjoint, together the whole image
        assert tr.shape[0] == te.shape[0] == full.shape[0]
        np.testing.assert_array_equal(np.concatenate([tr, te], axis=1), full)
        assert 0.2 < te.shape[1] / full.shape[1] < 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # "embedded" on purpose: no fallback warning
        assert load_images(dasjax.ProblemConfig(name="image_denoise", data_dir="embedded")).label == s.label


@pytest.mark.parametrize("kw,field", [({"problem": "image_denoise", "x0": "interp"}, "x0"),
                                      ({"crop_size": 0}, "crop_size"), ({"eval_images": "random"}, "eval_images"),
                                      ({"val_split": "val"}, "val_split"), ({"data_dir": ""}, "data_dir"),
                                      ({"embedded_images": ("lena",)}, "embedded_images"),
                                      ({"eval_noise_seed": -1}, "eval_noise_seed")])
def test_bad_image_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        dasjax.make_config(**kw)


# --- data -------------------------------------------------------------------------------------------
def test_crops_come_from_the_training_images_with_sigma_noise():
    imgs = image_set(np.random.default_rng(2))
    p = ImageProblem(dasjax.ProblemConfig(name="image_denoise", crop_size=8), imgs)
    b = jax.jit(lambda k: p.sample(k, 256))(jax.random.key(0))
    assert b.x.shape == b.y.shape == b.x0.shape == (256, 8, 8)
    np.testing.assert_array_equal(b.x0, b.y)                        # A = I: x0 = A^T y = y
    assert abs(float(jnp.std(b.y - b.x)) - 0.1) < 0.005
    x = np.round(np.asarray(b.x) * 255).astype(np.uint8)

    def windows(a):
        return {a[r:r + 8, c:c + 8].tobytes() for r in range(a.shape[0] - 7) for c in range(a.shape[1] - 7)}
    train = set().union(*map(windows, imgs.train))
    test = set().union(*map(windows, imgs.test))
    assert all(c.tobytes() in train for c in x)                     # every crop is a window of a train image
    seen = {i for c in x for i, a in enumerate(imgs.train) if c.tobytes() in windows(a)}
    assert seen == {0, 1}                                           # both images (portrait + landscape) used
    val = ImageProblem(dasjax.ProblemConfig(name="image_denoise", crop_size=8, val_split="test"), imgs)
    xv = np.round(np.asarray(jax.jit(lambda k: val.sample(k, 64, "val").x)(jax.random.key(1))) * 255).astype(np.uint8)
    assert all(c.tobytes() in test for c in xv)


@pytest.mark.parametrize("mode", ["full", "center_crop"])
def test_eval_sets_cover_every_test_image_once_with_fixed_noise(mode):
    imgs = image_set(np.random.default_rng(3))
    cfg = dasjax.ProblemConfig(name="image_blur", eval_images=mode, eval_crop_size=20, eval_images_per_batch=2,
                               crop_size=8)
    p = ImageProblem(cfg, imgs)

    @jax.jit
    def all_batches(key):     # per set: every batch's (x, y), stacked
        return [jax.vmap(lambda b: (es.batch(b).x, es.batch(b).y))(jnp.arange(es.steps))
                for es in p.eval_sets(key)]

    def gather(key):
        xs, ys = [], []
        for es, (x, y) in zip(p.eval_sets(key), all_batches(key)):
            xs += list(np.asarray(x).reshape((-1,) + x.shape[2:])[:es.n_valid])
            ys += list(np.asarray(y).reshape((-1,) + y.shape[2:])[:es.n_valid])
        return xs, ys
    xs, ys = gather(jax.random.key(0))
    want = p.test_images()
    assert len(xs) == len(want) == 3
    as_uint8 = lambda x: np.round(x * 255).astype(np.uint8).tobytes()
    assert sorted(map(as_uint8, xs)) == sorted(w.tobytes() for w in want)
    if mode == "center_crop":
        assert {x.shape for x in xs} == {(20, 20)}
    else:
        assert {x.shape for x in xs} == {(24, 36), (36, 24)}
    # the same noisy test images for every trial key (eval_noise_seed), fresh ones with None
    _, ys2 = gather(jax.random.key(5))
    assert all(np.array_equal(a, b) for a, b in zip(ys, ys2))
    p_none = ImageProblem(dataclasses.replace(cfg, eval_noise_seed=None), imgs)
    y0, y5 = (jax.jit(lambda k: p_none.eval_sets(k)[0].batch(0).y)(jax.random.key(i)) for i in (0, 5))
    assert not np.allclose(y0, y5)


def test_evaluate_psnr_on_test_images_matches_a_hand_computation():
    """evaluate_psnr on the test images (grouped by shape, padded batches) equals the mean of the
    per-image PSNRs computed by hand, for a stand-in network x_hat = 0.5 x0 + 0.25."""
    from types import SimpleNamespace

    from dasjax.evaluate import evaluate_psnr
    imgs = image_set(np.random.default_rng(4))
    p = ImageProblem(dasjax.ProblemConfig(name="image_denoise", crop_size=8, eval_images_per_batch=2), imgs)
    space = SimpleNamespace(problem=p, apply=lambda params, state, w, batch, key, train: (0.5 * batch.x0 + 0.25,
                                                                                          state))
    got = float(jax.jit(lambda k: evaluate_psnr(space, None, None, None, k, n_batches=0, batch_size=0))(
        jax.random.key(1)))
    per_image = []
    for j, img in enumerate(p.test_images()):
        x = img.astype(np.float64) / 255
        y = x + 0.1 * np.asarray(jax.random.normal(p.test_noise_key(None, j), img.shape), np.float64)
        per_image.append(10 * np.log10(1 / np.mean((0.5 * y + 0.25 - x) ** 2)))
    assert len(per_image) == 3
    assert got == pytest.approx(np.mean(per_image), abs=1e-3)


# --- the 2D supernet ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bsds_dir(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return write_bsds(tmp_path_factory.mktemp("data") / "BSDS300", np.random.default_rng(5), extras=False)


def test_2d_supernet_trial_is_independent_of_its_batch(bsds_dir):
    """Trial 4 next to trial 3 (second in the vmapped batch) == trial 4 next to trial 9 (first in the
    batch): same numbers, so a trial's result does not depend on the others.  Both batches have the
    same shape, so one compiled program serves both (keeps the test cheap)."""
    cfg = tiny(problem="image_denoise", data_dir=str(bsds_dir), op_set="all", crop_size=12, batch_size=8,
               n_layers=2, width=4)
    a = dasjax.search(cfg, [3, 4])
    b = dasjax.search(cfg, [4, 9])
    assert a.alpha.shape == (2, 2, 4) and np.all(np.isfinite(a.one_shot_psnr))
    assert not np.allclose(a.alpha[0], a.alpha[1])
    assert np.abs(a.alpha[1] - b.alpha[0]).max() <= 1e-5
    assert abs(a.one_shot_psnr[1] - b.one_shot_psnr[0]) <= 1e-4
