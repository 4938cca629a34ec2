"""The R2 object store against moto's S3 server on 127.0.0.1, and the storage settings."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from core.errors import StorageError
from core.job import JobResult
from store import runs as R
from store.config import StorageConfig, load_storage_config
from store.db import Database
from store.objects import LocalDirectoryStore, open_object_store
from store.r2 import MiB, R2Store

BUCKET = "bench-objects"
SECRET = "s3cr3t-value-that-must-never-show-up-anywhere"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    _admin(url, "s3").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


def _admin(url: str, service: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="admin", aws_secret_access_key="admin-secret")


def _config(url: str, key_id: str = "AKIAEXAMPLEKEY000001", secret: str = SECRET) -> StorageConfig:
    return StorageConfig(kind="r2", endpoint_url=url, bucket=BUCKET, access_key_id=key_id,
                         secret_access_key=secret)


@pytest.fixture()
def store(endpoint: str, tmp_path: Path) -> R2Store:
    return R2Store(_config(endpoint), cache_dir=tmp_path / "cache",
                   multipart_threshold=1 * MiB, multipart_chunksize=5 * MiB)


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_upload_download_and_cache(store: R2Store, endpoint: str, tmp_path: Path) -> None:
    small = _file(tmp_path / "small.mp4", 4096)
    store.put(small, "user1/outputs/small.mp4")
    assert store.exists("user1/outputs/small.mp4")
    assert not store.exists("user1/outputs/other.mp4")
    got = store.get("user1/outputs/small.mp4")
    assert got == tmp_path / "cache" / "user1" / "outputs" / "small.mp4"
    assert got.read_bytes() == small.read_bytes()
    etag = _admin(endpoint, "s3").head_object(Bucket=BUCKET, Key="user1/outputs/small.mp4")["ETag"]
    assert "-" not in etag  # below the threshold: one PUT

    # Replaced in the bucket: the cached copy is stale and is fetched again.
    bigger = _file(tmp_path / "bigger.mp4", 5000)
    store.put(bigger, "user1/outputs/small.mp4")
    assert store.get("user1/outputs/small.mp4").read_bytes() == bigger.read_bytes()
    assert [p.name for p in got.parent.iterdir()] == ["small.mp4"]  # no .part files left


def test_large_files_go_up_in_parts(store: R2Store, endpoint: str, tmp_path: Path) -> None:
    big = _file(tmp_path / "big.mp4", 6 * MiB + 123)
    store.put(big, "user1/big.mp4")
    head = _admin(endpoint, "s3").head_object(Bucket=BUCKET, Key="user1/big.mp4")
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload of two parts
    assert head["ContentLength"] == big.stat().st_size
    assert store.get("user1/big.mp4").read_bytes() == big.read_bytes()


def test_presigned_url_is_fetched_over_http(store: R2Store, tmp_path: Path) -> None:
    video = _file(tmp_path / "v.mp4", 2048)
    store.put(video, "user1/v.mp4")
    url = store.presigned_url("user1/v.mp4", expires=600)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=600" in url
    assert SECRET not in url
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.content == video.read_bytes()
    with pytest.raises(StorageError, match="presigned URL lives"):
        store.presigned_url("user1/v.mp4", expires=0)


@pytest.mark.parametrize("key", ["", "  ", "/etc/passwd", "user1/../secrets", "a//b", "./x", "a\\b"])
def test_bad_keys_are_rejected(store: R2Store, tmp_path: Path, key: str) -> None:
    path = _file(tmp_path / "f.bin", 10)
    for call in (lambda: store.put(path, key), lambda: store.get(key), lambda: store.exists(key),
                 lambda: store.presigned_url(key)):
        with pytest.raises(StorageError, match="key"):
            call()


def test_missing_object_and_missing_file(store: R2Store, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=f"no object at 'user1/nothing.mp4' in R2 bucket {BUCKET}"):
        store.get("user1/nothing.mp4")
    with pytest.raises(StorageError, match="no such file"):
        store.put(tmp_path / "absent.mp4", "user1/absent.mp4")


def test_wrong_credentials_give_a_clear_error(endpoint: str, tmp_path: Path) -> None:
    # Turn on moto's signature checks after the three IAM calls that create a real key pair.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"3", timeout=10).raise_for_status()
    try:
        iam = _admin(endpoint, "iam")
        iam.create_user(UserName="bench")
        key = iam.create_access_key(UserName="bench")["AccessKey"]
        iam.put_user_policy(UserName="bench", PolicyName="objects", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        path = _file(tmp_path / "f.bin", 100)
        good = R2Store(_config(endpoint, key["AccessKeyId"], key["SecretAccessKey"]), cache_dir=tmp_path / "c")
        good.put(path, "user1/f.bin")
        assert good.exists("user1/f.bin")

        cases = {"SignatureDoesNotMatch": (key["AccessKeyId"], SECRET),
                 "InvalidAccessKeyId": ("AKIANOSUCHKEY0000000", SECRET)}
        for code, (key_id, secret) in cases.items():
            bad = R2Store(_config(endpoint, key_id, secret), cache_dir=tmp_path / "c2")
            for call in (lambda: bad.put(path, "user1/g.bin"), lambda: bad.get("user1/f.bin"),
                         lambda: bad.exists("user1/f.bin")):
                with pytest.raises(StorageError) as caught:
                    call()
                message = str(caught.value)
                assert message == (f"R2 rejected the credentials ({code}) for bucket {BUCKET}: "
                                   f"check R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY")
                assert SECRET not in message and key["SecretAccessKey"] not in message
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


def test_unreachable_endpoint_fails_fast_and_clearly(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = R2Store(_config(f"http://127.0.0.1:{port}"), connect_timeout=1, max_attempts=1)
    with pytest.raises(StorageError, match=f"cannot reach the R2 endpoint http://127.0.0.1:{port}"):
        store.put(_file(tmp_path / "f.bin", 10), "user1/f.bin")
    with pytest.raises(StorageError, match="cannot reach"):
        store.get("user1/f.bin")


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(StorageError, match="R2_ENDPOINT_URL, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY"):
        R2Store(StorageConfig(kind="r2", bucket=BUCKET))


# --------------------------------------------------------------------------- settings


def test_settings_from_secrets_file_and_environment(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[r2]\nendpoint_url = "https://acct.r2.cloudflarestorage.com"\nbucket = "from-file"\n'
                       f'access_key_id = "KEYID"\nsecret_access_key = "{SECRET}"\n')
    config = load_storage_config(secrets, env={"R2_BUCKET": "from-env", "BENCH_DATA_DIR": str(tmp_path)})
    assert config.kind == "r2"  # complete R2 settings and no BENCH_STORAGE: R2
    assert (config.bucket, config.access_key_id, config.secret_access_key) == ("from-env", "KEYID", SECRET)
    assert config.credential_status() == {"R2_ENDPOINT_URL": True, "R2_BUCKET": True,
                                          "R2_ACCESS_KEY_ID": True, "R2_SECRET_ACCESS_KEY": True}
    for text in (config.describe(), repr(config), str(config), json.dumps(config.credential_status())):
        assert SECRET not in text and "KEYID" not in text
    assert config.describe() == "R2 bucket from-env at acct.r2.cloudflarestorage.com (credentials set)"

    local = load_storage_config(secrets, env={"BENCH_STORAGE": "local", "BENCH_DATA_DIR": str(tmp_path)})
    assert local.kind == "local" and local.local_root == tmp_path / "objects"
    assert isinstance(open_object_store(local), LocalDirectoryStore)

    nothing = load_storage_config(tmp_path / "absent.toml", env={})
    assert nothing.kind == "local" and nothing.local_root == Path("data/objects")
    assert nothing.credential_status() == dict.fromkeys(nothing.credential_status(), False)


def test_bad_settings_are_storage_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="R2_ENDPOINT_URL, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY"):
        load_storage_config(tmp_path / "absent.toml", env={"BENCH_STORAGE": "r2", "R2_BUCKET": "b"})
    with pytest.raises(StorageError, match="BENCH_STORAGE must be one of local, r2"):
        load_storage_config(tmp_path / "absent.toml", env={"BENCH_STORAGE": "s3"})
    broken = tmp_path / "secrets.toml"
    broken.write_text(f'[r2]\nsecret_access_key = "{SECRET}\n')  # unterminated string
    with pytest.raises(StorageError, match="not valid TOML") as caught:
        load_storage_config(broken, env={})
    assert SECRET not in str(caught.value)


def test_open_object_store_and_no_secret_in_the_database(endpoint: str, tmp_path: Path) -> None:
    store = open_object_store(_config(endpoint))
    assert isinstance(store, R2Store)
    assert SECRET not in repr(store) and SECRET not in store.describe()
    video = _file(tmp_path / "out.mp4", 1000)
    store.put(video, "user1/runs/out.mp4")

    db = Database(tmp_path / "bench.duckdb")
    experiment_id = R.create_experiment(db, R.ExperimentRecord(name="r2", backend="modal"))
    (run_id,) = R.add_runs(db, experiment_id, [R.RunSpec(clip="6s", gpu="L4")])
    result = JobResult(job_id=run_id, status="succeeded", output_key="runs/out.mp4", frames_out=10,
                       stages={"total": 1.0})
    R.finish_run(db, run_id, R.RunOutcome(status="succeeded", result=result))
    R.fail_run(db, R.add_runs(db, experiment_id, [R.RunSpec(clip="6s", gpu="T4")])[0],
               str(StorageError(f"R2 upload failed for bucket {BUCKET}")))
    history = json.dumps(R.history(db))
    assert "runs/out.mp4" in history and SECRET not in history
    for file in tmp_path.glob("bench.duckdb*"):
        assert SECRET.encode() not in file.read_bytes()
