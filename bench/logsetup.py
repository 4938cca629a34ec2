"""Where diagnostics go. A command's user sees one line per problem on stderr; the traceback of an
unexpected error goes to the CLI log (data/logs/cli.log), and to stderr as well under --debug.
Local worker processes log to the same file (they inherit BENCH_DEBUG from the CLI)."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.paths import data_dir

DEBUG_ENV = "BENCH_DEBUG"
"""Set to 1 by `--debug`; worker processes read it."""
_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def log_path() -> Path:
    """The CLI's log file: data/logs/cli.log. Raises nothing."""
    return data_dir() / "logs" / "cli.log"


def debug_enabled() -> bool:
    """Whether --debug is on (in this process or the CLI that started it). Raises nothing."""
    return os.environ.get(DEBUG_ENV) == "1"


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder on the first record, never before; a log that
    cannot be opened (its folder cannot be created) drops the record instead of raising."""

    def _open(self):  # noqa: ANN202 - logging's own signature
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:  # FileHandler opens its file outside logging's own error handling
            super().emit(record)
        except OSError:
            self.handleError(record)


@contextmanager
def logging_to_file(debug: bool = False) -> Iterator[Path]:
    """Send warnings and tracebacks to log_path() (and, with debug, to stderr) for the duration.
    A log that cannot be written (a full or read-only disk) is skipped silently. Raises nothing."""
    root = logging.getLogger()
    path = log_path()
    handlers: list[logging.Handler] = [_LazyFileHandler(path, delay=True, encoding="utf-8")]
    if debug:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    level, raise_exceptions = root.level, logging.raiseExceptions
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.raiseExceptions = False  # a log write failing must not print its own traceback
    try:
        yield path
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            try:
                handler.close()
            except OSError:  # the last flush found a full disk: the log is best effort
                pass
        root.setLevel(level)
        logging.raiseExceptions = raise_exceptions
