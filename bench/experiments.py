"""Stored experiments, read once for everyone: an experiment record's Plan and PriceTable (the
orchestrator runs from them), its runs with their figures (read_runs: candidate, job seconds, fps,
costs, each run priced by its own experiment's card), their bill (bench.billing), and the
analysis of an experiment or of any selection of runs on either cost basis: steady state (job
seconds, the default) or this experiment's bill. Every view reads runs through read_runs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping, Sequence

import pandas as pd

from bench.analysis import DEFAULT_TOLERANCE, Analysis, Measurement, analyse, gpu_order
from bench.billing import BASES, DEFAULT_BASIS, ExperimentBill, experiment_bill
from bench.e6 import DEFAULT_FPS
from bench.figures import figures_of, file_rates_of
from bench.formatting import as_finite as _number
from bench.formatting import repeat_label
from bench.plan import Plan, candidate_label
from bench.pricing import DEFAULT_PRICES, PriceTable, canonical_gpu
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


def read_runs(runs: Runs, experiments: ExperimentRow | Mapping[str, ExperimentRow] | None
              ) -> list[dict[str, Any]]:
    """Stored runs as every view reads them: run_records plus the RunFigures keys (candidate,
    device, price_card, job_seconds, startup_seconds, fps, rate, all_in_rate, cost, cost_all_in),
    each run priced by its own experiment's stored price card (`experiments`: the one experiment,
    or experiment id -> its record for a selection across experiments). The stored fps, cost_gpu
    and cost_all_in columns are replaced by the figures, so no reader sees another definition.
    Candidates tell variants apart when these runs differ in model or engine (candidate_labels).
    Raises InputError for a malformed stored price table."""
    records = run_records(runs)
    labels = candidate_labels(records)
    tables: dict[str | None, tuple[PriceTable, dict[str, float]]] = {}
    out = []
    for run, label in zip(records, labels):
        experiment = experiments.get(str(run.get("experiment_id"))) \
            if isinstance(experiments, Mapping) else experiments
        key = experiment.id if experiment is not None else None
        if key not in tables:
            tables[key] = (prices_of(experiment),
                           file_rates_of(experiment.price_table_json if experiment else None))
        prices, file_rates = tables[key]
        figures = figures_of(run, label, prices, file_rates)
        out.append({**run, **figures.to_dict(), "fps": figures.fps, "cost_gpu": figures.cost,
                    "cost_all_in": figures.cost_all_in})
    return out


def read_runs_in(db: Database, runs: pd.DataFrame) -> pd.DataFrame:
    """read_runs of any stored runs (a list_runs DataFrame, maybe of several experiments), each
    priced by its own experiment, as a DataFrame. Raises InputError for a malformed stored price
    table, StorageError."""
    if runs.empty:
        return runs
    ids = dict.fromkeys(str(e) for e in runs["experiment_id"])
    experiments = {i: e for i in ids if (e := store_runs.get_experiment(db, i)) is not None}
    return pd.DataFrame(read_runs(runs, experiments))


def history_with_figures(db: Database, limit: int | None = None) -> dict[str, Any]:
    """store.runs.history with each experiment's runs read through read_runs (their figures and
    candidates, as every other view shows them). Raises StorageError."""
    data = store_runs.history(db, limit=limit)
    for item in data["experiments"]:
        experiment = store_runs.get_experiment(db, item["id"])
        try:
            item["runs"] = [json_safe(r) for r in read_runs(item["runs"], experiment)]
        except InputError:  # a malformed stored price table: list the runs as stored
            continue
    return data


def candidate_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each run's candidate: its device, plus model and/or engine where these runs differ in them
    ('T4 · x4plus', 'cpu · fast', as plan.candidate_label). Raises nothing."""
    models = {r.get("model") for r in runs}
    engines = {r.get("engine") for r in runs}
    return [candidate_label(str(r.get("gpu")), r.get("model"), r.get("engine"),
                            len(models) > 1, len(engines) > 1) for r in runs]


def measurements_from_runs(runs: Sequence[Mapping[str, Any]], basis: str = DEFAULT_BASIS,
                           billed: Mapping[str, float] | None = None) -> list[Measurement]:
    """One Measurement per run read by read_runs: its candidate, frames, seconds and rates.

    seconds on the 'steady' basis: its job seconds; on the 'billed' basis: `billed` {run id:
    seconds} (bench.billing's run_seconds: the job plus its share of its container's start-up,
    idle and tail), else its job seconds. Raises InputError for an unknown basis, a run without
    device or clip, or a succeeded run without a price."""
    if basis not in BASES:
        raise InputError(f"unknown cost basis {basis!r}; choose one of {', '.join(BASES)}")
    out = []
    for i, run in enumerate(runs):
        candidate, clip = run.get("candidate"), run.get("clip")
        if not run.get("device") or not clip:
            raise InputError(f"run {i} has no gpu or clip")
        status = str(run.get("status") or "unknown")
        frames = _int(run.get("frames_out")) if status == "succeeded" else 0
        frames = frames or _int(run.get("frames_expected"))
        seconds = _number(run.get("job_seconds"))
        if basis == "billed":
            seconds = _number((billed or {}).get(str(run.get("id")))) or seconds
        rate = _number(run.get("rate"))
        if rate is None:
            if status == "succeeded":
                raise InputError(f"run of {run.get('device')} on {clip} has no price: give its "
                                 f"card (e.g. cuda:0=T4) or a rate")
            rate = 0.0
        error = run.get("error")
        if status in ACTIVE_STATUSES:
            error = f"run {status}, not finished"
        elif status != "succeeded" and not error:
            error = f"run {status}"
        out.append(Measurement(
            gpu=str(candidate), clip=str(clip), frames=frames, seconds=seconds, status=status,
            rate=rate, repeat=_int(run.get("repeat_index")), cold=bool(run.get("cold")),
            error=str(error) if error else None, all_in_rate=_number(run.get("all_in_rate"))))
    return out


def _int(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def run_titles(runs: Runs) -> dict[str, str]:
    """Run id -> 'cpu · fast · 0.3s · repeat 1': the candidate (candidate_labels over these runs),
    the clip and the repeat: the one way the CLI, its log, the exports and the dashboard name a
    run. Raises nothing."""
    records = run_records(runs)
    return {str(r.get("id")): run_title(r, label)
            for r, label in zip(records, candidate_labels(records))}


def run_title(run: Mapping[str, Any], candidate: str) -> str:
    """'cpu · fast · 0.3s · repeat 1' for one run of `candidate`. Raises nothing."""
    return " · ".join(p for p in (candidate, str(run.get("clip") or ""),
                                  repeat_label(run.get("repeat_index"))) if p)


def short_id(run_id: Any) -> str:
    """The first 8 characters of an id: how logs and tables name a run or experiment."""
    return str(run_id or "")[:8]


# --------------------------------------------------------------------------- the bill


def bill_of(experiment: ExperimentRow | None, runs: Sequence[Mapping[str, Any]],
            uses: store_runs.ContainerUses | None = None) -> ExperimentBill:
    """The bill of an experiment's runs as read_runs gives them (bench.billing): a Modal
    experiment's containers idle its plan's scaledown window after their last job; local worker
    processes exit when done (no tail). `uses` (experiment_bill_in reads them): containers warm
    from an earlier experiment pay no boot here, and a later experiment's reuse cuts a tail.
    Raises InputError for a malformed stored price table or window."""
    plan = plan_dict(experiment)
    modal = experiment is not None and experiment.backend == "modal"
    window = _number(plan.get("scaledown_window_seconds"))
    window = (DEFAULT_SCALEDOWN_WINDOW_SECONDS if window is None else window) if modal else 0.0
    reuse = plan.get("container_reuse") if modal else None
    return experiment_bill(runs, prices_of(experiment), window, reuse,
                           uses.warm_before if uses else frozenset(),
                           uses.reused_at if uses else None)


def experiment_bill_in(db: Database, experiment: ExperimentRow,
                       runs: Sequence[Mapping[str, Any]]) -> ExperimentBill:
    """bill_of, with what other experiments in the store did on the same containers (warm before,
    reused after). Raises InputError, StorageError."""
    containers = sorted({str(r["container_id"]) for r in runs if r.get("container_id")})
    uses = store_runs.container_uses(db, experiment.id, containers) if containers else None
    return bill_of(experiment, runs, uses)


def stored_bill(db: Database, experiment_id: str) -> ExperimentBill:
    """The bill of a stored experiment, as every view computes it (read_runs, then
    experiment_bill_in). Raises InputError for an unknown id, StorageError."""
    experiment = load_experiment(db, experiment_id)
    runs = read_runs(store_runs.list_runs(db, experiment_id=experiment_id), experiment)
    return experiment_bill_in(db, experiment, runs)


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


def analyse_runs(experiment: ExperimentRow | None, runs: Sequence[Mapping[str, Any]],
                 tolerance: float = DEFAULT_TOLERANCE, basis: str = DEFAULT_BASIS,
                 bill: ExperimentBill | None = None, baseline: str | None = None) -> Analysis:
    """The analysis of runs as read_runs gives them, on a cost basis (BASES: 'steady', job
    seconds; or 'billed', the bill's run seconds: `bill`, else bill_of the runs), against
    `baseline` (default: the plan's first candidate).

    Raises InputError for an unknown basis, when no run succeeded, a succeeded run has no price,
    or the tolerance is bad."""
    billed = None
    if basis == "billed":
        billed = (bill or bill_of(experiment, runs)).run_seconds
    measurements = measurements_from_runs(runs, basis, billed)
    return replace(analyse_measurements(experiment, measurements, tolerance, baseline), basis=basis)


Outcome = tuple[Analysis | None, str | None, pd.DataFrame]
"""(the analysis or None, why there is none, the runs analysed)."""


def analyse_experiment(db: Database, experiment_id: str, tolerance: float = DEFAULT_TOLERANCE,
                       basis: str = DEFAULT_BASIS, baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of one experiment on a cost basis; the runs come back as
    read_runs gives them. Raises InputError for an unknown id, StorageError."""
    experiment = load_experiment(db, experiment_id)
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    if runs.empty:
        return None, "this experiment has no runs", runs
    records = read_runs(runs, experiment)
    bill = experiment_bill_in(db, experiment, records) if basis == "billed" else None
    return (*_analysed(experiment, records, tolerance, basis, bill, baseline), pd.DataFrame(records))


def analyse_selection(db: Database, run_ids: Sequence[str], tolerance: float = DEFAULT_TOLERANCE,
                      basis: str = DEFAULT_BASIS, baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of a selection of runs, possibly from several
    experiments: each run priced by its own experiment's card; the last run's experiment supplies
    the plan (baseline, fps). The 'billed' basis needs one experiment's bill: across several it
    falls back to job seconds. Raises StorageError."""
    runs = store_runs.list_runs(db, run_ids=list(run_ids))
    if runs.empty:
        return None, "none of the selected runs is in the database any more", runs
    ids = list(dict.fromkeys(str(e) for e in runs["experiment_id"]))
    experiments = {i: load_experiment(db, i) for i in ids}
    experiment = experiments[ids[-1]]
    records = read_runs(runs, experiments)
    bill = experiment_bill_in(db, experiment, records) \
        if basis == "billed" and len(ids) == 1 else None
    basis = basis if bill is not None or basis != "billed" else DEFAULT_BASIS
    return (*_analysed(experiment, records, tolerance, basis, bill, baseline), pd.DataFrame(records))


def analyse_experiments(db: Database, experiment_ids: Sequence[str],
                        tolerance: float = DEFAULT_TOLERANCE, basis: str = DEFAULT_BASIS,
                        baseline: str | None = None) -> Outcome:
    """(analysis or None, why not, runs) of several experiments side by side, each run priced by
    its own experiment: a candidate that more than one of them has is told apart by its
    experiment's name ('cpu · fast · nightly'). The first experiment supplies the plan (fps,
    default baseline). The 'billed' basis needs one experiment's bill: across several it falls
    back to job seconds. Raises InputError for an unknown id, StorageError."""
    chosen = [load_experiment(db, i) for i in dict.fromkeys(experiment_ids)]
    runs = pd.concat([store_runs.list_runs(db, experiment_id=e.id) for e in chosen],
                     ignore_index=True)
    if runs.empty:
        return None, "these experiments have no runs", runs
    records = read_runs(runs, {e.id: e for e in chosen})
    owners: dict[str, set[str]] = {}
    for record in records:
        owners.setdefault(record["candidate"], set()).add(record["experiment_id"])
    names = [e.name for e in chosen]
    tags = {e.id: e.name if names.count(e.name) == 1 else f"{e.name} [{short_id(e.id)}]"
            for e in chosen}
    for record in records:
        if len(owners[record["candidate"]]) > 1:
            record["candidate"] = f"{record['candidate']} · {tags[record['experiment_id']]}"
    basis = DEFAULT_BASIS if len(chosen) > 1 else basis
    bill = experiment_bill_in(db, chosen[0], records) if basis == "billed" else None
    return (*_analysed(chosen[0], records, tolerance, basis, bill, baseline),
            pd.DataFrame(records))


def _analysed(experiment: ExperimentRow, runs: Sequence[Mapping[str, Any]], tolerance: float,
              basis: str, bill: ExperimentBill | None,
              baseline: str | None = None) -> tuple[Analysis | None, str | None]:
    try:
        return analyse_runs(experiment, runs, tolerance, basis, bill, baseline), None
    except InputError as exc:
        return None, str(exc)
