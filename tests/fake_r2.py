"""An R2-like S3 endpoint on 127.0.0.1 over HTTPS, for tests.

moto's S3 application served by werkzeug with TLS (a self-signed certificate for IP 127.0.0.1 made
with openssl, trusted by clients through AWS_CA_BUNDLE), behind a WSGI layer that records every
request it receives and refuses, as Cloudflare R2 does, a body sent as `aws-chunked` with a
streaming checksum trailer (`X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`): 501
NotImplemented. Plain http (what moto's own ThreadedMotoServer serves) cannot show the defect,
because botocore only uses trailers over https (botocore/httpchecksum.py,
resolve_request_checksum_algorithm).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import boto3

STREAMING_PREFIX = "STREAMING-"
"""X-Amz-Content-SHA256 values of chunked (streaming) payloads start with this."""
REFUSAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
           b"<Message>STREAMING-UNSIGNED-PAYLOAD-TRAILER not implemented</Message></Error>")
"""What the endpoint answers to a streaming-trailer upload (R2's code for it)."""


@dataclass(frozen=True)
class Seen:
    """One request as the endpoint received it."""

    method: str
    """HTTP method."""
    path: str
    """Path (bucket and key, path-style)."""
    query: str
    """Raw query string (uploadId=...&partNumber=... for a part)."""
    headers: dict[str, str]
    """Request headers, lower-case names."""

    @property
    def streaming(self) -> bool:
        """Whether the body was sent aws-chunked or with a streaming payload hash."""
        return (self.headers.get("x-amz-content-sha256", "").startswith(STREAMING_PREFIX)
                or "aws-chunked" in self.headers.get("content-encoding", "")
                or "x-amz-trailer" in self.headers)

    @property
    def is_upload(self) -> bool:
        """A PUT of an object or of a part (not a bucket creation)."""
        return self.method == "PUT" and self.path.strip("/").count("/") >= 1


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for IP 127.0.0.1 (subjectAltName), made with openssl.
    Returns (certificate, key). Raises RuntimeError without openssl."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not installed")
    cert, key = folder / "r2-cert.pem", folder / "r2-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class FakeR2:
    """moto's S3 over https on 127.0.0.1 with a request log and R2's refusal of streaming bodies."""

    def __init__(self, folder: Path, refuse_streaming: bool = True):
        self.folder = Path(folder)
        self.refuse_streaming = refuse_streaming
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.ca_bundle: Path | None = None
        self.url = ""

    def start(self) -> "FakeR2":
        import ssl

        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        cert, key = make_certificate(self.folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._recording(moto_app), threaded=True,
                                   request_handler=MotoRequestHandler, ssl_context=context)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fake-r2")
        self._thread.start()
        self.ca_bundle = cert
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(10)

    def _recording(self, app: Callable) -> Callable:
        def handle(environ: dict, start_response: Callable) -> Iterable[bytes]:
            headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items()
                       if name.startswith("HTTP_")}
            for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if environ.get(name):
                    headers[name.replace("_", "-").lower()] = environ[name]
            seen = Seen(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                        environ.get("QUERY_STRING", ""), headers)
            with self._lock:
                self.requests.append(seen)
            if self.refuse_streaming and seen.streaming:
                # Drain the body (sent chunked, or with the encoded length) so the client reads
                # the answer instead of a reset connection.
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if length:
                    environ["wsgi.input"].read(length)
                elif environ.get("wsgi.input_terminated"):
                    environ["wsgi.input"].read()
                start_response("501 Not Implemented", [("Content-Type", "application/xml"),
                                                       ("Content-Length", str(len(REFUSAL)))])
                return [REFUSAL]
            return app(environ, start_response)

        return handle

    def admin(self):
        """A boto3 client for setting the endpoint up (creating buckets), trusting its certificate."""
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="admin", aws_secret_access_key="admin-secret",
                            verify=str(self.ca_bundle))

    def uploads(self) -> list[Seen]:
        """Every object or part PUT received so far."""
        with self._lock:
            return [r for r in self.requests if r.is_upload]

    def streaming_requests(self) -> list[Seen]:
        """Every request received with a streaming (aws-chunked) body."""
        with self._lock:
            return [r for r in self.requests if r.streaming]
