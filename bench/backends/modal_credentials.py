"""Whether Modal credentials are configured, as the Modal client itself will read them.

modal 1.6.4 (modal/config.py) resolves every setting as: the environment variable MODAL_<KEY>,
else the key in the *active profile* of the config file ($MODAL_CONFIG_PATH, else ~/.modal.toml),
where the profile is $MODAL_PROFILE, else the one marked `active = true`, else "default"
(`_profile`, `_config_active_profile`). `Config.get(key)` does exactly that, so this module asks it
instead of parsing the file: a token in an inactive profile does not count, a token in the
environment does, and OAuth credentials (MODAL_OAUTH_*) count too. A broken file or two active
profiles are problems the client would raise at first use (`_check_config`); they are reported
here as one line. Nothing here ever returns a token's value, and nothing touches the network.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.errors import BackendError

NO_TOKEN_MESSAGE = ("no Modal token: run `modal token new` or set "
                    "MODAL_TOKEN_ID/MODAL_TOKEN_SECRET")
"""What a run without credentials fails with."""


@dataclass(frozen=True)
class ModalCredentials:
    """Where the Modal client will find credentials (never the credentials themselves)."""

    present: bool
    """Whether a complete set is configured (token id + secret, or OAuth)."""
    source: str
    """'environment', "profile 'NAME' in PATH", or '' when absent."""
    profile: str
    """The profile the client uses ($MODAL_PROFILE, the active one, or 'default')."""
    config_path: str
    """The config file the client reads."""
    problem: str | None = None
    """Why the configuration is unusable (two active profiles, unreadable file), else None."""

    def describe(self) -> str:
        """One line for the Settings page and the doctor. Raises nothing."""
        if self.problem:
            return f"Modal configuration problem: {self.problem}"
        if self.present:
            return f"Modal token found ({self.source})"
        return (f"{NO_TOKEN_MESSAGE} (profile {self.profile!r} of {self.config_path} has no "
                f"token)")


def config_path() -> Path:
    """The config file the Modal client reads: $MODAL_CONFIG_PATH, else ~/.modal.toml."""
    return Path(os.environ.get("MODAL_CONFIG_PATH") or Path.home() / ".modal.toml")


def config_problem() -> str | None:
    """Why the Modal config file is unusable (not UTF-8, not TOML, a value outside a profile's
    table, as modal/config.py refuses them at import, with a banner), read without importing
    modal; None when it is absent or readable. Raises nothing."""
    path = config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else " ".join(str(exc).split())[:200]
        return f"cannot read the Modal configuration {path}: {reason}"
    if not all(isinstance(value, dict) for value in data.values()):
        return f"the Modal configuration {path} must hold one [table] per profile"
    return None


def modal_credentials() -> ModalCredentials:
    """The credentials the Modal client would use now, read through modal.config. Raises
    nothing."""
    problem = config_problem()
    if problem:  # importing modal now would print its banner and raise
        return ModalCredentials(False, "", os.environ.get("MODAL_PROFILE") or "default",
                                str(config_path()), problem=problem)
    try:
        import modal.config as mc
    except Exception as exc:  # noqa: BLE001 - an unreadable ~/.modal.toml raises at import
        return ModalCredentials(False, "", os.environ.get("MODAL_PROFILE") or "default",
                                os.environ.get("MODAL_CONFIG_PATH") or "~/.modal.toml",
                                problem=" ".join(str(exc).split()))
    profile = str(getattr(mc, "_profile", None) or "default")
    path = str(getattr(mc, "user_config_path", "~/.modal.toml"))
    problem = None
    check = getattr(mc, "_check_config", None)
    if check is not None:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - modal.exception.InvalidError
            problem = " ".join(str(exc).split())

    def setting(key: str, use_env: bool = True) -> bool:
        try:
            return bool(mc.config.get(key, use_env=use_env))
        except Exception:  # noqa: BLE001 - an invalid value counts as absent
            return False

    token = setting("token_id") and setting("token_secret")
    oauth = (setting("oauth_refresh_token") and setting("oauth_client_id")
             and (setting("oauth_client_secret") or setting("oauth_jwt_key")))
    if not (token or oauth):
        return ModalCredentials(False, "", profile, path, problem)
    if not token:
        source = "OAuth settings MODAL_OAUTH_*"
    elif os.environ.get("MODAL_TOKEN_ID") and os.environ.get("MODAL_TOKEN_SECRET"):
        source = "environment MODAL_TOKEN_ID/MODAL_TOKEN_SECRET"
    elif os.environ.get("MODAL_TOKEN_ID") or os.environ.get("MODAL_TOKEN_SECRET"):
        source = f"environment and profile {profile!r} in {path}"
    else:
        source = f"profile {profile!r} in {path}"
    return ModalCredentials(True, source, profile, path, problem)


def modal_token_present() -> bool:
    """Whether the Modal client has usable credentials. Raises nothing."""
    found = modal_credentials()
    return found.present and found.problem is None


def require_token() -> None:
    """Raise BackendError when the Modal client has no usable credentials (NO_TOKEN_MESSAGE, or
    the configuration problem)."""
    found = modal_credentials()
    if found.problem:
        raise BackendError(f"Modal configuration problem: {found.problem}")
    if not found.present:
        raise BackendError(NO_TOKEN_MESSAGE)
