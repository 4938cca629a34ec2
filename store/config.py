"""Where objects are stored: a local directory (the default) or an R2/S3 bucket, and its credentials.

Settings come from the environment (R2_ENDPOINT_URL, R2_BUCKET, R2_ACCESS_KEY_ID,
R2_SECRET_ACCESS_KEY, BENCH_STORAGE=local|r2, BENCH_DATA_DIR) or from an [r2] table in
.streamlit/secrets.toml (endpoint_url, bucket, access_key_id, secret_access_key); the environment
wins field by field. Nothing here ever prints, logs or returns the secret.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from core.errors import StorageError
from core.paths import local_objects_dir

KINDS = ("local", "r2")
"""Storage kinds."""

R2_SETTINGS = {
    "endpoint_url": "R2_ENDPOINT_URL",
    "bucket": "R2_BUCKET",
    "access_key_id": "R2_ACCESS_KEY_ID",
    "secret_access_key": "R2_SECRET_ACCESS_KEY",
}
"""StorageConfig field (and secrets.toml [r2] key) -> environment variable."""

DEFAULT_SECRETS_PATH = Path(".streamlit/secrets.toml")


@dataclass(frozen=True)
class StorageConfig:
    """Which object store to use and how to reach it."""

    kind: str = "local"
    """'local' (a directory) or 'r2' (an R2/S3 bucket through boto3)."""
    local_root: Path = Path("data/objects")
    """Root directory of the local store."""
    endpoint_url: str | None = None
    """R2 endpoint, e.g. https://<account>.r2.cloudflarestorage.com."""
    bucket: str | None = None
    """R2 bucket name."""
    access_key_id: str | None = field(default=None, repr=False)
    """R2 access key id (not shown in repr)."""
    secret_access_key: str | None = field(default=None, repr=False)
    """R2 secret access key (never shown)."""
    source: str = "defaults"
    """Where the R2 settings came from: 'environment', the secrets file's path, both, or 'defaults'."""

    def missing(self) -> list[str]:
        """Names of the environment variables of R2 settings that are not set. Raises nothing."""
        return [env for name, env in R2_SETTINGS.items() if not getattr(self, name)]

    def credential_status(self) -> dict[str, bool]:
        """{environment variable: whether it is set} for the R2 settings; never the values.
        Raises nothing."""
        return {env: bool(getattr(self, name)) for name, env in R2_SETTINGS.items()}

    def describe(self) -> str:
        """One line for display: where objects go, without any credential. Raises nothing."""
        if self.kind == "local":
            return f"local directory {self.local_root}"
        host = urlsplit(self.endpoint_url or "").hostname or "(no endpoint)"
        keys = "credentials set" if not self.missing() else f"missing {', '.join(self.missing())}"
        return f"R2 bucket {self.bucket or '(no bucket)'} at {host} ({keys})"


def load_storage_config(secrets_path: Path | str = DEFAULT_SECRETS_PATH,
                        env: Mapping[str, str] = os.environ) -> StorageConfig:
    """The storage settings from env and the secrets file (which may be absent).

    Without BENCH_STORAGE the kind is 'r2' when all four R2 settings are present, else 'local'.
    Raises StorageError for an unreadable or invalid secrets file, an unknown BENCH_STORAGE, or
    BENCH_STORAGE=r2 with settings missing (naming the variables, never a value).
    """
    secrets = _read_r2_table(Path(secrets_path))
    values: dict[str, str | None] = {}
    sources = set()
    for name, var in R2_SETTINGS.items():
        if env.get(var):
            values[name] = env[var]
            sources.add("environment")
        elif secrets.get(name):
            values[name] = str(secrets[name])
            sources.add(str(secrets_path))
        else:
            values[name] = None
        kind = (env.get("BENCH_STORAGE") or "").strip().lower()
    complete = all(values.values())
    if not kind:
        kind = "r2" if complete else "local"
    if kind not in KINDS:
        raise StorageError(f"BENCH_STORAGE must be one of {', '.join(KINDS)}, not {env.get('BENCH_STORAGE')!r}")
    config = StorageConfig(kind=kind, local_root=local_objects_dir(env),
                           source=" and ".join(sorted(sources)) or "defaults", **values)
    if kind == "r2" and not complete:
        raise StorageError(
            f"R2 storage needs {', '.join(config.missing())} (environment variables, or the [r2] "
            f"table of {secrets_path})"
        )
    return config


def _read_r2_table(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise StorageError(f"{path} is not UTF-8 text (TOML must be); re-save it as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The parser's message names a line and column, never the file's content.
        raise StorageError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("r2", {})
    if not isinstance(table, dict):
        raise StorageError(f"[r2] in {path} must be a table")
    return table
