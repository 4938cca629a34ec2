"""Files written whole or not at all, and never through a link someone planted.

The new file is written inside a private folder created beside the target (mode 0700, a fresh
random name), so no other user can put a link where it is written, and moved onto the target with
one os.replace: a reader sees the old file or the whole new one. A link at the target itself is
replaced by the file, never written through. Callers refuse targets they must not touch (the
database, the object store) before writing (bench.commands.common.check_output_file)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """A fresh path (same name and suffix as target, inside a private folder in target's folder)
    to write the new file to; on a clean exit it replaces target atomically, on an error it is
    removed and target is left as it was. Raises OSError when target's folder cannot be written."""
    target = Path(target)
    private = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        tmp = private / target.name
        yield tmp
        os.replace(tmp, target)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def write_bytes_atomically(target: Path | str, data: bytes) -> None:
    """Write data to target through atomic_path. Raises OSError (target left as it was)."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def copy_atomically(source: Path | str, target: Path | str) -> None:
    """Copy source's bytes to target through atomic_path. Raises OSError (target left as it was)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
