"""Our computed bill of an experiment beside what Modal itself reports for the app in the same
hours, with the difference.

modal 1.6.4 has a billing report API: `modal.Workspace.from_context().billing.report(*, start,
end=None, resolution="d", tag_names=None) -> list[modal.types.BillingReportItem]`
(modal/_workspace.py, _WorkspaceBillingManager.report; modal.billing.workspace_billing_report is its
deprecated wrapper in modal/_billing.py). Each item is one billed object (an App: its
`description` is the app's name) in one interval, with `cost` and `cost_by_resource` as Decimals
(modal/types.py, BillingReportItem). start and end must be UTC (or naive, read as UTC); start is
rounded down to its interval and partial end intervals are left out, so the window asked for here
is whole hours (resolution "h") around the experiment's containers: boot of the first to the last
one's scaledown. Other experiments of the app in those hours are billed in the same rows, so our
side adds their bills, prorated to the hours, and says so.

Workspaces or tokens that may not read billing get a one-line explanation instead of numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from bench.backends.modal_backend import call_with_deadline
from bench.billing import ContainerBill, ExperimentBill
from bench.experiments import load_experiment, stored_bill
from bench.formatting import format_cost
from store import runs as store_runs
from store.db import Database
from workers.code_version import TAG as CODE_VERSION_TAG
from workers.modal_app import APP_NAME

HOUR = 3600.0


@dataclass(frozen=True)
class Reconciliation:
    """Our bill and Modal's report for the same app and hours."""

    experiment_id: str
    """The experiment reconciled."""
    app_name: str
    """The Modal app whose rows are summed."""
    start: datetime
    """First hour of the window (UTC, inclusive)."""
    end: datetime
    """End of the window (UTC, exclusive, whole hours)."""
    ours: float
    """This experiment's bill, $."""
    others: float
    """Our bills of other experiments of this app in the same hours (prorated), $."""
    other_experiments: int
    """How many other experiments that is."""
    modal_cost: float | None
    """What Modal's report says for the app in those hours, $; None when unavailable."""
    modal_by_resource: dict[str, float] = field(default_factory=dict)
    """Modal's cost per resource (GPU type, CPU, Memory, ...), $."""
    rows: int = 0
    """Report rows summed."""
    note: str | None = None
    """Why Modal's side is missing or incomplete, one line."""

    @property
    def difference(self) -> float | None:
        """Modal's cost minus ours (this experiment and the others in the window)."""
        return None if self.modal_cost is None else self.modal_cost - (self.ours + self.others)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON dict. Raises nothing."""
        return {"experiment_id": self.experiment_id, "app_name": self.app_name,
                "start": self.start.isoformat(), "end": self.end.isoformat(), "ours": self.ours,
                "others": self.others, "other_experiments": self.other_experiments,
                "modal_cost": self.modal_cost, "modal_by_resource": self.modal_by_resource,
                "rows": self.rows, "difference": self.difference, "note": self.note}


def hour_window(bill: ExperimentBill) -> tuple[datetime, datetime] | None:
    """Whole UTC hours covering every container of the bill (boot to shutdown); None without
    containers. Raises nothing."""
    if not bill.containers:
        return None
    first = min(c.booted_at for c in bill.containers)
    last = max(c.booted_at + c.lifetime_seconds for c in bill.containers)
    start = math.floor(first / HOUR) * HOUR
    end = max(start + HOUR, math.ceil(last / HOUR) * HOUR)
    return (datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc))


def cost_in_window(container: ContainerBill, start: float, end: float) -> float:
    """The container's cost prorated to the part of its lifetime inside [start, end)."""
    life = container.lifetime_seconds
    if life <= 0:
        return 0.0
    overlap = min(end, container.booted_at + life) - max(start, container.booted_at)
    return container.cost * max(0.0, overlap) / life


def other_bills(db: Database, experiment_id: str, start: datetime,
                end: datetime) -> tuple[float, int]:
    """($ of other Modal experiments' containers inside the window, how many experiments).
    Raises StorageError."""
    table = store_runs.list_experiments(db)
    since = (start - timedelta(days=1)).replace(tzinfo=None)
    candidates = table[(table["backend"] == "modal") & (table["id"] != experiment_id)
                       & (table["created_at"] >= since) & (table["created_at"] < end.replace(tzinfo=None))]
    total, count = 0.0, 0
    for other in candidates["id"]:
        bill = stored_bill(db, other)
        share = sum(cost_in_window(c, start.timestamp(), end.timestamp()) for c in bill.containers)
        if share > 0:
            total, count = total + share, count + 1
    return total, count


def modal_report(start: datetime, end: datetime, sdk: Any = None,
                 app_name: str = APP_NAME) -> tuple[float, dict[str, float], int]:
    """(cost, cost by resource, rows) of the app in Modal's hourly billing report. Raises what
    the Modal client raises."""
    if sdk is None:
        import modal as sdk
    items = sdk.Workspace.from_context().billing.report(
        start=start, end=end, resolution="h", tag_names=[CODE_VERSION_TAG])
    mine = [item for item in items if item.description == app_name]
    by_resource: dict[str, float] = {}
    for item in mine:
        for resource, cost in item.cost_by_resource.items():
            by_resource[resource] = by_resource.get(resource, 0.0) + float(cost)
    return sum(float(item.cost) for item in mine), by_resource, len(mine)


def reconcile(db: Database, experiment_id: str, sdk: Any = None, timeout: float = 60.0,
              now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Reconciliation:
    """Our bill of the experiment beside Modal's report for its hours. Modal's side degrades to a
    one-line note (no token, no permission, unreachable, hours not over yet). Raises
    InputError for an unknown experiment, StorageError."""
    experiment = load_experiment(db, experiment_id)
    bill = stored_bill(db, experiment_id)
    window = hour_window(bill)
    if window is None:
        epoch = datetime.fromtimestamp(0, timezone.utc)
        return Reconciliation(experiment_id, APP_NAME, epoch, epoch, 0.0, 0.0, 0, None,
                              note="no run of this experiment came back with its container's "
                                   "facts, so there is no bill to reconcile")
    start, end = window
    others, count = other_bills(db, experiment_id, start, end)
    base = dict(experiment_id=experiment_id, app_name=APP_NAME, start=start, end=end,
                ours=bill.billed_cost, others=others, other_experiments=count)
    if experiment.backend != "modal":
        return Reconciliation(**base, modal_cost=None,
                              note=f"a {experiment.backend} experiment: Modal did not bill it")
    try:
        cost, by_resource, rows = call_with_deadline(lambda: modal_report(start, end, sdk),
                                                     timeout, "fetching Modal's billing report")
    except Exception as exc:  # noqa: BLE001 - every failure is one line
        return Reconciliation(**base, modal_cost=None, note=explain(exc))
    note = None
    if end > now():
        note = (f"the hour ending {end:%H:%M} UTC is not over: Modal's report leaves partial hours "
                f"out, so run this again after it")
    elif rows == 0:
        note = (f"Modal's report has no rows for app {APP_NAME!r} in these hours (billing data "
                f"can lag; try again later)")
    return Reconciliation(**base, modal_cost=cost, modal_by_resource=by_resource, rows=rows,
                          note=note)


def explain(exc: BaseException) -> str:
    """One line for a failed billing report. Raises nothing."""
    from core.errors import UserError

    kind = type(exc).__name__
    text = " ".join(str(exc).split()) or kind
    if isinstance(exc, UserError):
        return f"Modal's billing report is out of reach: {text}"
    if kind in ("PermissionDeniedError", "UnimplementedError", "InvalidError", "NotFoundError"):
        return (f"this workspace or token may not read Modal's billing report ({kind}: {text}); "
                f"compare our bill with the usage page of Modal's dashboard instead")
    if kind == "AuthError":
        return f"Modal rejected the token for the billing report ({text}): run `modal token new`"
    return f"Modal's billing report failed ({kind}: {text})"


def render(rec: Reconciliation) -> str:
    """The reconciliation as the CLI prints it. Raises nothing."""
    lines = [f"experiment {rec.experiment_id} on app {rec.app_name}: "
             f"{rec.start:%Y-%m-%d %H:%M} to {rec.end:%Y-%m-%d %H:%M} UTC"]
    lines.append(f"  our bill, this experiment:        {format_cost(rec.ours)}")
    if rec.other_experiments:
        lines.append(f"  our bill, {rec.other_experiments} other experiment(s) then: "
                     f"{format_cost(rec.others)}")
    if rec.modal_cost is not None:
        parts = ", ".join(f"{k} {format_cost(v)}" for k, v in sorted(rec.modal_by_resource.items()))
        lines.append(f"  Modal's billing report for the app: {format_cost(rec.modal_cost)}"
                     + (f" ({parts})" if parts else ""))
        ours = rec.ours + rec.others
        diff = rec.difference or 0.0
        share = f" ({diff / ours:+.1%})" if ours > 0 else ""
        sign = "+" if diff >= 0 else "-"
        lines.append(f"  difference (Modal - ours):        {sign}{format_cost(abs(diff))}{share}")
    if rec.note:
        lines.append(f"  note: {rec.note}")
    return "\n".join(lines)

