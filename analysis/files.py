"""Files of a results folder that are whole or absent: atomic writes and a manifest.

Every file is written to a temporary name in its folder, fsynced and renamed, so a killed
process or a full disk never leaves half a file under the real name.  A writer that has
finished a results folder writes ``manifest.json`` last: each file's size and SHA-256 and
the folder's trial count.  :func:`manifest_problem` compares a folder with its manifest, so a
file that was truncated, replaced or removed afterwards (a full disk, an interrupted copy, a
sync tool) is named instead of being read as results.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import secrets
from pathlib import Path
from typing import Iterable

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
DAMAGED_DIR = "damaged"          # damaged rows moved aside: OUT/damaged/<time>/<row path>, never read


def atomic_write_bytes(path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.  An
    OSError names ``path`` (a failed write of the file's data carries no file name of its own)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    try:
        # mode 0666 less the umask, as open(path, "w") gives (mkstemp's 0600 would hide results from others)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as err:
        if err.errno is None or err.filename == str(path):
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_save_figure(fig, path, **savefig_kwargs) -> Path:
    """``fig.savefig`` into memory, then :func:`atomic_write_bytes` (format from the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    atomic_write_bytes(path, buf.getvalue())
    return path


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder, names: Iterable[str], *, trials: int) -> None:
    """Record the size and SHA-256 of each named file of ``folder`` and its trial count, in
    ``manifest.json`` (written last and atomically: a folder with a manifest was finished)."""
    folder = Path(folder)
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_digest(folder / name)}
             for name in sorted(names)}
    atomic_write_text(folder / MANIFEST_FILE, json.dumps(
        {"format": MANIFEST_FORMAT, "trials": int(trials), "files": files}, indent=2, sort_keys=True) + "\n")


def read_manifest(folder) -> dict | None:
    """The folder's manifest, None if it has none; ValueError if it is unreadable."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{MANIFEST_FILE} is not valid JSON ({err})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not isinstance(manifest.get("trials"), int) or not all(
            isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
            for v in files.values()):
        raise ValueError(f"{MANIFEST_FILE} lacks its file list or trial count")
    return manifest


def manifest_problem(folder) -> str | None:
    """What is wrong with ``folder`` against its manifest, in a few words naming the file; None
    when every listed file has its recorded size and checksum, or the folder has no manifest."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except ValueError as err:
        return str(err)
    if manifest is None:
        return None
    for name, want in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != want["bytes"]:
            return f"{name} has {size} bytes, its manifest says {want['bytes']} (truncated or changed)"
        if file_digest(path) != want["sha256"]:
            return f"{name} differs from its manifest (checksum)"
    return None


# Errors at the edges of the machine: a command ends on these with one line and this exit code
# (2 is a usage error), after saying what is already saved and how to resume.
EXIT_MACHINE = 3
MACHINE_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOENT", "EIO", "ESTALE") if hasattr(errno, name))


def is_machine_error(err: BaseException) -> bool:
    """An OSError of the file system (full, read-only, no permission, removed, failing)."""
    return isinstance(err, OSError) and err.errno in MACHINE_ERRNOS


def describe_os_error(err: OSError) -> str:
    """'no space left on device (writing OUT/runs/blur/lg_only/arrays.npz)' and the like."""
    what = (err.strerror or os.strerror(err.errno)).lower()
    return f"{what} ({err.filename})" if err.filename else what
