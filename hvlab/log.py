"""Logging: the standard `logging` module, with rich's handler on the terminal and a
run log per lab.

Every task takes -v (more; -vv for every host call) and -q (only problems). The
console shows warnings by default: progress has its own display (hvlab.report).
The run log, `.hvlab/<host>/<lab>/run.log`, always records everything at debug level:
each step's start, notes and end, each wait and what it saw, each retry. It holds
no secret: what is logged is what the progress shows, cmdlet and parameter
*names*, and error texts, which never carry a password (the tests scan it).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

LOGGER = "hvlab"
RUN_LOG = "run.log"
_RUN_LOG_BYTES = 5 * 1024 * 1024  # then rotate, keeping two older logs

log = logging.getLogger(LOGGER)
# A library prints nothing unless asked: without configure(), records go only to
# the run log (and to whatever handlers the application using hvlab installs).
log.addHandler(logging.NullHandler())
_quiet = False


def quiet() -> bool:
    """Whether the task was asked for -q: progress and chatter stay off the terminal."""
    return _quiet


def level_for(verbose: int = 0, quiet: bool = False) -> int:
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


def configure(verbose: int = 0, quiet: bool = False) -> None:
    """The console side: rich's handler on stderr at the level -v/-q ask for.

    Called once per task; calling it again replaces the handler."""
    global _quiet
    from rich.console import Console
    from rich.logging import RichHandler

    for handler in list(log.handlers):
        if getattr(handler, "_hvlab_console", False):
            log.removeHandler(handler)
    handler = RichHandler(
        console=Console(file=sys.stderr, stderr=True),
        show_path=False,
        rich_tracebacks=False,
        markup=False,
    )
    handler.setLevel(level_for(verbose, quiet))
    handler._hvlab_console = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    _quiet = quiet


@contextlib.contextmanager
def run_log(folder: Path, title: str) -> Iterator[Path]:
    """Record everything logged while the block runs in <folder>/run.log."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_LOG
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=_RUN_LOG_BYTES, backupCount=2, encoding="utf-8"
    )
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.DEBUG:
        log.setLevel(logging.DEBUG)
    log.info("---- %s", title)
    try:
        yield path
    finally:
        log.removeHandler(handler)
        handler.close()
