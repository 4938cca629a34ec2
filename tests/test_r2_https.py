"""R2 storage over HTTPS on 127.0.0.1 (issue 9, defect 1): uploads are plain signed PUTs, single and
multipart, never an aws-chunked body with a streaming checksum trailer (which R2 refuses), and a
presigned GET works; boto3's default settings are shown to fail the same way R2 fails them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from core.errors import StorageError
from store.config import StorageConfig
from store.r2 import MiB, R2Store
from tests.fake_r2 import FakeR2

BUCKET = "bench-https"
SECRET = "https-s3cr3t-that-must-never-show-up"


@pytest.fixture(scope="module")
def r2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeR2]:
    try:
        endpoint = FakeR2(tmp_path_factory.mktemp("tls")).start()
    except RuntimeError as exc:  # no openssl on this machine
        pytest.skip(str(exc))
    endpoint.admin().create_bucket(Bucket=BUCKET)
    yield endpoint
    endpoint.stop()


@pytest.fixture()
def trusted(r2: FakeR2, monkeypatch: pytest.MonkeyPatch) -> FakeR2:
    """Clients created in the test trust the endpoint's certificate through AWS_CA_BUNDLE."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(r2.ca_bundle))
    monkeypatch.delenv("AWS_REQUEST_CHECKSUM_CALCULATION", raising=False)
    return r2


def _store(r2: FakeR2, tmp_path: Path) -> R2Store:
    config = StorageConfig(kind="r2", endpoint_url=r2.url, bucket=BUCKET,
                           access_key_id="AKIAEXAMPLEHTTPS0001", secret_access_key=SECRET)
    return R2Store(config, cache_dir=tmp_path / "cache", multipart_threshold=5 * MiB,
                   multipart_chunksize=5 * MiB)


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _since(r2: FakeR2, mark: int):
    return r2.requests[mark:]


def test_single_put_is_a_plain_signed_request(trusted: FakeR2, tmp_path: Path) -> None:
    store = _store(trusted, tmp_path)
    mark = len(trusted.requests)
    small = _file(tmp_path / "small.mp4", 64 * 1024)
    store.put(small, "user1/outputs/small.mp4")
    puts = [r for r in _since(trusted, mark) if r.is_upload]
    assert len(puts) == 1
    (put,) = puts
    sha = put.headers["x-amz-content-sha256"]
    assert len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)  # the payload's sha256
    assert "aws-chunked" not in put.headers.get("content-encoding", "")
    assert "x-amz-trailer" not in put.headers and "x-amz-decoded-content-length" not in put.headers
    assert put.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert store.get("user1/outputs/small.mp4").read_bytes() == small.read_bytes()
    downloads = [r for r in _since(trusted, mark) if r.method == "GET"]
    assert downloads and all("x-amz-checksum-mode" not in r.headers for r in downloads)


def test_multipart_parts_are_plain_signed_requests(trusted: FakeR2, tmp_path: Path) -> None:
    store = _store(trusted, tmp_path)
    mark = len(trusted.requests)
    big = _file(tmp_path / "big.mp4", 11 * MiB)
    store.put(big, "user1/outputs/big.mp4")
    seen = _since(trusted, mark)
    parts = [r for r in seen if r.is_upload and "partNumber=" in r.query]
    assert len(parts) == 3
    assert not [r for r in seen if r.streaming]
    assert all(len(p.headers["x-amz-content-sha256"]) == 64 for p in parts)
    assert any(r.method == "POST" and "uploads" in r.query for r in seen)  # CreateMultipartUpload
    assert any(r.method == "POST" and "uploadId=" in r.query for r in seen)  # Complete
    head = trusted.admin().head_object(Bucket=BUCKET, Key="user1/outputs/big.mp4")
    assert head["ETag"].strip('"').endswith("-3") and head["ContentLength"] == big.stat().st_size


def test_presigned_get_over_https(trusted: FakeR2, tmp_path: Path) -> None:
    store = _store(trusted, tmp_path)
    video = _file(tmp_path / "v.mp4", 4096)
    store.put(video, "user1/v.mp4")
    url = store.presigned_url("user1/v.mp4", expires=300)
    assert url.startswith(trusted.url + "/") and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert SECRET not in url
    response = requests.get(url, timeout=30, verify=str(trusted.ca_bundle))
    assert response.status_code == 200 and response.content == video.read_bytes()


def test_check_bucket(trusted: FakeR2, tmp_path: Path) -> None:
    _store(trusted, tmp_path).check_bucket()
    config = StorageConfig(kind="r2", endpoint_url=trusted.url, bucket="no-such-bucket",
                           access_key_id="AKIAEXAMPLEHTTPS0001", secret_access_key=SECRET)
    with pytest.raises(StorageError, match="R2 has no bucket no-such-bucket"):
        R2Store(config).check_bucket()


def test_boto3_defaults_send_streaming_trailers_which_r2_refuses(trusted: FakeR2,
                                                                 tmp_path: Path) -> None:
    """The defect itself: boto3's own defaults over https, single PUT and multipart alike."""
    client = boto3.session.Session().client(
        "s3", endpoint_url=trusted.url, region_name="auto", aws_access_key_id="AKIAEXAMPLE0",
        aws_secret_access_key=SECRET, config=Config(signature_version="s3v4",
                                                    s3={"addressing_style": "path"}))
    mark = len(trusted.requests)
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=BUCKET, Key="user1/default.bin", Body=b"x" * 1000)
    assert caught.value.response["Error"]["Code"] == "NotImplemented"
    path = _file(tmp_path / "default.bin", 6 * MiB)
    with pytest.raises(Exception):
        client.upload_file(str(path), BUCKET, "user1/default-mp.bin",
                           Config=TransferConfig(multipart_threshold=5 * MiB))
    refused = [r for r in _since(trusted, mark) if r.streaming]
    assert refused and all(r.headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
                           for r in refused)
    assert any("partNumber=" in r.query for r in refused)


def test_an_r2_refusal_is_explained_in_one_line(trusted: FakeR2, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the client ever to send a streaming trailer again (say, a Config override), the
    user reads why R2 refused it, not a botocore dump."""
    import store.r2 as r2_module

    monkeypatch.setattr(r2_module, "CLIENT_CHECKSUMS", {})
    store = _store(trusted, tmp_path)
    with pytest.raises(StorageError) as caught:
        store.put(_file(tmp_path / "f.bin", 100), "user1/refused.bin")
    message = str(caught.value)
    assert message.startswith("R2 refused the upload of 'user1/refused.bin' in bucket bench-https "
                              "(NotImplemented): R2 accepts only plain signed requests")
    assert "\n" not in message and SECRET not in message


def test_untrusted_certificate_is_one_line(r2: FakeR2, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    store = R2Store(StorageConfig(kind="r2", endpoint_url=r2.url, bucket=BUCKET,
                                  access_key_id="AKIAEXAMPLEHTTPS0001", secret_access_key=SECRET),
                    max_attempts=1)
    with pytest.raises(StorageError, match="certificate is not trusted here"):
        store.exists("user1/x.bin")


def test_demo_run_with_r2_storage_over_https(trusted: FakeR2, tmp_path: Path) -> None:
    """Done-when (a): `python -m bench run --preset demo` with R2 storage on the HTTPS endpoint
    succeeds end to end (source uploaded, workers download it, outputs uploaded, a presigned GET
    of one plays), and the endpoint saw no streaming-trailer upload."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("R2_", "MODAL_", "AWS_", "BENCH_"))}
    env.update(BENCH_DATA_DIR=str(data), BENCH_DB=str(data / "bench.duckdb"),
               HOME=str(tmp_path), R2_ENDPOINT_URL=trusted.url, R2_BUCKET=BUCKET,
               R2_ACCESS_KEY_ID="AKIAEXAMPLEHTTPS0001", R2_SECRET_ACCESS_KEY=SECRET,
               AWS_CA_BUNDLE=str(trusted.ca_bundle), BENCH_OFFLINE="1")
    mark = len(trusted.requests)
    # the demo preset on one engine and one repeat: three clips, three uploads beside the source
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "demo",
                           "--engine", "fast", "--repeats", "1", "--weights", "random", "--json"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert [r["status"] for r in outcome["runs"]] == ["succeeded"] * 3
    seen = _since(trusted, mark)
    uploads = [r for r in seen if r.is_upload]
    assert len(uploads) == 4  # the generated source and three outputs
    assert not [r for r in seen if r.streaming]
    assert all(len(r.headers["x-amz-content-sha256"]) == 64 for r in uploads)
    assert any(r.method == "GET" and "sources" in r.path for r in seen)  # workers fetched it
    admin = trusted.admin()
    keys = [run["output_key"] for run in outcome["runs"]]
    for key in keys:
        assert any(key in r.path for r in uploads)
    store = R2Store(StorageConfig(kind="r2", endpoint_url=trusted.url, bucket=BUCKET,
                                  access_key_id="AKIAEXAMPLEHTTPS0001", secret_access_key=SECRET))
    (path,) = [r.path for r in uploads if keys[0] in r.path]
    key = path.split(f"/{BUCKET}/", 1)[1]
    assert admin.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0
    response = requests.get(store.presigned_url(key), timeout=30, verify=str(trusted.ca_bundle))
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"  # an MP4
    assert SECRET not in done.stdout and SECRET not in done.stderr
