"""One writer per results folder: a lock file that names its owner (host and pid).

A runner takes the lock of its ``--out`` folder before it writes anything and gives it back when
its ``main`` returns (``experiments/table_runner.main_guard``) or the process exits.  A second run on the
same folder is refused with the owner's name.  A lock whose owner process is gone (same host, pid
no longer alive: a killed run) is taken over, with a message.  A lock from another host cannot be
checked from here: the refusal says which file to delete once that run is known to be gone.
"""
from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".dasjax.lock"
_HELD: list[Path] = []


class FolderBusy(RuntimeError):
    """The folder is locked by another live run."""


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _ours(found: dict | None) -> bool:
    """Whether a lock's owner record names this process."""
    me = _me()
    return found is not None and (found["host"], found["pid"]) == (me["host"], me["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        return True
    return True


def owner(folder) -> dict | None:
    """Who holds ``folder``'s lock: {"host", "pid", "started", "alive"} (alive: True, False, or
    None for another host, which cannot be checked from here); None if the folder is not locked."""
    found = _owner(Path(folder) / LOCK_NAME)
    if found is None:
        return None
    alive = _alive(found["pid"]) if found["host"] == socket.gethostname() else None
    return {**found, "alive": alive}


def _owner(path: Path) -> dict | None:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) and "host" in d and "pid" in d else None
    except (OSError, ValueError):
        return None


def acquire(folder: Path, log=print) -> Path:
    """Take the lock of ``folder`` (which must exist) for this process; return the lock file."""
    path = Path(folder) / LOCK_NAME
    me = _me()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held_by = owner(folder)                           # None here: the lock file is unreadable
            if _ours(held_by):
                if path not in _HELD:
                    _HELD.append(path)
                return path                                   # ours already (a second call in-process)
            if held_by is None or held_by["alive"] is False:
                who = "an unreadable lock" if held_by is None else f"host {held_by['host']}, pid {held_by['pid']}"
                log(f"[lock] {folder}: taking over the lock of a run that is gone ({who})")
                path.unlink(missing_ok=True)
                continue
            since = held_by.get("started", "?")
            hint = "" if held_by["alive"] is not None else f"; if that run is gone, delete {path}"
            raise FolderBusy(f"--out {folder} is in use by another run (host {held_by['host']}, pid {held_by['pid']}, "
                             f"since {since}); wait for it or use another --out{hint}") from None
        with os.fdopen(fd, "w") as f:
            json.dump({**me, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
        _HELD.append(path)
        return path
    raise FolderBusy(f"--out {folder}: could not take its lock ({path}); another run keeps taking it")


def held() -> int:
    """How many locks this process holds (for :func:`release_since`)."""
    return len(_HELD)


def require_held(folder) -> None:
    """If this process took ``folder``'s lock: OSError (ENOENT) unless it still holds it, that is
    when the folder, or its lock, was removed while the run was writing to it."""
    path = Path(folder) / LOCK_NAME
    if path not in _HELD:
        return
    if not _ours(_owner(path)):
        raise OSError(errno.ENOENT, "the results folder (or its lock) was removed during the run", str(folder))


def held_folders(mark: int = 0) -> list[Path]:
    """The folders whose locks this process took since ``held()`` returned ``mark``."""
    return [path.parent for path in _HELD[mark:]]


def release_since(mark: int = 0) -> None:
    """Give back the locks taken since ``held()`` returned ``mark`` (those still ours)."""
    while len(_HELD) > mark:
        path = _HELD.pop()
        if _ours(_owner(path)):
            path.unlink(missing_ok=True)


atexit.register(release_since, 0)
