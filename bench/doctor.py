"""Checks before a first live run, each one line with its fix: the Modal token, the
`r2-credentials` secret (names only), the deployed app's code version against this checkout, the
R2 bucket (a HEAD), the weights Volume and the catalog's prices against the workspace's own rates
(Workspace.billing.rates()). `python -m bench doctor` prints them; the Settings page shows the same
list.

None of them starts a container or costs anything: they read Modal's metadata (Secret.from_name
with required_keys, App.lookup + App.get_tags, Volume.from_name + listdir) and HEAD the bucket.
Every network step is bounded by a deadline (modal's client blocks ~57 s when offline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bench.backends.modal_backend import call_with_deadline
from bench.backends.modal_credentials import modal_credentials
from bench.pricing import DEFAULT_PRICES, PriceTable, canonical_gpu
from core.errors import UserError, one_line
from store.config import R2_SETTINGS, StorageConfig, load_storage_config
from workers.code_version import TAG as CODE_VERSION_TAG
from workers.modal_app import (
    APP_NAME,
    CODE_VERSION,
    R2_SECRET_NAME,
    WEIGHTS_VOLUME_NAME,
)

STATUSES = ("ok", "warn", "fail", "skip")
"""ok: ready; warn: works but worth knowing; fail: a live run would fail; skip: not checked
(something it depends on failed)."""
DEPLOY = "modal deploy workers/modal_app.py"
SECRET_FIX = (f"modal secret create {R2_SECRET_NAME} " +
              " ".join(f"{var}=..." for var in R2_SETTINGS.values()))


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    """What was checked ('Modal token', 'R2 bucket', ...)."""
    status: str
    """One of STATUSES."""
    line: str
    """What was found, one line, never a secret's value."""
    fix: str | None = None
    """How to fix it, one line (None when nothing to do)."""

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"name": self.name, "status": self.status, "line": self.line, "fix": self.fix}


def _sdk(sdk: Any) -> Any:
    if sdk is not None:
        return sdk
    import modal

    return modal


def _modal_error(exc: BaseException) -> str:
    return one_line(exc) if isinstance(exc, UserError) else \
        f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def check_token() -> Check:
    """Modal credentials as the client reads them (env or the active profile)."""
    found = modal_credentials()
    if found.problem:
        return Check("Modal token", "fail", f"configuration problem: {found.problem}",
                     "fix ~/.modal.toml (`modal profile activate NAME`) or set MODAL_PROFILE")
    if not found.present:
        return Check("Modal token", "fail",
                     f"no token for profile {found.profile!r} ({found.config_path}) and none in "
                     f"the environment", "modal token new  (or set MODAL_TOKEN_ID/MODAL_TOKEN_SECRET)")
    return Check("Modal token", "ok", f"found ({found.source})")


def check_secret(sdk: Any = None, timeout: float = 20.0) -> Check:
    """The r2-credentials Secret exists with every R2 key (Modal checks the names server-side;
    no value is ever read)."""
    modal = _sdk(sdk)
    keys = list(R2_SETTINGS.values())
    try:
        call_with_deadline(lambda: modal.Secret.from_name(R2_SECRET_NAME, required_keys=keys).hydrate(),
                           timeout, "looking up the secret")
    except Exception as exc:  # noqa: BLE001 - each is one line
        if isinstance(exc, modal.exception.NotFoundError):
            return Check("R2 secret", "fail", f"no secret {R2_SECRET_NAME!r} in this workspace",
                         SECRET_FIX)
        return Check("R2 secret", "fail", f"secret {R2_SECRET_NAME!r} is not usable: "
                     f"{_modal_error(exc)}", f"it needs {', '.join(keys)}: {SECRET_FIX}")
    return Check("R2 secret", "ok", f"{R2_SECRET_NAME!r} has {', '.join(keys)} (names only)")


def check_deployment(sdk: Any = None, timeout: float = 20.0,
                     local_version: str = CODE_VERSION) -> Check:
    """The deployed App runs the code of this checkout (its code_version tag)."""
    modal = _sdk(sdk)
    try:
        tags = call_with_deadline(lambda: modal.App.lookup(APP_NAME).get_tags(), timeout,
                                  "looking up the app")
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, modal.exception.NotFoundError):
            return Check("Deployed app", "fail", f"app {APP_NAME!r} is not deployed in this "
                         f"workspace", DEPLOY)
        return Check("Deployed app", "fail", f"cannot look up app {APP_NAME!r}: "
                     f"{_modal_error(exc)}", DEPLOY)
    deployed = (tags or {}).get(CODE_VERSION_TAG)
    if deployed is None:
        return Check("Deployed app", "warn", f"app {APP_NAME!r} carries no code version (deployed "
                     f"before the stamp existed); this checkout is {local_version}", DEPLOY)
    if deployed != local_version:
        return Check("Deployed app", "fail", f"deployed code {deployed} differs from this "
                     f"checkout's {local_version}: runs would use the old worker", DEPLOY)
    return Check("Deployed app", "ok", f"app {APP_NAME!r} runs this checkout's code ({deployed})")


def check_volume(sdk: Any = None, timeout: float = 20.0) -> Check:
    """The weights Volume exists; which weight files it caches."""
    modal = _sdk(sdk)

    def look() -> list:
        volume = modal.Volume.from_name(WEIGHTS_VOLUME_NAME)
        volume.hydrate()
        return list(volume.listdir("/"))

    try:
        entries = call_with_deadline(look, timeout, "looking up the weights volume")
    except Exception as exc:  # noqa: BLE001
        if isinstance(exc, modal.exception.NotFoundError):
            return Check("Weights volume", "warn", f"volume {WEIGHTS_VOLUME_NAME!r} does not exist "
                         f"yet; deploying creates it and the first cold container downloads the "
                         f"weights into it", DEPLOY)
        return Check("Weights volume", "fail", f"cannot read volume {WEIGHTS_VOLUME_NAME!r}: "
                     f"{_modal_error(exc)}", DEPLOY)
    names = sorted(str(getattr(e, "path", e)).rsplit("/", 1)[-1] for e in entries)
    if not names:
        return Check("Weights volume", "ok", f"volume {WEIGHTS_VOLUME_NAME!r} exists, empty: the "
                     f"first cold container of each model downloads its weights (seconds)")
    return Check("Weights volume", "ok", f"volume {WEIGHTS_VOLUME_NAME!r} caches "
                 f"{', '.join(names)}")


def check_bucket(config: StorageConfig | None = None,
                 store: Callable[[StorageConfig], Any] | None = None) -> Check:
    """The R2 bucket answers a HEAD with these credentials."""
    try:
        config = config or load_storage_config()
    except UserError as exc:
        return Check("R2 bucket", "fail", one_line(exc), "fix .streamlit/secrets.toml [r2] or the "
                     "R2_* environment variables")
    if config.kind != "r2":
        missing = ", ".join(config.missing()) or "BENCH_STORAGE=r2"
        return Check("R2 bucket", "fail", f"no R2 storage configured here (missing {missing}); "
                     f"Modal workers read and write R2",
                     "set R2_ENDPOINT_URL, R2_BUCKET, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY "
                     "(or [r2] in .streamlit/secrets.toml)")
    if store is None:
        from store.r2 import R2Store

        store = R2Store
    try:
        store(config).check_bucket()
    except UserError as exc:
        return Check("R2 bucket", "fail", one_line(exc), "check the bucket name, the endpoint and "
                     "that the R2 API token has Object Read & Write on it")
    return Check("R2 bucket", "ok", f"{config.describe()} answers")


RATE_TOLERANCE = 0.01
"""Relative difference below which a catalog rate counts as the workspace's."""


def _rate_target(key: str, prices: PriceTable) -> tuple[str, float] | None:
    """(what a workspace rate key prices, the catalog's $/s for it): a catalog GPU named by one of
    the key's parts ('gpu.h100', 'A100-80GB'), CPU cores, or memory GiB; None otherwise."""
    parts = [p for p in re.split(r"[\s._/:]+", key.strip()) if p]
    for part in parts:
        try:
            card = canonical_gpu(part, prices)
        except UserError:
            continue
        return card, prices.rate(card)
    lowered = key.lower()
    if "cpu" in lowered:
        return "CPU core", prices.cpu_core_per_second
    if "mem" in lowered:
        return "memory GiB", prices.memory_gib_per_second
    return None


def rate_differences(prices: PriceTable, rates: Mapping[str, Any]
                     ) -> tuple[list[str], list[str]]:
    """(where the catalog differs from the workspace's $/s rates by more than RATE_TOLERANCE, one
    phrase each; the workspace's keys the catalog has no counterpart for). Raises nothing."""
    differ, unknown = [], []
    for key in rates:
        target = _rate_target(str(key), prices)
        try:
            theirs = float(rates[key])
        except (TypeError, ValueError, ArithmeticError):
            theirs = None
        if target is None or theirs is None:
            unknown.append(str(key))
            continue
        name, ours = target
        if ours <= 0 or abs(theirs / ours - 1) > RATE_TOLERANCE:
            change = f" ({theirs / ours - 1:+.0%})" if ours > 0 else ""
            differ.append(f"{name}: catalog ${ours:.8g}/s, workspace ${theirs:.8g}/s{change}")
    return differ, unknown


def check_rates(prices: PriceTable, sdk: Any = None, timeout: float = 20.0) -> Check:
    """The catalog (or the saved prices) against Workspace.billing.rates(). Raises nothing."""
    modal = _sdk(sdk)
    try:
        rates = call_with_deadline(lambda: modal.Workspace.from_context().billing.rates(),
                                   timeout, "reading the workspace's rates")
    except Exception as exc:  # noqa: BLE001 - one line, whatever the client raises
        return Check("Prices", "warn", f"cannot read the workspace's rates: {_modal_error(exc)}",
                     "costs use the catalog's published prices (bench/pricing.py)")
    differ, unknown = rate_differences(prices, rates)
    extra = f"; not in the catalog: {', '.join(unknown)}" if unknown else ""
    if differ:
        return Check("Prices", "warn", f"the workspace bills differently: {'; '.join(differ)}"
                     f"{extra}", "set the workspace's rates on the Settings page (prices)")
    return Check("Prices", "ok", f"the catalog matches the workspace's {len(rates)} rate(s)"
                 f"{extra}")


def run_checks(sdk: Any = None, config: StorageConfig | None = None, timeout: float = 20.0,
               store: Callable[[StorageConfig], Any] | None = None,
               prices: PriceTable | None = None) -> list[Check]:
    """Every check in order (`prices`: what costs runs, the catalog unless given); the Modal ones
    are skipped without a token. Raises nothing."""
    token = check_token()
    checks = [token]
    if token.failed:
        checks += [Check(name, "skip", "not checked: no usable Modal token", None)
                   for name in ("R2 secret", "Deployed app", "Weights volume", "Prices")]
    else:
        checks += [check_secret(sdk, timeout), check_deployment(sdk, timeout),
                   check_volume(sdk, timeout), check_rates(prices or DEFAULT_PRICES, sdk, timeout)]
    checks.append(check_bucket(config, store))
    return checks


def render(checks: list[Check]) -> str:
    """The checks as the CLI prints them: one line each, the fix indented below a failure or a
    warning. Raises nothing."""
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}
    lines = []
    for check in checks:
        lines.append(f"{marks[check.status]}  {check.name}: {check.line}")
        if check.fix and check.status in ("fail", "warn"):
            lines.append(f"      fix: {check.fix}")
    return "\n".join(lines)
