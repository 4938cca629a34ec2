"""Stored experiments, read once for everyone: an experiment record's Plan and PriceTable (the
orchestrator runs from them), its runs as analysis Measurements, its bill (bench.billing), and the
analysis of an experiment or of any selection of runs (the CLI, the Run page and the Compare page)
on either cost basis: steady state (the default) or this experiment's bill.

Runs are read as the store hands them out: rows of store.runs.list_runs (a DataFrame, or the same
columns as mappings), turned into Measurements in one step; nothing is renamed on the way.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping, Sequence

import pandas as pd

from bench.analysis import DEFAULT_TOLERANCE, Analysis, Measurement, analyse, gpu_order
from bench.billing import BASES, DEFAULT_BASIS, ExperimentBill, experiment_bill
from bench.e6 import DEFAULT_FPS
from bench.formatting import as_finite as _number
from bench.formatting import repeat_label
from bench.plan import Plan, candidate_label
from bench.pricing import DEFAULT_PRICES, PriceTable, canonical_gpu, gpu_for_device
from core.errors import InputError
from core.jsonsafe import json_safe
from core.resources import DEFAULT_SCALEDOWN_WINDOW_SECONDS
from core.status import ACTIVE_STATUSES
from store import runs as store_runs
from store.db import Database
from store.runs import ExperimentRow

Runs = pd.DataFrame | Sequence[Mapping[str, Any]]
"""Stored runs: a list_runs DataFrame, or its rows as mappings (the store's column names)."""


# --------------------------------------------------------------------------- the experiment record


def load_experiment(db: Database, experiment_id: str) -> ExperimentRow:
    """The stored experiment. Raises InputError for an unknown id, StorageError."""
    row = store_runs.get_experiment(db, experiment_id)
    if row is None:
        raise InputError(f"no experiment {experiment_id!r} in {db.path}")
    return row


def _parsed(value: Any) -> Any:
    """A stored JSON column (text, or already a dict/list) as Python; None when unreadable."""
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, (dict, list)) else None


def plan_dict(experiment: ExperimentRow | None) -> dict[str, Any]:
    """The stored plan as a dict ({} when there is none): a Plan's to_dict(), or the config of an
    imported results file. Raises nothing."""
    plan = _parsed(experiment.plan_json) if experiment is not None else None
    return dict(plan) if isinstance(plan, Mapping) else {}


def plan_of(experiment: ExperimentRow) -> Plan:
    """The Plan the experiment was created from. Raises InputError when the record holds no
    runnable plan (e.g. an imported results file)."""
    return Plan.from_dict(plan_dict(experiment))


def plan_gpus(experiment: ExperimentRow | None) -> list[str]:
    """The labels of the plan's GPUs in plan order (the first is the baseline); [] when the plan
    names none. Raises nothing."""
    labels = [g.get("label") if isinstance(g, Mapping) else g
              for g in plan_dict(experiment).get("gpus") or ()]
    return [str(g) for g in labels if g]


def plan_fps(experiment: ExperimentRow | None) -> float:
    """Frames per second of the plan's clips (DEFAULT_FPS when it names none). Raises nothing."""
    fps = _number(plan_dict(experiment).get("fps"))
    return fps if fps and fps > 0 else DEFAULT_FPS


def prices_of(experiment: ExperimentRow | None) -> PriceTable:
    """The price table stored with the experiment (price_table_from; an imported file's flat
    pricing is dated by the experiment's price date); the catalog when there is none. Raises
    InputError for a malformed stored table."""
    raw = _parsed(experiment.price_table_json) if experiment is not None else None
    return price_table_from(raw, experiment.price_table_date if experiment is not None else None)


FILE_PRICES_SOURCE = "the results file's own pricing"
"""Where the prices of an imported results file come from (GPUs it does not price: the catalog)."""


def price_table_from(raw: Any, date: str | None = None) -> PriceTable:
    """A stored price table: a PriceTable dict, or a flat {GPU: $/s} map as an imported E6 file
    has (applied over the catalog, dated `date` (the file's) and sourced as the file's pricing,
    never as a user override; names the catalog does not know are left to the runs' own
    cost_gpu). Else the catalog.

    Raises InputError for a malformed PriceTable dict."""
    if isinstance(raw, PriceTable):
        return raw
    if not isinstance(raw, Mapping):
        return DEFAULT_PRICES
    if "gpus" in raw:
        return PriceTable.from_dict(raw)
    known = {}
    for gpu, rate in raw.items():
        try:
            known[canonical_gpu(str(gpu))] = rate
        except InputError:
            continue
    table = DEFAULT_PRICES.with_overrides(known)
    return replace(table, date=date or "unknown date",
                   source=f"{FILE_PRICES_SOURCE} (other GPUs: catalog of {DEFAULT_PRICES.date})")


# --------------------------------------------------------------------------- runs -> measurements


def run_records(runs: Runs) -> list[dict[str, Any]]:
    """Each stored run as a JSON-safe dict of its columns (NaN and NaT -> None, numpy scalars ->
    Python, timestamps -> ISO text). Raises nothing."""
    rows = runs.to_dict("records") if isinstance(runs, pd.DataFrame) else runs
    return [{k: json_safe(v) for k, v in row.items()} for row in rows]


COST_SECONDS = ("billed_seconds", "total_seconds", "client_wall_seconds")
"""The columns a run's stored cost_gpu/cost_all_in were computed from, first known wins."""


def measurements_from_runs(runs: Runs, prices: PriceTable = DEFAULT_PRICES,
                           basis: str = DEFAULT_BASIS,
                           billed: Mapping[str, float] | None = None) -> list[Measurement]:
    """One Measurement per stored run, read off its columns.

    seconds on the 'steady' basis: steady_seconds (the job on a warm worker), else as stored for
    the cost (COST_SECONDS: billed, total, client wall; older rows and imports). On the 'billed'
    basis: `billed` {run id: seconds} (bench.billing's run_seconds: the job plus its share of its
    container's boot, idle and tail), else COST_SECONDS. rate ($/s), first known of: the table's
    rate of price_gpu; of the card matching device_name; of the gpu label itself (Modal runs);
    cost_gpu / seconds (e.g. CPU runs priced by core-seconds). all_in_rate: cost_all_in over the
    seconds it was computed from.

    Raises InputError for an unknown basis, a run without gpu/clip, or a succeeded run without
    a price."""
    if basis not in BASES:
        raise InputError(f"unknown cost basis {basis!r}; choose one of {', '.join(BASES)}")
    out = []
    for i, run in enumerate(run_records(runs)):
        gpu, clip = run.get("gpu"), run.get("clip")
        if not gpu or not clip:
            raise InputError(f"run {i} has no gpu or clip")
        status = str(run.get("status") or "unknown")
        frames = _int(run.get("frames_out")) if status == "succeeded" else 0
        frames = frames or _int(run.get("frames_expected"))
        cost_seconds = _first_number(run, COST_SECONDS)
        if basis == "steady":
            seconds = _first_number(run, ("steady_seconds", *COST_SECONDS))
        else:
            seconds = _number((billed or {}).get(str(run.get("id")))) or cost_seconds
        rate = _rate(run, cost_seconds, prices)
        if rate is None:
            if status == "succeeded":
                raise InputError(f"run of {gpu} on {clip} has no price: give its card "
                                 f"(e.g. cuda:0=T4) or a rate")
            rate = 0.0
        all_in = _number(run.get("cost_all_in"))
        error = run.get("error")
        if status in ACTIVE_STATUSES:
            error = f"run {status}, not finished"
        elif status != "succeeded" and not error:
            error = f"run {status}"
        out.append(Measurement(
            gpu=str(gpu), clip=str(clip), frames=frames, seconds=seconds, status=status, rate=rate,
            repeat=_int(run.get("repeat_index")), cold=bool(run.get("cold")),
            error=str(error) if error else None,
            all_in_rate=(all_in / cost_seconds) if all_in is not None and cost_seconds else None,
        ))
    return out


def _rate(run: Mapping[str, Any], seconds: float | None, prices: PriceTable) -> float | None:
    for card in (run.get("price_gpu"), gpu_for_device(str(run.get("device_name") or "")),
                 run.get("gpu")):
        if card:
            try:
                return prices.rate(str(card))
            except InputError:
                continue
    cost = _number(run.get("cost_gpu"))
    if cost is not None and seconds:
        return cost / seconds
    return None


def _int(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def _first_number(run: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        value = _number(run.get(key))
        if value is not None:
            return value
    return None


def label_variants(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Runs whose gpu label also names the model and/or engine when the runs differ in them
    ('T4 · x4plus', 'cpu · fast', as plan.candidate_label), so the analysis compares each GPU x
    model x engine instead of pooling them as repeats. The catalog card for the price is kept in
    price_gpu. Runs that all share model and engine come back as given. Raises nothing."""
    models = {r.get("model") for r in runs}
    engines = {r.get("engine") for r in runs}
    if len(models) < 2 and len(engines) < 2:
        return runs
    out = []
    for run in runs:
        run = dict(run)
        run["price_gpu"] = run.get("price_gpu") or run["gpu"]
        run["gpu"] = candidate_label(str(run["gpu"]), run.get("model"), run.get("engine"),
                                     len(models) > 1, len(engines) > 1)
        out.append(run)
    return out


def run_titles(runs: Runs) -> dict[str, str]:
    """Run id -> 'cpu · fast · 0.3s · repeat 1': the candidate (label_variants over these runs),
    the clip and the repeat, as the CLI, its log and the dashboard name a run. Raises nothing."""
    records = label_variants(run_records(runs))
    return {str(r.get("id")): " · ".join(p for p in (str(r.get("gpu")), str(r.get("clip")),
                                                      repeat_label(r.get("repeat_index"))) if p)
            for r in records}


def short_id(run_id: Any) -> str:
    """The first 8 characters of an id: how logs and tables name a run or experiment."""
    return str(run_id or "")[:8]


# --------------------------------------------------------------------------- the bill


def bill_of(experiment: ExperimentRow | None, runs: Runs,
            prices: PriceTable | None = None) -> ExperimentBill:
    """The bill of an experiment's runs (bench.billing): a Modal experiment's containers idle its
    plan's scaledown window after their last job; local worker processes exit when done (no
    tail). Raises InputError for a malformed stored price table or window."""
    prices = prices or prices_of(experiment)
    plan = plan_dict(experiment)
    modal = experiment is not None and experiment.backend == "modal"
    window = _number(plan.get("scaledown_window_seconds"))
    window = (DEFAULT_SCALEDOWN_WINDOW_SECONDS if window is None else window) if modal else 0.0
    reuse = plan.get("container_reuse") if modal else None
    return experiment_bill(run_records(runs), prices,
                           lambda run: _rate(run, _first_number(run, COST_SECONDS), prices),
                           window, reuse)


# --------------------------------------------------------------------------- the analysis


def plan_candidates(experiment: ExperimentRow | None) -> list[str]:
    """The plan's candidates in order (Plan.candidates: each GPU x variant; the first is the
    baseline); the plan's GPU labels when the record holds no runnable plan. Raises nothing."""
    try:
        return plan_of(experiment).candidates() if experiment is not None else []
    except InputError:
        return plan_gpus(experiment)


def baseline_of(experiment: ExperimentRow | None,
                measurements: Sequence[Measurement]) -> str | None:
    """The baseline: the plan's first candidate that has runs, else the first GPU of the runs.
    Raises nothing."""
    gpus = gpu_order(measurements)
    for label in plan_candidates(experiment):
        if label in gpus:
            return label
    return gpus[0] if gpus else None


def analyse_measurements(experiment: ExperimentRow | None, measurements: Sequence[Measurement],
                         tolerance: float = DEFAULT_TOLERANCE,
                         baseline: str | None = None) -> Analysis:
    """The analysis of an experiment's measurements (baseline: the one given, else the plan's
    first GPU; fps: the plan's). Raises InputError when no run succeeded, the baseline has no
    runs or the tolerance is bad."""
    return analyse(measurements, baseline or baseline_of(experiment, measurements), tolerance,
                   plan_fps(experiment))


def analyse_runs(experiment: ExperimentRow | None, runs: Runs,
                 tolerance: float = DEFAULT_TOLERANCE, basis: str = DEFAULT_BASIS,
                 baseline: str | None = None) -> Analysis:
    """The analysis of stored runs, priced by the experiment's price table, on a cost basis
    (BASES: 'steady' or 'billed').

    Raises InputError for an unknown basis, when no run succeeded, a succeeded run has no price,
    or the tolerance is bad."""
    prices = prices_of(experiment)
    billed = bill_of(experiment, runs, prices).run_seconds if basis == "billed" else None
    measurements = measurements_from_runs(runs, prices, basis, billed)
    return analyse_measurements(experiment, measurements, tolerance, baseline)


Outcome = tuple[Analysis | None, str | None, pd.DataFrame]
"""(the analysis or None, why there is none, the runs analysed)."""


def analyse_experiment(db: Database, experiment_id: str, tolerance: float = DEFAULT_TOLERANCE,
                       basis: str = DEFAULT_BASIS, baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of one experiment on a cost basis; runs of different
    models/engines are told apart as in label_variants. Raises InputError for an unknown id,
    StorageError."""
    experiment = load_experiment(db, experiment_id)
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    if runs.empty:
        return None, "this experiment has no runs", runs
    return (*_analysed(experiment, runs, tolerance, basis, baseline), runs)


def analyse_selection(db: Database, run_ids: Sequence[str], tolerance: float = DEFAULT_TOLERANCE,
                      basis: str = DEFAULT_BASIS, baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of a selection of runs, possibly from several
    experiments. The last run's experiment supplies the plan (baseline GPU, fps) and price table.
    Raises StorageError."""
    runs = store_runs.list_runs(db, run_ids=list(run_ids))
    if runs.empty:
        return None, "none of the selected runs is in the database any more", runs
    experiment = load_experiment(db, str(runs["experiment_id"].iloc[-1]))
    return (*_analysed(experiment, runs, tolerance, basis, baseline), runs)


def analyse_experiments(db: Database, experiment_ids: Sequence[str],
                        tolerance: float = DEFAULT_TOLERANCE, basis: str = DEFAULT_BASIS,
                        baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of several experiments side by side: a candidate that
    more than one of them has is told apart by its experiment's name ('cpu · fast · nightly').
    The first experiment supplies the plan (fps, default baseline) and the price table. Raises
    InputError for an unknown id, StorageError."""
    chosen = [load_experiment(db, i) for i in dict.fromkeys(experiment_ids)]
    runs = pd.concat([store_runs.list_runs(db, experiment_id=e.id) for e in chosen],
                     ignore_index=True)
    if runs.empty:
        return None, "these experiments have no runs", runs
    records = label_variants(run_records(runs))
    owners: dict[str, set[str]] = {}
    for record in records:
        owners.setdefault(record["gpu"], set()).add(record["experiment_id"])
    names = [e.name for e in chosen]
    tags = {e.id: e.name if names.count(e.name) == 1 else f"{e.name} [{short_id(e.id)}]"
            for e in chosen}
    for record in records:
        if len(owners[record["gpu"]]) > 1:
            record["gpu"] = f"{record['gpu']} · {tags[record['experiment_id']]}"
    return (*_analysed(chosen[0], records, tolerance, basis, baseline), runs)


def _analysed(experiment: ExperimentRow, runs: pd.DataFrame | list[dict[str, Any]],
              tolerance: float, basis: str = DEFAULT_BASIS,
              baseline: str | None = None) -> tuple[Analysis | None, str | None]:
    """The analysis of stored runs (a DataFrame, labelled here) or of records already labelled."""
    records = label_variants(run_records(runs)) if isinstance(runs, pd.DataFrame) else runs
    try:
        return analyse_runs(experiment, records, tolerance, basis, baseline), None
    except InputError as exc:
        return None, str(exc)
