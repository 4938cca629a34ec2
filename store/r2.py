"""Object storage on Cloudflare R2 (or any S3 API) through boto3.

get() downloads into a local cache (data/cache/objects/<key>) and returns the path; put() uploads
in parts above a size threshold; presigned_url() hands an object to a browser. Every failure is a
StorageError with one line that names the bucket and key but never a credential.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from core.errors import StorageError
from core.paths import object_cache_dir
from store.config import StorageConfig
from store.keys import validate_key

MiB = 1024 * 1024
CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
                    "AuthorizationHeaderMalformed"}
"""S3 error codes meaning the key id or secret is wrong."""
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
"""SigV4 presigned URLs live at most a week."""


class R2Store:
    """An ObjectStore on an R2/S3 bucket."""

    def __init__(self, config: StorageConfig, *, cache_dir: Path | str | None = None,
                 multipart_threshold: int = 8 * MiB, multipart_chunksize: int = 8 * MiB,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0, max_attempts: int = 3):
        """A client for the bucket of config (nothing is contacted yet).

        cache_dir defaults to $BENCH_DATA_DIR/cache/objects (data/cache/objects). Files larger than
        multipart_threshold go up in parts of multipart_chunksize (S3 needs parts of 5 MiB or more,
        except the last). Raises StorageError naming the missing settings.
        """
        missing = config.missing()
        if missing:
            raise StorageError(f"R2 storage needs {', '.join(missing)} (environment or [r2] in .streamlit/secrets.toml)")
        self.bucket = config.bucket
        self.endpoint_url = config.endpoint_url
        self._secret = config.secret_access_key
        self.cache_dir = Path(cache_dir) if cache_dir else object_cache_dir()
        self.transfer = TransferConfig(multipart_threshold=multipart_threshold,
                                       multipart_chunksize=multipart_chunksize, max_concurrency=4)
        try:
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=config.endpoint_url,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                region_name="auto",
                config=Config(
                    signature_version="s3v4",
                    s3={"addressing_style": "path"},
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    retries={"max_attempts": max_attempts, "mode": "standard"},
                ),
            )
        except (BotoCoreError, ValueError) as exc:
            raise StorageError(f"bad R2 endpoint {config.endpoint_url!r}: {self._clean(exc)}") from None

    def __repr__(self) -> str:
        return f"R2Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def describe(self) -> str:
        """Where objects go, for display (no credentials). Raises nothing."""
        return f"R2 bucket {self.bucket} at {self.endpoint_url}"

    # -- the ObjectStore protocol --------------------------------------------------------------

    def get(self, key: str) -> Path:
        """A local copy of the object (downloaded unless the cached copy has the object's size and
        modification time). Raises StorageError (missing object, credentials, unreachable)."""
        key = validate_key(key)
        head = self._head(key, "download")
        if head is None:
            raise StorageError(f"no object at {key!r} in R2 bucket {self.bucket}")
        target = self.cache_dir / key
        stamp = _timestamp(head.get("LastModified"))
        size = head.get("ContentLength")
        if target.is_file() and target.stat().st_size == size and (stamp is None or target.stat().st_mtime == stamp):
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the cache directory {target.parent}: {exc.strerror}") from None
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            self._client.download_file(self.bucket, key, tmp, Config=self.transfer)
            if stamp is not None:
                os.utime(tmp, (stamp, stamp))
            os.replace(tmp, target)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, "download", key) from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return target

    def put(self, path: Path, key: str) -> None:
        """Upload a local file to key (in parts when large). Raises StorageError for a missing
        file, wrong credentials, a missing bucket or an unreachable endpoint."""
        key = validate_key(key)
        path = Path(path)
        if not path.is_file():
            raise StorageError(f"cannot upload {path}: no such file")
        try:
            self._client.upload_file(str(path), self.bucket, key, Config=self.transfer)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._error(exc, "upload", key) from None

    def exists(self, key: str) -> bool:
        """Whether an object is at key. Raises StorageError for anything but 'not found'."""
        return self._head(validate_key(key), "look-up") is not None

    # -- extras --------------------------------------------------------------------------------

    def presigned_url(self, key: str, expires: int = 3600) -> str:
        """A URL that lets anyone holding it GET the object for `expires` seconds (SigV4; nothing
        is contacted). Raises StorageError for a bad key or lifetime."""
        key = validate_key(key)
        if not 1 <= int(expires) <= MAX_PRESIGN_SECONDS:
            raise StorageError(f"a presigned URL lives 1 s to {MAX_PRESIGN_SECONDS} s, not {expires}")
        try:
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "presign", key) from None

    def delete(self, key: str) -> None:
        """Remove the object at key (no error if it is absent). Raises StorageError."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=validate_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "delete", key) from None

    # -- errors --------------------------------------------------------------------------------

    def _head(self, key: str, action: str) -> dict | None:
        """The object's metadata, None if it is absent."""
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING_CODES:
                return None
            if _code(exc) in ("403", "Forbidden"):
                raise self._explain_forbidden(key, action, exc) from None
            raise self._error(exc, action, key) from None
        except BotoCoreError as exc:
            raise self._error(exc, action, key) from None

    def _explain_forbidden(self, key: str, action: str, exc: ClientError) -> StorageError:
        """A HEAD answer has no body, so a 403 does not say why: ask for one byte to learn whether
        the credentials are wrong or only the permission is missing."""
        try:
            self._client.get_object(Bucket=self.bucket, Key=key, Range="bytes=0-0")
        except (ClientError, BotoCoreError) as probe:
            return self._error(probe, action, key)
        return self._error(exc, action, key)

    def _error(self, exc: BaseException, action: str, key: str) -> StorageError:
        """One clear line for a boto3/botocore failure, with no credential in it."""
        cause = exc
        if isinstance(exc, S3UploadFailedError):  # wraps the ClientError of the failed part
            cause = exc.__context__ or exc.__cause__ or exc
        where = f"bucket {self.bucket}"
        if isinstance(cause, ClientError):
            code = _code(cause)
            if code in CREDENTIAL_CODES:
                text = f"R2 rejected the credentials ({code}) for {where}: check R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
            elif code in ("AccessDenied", "403", "Forbidden"):
                text = f"R2 denied the {action} of {key!r} in {where} ({code}): wrong credentials or no permission"
            elif code in MISSING_CODES:
                text = f"no object at {key!r} in R2 {where}"
            elif code == "NoSuchBucket":
                text = f"R2 has no bucket {self.bucket} at {self.endpoint_url}"
            else:
                message = cause.response.get("Error", {}).get("Message") or ""
                text = f"R2 {action} of {key!r} in {where} failed: {code} {message}".strip()
        elif isinstance(cause, (EndpointConnectionError, ConnectTimeoutError)):
            text = f"cannot reach the R2 endpoint {self.endpoint_url} ({action} of {key!r}): check R2_ENDPOINT_URL and the network"
        elif isinstance(cause, ReadTimeoutError):
            text = f"the R2 endpoint {self.endpoint_url} stopped answering during the {action} of {key!r}"
        else:
            text = f"R2 {action} of {key!r} in {where} failed: {self._clean(cause)}"
        return StorageError(self._scrub(text))

    def _clean(self, exc: BaseException) -> str:
        return self._scrub(" ".join(str(exc).split()) or type(exc).__name__)

    def _scrub(self, text: str) -> str:
        secret = getattr(self, "_secret", None)
        return text.replace(secret, "***") if secret and len(secret) >= 8 else text


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "")


def _timestamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if isinstance(moment, datetime) else None
