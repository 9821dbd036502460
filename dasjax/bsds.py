"""Image data of the 2D experiment (paper §4.4, docs/bsds.md): a local BSDS300 folder, or an embedded default.

BSDS300 (Berkeley Segmentation Dataset, 200 train + 100 test images of 481x321 or 321x481 pixels)
is read from a LOCAL folder in the layout it is distributed in::

    BSDS300/images/train/*.jpg     (200 images)
    BSDS300/images/test/*.jpg      (100 images)

given by ``ProblemConfig.data_dir`` (``--data-dir``) or the environment variable ``DASJAX_BSDS300``.
Nothing is ever downloaded.  Without such a folder the run falls back to an **embedded default**:
sample images that ship inside matplotlib (a photograph, an MRI slice and a terrain elevation
map), each split into a training part (left columns) and a held-out test part (right columns).  Those
runs are labelled "NOT BSDS300" everywhere (logs, records, table titles).

Images are converted to 8-bit grayscale with the ITU-R 601 luma weights (PIL's ``convert("L")``)
and scaled to [0, 1] by the problem.  Files that are not readable images are skipped with a
:class:`SkippedImageWarning`; a folder without readable images is a :class:`DatasetError`.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ENV_VAR = "DASJAX_BSDS300"
BSDS_PAGE = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/"
BSDS_URL = BSDS_PAGE + "BSDS300-images.tgz"
WHERE_TO_GET = (f"BSDS300 is at {BSDS_URL} (22 MB; page {BSDS_PAGE}). On a machine with internet: "
                "download it, unpack it (tar xzf BSDS300-images.tgz) and pass the BSDS300 folder, which "
                f"holds images/train and images/test, with --data-dir PATH or {ENV_VAR}=PATH.")
BSDS_LABEL = "BSDS300"
EMBEDDED_LABEL = "embedded matplotlib sample images (NOT BSDS300)"

# name -> (file in matplotlib's sample_data, how it is read, description)
EMBEDDED_SOURCES = {
    "grace_hopper": ("grace_hopper.jpg", "image", "photograph of Grace Hopper, 512x600"),
    "s1045": ("s1045.ima.gz", "mri", "MRI slice, 256x256, 16 bit"),
    "jacksboro_dem": ("jacksboro_fault_dem.npz", "dem", "terrain elevation map, 403x344"),
}


class DatasetError(ValueError):
    """The image folder is unusable (wrong layout, no readable images); the message says how to fix it."""


class SkippedImageWarning(UserWarning):
    """A file in an image folder was not a readable image and was left out."""


class EmbeddedFallbackWarning(UserWarning):
    """No BSDS300 folder: the run uses the embedded sample images instead (NOT BSDS300)."""


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: ``kind`` "bsds300" (``path`` = the folder) or "embedded"."""
    kind: str
    path: str | None
    reason: str

    @property
    def label(self) -> str:
        return BSDS_LABEL if self.kind == "bsds300" else EMBEDDED_LABEL

    @property
    def data_dir(self) -> str:
        """The value of ``ProblemConfig.data_dir`` that names this source exactly."""
        return self.path if self.kind == "bsds300" else "embedded"


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Grayscale uint8 images (H, W) of the train and test split, with their names and origin."""
    source: DataSource
    train: tuple
    test: tuple
    train_names: tuple
    test_names: tuple
    skipped: tuple = field(default_factory=tuple)      # (file, reason) of skipped files

    @property
    def label(self) -> str:
        return self.source.label

    @property
    def is_bsds(self) -> bool:
        return self.source.kind == "bsds300"

    @property
    def fingerprint(self) -> str:
        """A hash of every pixel and name: two sets with the same fingerprint hold the same data."""
        fp = self.__dict__.get("_fp")
        if fp is None:
            h = hashlib.sha1()
            for names, imgs in ((self.train_names, self.train), (self.test_names, self.test)):
                for n, a in zip(names, imgs):
                    h.update(f"{n}:{a.shape}".encode())
                    h.update(np.ascontiguousarray(a).tobytes())
                h.update(b"|")
            fp = h.hexdigest()[:16]
            object.__setattr__(self, "_fp", fp)
        return fp

    def describe(self) -> str:
        px = sum(a.size for a in self.train)
        return (f"{self.label}: {len(self.train)} train images ({px / 1e6:.2f} Mpx), {len(self.test)} test "
                f"images, from {self.source.path or 'matplotlib sample_data'}")


# --- where the data is ---------------------------------------------------------------------------
def _has_layout(root: Path) -> bool:
    return (root / "images" / "train").is_dir() and (root / "images" / "test").is_dir()


def find_root(path: Path) -> Path:
    """The BSDS300 root at or just below ``path`` (``path/images`` or ``path/BSDS300/images``)."""
    for root in (path, path / "BSDS300"):
        if _has_layout(root):
            return root
    if path.is_dir() and not any(path.iterdir()):
        raise DatasetError(f"BSDS300 folder {path} is empty. {WHERE_TO_GET}")
    missing = [str(path / "images" / s) for s in ("train", "test") if not (path / "images" / s).is_dir()]
    raise DatasetError(f"folder {path} does not have the BSDS300 layout: missing {', '.join(missing)}. "
                       f"{WHERE_TO_GET}")


def resolve_source(data_dir: str | None = None, environ=None) -> DataSource:
    """Resolve ``data_dir`` (None: ``$DASJAX_BSDS300``; "embedded": the embedded default).

    A folder that is given but absent falls back to the embedded images (the reason says so); a
    folder that exists must have the BSDS300 layout, else :class:`DatasetError`.
    """
    environ = os.environ if environ is None else environ
    if data_dir == "embedded":
        return DataSource("embedded", None, "data_dir='embedded' was asked for")
    if data_dir is not None:
        given, origin = str(data_dir), "--data-dir"
    else:
        given, origin = environ.get(ENV_VAR) or None, f"${ENV_VAR}"
    if not given:
        return DataSource("embedded", None, f"no BSDS300 folder was given (--data-dir or ${ENV_VAR})")
    path = Path(given).expanduser()
    if not path.exists():
        return DataSource("embedded", None, f"the BSDS300 folder {path} (from {origin}) does not exist")
    if not path.is_dir():
        raise DatasetError(f"{origin} {path} is a file; give the BSDS300 folder (holding images/train and "
                           f"images/test). {WHERE_TO_GET}")
    return DataSource("bsds300", str(find_root(path).resolve()), f"BSDS300 folder from {origin}")


def fallback_message(source: DataSource) -> str:
    """The note printed when the embedded default replaces BSDS300."""
    return (f"NOT BSDS300: {source.reason}, so this run uses the {EMBEDDED_LABEL}. Its numbers are not "
            f"comparable with the paper's Table 4. {WHERE_TO_GET}")


# --- reading ---------------------------------------------------------------------------------------
def read_gray(path: Path) -> np.ndarray:
    """8-bit grayscale (ITU-R 601 luma) of an image file; raises OSError / ValueError if unreadable."""
    from PIL import Image
    with Image.open(path) as im:
        im.load()                                   # decode now: truncated / corrupt data raises here
        return np.array(im.convert("L"), dtype=np.uint8)


def read_folder(folder: Path) -> tuple[list, list, list]:
    """(images, names, skipped) of every readable image in ``folder`` (sorted by name).

    Sub-folders and hidden files are ignored; any other file that is not a readable image is
    skipped with a :class:`SkippedImageWarning`.
    """
    from PIL import Image
    images, names, skipped = [], [], []
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        try:
            img = read_gray(f)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            reason = f"not a readable image ({type(e).__name__}: {e})"
            warnings.warn(f"skipped {f}: {reason}", SkippedImageWarning, stacklevel=2)
            skipped.append((str(f), reason))
            continue
        if img.ndim != 2 or min(img.shape) == 0:
            warnings.warn(f"skipped {f}: empty image of shape {img.shape}", SkippedImageWarning, stacklevel=2)
            skipped.append((str(f), "empty image"))
            continue
        images.append(img)
        names.append(f.name)
    return images, names, skipped


def load_bsds(root: str | Path, max_test_images: int | None = None) -> ImageSet:
    """Read a folder in the BSDS300 layout (``images/train``, ``images/test``)."""
    root = find_root(Path(root))
    splits, skipped = {}, []
    for split in ("train", "test"):
        folder = root / "images" / split
        imgs, names, sk = read_folder(folder)
        skipped += sk
        if not imgs:
            what = "is empty" if not sk else f"holds no readable image ({len(sk)} files skipped)"
            raise DatasetError(f"{folder} {what}; BSDS300 has 200 train and 100 test .jpg images there. "
                               f"{WHERE_TO_GET}")
        splits[split] = (imgs, names)
    test, test_names = splits["test"]
    if max_test_images is not None:
        test, test_names = test[:max_test_images], test_names[:max_test_images]
    return ImageSet(DataSource("bsds300", str(root.resolve()), "BSDS300 folder"), tuple(splits["train"][0]),
                    tuple(test), tuple(splits["train"][1]), tuple(test_names), tuple(skipped))


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = np.nanmin(a), np.nanmax(a)
    return np.round((np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)


def embedded_image(name: str) -> np.ndarray:
    """One embedded sample image as 8-bit grayscale (H, W)."""
    from matplotlib import cbook
    if name not in EMBEDDED_SOURCES:
        raise ValueError(f"embedded image {name!r} is not allowed; choose one of {list(EMBEDDED_SOURCES)}")
    fname, kind, _ = EMBEDDED_SOURCES[name]
    path = Path(cbook.get_sample_data(fname, asfileobj=False))
    if kind == "image":
        return read_gray(path)
    if kind == "mri":
        with gzip.open(path) as fh:
            return _to_uint8(np.frombuffer(fh.read(), np.uint16).reshape(256, 256))
    with np.load(path) as z:
        return _to_uint8(z["elevation"])


def load_embedded(names, test_fraction: float = 0.25, max_test_images: int | None = None) -> ImageSet:
    """The embedded default: each sample image's right ``test_fraction`` of columns is its test image,
    the rest (left) its training image, so no test pixel is ever trained on."""
    train, test = [], []
    for n in names:
        img = embedded_image(n)
        cut = img.shape[1] - max(1, int(round(img.shape[1] * test_fraction)))
        train.append(img[:, :cut])
        test.append(img[:, cut:])
    names = tuple(names)
    test_names = names if max_test_images is None else names[:max_test_images]
    return ImageSet(DataSource("embedded", None, "embedded default"), tuple(train),
                    tuple(test[:len(test_names)]), names, test_names)


_LOADED: dict = {}


def _folder_state(root: str) -> tuple:
    """Names, sizes and modification times of the files of a BSDS300 folder (cheap change detection)."""
    out = []
    for split in ("train", "test"):
        for f in sorted((Path(root) / "images" / split).iterdir()):
            st = f.stat()
            out.append((split, f.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def load_images(cfg) -> ImageSet:
    """The images a :class:`dasjax.config.ProblemConfig` asks for (cached per folder state).

    Falls back to the embedded default (with an :class:`EmbeddedFallbackWarning`) when no BSDS300
    folder is given or the given one does not exist.
    """
    source = resolve_source(cfg.data_dir)
    if source.kind == "bsds300":
        key = ("bsds300", source.path, _folder_state(source.path), cfg.max_test_images)
    else:
        if cfg.data_dir != "embedded":
            warnings.warn(fallback_message(source), EmbeddedFallbackWarning, stacklevel=2)
        key = ("embedded", cfg.embedded_images, cfg.embedded_test_fraction, cfg.max_test_images)
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        if source.kind == "bsds300":
            _LOADED[key] = load_bsds(source.path, cfg.max_test_images)
        else:
            s = load_embedded(cfg.embedded_images, cfg.embedded_test_fraction, cfg.max_test_images)
            _LOADED[key] = ImageSet(source, s.train, s.test, s.train_names, s.test_names)
    return _LOADED[key]
