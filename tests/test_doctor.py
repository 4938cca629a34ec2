"""`python -m bench doctor` and the Settings panel: each check one line with its fix, against a
fake Modal client held to modal 1.6.4's signatures (Secret.from_name with required_keys,
App.lookup + get_tags, Volume.from_name + hydrate + listdir)."""

from __future__ import annotations

from pathlib import Path

import modal.exception
import pytest

from bench import doctor
from bench.doctor import Check, check_bucket, render, run_checks
from core.errors import StorageError
from store.config import R2_SETTINGS, StorageConfig
from tests.modal_fakes import FakeModal, FakeVolume, use_modal_config
from tests.ui_helpers import app, assert_no_exception, bench_env  # noqa: F401
from workers.modal_app import APP_NAME, CODE_VERSION, R2_SECRET_NAME, WEIGHTS_VOLUME_NAME

R2 = StorageConfig(kind="r2", endpoint_url="https://acct.r2.cloudflarestorage.com", bucket="b",
                   access_key_id="KEYID", secret_access_key="a-secret-value-never-shown")


class Bucket:
    def __init__(self, error: str | None = None):
        self.error = error

    def __call__(self, config: StorageConfig) -> "Bucket":
        return self

    def check_bucket(self) -> None:
        if self.error:
            raise StorageError(self.error)


def ready(tmp_path: Path) -> FakeModal:
    sdk = FakeModal()
    sdk.secrets[R2_SECRET_NAME] = set(R2_SETTINGS.values())
    sdk.apps[APP_NAME] = {"code_version": CODE_VERSION}
    cached = tmp_path / "volume"
    cached.mkdir()
    (cached / "RealESRGAN_x4plus.pth").write_bytes(b"w")
    sdk.volumes[WEIGHTS_VOLUME_NAME] = FakeVolume(sdk, folder=cached)
    sdk.billing_rates = {"gpu.t4": "0.000164", "gpu.h100": "0.001097", "cpu.core": "0.0000131",
                         "memory.gib": "0.00000222"}
    return sdk


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_everything_ready(modal_token: None, tmp_path: Path) -> None:
    sdk = ready(tmp_path)
    checks = run_checks(sdk, R2, store=Bucket())
    assert [c.status for c in checks] == ["ok"] * 6, render(checks)
    found = by_name(checks)
    assert found["Modal token"].line.startswith("found (environment")
    assert "RealESRGAN_x4plus.pth" in found["Weights volume"].line
    assert CODE_VERSION in found["Deployed app"].line
    (secret,) = sdk.of("Secret.from_name")
    assert secret.args == (R2_SECRET_NAME,)
    assert sorted(secret.kwargs["required_keys"]) == sorted(R2_SETTINGS.values())
    assert {"App.lookup", "App.get_tags", "Volume.from_name", "Volume.hydrate", "Volume.listdir",
            "Secret.hydrate"} <= sdk.names()
    text = render(checks)
    assert "a-secret-value-never-shown" not in text and "KEYID" not in text


def test_each_failure_says_how_to_fix_it(modal_token: None, tmp_path: Path) -> None:
    sdk = FakeModal()  # nothing deployed, no secret, no volume
    found = by_name(run_checks(sdk, R2, store=Bucket("R2 has no bucket b at https://acct...")))
    assert found["R2 secret"].status == "fail"
    assert found["R2 secret"].fix.startswith(f"modal secret create {R2_SECRET_NAME} R2_ENDPOINT_URL=...")
    assert found["Deployed app"].status == "fail"
    assert found["Deployed app"].fix == "modal deploy workers/modal_app.py"
    assert found["Weights volume"].status == "warn"
    assert found["R2 bucket"].status == "fail" and "no bucket" in found["R2 bucket"].line

    sdk.secrets[R2_SECRET_NAME] = {"R2_BUCKET"}
    sdk.apps[APP_NAME] = {"code_version": "v000000000000"}
    found = by_name(run_checks(sdk, R2, store=Bucket()))
    assert "R2_ENDPOINT_URL" in found["R2 secret"].line and found["R2 secret"].status == "fail"
    assert found["Deployed app"].status == "fail"
    assert f"deployed code v000000000000 differs from this checkout's {CODE_VERSION}" in \
        found["Deployed app"].line
    sdk.apps[APP_NAME] = {}
    assert doctor.check_deployment(sdk).status == "warn"


def test_without_a_token_modal_checks_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    use_modal_config(monkeypatch, None)
    sdk = FakeModal()
    checks = run_checks(sdk, StorageConfig(), store=Bucket())
    assert [c.status for c in checks] == ["fail", "skip", "skip", "skip", "skip", "fail"]
    assert checks[0].fix.startswith("modal token new")
    assert not sdk.calls  # nothing was asked of Modal
    assert "missing R2_ENDPOINT_URL" in checks[-1].line
    text = render(checks)
    assert text.splitlines()[0].startswith("FAIL  Modal token: no token for profile 'default'")
    assert "      fix: modal token new" in text


def test_bucket_check_against_an_unreachable_endpoint(tmp_path: Path) -> None:
    config = StorageConfig(kind="r2", endpoint_url="http://127.0.0.1:9", bucket="b",
                           access_key_id="k", secret_access_key="s3cr3t-s3cr3t")
    result = check_bucket(config)
    assert result.status == "fail" and "cannot reach the R2 endpoint" in result.line
    assert "s3cr3t-s3cr3t" not in result.line


def test_settings_page_runs_the_checks(bench_env) -> None:
    at = app("ui/settings_page.py")
    assert_no_exception(at)
    at.button(key="settings_doctor").click().run()
    assert_no_exception(at)
    errors = [e.value for e in at.error]
    assert any("Modal token" in e for e in errors) and any("R2 bucket" in e for e in errors)
    assert any("modal token new" in c.value for c in at.caption)


def test_prices_are_compared_with_the_workspaces_own_rates(modal_token: None, tmp_path: Path) -> None:
    sdk = ready(tmp_path)
    sdk.billing_rates = {"gpu.L4": "0.000240", "gpu.a100-80gb": "0.000694",
                         "cpu.core": "0.0000393", "sandbox.egress": "0.1"}
    check = by_name(run_checks(sdk, R2, store=Bucket()))["Prices"]
    assert check.status == "warn"
    assert "L4: catalog $0.000222/s, workspace $0.00024/s (+8%)" in check.line
    assert "CPU core: catalog $1.31e-05/s, workspace $3.93e-05/s (+200%)" in check.line
    assert "A100-80GB" not in check.line and "not in the catalog: sandbox.egress" in check.line
    assert sdk.of("Workspace.billing.rates") and sdk.of("Workspace.from_context")
    sdk.billing_rates = modal.exception.AuthError("token may not read billing")
    check = doctor.check_rates(doctor.DEFAULT_PRICES, sdk)
    assert check.status == "warn" and "cannot read the workspace's rates" in check.line
