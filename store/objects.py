"""Object storage behind one interface: a local directory (the default) or R2/S3 via boto3.

Objects live at '{user_id}/{key}' as in the original deployment. The worker only needs
get(key) -> local path and put(path, key).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from core.atomic import copy_atomically
from core.errors import StorageError
from store.keys import validate_key

if TYPE_CHECKING:
    from store.config import StorageConfig


class ObjectStore(Protocol):
    """What the worker and the dashboard need from storage."""

    def get(self, key: str) -> Path:
        """A local file path holding the object (downloaded if remote). Raises StorageError."""

    def put(self, path: Path, key: str) -> None:
        """Upload a local file to key. Raises StorageError."""

    def exists(self, key: str) -> bool:
        """Whether an object exists at key."""

    def delete(self, key: str) -> None:
        """Remove the object at key (nothing happens when it is absent). Raises StorageError."""

    def describe(self) -> str:
        """Where objects go, for display (never includes secrets)."""


class LocalDirectoryStore:
    """Objects as files under a root directory."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def get(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"no object at {key!r} in {self.root}")
        return path

    def put(self, path: Path, key: str) -> None:
        _copy_into_place(path, self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file, and its folder when that is left empty. Raises StorageError."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            if path.parent != self.root and path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror or exc}") from None

    def describe(self) -> str:
        return f"local directory {self.root}"


class FilePairStore:
    """Two named local files exposed as objects: the CLI's INPUT and OUTPUT paths, without copying
    the input. `get(input_key)` returns the input path; `put(path, output_key)` moves the result to
    the output path atomically."""

    def __init__(self, input_key: str, input_path: Path, output_key: str, output_path: Path):
        self._input_key, self._input_path = validate_key(input_key), Path(input_path)
        self._output_key, self._output_path = validate_key(output_key), Path(output_path)

    def get(self, key: str) -> Path:
        if key != self._input_key:
            raise StorageError(f"no object at {key!r}")
        if not self._input_path.is_file():
            raise StorageError(f"input file {self._input_path} does not exist")
        return self._input_path

    def put(self, path: Path, key: str) -> None:
        if key != self._output_key:
            raise StorageError(f"cannot write object {key!r}")
        _copy_into_place(path, self._output_path)

    def exists(self, key: str) -> bool:
        return key == self._input_key and self._input_path.is_file()

    def delete(self, key: str) -> None:
        raise StorageError(f"cannot delete object {key!r}: these are the user's own files")

    def describe(self) -> str:
        return f"files {self._input_path} -> {self._output_path}"


def _copy_into_place(path: Path, target: Path) -> None:
    """Copy path to target atomically (core.atomic: a private temporary name, so concurrent
    writers never share one and a planted link is never written through): target is whole or as
    it was. Raises StorageError (one line) when the disk is full or the target cannot be written."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_atomically(path, target)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None


def open_object_store(config: "StorageConfig") -> ObjectStore:
    """The store a StorageConfig names: LocalDirectoryStore for 'local', R2Store for 'r2'.

    Raises StorageError when R2 settings are missing (boto3 is imported only for R2)."""
    if config.kind == "r2":
        from store.r2 import R2Store

        return R2Store(config)
    if config.kind == "local":
        return LocalDirectoryStore(config.local_root)
    raise StorageError(f"unknown storage kind {config.kind!r}; choose local or r2")
