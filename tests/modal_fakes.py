"""Fakes of the Modal client that hold every call to modal 1.6.4's real signatures.

Each fake method binds its arguments to `inspect.signature` of the installed modal class's own
method first (modal.Cls.with_options, modal.FunctionCall.get, modal.Dict.put, ...), so a call the
real client would reject with a TypeError fails here too, and records it in `FakeModal.calls`.
Instantiating binds the parameters to the Upscaler's own (modal.parameter) signature, spawning
binds the job to Upscaler.run's. What a call
returns comes from a `serve` hook the test provides.
"""

from __future__ import annotations

import inspect
import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import modal
import modal.exception
from modal._utils.async_utils import synchronizer

from workers import modal_app

TOKEN_ENV = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_CONFIG_PATH", "MODAL_PROFILE")
"""The variables through which modal finds a token."""


def _signature(real: Callable) -> inspect.Signature:
    return inspect.signature(real)


def constructor_signature() -> inspect.Signature:
    """The parameters Upscaler(...) takes, as modal 1.6.4 binds them (cls.py
    _get_class_constructor_signature, used by Obj._get_parameter_values)."""
    from modal.cls import _get_class_constructor_signature

    return _get_class_constructor_signature(synchronizer._translate_in(modal_app.Upscaler)._user_cls)


def run_signature() -> inspect.Signature:
    """The signature of Upscaler.run as written in workers/modal_app.py (self, job)."""
    raw_cls = synchronizer._translate_in(modal_app.Upscaler)._user_cls
    return inspect.signature(synchronizer._translate_in(raw_cls.__dict__["run"])._get_raw_f())


@dataclass
class Call:
    """One call made into the fake client."""

    name: str
    """'Cls.with_options', 'FunctionCall.get', ..."""
    args: tuple
    """Positional arguments (self left out)."""
    kwargs: dict
    """Keyword arguments."""


class FakeModal:
    """Stands in for the `modal` module in ModalBackend(sdk=...), the doctor and reconcile."""

    exception = modal.exception

    def __init__(self, serve: Callable[["Spawned"], Any] | None = None):
        self.calls: list[Call] = []
        self.serve = serve or (lambda spawned: TimeoutError())
        """spawned call -> its result (a value, or an exception to raise from get; the builtin
        TimeoutError means still running)."""
        self.on_spawn: Callable[[Spawned], None] = lambda spawned: None
        """Told of every spawn as it happens."""
        self.spawned: list[Spawned] = []
        self.dicts: dict[str, FakeDict] = {}
        self.volumes: dict[str, FakeVolume] = {}
        self.secrets: dict[str, set[str]] = {}
        self.apps: dict[str, dict[str, str]] = {}
        self.billing_items: list[Any] | BaseException = []
        self.billing_rates: dict[str, str] | BaseException = {}
        """What Workspace.billing.rates() answers: rate key -> $/s as text."""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.Cls = _ClsFactory(self)
        self.FunctionCall = _FunctionCallFactory(self)
        self.Dict = _DictFactory(self)
        self.Volume = _VolumeFactory(self)
        self.Secret = _SecretFactory(self)
        self.App = _AppFactory(self)
        self.Workspace = _WorkspaceFactory(self)

    def check(self, name: str, real: Callable, args: tuple, kwargs: dict,
              bound: bool = True) -> None:
        """Bind (placeholder self/cls when the real one takes it) and record."""
        params = list(_signature(real).parameters)
        lead = (object(),) if bound and params and params[0] in ("self", "cls") else ()
        _signature(real).bind(*lead, *args, **kwargs)  # raises TypeError on a mismatch
        with self._lock:
            self.calls.append(Call(name, args, dict(kwargs)))

    def names(self) -> set[str]:
        """Every call name made so far."""
        return {c.name for c in self.calls}

    def of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{next(self._ids)}"


# ----------------------------------------------------------------------------- Cls and calls


@dataclass
class Spawned:
    """A spawned call: its options, the class parameters and the job."""

    call_id: str
    options: dict
    params: dict
    job: dict
    cancelled: bool = False
    result: Any = None
    graph: list = field(default_factory=list)


class _ClsFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_name(self, *args: Any, **kwargs: Any) -> "_FakeCls":
        self.sdk.check("Cls.from_name", modal.Cls.from_name, args, kwargs)
        return _FakeCls(self.sdk, {})


class _FakeCls:
    def __init__(self, sdk: FakeModal, options: dict):
        self.sdk, self.options = sdk, options

    def with_options(self, *args: Any, **kwargs: Any) -> "_FakeCls":
        self.sdk.check("Cls.with_options", modal.Cls.with_options, args, kwargs)
        return _FakeCls(self.sdk, {**self.options, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> "_FakeInstance":
        constructor_signature().bind(*args, **kwargs)  # the class's modal.parameter()s
        self.sdk.calls.append(Call("Cls()", args, dict(kwargs)))
        return _FakeInstance(self.sdk, self.options, dict(kwargs))


class _FakeInstance:
    def __init__(self, sdk: FakeModal, options: dict, params: dict):
        self.run = _FakeMethod(sdk, options, params)


class _FakeMethod:
    def __init__(self, sdk: FakeModal, options: dict, params: dict):
        self.sdk, self.options, self.params = sdk, options, params

    def spawn(self, *args: Any, **kwargs: Any) -> "_FakeCall":
        self.sdk.check("Function.spawn", modal.Function.spawn, args, kwargs)
        run_signature().bind(object(), *args, **kwargs)  # Upscaler.run(self, job)
        job = (args or tuple(kwargs.values()))[0]
        spawned = Spawned(self.sdk.next_id("fc"), dict(self.options), dict(self.params), job)
        with self.sdk._lock:
            self.sdk.spawned.append(spawned)
        self.sdk.on_spawn(spawned)
        return _FakeCall(self.sdk, spawned)


class _FakeCall:
    def __init__(self, sdk: FakeModal, spawned: Spawned):
        self.sdk, self.spawned = sdk, spawned
        self.object_id = spawned.call_id

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.sdk.check("FunctionCall.get", modal.FunctionCall.get, args, kwargs)
        outcome = self.sdk.serve(self.spawned)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def cancel(self, *args: Any, **kwargs: Any) -> None:
        self.sdk.check("FunctionCall.cancel", modal.FunctionCall.cancel, args, kwargs)
        self.spawned.cancelled = True

    def get_call_graph(self, *args: Any, **kwargs: Any) -> list:
        self.sdk.check("FunctionCall.get_call_graph", modal.FunctionCall.get_call_graph, args,
                       kwargs)
        return list(self.spawned.graph)


class _FunctionCallFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_id(self, *args: Any, **kwargs: Any) -> _FakeCall:
        self.sdk.check("FunctionCall.from_id", modal.FunctionCall.from_id, args, kwargs)
        call_id = (args or (kwargs.get("function_call_id"),))[0]
        for spawned in self.sdk.spawned:
            if spawned.call_id == call_id:
                return _FakeCall(self.sdk, spawned)
        raise modal.exception.NotFoundError(f"no call {call_id}")


# ----------------------------------------------------------------------------- Dict and Volume


class FakeDict:
    """A modal.Dict in memory; put can be made to stall (an Event to wait on)."""

    def __init__(self, sdk: FakeModal | None = None, stall: threading.Event | None = None,
                 stall_seconds: float = 30.0):
        self.sdk = sdk or FakeModal()
        self.data: dict = {}
        self.puts: list[tuple[Any, Any]] = []
        self.stall, self.stall_seconds = stall, stall_seconds

    def put(self, *args: Any, **kwargs: Any) -> bool:
        self.sdk.check("Dict.put", modal.Dict.put, args, kwargs)
        if self.stall is not None:
            self.stall.wait(self.stall_seconds)
        key, value = args[0], args[1]
        self.data[key] = value
        self.puts.append((key, value))
        return True

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.sdk.check("Dict.get", modal.Dict.get, args, kwargs)
        return self.data.get(args[0], args[1] if len(args) > 1 else kwargs.get("default"))


class _DictFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_name(self, *args: Any, **kwargs: Any) -> FakeDict:
        self.sdk.check("Dict.from_name", modal.Dict.from_name, args, kwargs)
        return self.sdk.dicts.setdefault(args[0], FakeDict(self.sdk))


class FakeVolume:
    """A modal.Volume: commits counted, files listed from a local folder."""

    def __init__(self, sdk: FakeModal | None = None, folder: Path | None = None,
                 missing: bool = False):
        self.sdk = sdk or FakeModal()
        self.folder, self.missing = folder, missing
        self.commits = 0

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.sdk.check("Volume.commit", modal.Volume.commit, args, kwargs)
        self.commits += 1

    def hydrate(self, *args: Any, **kwargs: Any) -> "FakeVolume":
        self.sdk.check("Volume.hydrate", modal.Volume.hydrate, args, kwargs)
        if self.missing:
            raise modal.exception.NotFoundError("Volume 'upscale-gpu-bench-weights' not found")
        return self

    def listdir(self, *args: Any, **kwargs: Any) -> list:
        self.sdk.check("Volume.listdir", modal.Volume.listdir, args, kwargs)
        if self.folder is None or not self.folder.is_dir():
            return []
        from modal.types import FileEntry, FileEntryType

        return [FileEntry(path=p.name, type=FileEntryType.FILE, mtime=int(p.stat().st_mtime),
                          size=p.stat().st_size) for p in sorted(self.folder.iterdir())]


class _VolumeFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_name(self, *args: Any, **kwargs: Any) -> FakeVolume:
        self.sdk.check("Volume.from_name", modal.Volume.from_name, args, kwargs)
        return self.sdk.volumes.setdefault(args[0], FakeVolume(self.sdk, missing=True))


# ----------------------------------------------------------------------------- Secret, App, Workspace


class _FakeSecret:
    def __init__(self, sdk: FakeModal, name: str, required: list[str]):
        self.sdk, self.name, self.required = sdk, name, required

    def hydrate(self, *args: Any, **kwargs: Any) -> "_FakeSecret":
        self.sdk.check("Secret.hydrate", modal.Secret.hydrate, args, kwargs)
        keys = self.sdk.secrets.get(self.name)
        if keys is None:
            raise modal.exception.NotFoundError(f"Secret '{self.name}' not found")
        missing = [k for k in self.required if k not in keys]
        if missing:
            raise modal.exception.InvalidError(
                f"Secret is missing key(s): {', '.join(missing)}")
        return self


class _SecretFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_name(self, *args: Any, **kwargs: Any) -> _FakeSecret:
        self.sdk.check("Secret.from_name", modal.Secret.from_name, args, kwargs)
        return _FakeSecret(self.sdk, args[0], list(kwargs.get("required_keys") or []))


class _FakeApp:
    def __init__(self, sdk: FakeModal, name: str):
        self.sdk, self.name = sdk, name

    def get_tags(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        self.sdk.check("App.get_tags", modal.App.get_tags, args, kwargs)
        return dict(self.sdk.apps[self.name])


class _AppFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def lookup(self, *args: Any, **kwargs: Any) -> _FakeApp:
        self.sdk.check("App.lookup", modal.App.lookup, args, kwargs)
        if args[0] not in self.sdk.apps:
            raise modal.exception.NotFoundError(f"App '{args[0]}' not found")
        return _FakeApp(self.sdk, args[0])


class _FakeBilling:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def report(self, *args: Any, **kwargs: Any) -> list:
        import modal.workspace

        self.sdk.check("Workspace.billing.report", modal.workspace.WorkspaceBillingManager.report,
                       args, kwargs)
        if isinstance(self.sdk.billing_items, BaseException):
            raise self.sdk.billing_items
        return list(self.sdk.billing_items)


    def rates(self, *args: Any, **kwargs: Any) -> Any:
        import modal.workspace
        from modal._workspace import _WorkspaceBillingRates

        self.sdk.check("Workspace.billing.rates", modal.workspace.WorkspaceBillingManager.rates,
                       args, kwargs)
        if isinstance(self.sdk.billing_rates, BaseException):
            raise self.sdk.billing_rates
        # modal's own mapping: text values become Decimals as the server's answer does
        return _WorkspaceBillingRates(dict(self.sdk.billing_rates), {}, {}, "")


class _FakeWorkspace:
    def __init__(self, sdk: FakeModal):
        self.billing = _FakeBilling(sdk)


class _WorkspaceFactory:
    def __init__(self, sdk: FakeModal):
        self.sdk = sdk

    def from_context(self, *args: Any, **kwargs: Any) -> _FakeWorkspace:
        self.sdk.check("Workspace.from_context", modal.Workspace.from_context, args, kwargs)
        return _FakeWorkspace(self.sdk)


# ----------------------------------------------------------------------------- modal's own config


def use_modal_config(monkeypatch: Any, path: Path | None, profile: str | None = None) -> None:
    """Make modal.config read `path` (None: no file) the way it does at import: its own reader
    (_read_user_config) and its own choice of profile ($MODAL_PROFILE, else the active one)."""
    import os

    import modal.config as mc

    monkeypatch.setattr(mc, "user_config_path", str(path) if path else "/nonexistent/.modal.toml")
    monkeypatch.setattr(mc, "_user_config", mc._read_user_config())
    if profile is None:
        monkeypatch.delenv("MODAL_PROFILE", raising=False)
    else:
        monkeypatch.setenv("MODAL_PROFILE", profile)
    monkeypatch.setattr(mc, "_profile", os.environ.get("MODAL_PROFILE") or mc._config_active_profile())
