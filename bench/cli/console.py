"""What the command line shows while it works: the ``forensibench`` logger's records on stderr.

By default INFO and above (one line per detector fitted and per detector scored, warnings, failures);
DEBUG too with ``-v`` (one line per scored set, the full specs and training folders). Warnings start
with ``warning:`` and failures with ``error:``, in yellow and red on a terminal; no colour when stderr
is not a terminal or ``NO_COLOR`` is set (https://no-color.org). Python warnings are captured into the
same lines. Progress bars are drawn only on a terminal (`progress_bars`), and a line is written
between their redraws, not into them. Everything, at every level, also goes to the run's ``log.txt``
(`forensibench.engine.runner.run`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import IO

import click

from forensibench.core.logs import attached

_STYLE = {"debug": {"dim": True}, "warning": {"fg": "yellow"}, "error": {"fg": "red", "bold": True}}

_handler: ConsoleHandler | None = None  # the one `shown` installed, for `verbose`


def is_terminal(stream: IO | None) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def colour(stream: IO | None) -> bool:
    """Whether lines written to `stream` are coloured: a terminal, and NO_COLOR unset or empty."""
    return not os.environ.get("NO_COLOR") and is_terminal(stream)


def progress_bars(quiet: bool = False) -> bool:
    """Whether to draw progress bars: not `quiet`, and stderr (where they go) is a terminal."""
    return not quiet and is_terminal(sys.stderr)


def styled(text: str, levelno: int, stream: IO | None = None, prefix: bool = True) -> str:
    """`text` as a line of level `levelno` reads on `stream` (default stderr): ``warning: `` or
    ``error: `` before it (`prefix`), coloured when `colour` says so."""
    stream = sys.stderr if stream is None else stream
    kind = "error" if levelno >= logging.ERROR else "warning" if levelno >= logging.WARNING else None
    if kind is not None and prefix:
        text = f"{kind}: {text}"
    kind = kind or ("debug" if levelno < logging.INFO else None)
    return click.style(text, **_STYLE[kind]) if kind is not None and colour(stream) else text


class ConsoleHandler(logging.Handler):
    """Writes records as styled lines to `stream` (default: sys.stderr at the time of each record)."""

    def __init__(self, level: int = logging.INFO, stream: IO | None = None):
        super().__init__(level)
        self._stream = stream

    @property
    def stream(self) -> IO:
        return self._stream if self._stream is not None else sys.stderr

    def format(self, record: logging.LogRecord) -> str:
        # the message only: a traceback goes to the log file, not to the console
        text = record.getMessage().rstrip()
        if record.name == "py.warnings":  # "file:line: Category: message\n  source line": the first line
            text = text.splitlines()[0] if text else text
        return styled(text, record.levelno, self.stream)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            text, stream = self.format(record), self.stream
            with tqdm.external_write_mode(file=stream):  # clears live progress bars, redraws them after
                stream.write(text + "\n")
                stream.flush()
        except Exception:  # noqa: BLE001 - logging must not break the command (Handler.handleError reports it)
            self.handleError(record)


@contextlib.contextmanager
def shown(level: int = logging.INFO) -> Iterator[ConsoleHandler]:
    """Show forensibench's records (and Python warnings) on stderr while a command runs."""
    global _handler
    handler, previous = ConsoleHandler(level), _handler
    logging.captureWarnings(True)
    try:
        with attached(handler, warnings=True):
            _handler = handler
            yield handler
    finally:
        _handler = previous
        logging.captureWarnings(False)


def verbose(on: bool) -> None:
    """``-v``: the console shows DEBUG lines too (one per scored set, the full specs)."""
    if on and _handler is not None:
        _handler.setLevel(logging.DEBUG)
