"""The ``forensibench`` logger hierarchy: where the library's messages go.

Library modules log through ``logging.getLogger(__name__)`` (loggers under ``forensibench``) and never
print. The caller decides what is shown:

* the command line (`forensibench.cli.console`): INFO and above on stderr (DEBUG with ``-v``), styled;
* `forensibench.engine.runner.run`: every record of the run, all levels with tracebacks, appended to
  ``RUN/log.txt`` (`log_to_file`), and to a callable given as ``run(..., log=)`` (`CallableHandler`);
* a notebook: nothing but warnings unless it attaches a handler (``logging.basicConfig(level="INFO")``
  shows the INFO lines).

Levels: INFO, one line per detector and stage (fitted; its sets scored); DEBUG, the details (one line
per scored set, the full training folders, metrics bookkeeping); WARNING, something the user should
look at (images that failed, a missing set); ERROR, a detector that failed.

While a handler is attached here (`attached`) the ``forensibench`` logger passes every level to it,
and passes records up to the handlers above it (the root's, e.g. `logging.basicConfig`'s) only at the
level that reached them before: attaching the run's log file does not make a notebook's console verbose.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = "forensibench"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(name)s: %(message)s"

_attached: list[logging.Handler] = []
_saved: dict = {}  # the ROOT logger's level and propagate flag before the first `attached`


class _Upward(logging.Handler):
    """Hands records to the handlers of the loggers above ROOT, at the level that reached them before
    `attached` (as propagation does; never to `logging.lastResort`: ROOT has handlers now)."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(ROOT).parent
        while logger is not None:
            for handler in logger.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            logger = logger.parent if logger.propagate else None


@contextlib.contextmanager
def attached(handler: logging.Handler, warnings: bool = False) -> Iterator[logging.Handler]:
    """Attach `handler` to the ``forensibench`` logger (all levels reach it; it filters by its own
    level) while the block runs; `warnings`: also to ``py.warnings`` (Python warnings, once
    `logging.captureWarnings` is on)."""
    logger = logging.getLogger(ROOT)
    if not _attached:
        _saved.update(level=logger.level, propagate=logger.propagate)
        up = _Upward(logger.getEffectiveLevel()) if logger.propagate else None
        _saved["upward"] = up
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        if up is not None:
            logger.addHandler(up)
    logger.addHandler(handler)
    _attached.append(handler)
    if warnings:
        logging.getLogger("py.warnings").addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger("py.warnings").removeHandler(handler)
        logger.removeHandler(handler)
        _attached.remove(handler)
        if not _attached:
            if _saved["upward"] is not None:
                logger.removeHandler(_saved["upward"])
            logger.setLevel(_saved["level"])
            logger.propagate = _saved["propagate"]


def as_line(record: logging.LogRecord) -> str:
    """A record as forensibench <= 0.2's log callables received it: ``[forensibench] text``, with
    ``WARNING: `` or ``ERROR: `` before warnings and errors."""
    prefix = f"{record.levelname}: " if record.levelno >= logging.WARNING else ""
    return f"[forensibench] {prefix}{record.getMessage()}"


class CallableHandler(logging.Handler):
    """Hands every record (all levels) to `fn` as one line of text (`as_line`)."""

    def __init__(self, fn: Callable[[str], None]):
        super().__init__(logging.DEBUG)
        self.fn = fn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.fn(as_line(record))
        except Exception:  # noqa: BLE001 - logging must not break the run (Handler.handleError reports it)
            self.handleError(record)


@contextlib.contextmanager
def log_to_file(path: str | Path, header: str | None = None) -> Iterator[Path]:
    """Append every ``forensibench`` record (all levels, with tracebacks) and every captured Python
    warning to `path` while the block runs; `header`: a line written first (``==== header ====``).
    Inside a block that writes to `path` already, it adds nothing (no second header, no line twice).

    Each record is one ``write`` of one line to a file opened for appending, so processes that
    append to the same file (on one machine) do not cut into each other's lines."""
    path = Path(path)
    if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in _attached):
        yield path  # an enclosing call writes there already (the demo around its run): each line once
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    try:
        if header is not None:
            handler.stream.write(f"==== {header} ====\n")
            handler.flush()
        with attached(handler, warnings=True):
            yield path
    finally:
        handler.close()


@contextlib.contextmanager
def collected() -> Iterator[list[logging.LogRecord]]:
    """Every ``forensibench`` record of the block (all levels), kept in the list it yields and handed
    to no other handler: a Ray task returns them, and the driver replays them (`replay`)."""
    records: list[logging.LogRecord] = []
    handler = _Collector(records)
    logger = logging.getLogger(ROOT)
    level, propagate, handlers = logger.level, logger.propagate, logger.handlers[:]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.handlers = [handler]
    try:
        yield records
    finally:
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]):
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        # picklable: the message made now, the traceback as text
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.records.append(record)


def replay(records: list[logging.LogRecord]) -> None:
    """Hand records made in another process (`collected`) to this process's handlers, as if logged here."""
    for record in records:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


def duration(seconds: float) -> str:
    """``0.4 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
