"""Every SQL statement about experiments and runs: typed records in, typed rows or DataFrames out.

Times are stored as UTC without a zone (TIMESTAMP). Each function opens the shared database file
briefly (see store.db), writes in one transaction, and holds nothing between calls.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

import duckdb
import pandas as pd

from core.errors import InputError
from core.job import JobResult
from core.jsonsafe import json_safe
from core.stages import STAGE_TABLE, TOTAL
from core.status import ACTIVE_STATUSES, CANCELLED, FINAL_STATUSES, RUN_STATUSES
from store.db import ORIGINS, SCHEMA_VERSION, Database

STAGE_COLUMNS = {**{s.name: s.column for s in STAGE_TABLE}, TOTAL: f"{TOTAL}_seconds"}
"""JobResult.stages key -> runs column."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ExperimentRecord:
    """What was asked for: everything about an experiment except its id and creation time."""

    name: str
    """Display name."""
    preset: str | None = None
    """Preset the plan came from ('e6', 'demo'), None for a custom plan."""
    source: str | None = None
    """Source video (object key or path)."""
    plan_json: str | dict | list | None = None
    """The whole plan, as JSON text or a JSON-ready dict (stored as text)."""
    model: str | None = None
    """Model name of the plan."""
    engine: str | None = None
    """Engine of the plan ('fast' or 'reference')."""
    backend: str | None = None
    """Where the runs go ('local' or 'modal')."""
    price_table_date: str | None = None
    """Date of the price table the costs use, ISO text ('2026-06')."""
    price_table_json: str | dict | None = None
    """The price table itself ({GPU: $ per second, ...}), JSON text or dict."""
    notes: str | None = None
    """Free text."""
    tags: tuple[str, ...] | None = None
    """Short labels to find it by (History searches them with the name and notes)."""
    origin: str = "run"
    """'run' (ran here) or 'import' (read from a results file)."""
    commit: str | None = None
    """Git commit of the code that ran it, when known."""
    schema_version: int = SCHEMA_VERSION
    """Store schema version the experiment was written with."""


@dataclass(frozen=True)
class ExperimentRow(ExperimentRecord):
    """A stored experiment: the record plus its identity."""

    id: str = ""
    """Experiment id (uuid4 hex)."""
    created_at: datetime | None = None
    """When it was stored (UTC)."""


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a clip on a GPU, one repeat."""

    clip: str
    """Clip name ('6s')."""
    gpu: str
    """GPU asked for ('L4' on Modal, 'cpu' or 'cuda:0' locally)."""
    clip_start: float | None = None
    """Start of the clip in the source (seconds)."""
    clip_end: float | None = None
    """End of the clip in the source (seconds, exclusive)."""
    frames_expected: int | None = None
    """Frames the clip should produce."""
    price_gpu: str | None = None
    """Catalog GPU whose rate prices this run (defaults to gpu)."""
    repeat_index: int = 0
    """0 for the first run of this clip on this GPU, 1 for the second, ..."""
    model: str | None = None
    """Model of this run; None takes the experiment's."""
    engine: str | None = None
    """Engine of this run; None takes the experiment's."""


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the orchestrator saw it."""

    status: str
    """'succeeded', 'failed' or 'interrupted'."""
    error: str | None = None
    """One-line reason when it did not succeed (else the result's error, if any)."""
    result: JobResult | None = None
    """The worker's result, when one came back."""
    cold: bool | None = None
    """Whether the run paid for a cold start (container or worker start-up)."""
    client_wall_seconds: float | None = None
    """Seconds from launch to result as the client measured them."""
    startup_seconds: float | None = None
    """Start-up this run paid (core.stages): for a cold run its container's boot or worker
    process start up to the job, plus any model load and compile; 0 on a warm worker."""
    cost_gpu: float | None = None
    """GPU-only cost of its job seconds in US dollars (bench.pricing.run_cost)."""
    cost_all_in: float | None = None
    """GPU + CPU + memory cost of its job seconds in US dollars (bench.pricing.run_cost)."""
    cpu_used_cores: float | None = None
    """Average CPU cores the job used, when measured."""
    peak_memory_gib: float | None = None
    """Peak memory of the worker by the end of the job (GiB), when measured."""
    memory_gib: float | None = None
    """Memory the worker's container requested (GiB), when it had a request."""

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise InputError(f"a run ends as one of {', '.join(FINAL_STATUSES)}, not {self.status!r}")


@dataclass(frozen=True)
class RunRow:
    """One stored run, every column."""

    id: str
    """Run id (uuid4 hex); also the job id sent to the worker."""
    experiment_id: str
    """Experiment the run belongs to."""
    seq: int
    """Position of the run in its experiment (0, 1, ...)."""
    clip: str
    """Clip name."""
    clip_start: float | None
    """Clip start in the source (s)."""
    clip_end: float | None
    """Clip end in the source (s)."""
    frames_expected: int | None
    """Frames the clip should produce."""
    gpu: str
    """GPU asked for."""
    price_gpu: str | None
    """Catalog GPU whose rate applies."""
    device_name: str | None
    """Device actually used, as the worker reported it."""
    repeat_index: int
    """Repeat number of this clip on this GPU."""
    status: str
    """queued, running, succeeded, failed or interrupted."""
    error: str | None
    """Reason when failed or interrupted."""
    cold: bool | None
    """Whether it paid for a cold start."""
    frames_in: int | None
    """Frames decoded."""
    frames_out: int | None
    """Frames written."""
    frames_done: int | None
    """Frames upscaled so far (live progress)."""
    frames_total: int | None
    """Frames the worker said it will produce."""
    progress_stage: str | None
    """Stage the worker last reported."""
    output_width: int | None
    """Output width in pixels."""
    output_height: int | None
    """Output height in pixels."""
    output_key: str | None
    """Object key of the output video."""
    output_bytes: int | None
    """Size of the output video."""
    fetch_seconds: float | None
    """Stage time: fetching the input."""
    model_load_seconds: float | None
    """Stage time: loading the model."""
    decode_seconds: float | None
    """Stage time: decoding."""
    upscale_seconds: float | None
    """Stage time: upscaling."""
    encode_seconds: float | None
    """Stage time: encoding."""
    upload_seconds: float | None
    """Stage time: uploading."""
    total_seconds: float | None
    """Wall time of the whole job in the worker."""
    client_wall_seconds: float | None
    """Launch-to-result time seen by the client."""
    billed_seconds: float | None
    """Job seconds plus the start-up the run paid (what it cost the provider at first sight;
    the bill shares idle gaps and tails out on top)."""
    cost_gpu: float | None
    """GPU-only cost of the job seconds ($), as bench.pricing.run_cost computed it at finish."""
    cost_all_in: float | None
    """All-in cost of the job seconds ($), likewise."""
    fps: float | None
    """Frames out per job second (core.stages.fps)."""
    upscale_fps: float | None
    """Frames out per second of upscale time."""
    psnr: float | None
    """Fidelity: model PSNR (dB)."""
    ssim: float | None
    """Fidelity: model SSIM."""
    bicubic_psnr: float | None
    """Fidelity: bicubic PSNR (dB)."""
    bicubic_ssim: float | None
    """Fidelity: bicubic SSIM."""
    fidelity_frames: int | None
    """Frames the fidelity was measured on."""
    model: str | None
    """Model name."""
    engine: str | None
    """Engine name."""
    precision: str | None
    """Precision actually used."""
    weights_provenance: str | None
    """Where the weights came from (official, ncnn-derived, random (timing-only), ...)."""
    weights_sha256: str | None
    """sha256 of the weights file."""
    torch_version: str | None
    """torch version in the worker."""
    cuda_version: str | None
    """CUDA version of the worker's torch, None on CPU."""
    call_id: str | None
    """Modal function call id (Modal runs)."""
    worker_pid: int | None
    """Process id of the local worker running it."""
    worker_host: str | None
    """Host name of that worker."""
    created_at: datetime
    """When the run was queued (UTC)."""
    started_at: datetime | None
    """When it started running (UTC)."""
    finished_at: datetime | None
    """When it reached its final state (UTC)."""
    heartbeat_at: datetime | None
    """Last sign of life from the worker (UTC)."""
    result_json: str | None
    """The worker's JobResult.to_dict() as JSON text."""
    queue_wait_seconds: float | None = None
    """Stage time: waiting for a container (Modal: spawn to container start)."""
    compile_seconds: float | None = None
    """Stage time: torch.compile warm-up at the job's shapes (0 when already compiled)."""
    compile_choice: str | None = None
    """Whether the engine compiled and why ('on', 'off', 'auto: on (...)', 'auto: off (...)')."""
    encoder: str | None = None
    """Video encoder actually used ('libx264' or 'h264_nvenc')."""
    encode_preset: str | None = None
    """Encoder preset used (libx264 'veryfast', ...)."""
    encode_psnr: float | None = None
    """PSNR (dB) of the encoded output against the upscaled frames fed to the encoder."""
    cpu_cores: float | None = None
    """CPU cores the worker had (Modal: the container's request)."""
    container_id: str | None = None
    """The container (Modal) or worker process (local) that ran it; runs on one share its start."""
    container_started_at: float | None = None
    """Unix time that container or process booted."""
    job_started_at: float | None = None
    """Unix time the job started on the worker's clock."""
    job_finished_at: float | None = None
    """Unix time the job finished on the worker's clock."""
    job_seconds: float | None = None
    """Job seconds (core.stages.job_seconds): fetch to the end of the upload, less model load
    and compile; what the verdict, fps and the steady-state cost use."""
    startup_seconds: float | None = None
    """Start-up the run paid: boot or process start to the job, model load, compile (0 warm)."""
    fidelity_seconds: float | None = None
    """Stage time: fidelity scoring and encode PSNR, measured after the job's clock stopped."""
    cpu_used_cores: float | None = None
    """Average CPU cores the job used (Modal container measurement)."""
    peak_memory_gib: float | None = None
    """Peak memory of the worker by the end of the job, GiB."""
    memory_gib: float | None = None
    """Memory the container requested, GiB (Modal)."""

    @property
    def result(self) -> JobResult | None:
        """The stored JobResult, if any."""
        return JobResult.from_dict(json.loads(self.result_json)) if self.result_json else None


RUN_COLUMNS = tuple(f.name for f in fields(RunRow))
EXPERIMENT_COLUMNS = ("id", "created_at", *(f.name for f in fields(ExperimentRecord)))


def _q(name: str) -> str:
    return f'"{name}"'


_RUN_SELECT = ", ".join(f"r.{_q(c)}" for c in RUN_COLUMNS)
_EXPERIMENT_SELECT = ", ".join(f"e.{_q(c)}" for c in EXPERIMENT_COLUMNS)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _new_id() -> str:
    return uuid.uuid4().hex


def _json_text(value: Any) -> str | None:
    """JSON text of a plan or price table. Raises InputError for NaN/inf (not JSON)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError as exc:
        raise InputError(f"cannot store as JSON: {exc}") from None


def _row_dicts(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in con.description]
    return [dict(zip(names, row)) for row in con.fetchall()]


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_ACTIVE = _sql_list(ACTIVE_STATUSES)


# --------------------------------------------------------------------------- experiments


def create_experiment(db: Database, record: ExperimentRecord) -> str:
    """Store a new experiment; return its id. Raises InputError for an unknown origin, an empty
    name or a plan/price table that is not JSON, StorageError."""
    return db.write(lambda con: _insert_experiment(con, record, _new_id(), _now()))


def _insert_experiment(con: duckdb.DuckDBPyConnection, record: ExperimentRecord, experiment_id: str,
                       created_at: datetime) -> str:
    if record.origin not in ORIGINS:
        raise InputError(f"experiment origin must be one of {', '.join(ORIGINS)}, not {record.origin!r}")
    if not record.name or not record.name.strip():
        raise InputError("an experiment needs a name")
    values = {f.name: getattr(record, f.name) for f in fields(ExperimentRecord)}
    values["plan_json"] = _json_text(values["plan_json"])
    values["price_table_json"] = _json_text(values["price_table_json"])
    values["tags"] = list(values["tags"]) if values["tags"] else None
    values.update(id=experiment_id, created_at=created_at)
    names = list(values)
    con.execute(
        f"INSERT INTO experiments ({', '.join(map(_q, names))}) VALUES ({', '.join('?' * len(names))})",
        [values[n] for n in names],
    )
    return experiment_id


def get_experiment(db: Database, experiment_id: str) -> ExperimentRow | None:
    """The experiment with this id, or None. Raises StorageError."""
    with db.connect(read_only=True) as con:
        con.execute(f"SELECT {_EXPERIMENT_SELECT} FROM experiments e WHERE e.id = ?", [experiment_id])
        rows = _row_dicts(con)
    return ExperimentRow(**rows[0]) if rows else None


def list_experiments(db: Database, limit: int | None = None) -> pd.DataFrame:
    """Experiments, newest first, each with its run counts: runs, and one column per status
    (queued, running, succeeded, failed, interrupted), plus last_finished_at. Raises StorageError."""
    counts = ", ".join(
        f"count(r.id) FILTER (WHERE r.status = '{s}') AS {s}" for s in RUN_STATUSES
    )
    sql = f"""
        SELECT {_EXPERIMENT_SELECT}, count(r.id) AS runs, {counts}, max(r.finished_at) AS last_finished_at
        FROM experiments e LEFT JOIN runs r ON r.experiment_id = e.id
        GROUP BY ALL
        ORDER BY e.created_at DESC, e.id
        {_limit(limit)}
    """
    df = db.read(sql)
    for status in ("runs", *RUN_STATUSES):
        df[status] = df[status].astype("int64")
    return df


def _limit(limit: int | None) -> str:
    if limit is None:
        return ""
    if int(limit) < 0:
        raise InputError(f"limit {limit} must be >= 0")
    return f"LIMIT {int(limit)}"


# --------------------------------------------------------------------------- runs: writing


def add_runs(db: Database, experiment_id: str, specs: Sequence[RunSpec]) -> list[str]:
    """Queue one run per spec (in order) under the experiment; return their ids. The calling
    process answers for them (worker_pid/host) until an executor claims them, so if it dies before
    that, recover_interrupted finds them instead of leaving them queued forever.

    Raises InputError if the experiment does not exist, StorageError."""
    return db.write(lambda con: _insert_runs(con, experiment_id, specs))


def _insert_runs(con: duckdb.DuckDBPyConnection, experiment_id: str, specs: Sequence[RunSpec],
                 extra: Sequence[dict[str, Any]] | None = None) -> list[str]:
    found = con.execute("SELECT model, engine FROM experiments WHERE id = ?", [experiment_id]).fetchall()
    if not found:
        raise InputError(f"no experiment {experiment_id!r} in the database")
    if not specs:
        return []
    model, engine = found[0]
    first = con.execute(
        "SELECT coalesce(max(seq) + 1, 0) FROM runs WHERE experiment_id = ?", [experiment_id]
    ).fetchall()[0][0]
    now = _now()
    rows = []
    for i, spec in enumerate(specs):
        row = {
            "id": _new_id(), "experiment_id": experiment_id, "seq": first + i, "clip": spec.clip,
            "clip_start": spec.clip_start, "clip_end": spec.clip_end,
            "frames_expected": spec.frames_expected, "gpu": spec.gpu,
            "price_gpu": spec.price_gpu or spec.gpu, "repeat_index": spec.repeat_index,
            "status": "queued", "model": spec.model or model, "engine": spec.engine or engine,
            "created_at": now,
        }
        if extra is not None:
            row.update(extra[i])
        else:  # queued: this process answers for it until an executor claims it
            row.update(worker_pid=os.getpid(), worker_host=socket.gethostname())
        rows.append(row)
    _insert_frame(con, "runs", pd.DataFrame(rows))
    return [r["id"] for r in rows]


def _insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Insert a DataFrame's rows (columns named as the table's) in one statement."""
    con.register("_incoming", frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def bulk_load(db: Database, experiments: pd.DataFrame, runs: pd.DataFrame) -> None:
    """Insert fully formed experiment and run rows (columns named as the tables') in one
    transaction: for benchmarks and bulk copies. Raises StorageError, duckdb.ConstraintException."""
    def load(con: duckdb.DuckDBPyConnection) -> None:
        _insert_frame(con, "experiments", experiments)
        _insert_frame(con, "runs", runs)
    db.write(load)


def _update(db: Database, run_id: str, assignments: dict[str, Any]) -> bool:
    """Set columns of one run unless it was cancelled (a cancelled run stays as it is, whatever
    its worker reports afterwards); returns whether it changed. Raises InputError for an unknown
    run id."""
    sets = ", ".join(f"{_q(k)} = ?" for k in assignments)

    def apply(con: duckdb.DuckDBPyConnection) -> bool:
        changed = con.execute(
            f"UPDATE runs SET {sets} WHERE id = ? AND status <> ? RETURNING id",
            [*assignments.values(), run_id, CANCELLED]).fetchall()
        if not changed:
            _require_run(con, run_id)
        return bool(changed)

    return db.write(apply)


def _require_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    if con.execute("SELECT count(*) FROM runs WHERE id = ?", [run_id]).fetchall()[0][0] == 0:
        raise InputError(f"no run {run_id!r} in the database")


def mark_running(db: Database, run_id: str, *, worker_pid: int | None = None,
                 worker_host: str | None = None, call_id: str | None = None) -> None:
    """The run has started: status running, started/heartbeat now, and who answers for it.

    worker_pid is the process that runs or supervises the run (default: the caller's), worker_host
    its machine (default: this one); recover_interrupted() checks that process. Raises InputError
    for an unknown run, StorageError."""
    now = _now()
    values: dict[str, Any] = {"status": "running", "started_at": now, "heartbeat_at": now, "error": None,
                              "worker_pid": os.getpid() if worker_pid is None else worker_pid,
                              "worker_host": worker_host or socket.gethostname()}
    if call_id is not None:
        values["call_id"] = call_id
    _update(db, run_id, values)


def update_progress(db: Database, run_id: str, frames_done: int, frames_total: int, stage: str) -> bool:
    """Record live progress (and a heartbeat) of an active run; a queued run becomes running.

    Returns False (and changes nothing) when the run has already ended. Raises InputError for an
    unknown run, StorageError."""
    now = _now()

    def apply(con: duckdb.DuckDBPyConnection) -> bool:
        changed = con.execute(
            f"UPDATE runs SET frames_done = ?, frames_total = ?, progress_stage = ?, heartbeat_at = ?, "
            f"status = 'running', started_at = coalesce(started_at, ?) "
            f"WHERE id = ? AND status IN ({_ACTIVE}) RETURNING id",
            [frames_done, frames_total, stage, now, now, run_id],
        ).fetchall()
        if not changed:
            _require_run(con, run_id)
        return bool(changed)

    return db.write(apply)


def finish_run(db: Database, run_id: str, outcome: RunOutcome) -> bool:
    """Store how a run ended: status, reason, costs, and the result's device, stages, frames,
    fidelity, versions and the result itself as JSON; False (nothing stored) when the run was
    cancelled meanwhile. Raises InputError for an unknown run, StorageError."""
    values: dict[str, Any] = {
        "status": outcome.status,
        "error": outcome.error,
        "cold": outcome.cold,
        "client_wall_seconds": outcome.client_wall_seconds,
        "startup_seconds": outcome.startup_seconds,
        "cost_gpu": outcome.cost_gpu,
        "cost_all_in": outcome.cost_all_in,
        "cpu_used_cores": outcome.cpu_used_cores,
        "peak_memory_gib": outcome.peak_memory_gib,
        "memory_gib": outcome.memory_gib,
        "finished_at": _now(),
    }
    if outcome.result is not None:
        values.update(_result_columns(outcome.result))
        if values["error"] is None:
            values["error"] = outcome.result.error
        job = values.get("job_seconds")
        if job is not None:
            values["billed_seconds"] = job + (outcome.startup_seconds or 0.0)
    return _update(db, run_id, values)


def _result_columns(result: JobResult) -> dict[str, Any]:
    data = result.to_dict()
    values: dict[str, Any] = {column: result.stages.get(stage) for stage, column in STAGE_COLUMNS.items()}
    values.update(
        device_name=result.device_name or None,
        frames_in=result.frames_in,
        frames_out=result.frames_out,
        output_width=result.output_width or None,
        output_height=result.output_height or None,
        output_key=result.output_key,
        output_bytes=result.output_bytes or None,
        job_seconds=result.job_seconds,
        fps=result.fps_end_to_end,
        upscale_fps=result.fps_upscale,
        model=result.model or None,
        engine=result.engine or None,
        precision=result.precision or None,
        weights_provenance=result.weights_provenance or None,
        weights_sha256=result.weights_sha256,
        torch_version=result.torch_version or None,
        cuda_version=result.cuda_version,
        compile_choice=result.compile_choice or None,
        encoder=result.encoder or None,
        encode_preset=result.encode_preset or None,
        encode_psnr=result.encode_psnr,
        cpu_cores=result.cpu_cores,
        container_id=result.container_id or None,
        container_started_at=result.worker_started_at,
        job_started_at=result.started_at,
        job_finished_at=result.finished_at,
        result_json=json.dumps(data, default=str),
    )
    if result.ok:
        values["frames_done"] = result.frames_out
    fid = result.fidelity
    values.update(
        psnr=fid.psnr if fid else None, ssim=fid.ssim if fid else None,
        bicubic_psnr=fid.bicubic_psnr if fid else None, bicubic_ssim=fid.bicubic_ssim if fid else None,
        fidelity_frames=fid.frames if fid else None,
    )
    # Engines that ignore None-valued model/engine keep the planned ones.
    return {k: v for k, v in values.items() if not (k in ("model", "engine") and v is None)}


def fail_run(db: Database, run_id: str, reason: str) -> None:
    """Mark one run failed with the reason (other runs are untouched). Raises InputError for an
    unknown run, StorageError."""
    _update(db, run_id, {"status": "failed", "error": " ".join(str(reason).split()) or "failed",
                         "finished_at": _now()})


def claim_runs(db: Database, run_ids: Sequence[str], *, worker_pid: int | None = None,
               worker_host: str | None = None, status: str = "queued") -> int:
    """claim_run_ids, returning how many runs were claimed. Raises StorageError."""
    return len(claim_run_ids(db, run_ids, worker_pid=worker_pid, worker_host=worker_host,
                             status=status))


def claim_run_ids(db: Database, run_ids: Sequence[str], *, worker_pid: int | None = None,
                  worker_host: str | None = None, status: str = "queued",
                  owners: Mapping[str, int | None] | None = None) -> list[str]:
    """Record that a process (default: this one) answers for these runs from now on: queued runs it
    will start, or running Modal runs it reattaches to. If it dies, recover_interrupted (or the
    dashboard's reattach offer) can tell. Only runs still in `status` change (one recovered as
    interrupted meanwhile is not claimed); with `owners` (run id -> the worker pid the caller saw),
    only runs whose owner has not changed since, so two processes never both claim a run. Returns
    the ids claimed. Raises StorageError."""
    if not run_ids:
        return []
    pid = os.getpid() if worker_pid is None else worker_pid
    host = worker_host or socket.gethostname()

    def apply(con: duckdb.DuckDBPyConnection) -> list[str]:
        if owners is None:
            return [row[0] for row in con.execute(
                "UPDATE runs SET worker_pid = ?, worker_host = ? "
                "WHERE id IN (SELECT unnest(?::VARCHAR[])) AND status = ? RETURNING id",
                [pid, host, list(run_ids), status],
            ).fetchall()]
        claimed = []
        for run_id in run_ids:
            claimed += [row[0] for row in con.execute(
                "UPDATE runs SET worker_pid = ?, worker_host = ? WHERE id = ? AND status = ? "
                "AND worker_pid IS NOT DISTINCT FROM ? RETURNING id",
                [pid, host, run_id, status, owners.get(run_id)],
            ).fetchall()]
        return claimed

    return db.write(apply)


def interrupt_runs(db: Database, run_ids: Sequence[str], reason: str) -> int:
    """Mark those of the runs that are still queued or running as interrupted with the reason;
    return how many changed. Raises StorageError."""
    if not run_ids:
        return 0
    reason = " ".join(str(reason).split()) or "interrupted"

    def apply(con: duckdb.DuckDBPyConnection) -> int:
        return len(con.execute(
            f"UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? "
            f"WHERE id IN (SELECT unnest(?::VARCHAR[])) AND status IN ({_ACTIVE}) RETURNING id",
            [reason, _now(), list(run_ids)],
        ).fetchall())

    return db.write(apply)


def recover_interrupted(db: Database, is_alive: Callable[[RunRow], bool]) -> int:
    """Mark as interrupted (with a reason) every running run, and every queued run (its pid is the
    process that queued or claimed it), whose process is gone per is_alive (bench.liveness.worker_is_alive in the
    product). Returns how many were marked. A run that ended meanwhile is left as it ended.
    Raises StorageError."""
    check = is_alive
    with db.connect(read_only=True) as con:
        con.execute(
            f"SELECT {_RUN_SELECT} FROM runs r WHERE r.status = 'running' "
            f"OR (r.status = 'queued' AND r.worker_pid IS NOT NULL)"
        )
        candidates = [RunRow(**row) for row in _row_dicts(con)]
    gone = [run for run in candidates if not check(run)]
    if not gone:
        return 0

    def apply(con: duckdb.DuckDBPyConnection) -> int:
        marked = 0
        now = _now()
        for run in gone:
            if run.status == "queued":
                reason = (f"never started: process {run.worker_pid} on {run.worker_host or 'this host'}"
                          f", which queued or claimed it, is gone")
            elif run.worker_pid is not None:
                reason = f"worker process {run.worker_pid} on {run.worker_host or 'this host'} is gone"
            else:
                reason = "the process that ran it is gone"
            marked += len(con.execute(
                "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? "
                "WHERE id = ? AND status = ? AND worker_pid IS NOT DISTINCT FROM ? RETURNING id",
                [f"interrupted: {reason}", now, run.id, run.status, run.worker_pid],
            ).fetchall())
        return marked

    return db.write(apply)


# --------------------------------------------------------------------------- runs: reading


@dataclass(frozen=True)
class ContainerUses:
    """How other experiments used the containers of one experiment."""

    warm_before: frozenset[str]
    """Containers another experiment's job ran on before this experiment's first job there."""
    reused_at: dict[str, float]
    """Container id -> Unix time another experiment's first job on it started after this
    experiment's last job there."""


def container_uses(db: Database, experiment_id: str, container_ids: Sequence[str]) -> ContainerUses:
    """Which of these containers (of this experiment's runs) other experiments used before it, and
    when one was next used after it. Raises StorageError."""
    frame = db.read(
        "WITH mine AS (SELECT container_id, min(job_started_at) AS first, "
        "  max(job_finished_at) AS last FROM runs "
        "  WHERE experiment_id = ? AND container_id IN (SELECT unnest(?::VARCHAR[])) "
        "  GROUP BY container_id) "
        "SELECT r.container_id, bool_or(r.job_finished_at <= m.first) AS before, "
        "  min(CASE WHEN r.job_started_at >= m.last THEN r.job_started_at END) AS after "
        "FROM runs r JOIN mine m ON m.container_id = r.container_id "
        "WHERE r.experiment_id <> ? GROUP BY r.container_id",
        [experiment_id, list(container_ids), experiment_id])
    warm = frozenset(str(row.container_id) for row in frame.itertuples() if row.before)
    later = {str(row.container_id): float(row.after) for row in frame.itertuples()
             if row.after is not None and row.after == row.after}
    return ContainerUses(warm, later)


def get_run(db: Database, run_id: str) -> RunRow | None:
    """The run with this id, or None. Raises StorageError."""
    with db.connect(read_only=True) as con:
        con.execute(f"SELECT {_RUN_SELECT} FROM runs r WHERE r.id = ?", [run_id])
        rows = _row_dicts(con)
    return RunRow(**rows[0]) if rows else None


def list_runs(db: Database, *, experiment_id: str | None = None, run_ids: Sequence[str] | None = None,
              gpus: Sequence[str] | None = None, models: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, since: datetime | None = None,
              until: datetime | None = None, limit: int | None = None,
              with_result_json: bool = False) -> pd.DataFrame:
    """Runs matching every given filter (None = no filter; since/until bound created_at, UTC,
    until exclusive), newest experiment first and in plan order within one, with the
    experiment's name and backend. result_json only when asked. Raises InputError for an unknown
    status, StorageError."""
    where, params = [], []
    if experiment_id is not None:
        where.append("r.experiment_id = ?")
        params.append(experiment_id)
    for column, values in (("id", run_ids), ("gpu", gpus), ("model", models), ("status", statuses)):
        if values is not None:
            where.append(f"r.{_q(column)} IN (SELECT unnest(?::VARCHAR[]))")
            params.append([str(v) for v in values])
    if statuses is not None and set(statuses) - set(RUN_STATUSES):
        raise InputError(f"unknown status {sorted(set(statuses) - set(RUN_STATUSES))[0]!r}; "
                         f"choose from {', '.join(RUN_STATUSES)}")
    if since is not None:
        where.append("r.created_at >= ?")
        params.append(_utc_naive(since))
    if until is not None:
        where.append("r.created_at < ?")
        params.append(_utc_naive(until))
    columns = ", ".join(f"r.{_q(c)}" for c in RUN_COLUMNS if with_result_json or c != "result_json")
    select = (f"SELECT {columns}, e.name AS experiment_name, e.backend AS backend "
              f"FROM runs r JOIN experiments e ON e.id = r.experiment_id")
    condition = ("WHERE " + " AND ".join(where)) if where else ""
    order = "ORDER BY r.created_at DESC, r.experiment_id, r.seq"
    if limit is None and run_ids is None:
        return db.read(f"{select} {condition} {order}", params)
    # A few rows wanted: pick them on narrow columns first, then read the wide rows of just
    # those; the time bound lets DuckDB skip the row groups that cannot hold them.
    with db.connect(read_only=True) as con:
        picked = con.execute(f"SELECT r.id, r.created_at FROM runs r {condition} {order} {_limit(limit)}",
                             params).fetchall()
        earliest = min((row[1] for row in picked), default=datetime.min)
        return con.execute(
            f"{select} WHERE r.created_at >= ? AND r.id IN (SELECT unnest(?::VARCHAR[])) {order}",
            [earliest, [row[0] for row in picked]],
        ).df()


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def run_facets(db: Database) -> dict[str, list[str]]:
    """Distinct GPUs and models over all runs ({'gpu': [...], 'model': [...]}, sorted), for filter
    choices without loading the runs. Raises StorageError."""
    with db.connect(read_only=True) as con:
        return {column: [row[0] for row in con.execute(
                    f"SELECT DISTINCT {column} FROM runs WHERE {column} IS NOT NULL ORDER BY 1"
                ).fetchall()]
                for column in ("gpu", "model")}


def active_runs(db: Database) -> pd.DataFrame:
    """Runs still queued or running, oldest first. Raises StorageError."""
    columns = ", ".join(f"r.{_q(c)}" for c in RUN_COLUMNS if c != "result_json")
    return db.read(
        f"SELECT {columns}, e.name AS experiment_name, e.backend AS backend "
        f"FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        f"WHERE r.status IN ({_ACTIVE}) ORDER BY r.created_at, r.experiment_id, r.seq"
    )


def history(db: Database, limit: int | None = None) -> dict[str, Any]:
    """{"experiments": [{experiment fields, "plan", "price_table", "runs": [{run fields, "result"},
    ...]}, ...]}, newest experiment first, runs in plan order; JSON text columns are parsed, times
    are ISO strings, NaN is None. Raises StorageError."""
    with db.connect(read_only=True) as con:
        con.execute(f"SELECT {_EXPERIMENT_SELECT} FROM experiments e ORDER BY e.created_at DESC, e.id "
                    f"{_limit(limit)}")
        experiments = _row_dicts(con)
        ids = [e["id"] for e in experiments]
        # A run is never older than its experiment: the bound skips older row groups.
        earliest = min((e["created_at"] for e in experiments), default=datetime.min)
        con.execute(
            f"SELECT {_RUN_SELECT} FROM runs r WHERE r.created_at >= ? "
            f"AND r.experiment_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY r.experiment_id, r.seq",
            [earliest, ids],
        )
        runs = _row_dicts(con)
    by_experiment: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for run in runs:
        run = {k: json_safe(v) for k, v in run.items()}
        run["result"] = _parse_json(run.pop("result_json"))
        by_experiment[run["experiment_id"]].append(run)
    out = []
    for experiment in experiments:
        item = {k: json_safe(v) for k, v in experiment.items()}
        item["plan"] = _parse_json(item.pop("plan_json"))
        item["price_table"] = _parse_json(item.pop("price_table_json"))
        item["runs"] = by_experiment[experiment["id"]]
        out.append(item)
    return {"experiments": out}


def _parse_json(text: str | None) -> Any:
    """Parsed JSON text with non-finite numbers (which JSON cannot carry) as None."""
    if text is None:
        return None
    try:
        return json_safe(json.loads(text))
    except json.JSONDecodeError:
        return text


def insert_finished_experiment(db: Database, record: ExperimentRecord, specs: Sequence[RunSpec],
                               outcomes: Sequence[dict[str, Any]],
                               created_at: datetime | None = None) -> str:
    """Store an experiment whose runs have already ended (an import), in one transaction; return
    its id. outcomes[i] holds the run columns of specs[i] (status, error, timings, cost, ...).
    created_at (default now) dates the experiment and its runs: when they ran, for an import.
    Raises ValueError when specs and outcomes differ in length (a caller's bug), StorageError."""
    if len(specs) != len(outcomes):
        raise ValueError("one outcome per run spec")
    now = _utc_naive(created_at) if created_at is not None else _now()
    extra = [{"created_at": now, "finished_at": now, **outcome} for outcome in outcomes]

    def apply(con: duckdb.DuckDBPyConnection) -> str:
        experiment_id = _insert_experiment(con, record, _new_id(), now)
        _insert_runs(con, experiment_id, specs, extra)
        return experiment_id

    return db.write(apply)
