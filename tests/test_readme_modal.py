"""README's Modal first run (step 7) run as written, in order: the commands are read from the README
itself and run through the CLI against a real S3 server on loopback (moto) standing in for R2 and
the signature-checked Modal fakes standing in for the cloud (tests/modal_fakes.py)."""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from bench.__main__ import main
from bench.backends.modal_backend import ModalBackend
from core.job import JobResult
from store import runs as store_runs
from store.db import Database
from tests.modal_fakes import FakeModal, Spawned, use_modal_config
from tests.ui_helpers import isolate_env
from workers.modal_app import ContainerFacts

README = Path(__file__).resolve().parents[1] / "README.md"
BUCKET = "bench-objects"


def step_commands(number: int) -> list[str]:
    """The `python -m bench ...` commands of one numbered step of README's Modal section."""
    section = README.read_text(encoding="utf-8").split("## Modal and R2", 1)[1]
    step = re.search(rf"^{number}\. (.*?)(?=^\d+\. |\Z)", section, re.S | re.M).group(1)
    return [c for c in re.findall(r"`([^`]+)`", step) if c.startswith("python -m bench ")]


def serve(spawned: Spawned) -> Any:
    """One warm T4 container: every job done in 3 s after a 20 s boot."""
    job = spawned.job
    trim = job["segment_data"]["trimRange"]
    frames = round((trim["end"] - trim["start"]) * 30)
    started = 1_800_000_020.0
    result = JobResult(job_id=job["job_id"], status="succeeded",
                       stages={"fetch": 0.2, "decode": 0.5, "upscale": 2.0, "encode": 0.2,
                               "upload": 0.1, "total": 3.0},
                       frames_in=frames, frames_out=frames, output_key=job["output_key"],
                       device_name="Tesla T4", model="x4plus", engine="fast", precision="fp16",
                       container_id="ta-1", started_at=started, finished_at=started + 3.0).to_dict()
    result.update(ContainerFacts(
        container_started_at=started - 18.0, gpu_name_nvidia_smi="Tesla T4", cold=True,
        model_load_seconds=15.0, container_booted_at=started - 20.0, cpu_request=4.0,
        memory_request_gib=16.0).to_dict())
    return result


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeModal:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="admin",
                 aws_secret_access_key="admin-secret").create_bucket(Bucket=BUCKET)
    isolate_env(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)  # the README's relative paths (data/first.mp4)
    for var, value in (("R2_ENDPOINT_URL", url), ("R2_BUCKET", BUCKET),
                       ("R2_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001"),
                       ("R2_SECRET_ACCESS_KEY", "s3cr3t"), ("MODAL_TOKEN_ID", "ak-test"),
                       ("MODAL_TOKEN_SECRET", "as-test")):
        monkeypatch.setenv(var, value)
    use_modal_config(monkeypatch, None)
    sdk = FakeModal(serve)
    monkeypatch.setattr(ModalBackend, "sdk", property(lambda self: sdk))
    yield sdk
    server.stop()


def test_step_7_runs_as_written(cloud: FakeModal, tmp_path: Path, capsys) -> None:
    commands = step_commands(7)
    assert [c.split()[3] for c in commands] == ["demo-clip", "estimate", "run"]
    outputs = []
    for command in commands:
        code = main(shlex.split(command)[3:])
        out, err = capsys.readouterr()
        assert code == 0, f"{command}: {err}"
        outputs.append(out)
    assert "[none]" in outputs[1]  # nothing measured on a T4 yet, as the step says
    (spawned,) = cloud.spawned
    assert spawned.options["gpu"] == "T4"
    db = Database(tmp_path / "data" / "bench.duckdb")
    runs = store_runs.list_runs(db)
    assert list(runs["status"]) == ["succeeded"]
    # "From now on `estimate` has a measured T4."
    assert main(shlex.split(commands[1])[3:]) == 0
    assert "[measured]" in capsys.readouterr().out


def test_step_7_with_a_clip_past_the_source_starts_no_container(cloud: FakeModal, capsys) -> None:
    make, _, run = step_commands(7)
    assert main(shlex.split(make)[3:]) == 0
    assert main(shlex.split(run.replace("2s:3:5", "late:5:9"))[3:]) == 2
    assert "clip late ends at 9 s, past the end of the source (6.0 s)" in capsys.readouterr().err
    assert not cloud.spawned
