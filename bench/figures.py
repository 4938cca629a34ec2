"""A stored run's figures, computed in one place for every view: its job seconds, start-up seconds,
fps and costs (core.stages defines the seconds, bench.pricing computes the cost).

Every view (the CLI table, `run --json`, `history`, the exports, Compare, History, Run detail, the
live view) reads these figures off the run, so a number shown twice is the same number. Nothing
here divides a stored cost back into a rate: costs follow from seconds and the run's own
experiment's price card. Pure functions over store.runs rows; no database.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from bench.formatting import as_finite
from bench.pricing import PriceTable, RunRates, gpu_for_device, run_cost, run_rates
from core.errors import InputError
from core.stages import STAGE_TABLE, TOTAL, fps, job_seconds

CPU_DEVICE = "cpu"
"""The device label of a run on this machine's CPU (priced by its cores)."""


@dataclass(frozen=True)
class RunFigures:
    """What every view shows of one run."""

    candidate: str
    """What the verdict compares: the device, plus model and/or engine where the runs differ in
    them ('cpu · fast')."""
    device: str
    """What ran: the planned device or GPU ('T4', 'cuda:0', 'cpu')."""
    price_card: str | None
    """The catalog card it is priced as ('T4'); None for a CPU device (priced by cores) or a name
    only its results file prices."""
    job_seconds: float | None
    """Job seconds (core.stages.job_seconds); None when it brought none."""
    startup_seconds: float | None
    """Start-up it paid (boot or process start, model load, compile); 0 on a warm worker."""
    fps: float | None
    """Frames out per job second."""
    rate: float | None
    """$/s of its price card (a CPU device: its cores)."""
    all_in_rate: float | None
    """$/s of its card, CPU and memory."""
    cost: float | None
    """GPU-only $ of its job seconds."""
    cost_all_in: float | None
    """All-in $ of its job seconds."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict. Raises nothing."""
        return asdict(self)


FIGURE_KEYS = tuple(RunFigures.__dataclass_fields__)
"""The keys read_runs adds to each run record."""


def stored_job_seconds(run: Mapping[str, Any]) -> float | None:
    """A run's job seconds as stored: the job_seconds column, else the job's stages (rows older than
    the column), else an imported run's elapsed time. Raises nothing."""
    stored = as_finite(run.get("job_seconds"))
    if stored is not None:
        return stored
    stages = {s.name: as_finite(run.get(s.column)) for s in STAGE_TABLE}
    stages[TOTAL] = as_finite(run.get(f"{TOTAL}_seconds"))
    derived = job_seconds(stages)
    return derived if derived is not None else as_finite(run.get("billed_seconds"))


def card_rate(run: Mapping[str, Any], prices: PriceTable,
              file_rates: Mapping[str, float]) -> tuple[str | None, float | None]:
    """(price card, its $/s) of a run: its planned card, else the card matching the device it
    got, else its label's rate in its results file's own pricing, else (a CPU device) its cores
    at the core rate; (None, None) when nothing prices it. Raises nothing."""
    device = str(run.get("gpu") or "")
    for card in (run.get("price_gpu"), gpu_for_device(str(run.get("device_name") or "")), device):
        if card:
            try:
                return str(card), prices.rate(str(card))
            except InputError:
                continue
    if device in file_rates:
        return None, float(file_rates[device])
    if device == CPU_DEVICE:
        cores = as_finite(run.get("cpu_cores"))
        try:
            return None, prices.cpu_rate(cores or 1.0)
        except InputError:
            return None, None
    return None, None


def figures_of(run: Mapping[str, Any], candidate: str, prices: PriceTable,
               file_rates: Mapping[str, float] | None = None) -> RunFigures:
    """The figures of one stored run (store.runs columns) of an experiment priced by `prices`
    (and an imported file's `file_rates` for names the catalog lacks). Raises nothing."""
    seconds = stored_job_seconds(run)
    card, rate = card_rate(run, prices, file_rates or {})
    rates: RunRates | None = None
    if rate is not None:
        try:
            rates = run_rates(prices, rate, str(run.get("gpu")) == CPU_DEVICE,
                              as_finite(run.get("cpu_cores")), as_finite(run.get("cpu_used_cores")),
                              as_finite(run.get("memory_gib")), as_finite(run.get("peak_memory_gib")))
        except InputError:
            rates = None
    frames = as_finite(run.get("frames_out"))
    ok = str(run.get("status")) == "succeeded"
    return RunFigures(
        candidate=candidate, device=str(run.get("gpu") or ""), price_card=card,
        job_seconds=seconds, startup_seconds=as_finite(run.get("startup_seconds")),
        fps=fps(frames, seconds) if ok else None,
        rate=rates.card if rates else rate, all_in_rate=rates.all_in if rates else None,
        cost=run_cost(seconds, rates.card) if rates and ok and seconds is not None else None,
        cost_all_in=run_cost(seconds, rates.all_in) if rates and ok and seconds is not None else None,
    )


def file_rates_of(price_table_json: Any) -> dict[str, float]:
    """The flat {name: $/s} pricing an imported results file stored as its price table ({} for
    a PriceTable or anything else). Raises nothing."""
    raw = price_table_json
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, Mapping) or "gpus" in raw:
        return {}
    out = {}
    for name, value in raw.items():
        rate = as_finite(value)
        if rate is not None and rate >= 0:
            out[str(name)] = rate
    return out
