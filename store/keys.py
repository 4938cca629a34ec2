"""The object-key layout, in one place. Objects live at '{user_id}/{key}' (as in the original
deployment): sources a run reads under '{user}/sources/', outputs it writes under
'{user}/outputs/{experiment}/{run}.mp4'."""

from __future__ import annotations

from pathlib import PurePosixPath

from core.errors import StorageError

LOCAL_USER = "bench"
"""The user id objects of this tool's own runs are stored under."""


def validate_key(key: str) -> str:
    """Return the key if it is a safe relative object key; raise StorageError otherwise."""
    if not key or not key.strip():
        raise StorageError("object key is empty")
    if key.startswith("/") or "\\" in key or PurePosixPath(key).is_absolute():
        raise StorageError(f"object key {key!r} must be relative (no leading '/')")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"object key {key!r} may not contain '..', '.' or empty parts")
    return key


def user_key(user_id: str, key: str) -> str:
    """The full object key of a user's object: '{user_id}/{key}'."""
    return validate_key(f"{user_id}/{key}")


def split_user_key(key: str) -> tuple[str, str]:
    """'user/path/to/video.mp4' -> ('user', 'path/to/video.mp4'). Raises StorageError."""
    validate_key(key)
    user, _, rest = key.partition("/")
    if not rest:
        raise StorageError(f"source key {key!r} must be 'USER/PATH' (objects live at {{user_id}}/{{key}})")
    return user, rest


def source_object_key(name: str, user_id: str = LOCAL_USER) -> str:
    """The full key a source file named `name` is uploaded to."""
    return user_key(user_id, f"sources/{name}")


def source_content_key(sha256: str, name: str, user_id: str = LOCAL_USER) -> str:
    """The full key of a local source file known by its content: 'sources/{sha256}/{name}' (two
    different files never share a key, one file always gets the same one). Keys stored by older
    versions ('sources/{size}-{name}') stay valid as they are."""
    return source_object_key(f"{sha256}/{name}", user_id)


def output_key(experiment_id: str, run_id: str) -> str:
    """A run's output key, relative to its user's prefix."""
    return f"outputs/{experiment_id}/{run_id}.mp4"


def output_object_key(source_key: str | None, output_key: str) -> str:
    """Where a run's output lives: '{user_id}/{output_key}', user_id being the first part of the
    experiment's source key (the tool's own user when the source has none). Raises StorageError
    for an unsafe key."""
    user = source_key.partition("/")[0] if source_key and "/" in source_key else LOCAL_USER
    return user_key(user, output_key)
