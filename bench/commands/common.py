"""Options shared by several commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from core.errors import InputError
from core.paths import default_db_path


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="DuckDB file (default: $BENCH_DB or data/bench.duckdb)")


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()



_SIZE = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. '810x1440') into (width, height).

    Raises InputError when the text is not two positive whole numbers joined by 'x'."""
    match = _SIZE.fullmatch(text or "")
    if not match:
        raise InputError(f"size {text!r} must look like WIDTHxHEIGHT, e.g. 810x1440")
    width, height = int(match.group(1)), int(match.group(2))
    if width <= 0 or height <= 0:
        raise InputError(f"size {text!r} must have a positive width and height")
    return width, height
