"""Where dasjax's messages go: the standard :mod:`logging` module, under the ``"dasjax"`` logger.

Progress lines and results (``[table1] blur / das_good: median ...``) are INFO records, details
DEBUG, trouble WARNING.  A command (the table runners, ``run_all``, ``run_hpo``) shows INFO on
stdout (``-v``: DEBUG too, ``-q``: warnings only) and writes every record to ``run.log`` in its
results folder.  In a notebook or script that has not configured logging, :func:`say` prints, so
progress stays visible; once the user configures logging (``logging.basicConfig(...)`` or a
handler on ``"dasjax"``), the records go there instead.  Progress bars stay on stderr (tqdm), and
no other library's logging is touched.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER = logging.getLogger("dasjax")
LOGGER.addHandler(logging.NullHandler())
RUN_LOG = "run.log"

_COMMAND: list[list[logging.Handler]] = []     # handlers each open command added (nested: run_all)


class _Stdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a record comes (a silenced process, a test's capture)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass

    def handleError(self, record):
        if isinstance(sys.exc_info()[1], BrokenPipeError):      # `| head` closed the pipe: stop quietly
            self.setLevel(logging.CRITICAL + 1)
            return
        super().handleError(record)


def _routed() -> bool:
    """Whether a handler other than the NullHandler would receive the "dasjax" records."""
    logger = LOGGER
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        if not logger.propagate:
            return False
        logger = logger.parent
    return False


def say(message: str, level: int = logging.INFO) -> None:
    """One progress or result line: a "dasjax" record when logging is set up, else printed."""
    if _routed():
        LOGGER.log(level, message)
    elif level >= logging.INFO:
        print(message, flush=True)


def level_of(verbose: int = 0, quiet: int = 0) -> int:
    """-v / -q counts -> the console level (INFO by default)."""
    return {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbose - quiet))]


def start_command(level: int = logging.INFO) -> int:
    """Show the "dasjax" records of a command on stdout, message only; returns a mark for
    :func:`end_command`.  The logger keeps to itself (no propagation) until then.  A command inside
    another (run_all's tables) shares its console."""
    added: list[logging.Handler] = []
    if not _COMMAND:
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.setLevel(level)
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.DEBUG)
        LOGGER.propagate = False
        added.append(handler)
    _COMMAND.append(added)
    return len(_COMMAND) - 1


def set_console_level(level: int) -> None:
    """The console's level (-v / -q, read after the command started)."""
    if _COMMAND and _COMMAND[0]:
        _COMMAND[0][0].setLevel(level)


def log_to_folder(folder) -> Path:
    """Also append every record of the innermost command to ``folder/run.log`` (timestamped)."""
    path = Path(folder) / RUN_LOG
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.setLevel(logging.DEBUG)
    LOGGER.addHandler(handler)
    if _COMMAND:
        _COMMAND[-1].append(handler)
    return path


def end_command(mark: int) -> None:
    """Remove the handlers of the commands started since ``mark`` (closing the run.log files)."""
    while len(_COMMAND) > mark:
        for handler in _COMMAND.pop():
            LOGGER.removeHandler(handler)
            handler.close()
    if not _COMMAND:
        LOGGER.propagate = True
        LOGGER.setLevel(logging.NOTSET)
