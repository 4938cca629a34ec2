"""Options and checks shared by several commands."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from bench.plan import check_output_size
from core.errors import InputError
from core.paths import default_db_path


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="DuckDB file (default: $BENCH_DB or data/bench.duckdb)")


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()


_SIZE = re.compile(r"\s*(\d{1,12})\s*[xX×]\s*(\d{1,12})\s*")


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. '810x1440') into (width, height).

    Raises InputError when the text is not two whole numbers joined by 'x', or either is 0 or
    above bench.plan.MAX_OUTPUT_SIDE."""
    match = _SIZE.fullmatch(text or "")
    if not match:
        raise InputError(f"size {text!r} must look like WIDTHxHEIGHT, e.g. 810x1440")
    width, height = int(match.group(1)), int(match.group(2))
    check_output_size(width, height)
    return width, height


def int_in(low: int, high: int):
    """An argparse type: a whole number from low to high. Raises argparse.ArgumentTypeError."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value
    parse.__name__ = f"whole number {low}..{high}"
    return parse


def check_output_file(path: Path, *, source: Path | None = None) -> None:
    """Check, before any work, that a command can write its result to `path`: not a directory,
    in a folder that exists and is writable, and not the source file itself (which it would
    overwrite). Raises InputError naming the problem."""
    if path.is_dir():
        raise InputError(f"output {path} is a directory; name a file inside it")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    if source is not None and _same_file(path, source):
        raise InputError(f"output {path} is the input file; it would be overwritten: "
                         f"choose another output name")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def write_output_file(path: Path, text: str) -> None:
    """Write text to path atomically (a '.part' file renamed into place), so a failure never
    leaves a partial file looking valid. Raises InputError as check_output_file does, OSError
    when the disk fills up meanwhile."""
    check_output_file(path)
    tmp = path.with_name(path.name + ".part")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def existing_db(args: argparse.Namespace):
    """The command's database, which must exist already (commands that change stored experiments
    never create one). Raises InputError when the file is missing, StorageError."""
    from store.db import Database

    path = db_path(args)
    if not path.is_file():
        raise InputError(f"no database at {path}: nothing is stored yet (see --db)")
    return Database(path)
