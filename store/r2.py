"""Object storage on Cloudflare R2 (or any S3 API) through boto3.

get() downloads into a local cache (data/cache/objects/<key>) and returns the path; put() uploads
in parts above a size threshold; presigned_url() hands an object to a browser; check_bucket() asks
for the bucket's head (the doctor's reachability check). Every failure is a StorageError with one
line that names the bucket and key but never a credential.

Integrity checksums: boto3/botocore >= 1.36 default to request_checksum_calculation
'when_supported' (botocore/configprovider.py, DEFAULT_CONFIG_VARS). For an operation with a
streaming body sent over https, botocore/httpchecksum.py resolve_request_checksum_algorithm then
puts the CRC32 in a *trailer*, and _apply_request_trailer_checksum sends the body as
`Content-Encoding: aws-chunked` with `X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`
(botocore/auth.py). Cloudflare R2 refuses that (NotImplemented / Unauthorized), so every upload of
a live job would fail after its GPU time was paid. Over plain http botocore sends the checksum as
a header instead, which is why tests against moto over http never saw it. CLIENT_CHECKSUMS below
asks for checksums only where an operation requires them; s3transfer's
TransferManager._add_operation_defaults then adds no ChecksumAlgorithm to uploads either, and every
PUT and UploadPart is a plain SigV4-signed request with the payload's sha256.
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
    SSLError,
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
CLIENT_CHECKSUMS = {"request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required"}
"""botocore Config settings that keep uploads plain signed requests (no aws-chunked streaming
trailer, which R2 rejects) and downloads free of checksum-mode requests; see the module docstring.
A Config argument outranks AWS_REQUEST_CHECKSUM_CALCULATION in the environment and config file."""
R2_REFUSED_CODES = {"NotImplemented", "Unauthorized"}
"""What R2 answers to a request it does not support, e.g. a streaming-trailer upload."""


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
                    **CLIENT_CHECKSUMS,
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

    def check_bucket(self) -> None:
        """HEAD the bucket: returns when it exists and these credentials may use it. Raises
        StorageError (no such bucket, credentials refused, unreachable) with one line."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"R2 has no bucket {self.bucket} at {self.endpoint_url}: create "
                                   f"it in the Cloudflare dashboard or fix R2_BUCKET") from None
            if _code(exc) in ("403", "Forbidden"):
                raise StorageError(f"R2 refused access to bucket {self.bucket} (403): wrong "
                                   f"R2_ACCESS_KEY_ID/R2_SECRET_ACCESS_KEY, or the token lacks "
                                   f"Object Read & Write on this bucket") from None
            raise self._error(exc, "bucket check", "") from None
        except BotoCoreError as exc:
            raise self._error(exc, "bucket check", "") from None

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
        of = f" of {key!r}" if key else ""
        if isinstance(cause, ClientError):
            code = _code(cause)
            if code in CREDENTIAL_CODES:
                text = f"R2 rejected the credentials ({code}) for {where}: check R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
            elif code in ("AccessDenied", "403", "Forbidden"):
                text = f"R2 denied the {action}{of} in {where} ({code}): wrong credentials or no permission"
            elif code in MISSING_CODES:
                text = f"no object at {key!r} in R2 {where}"
            elif code == "NoSuchBucket":
                text = f"R2 has no bucket {self.bucket} at {self.endpoint_url}"
            elif code in R2_REFUSED_CODES:
                text = (f"R2 refused the {action}{of} in {where} ({code}): R2 accepts only "
                        f"plain signed requests, not aws-chunked bodies with a streaming checksum "
                        f"trailer; this client asks for none (CLIENT_CHECKSUMS), so check that "
                        f"R2_ENDPOINT_URL is the account endpoint https://<account>.r2."
                        f"cloudflarestorage.com and the key pair is an R2 API token")
            else:
                message = cause.response.get("Error", {}).get("Message") or ""
                text = f"R2 {action}{of} in {where} failed: {code} {message}".strip()
        elif isinstance(cause, SSLError):
            text = (f"TLS to the R2 endpoint {self.endpoint_url} failed ({action}{of}): its "
                    f"certificate is not trusted here; fix R2_ENDPOINT_URL, or point AWS_CA_BUNDLE "
                    f"at the CA that signed it")
        elif isinstance(cause, (EndpointConnectionError, ConnectTimeoutError)):
            text = f"cannot reach the R2 endpoint {self.endpoint_url} ({action}{of}): check R2_ENDPOINT_URL and the network"
        elif isinstance(cause, ReadTimeoutError):
            text = f"the R2 endpoint {self.endpoint_url} stopped answering during the {action}{of}"
        else:
            text = f"R2 {action}{of} in {where} failed: {self._clean(cause)}"
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
