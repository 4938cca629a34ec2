"""The run detail page's data, pure (no st.* calls; unit-tested directly): one run's facts (what
ran where: device, container, worker, versions, weights), its stage timings, its permalink, and
what the background log says about it (ui.live_run.run_log_lines).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from bench.formatting import as_finite, format_cost, format_seconds, repeat_label
from core.stages import STAGE_TABLE
from ui.labels import DETAIL_PATH, page_url, text_of, when


def _seconds(row: Mapping[str, Any], column: str) -> float | None:
    return as_finite(row.get(column))


STAGE_KINDS = {"job": "job", "startup": "start-up (once per worker)",
               "queue": "before the job", "measurement": "measurement (after the job)"}
"""Stage kind (core.stages) -> what the stage table says it counts towards."""


def stage_table(row: Mapping[str, Any]) -> pd.DataFrame:
    """Stage, seconds, what it counts towards and share of the worker's wall clock (fetch to the
    end of the upload), for the stages the run recorded (the fast engine overlaps decode, upscale
    and encode, so shares can add up past 100%)."""
    total = _seconds(row, "total_seconds")
    rows = []
    for stage in STAGE_TABLE:
        seconds = _seconds(row, stage.column)
        if seconds is None:
            continue
        inside = stage.kind in ("job", "startup")
        rows.append({"Stage": stage.name.replace("_", " "), "Seconds": format_seconds(seconds),
                     "Counts as": STAGE_KINDS[stage.kind],
                     "Share of total": f"{seconds / total:.0%}" if total and inside else "—"})
    if total is not None:
        rows.append({"Stage": "total (worker, fetch to upload)", "Seconds": format_seconds(total),
                     "Counts as": "", "Share of total": "100%"})
    return pd.DataFrame(rows, columns=["Stage", "Seconds", "Counts as", "Share of total"])


def run_facts(row: Mapping[str, Any]) -> pd.DataFrame:
    """What is known of the run, one fact per row (blank facts left out): where it ran (the
    device the worker reported, the price card, the container or worker process, the Modal
    call), what ran (model, engine, precision, weights, versions, encoder), when, how long and
    what it cost."""
    pid, host = text_of(row.get("worker_pid")), text_of(row.get("worker_host"))
    cores = as_finite(row.get("cpu_cores"))
    facts = [
        ("Status", text_of(row.get("status"))),
        ("Reason", text_of(row.get("error"))),
        ("Clip", f"{row.get('clip')} ({_span(row)})" if _span(row) else text_of(row.get("clip"))),
        ("Repeat", repeat_label(row.get("repeat_index"))),
        ("Cold start", {True: "yes (its start-up is in the bill, not in its job seconds)",
                        False: "no"}.get(row.get("cold"), "not recorded")),
        ("Candidate", text_of(row.get("candidate"))),
        ("Asked for", text_of(row.get("device") or row.get("gpu"))),
        ("Device", text_of(row.get("device_name"))),
        ("Priced as", text_of(row.get("price_card")) or ("its CPU cores" if row.get("device") == "cpu"
                                                        else "")),
        ("Container / worker", text_of(row.get("container_id"))),
        ("Worker process", f"{pid.split('.')[0]}@{host}" if pid else host),
        ("CPU cores", f"{cores:g}" if cores is not None else ""),
        ("Modal call", text_of(row.get("call_id"))),
        ("Model", text_of(row.get("model"))),
        ("Engine", text_of(row.get("engine"))),
        ("Precision", text_of(row.get("precision"))),
        ("Compile", text_of(row.get("compile_choice"))),
        ("Weights", text_of(row.get("weights_provenance"))),
        ("Weights sha256", text_of(row.get("weights_sha256"))),
        ("torch / CUDA", " / ".join(p for p in (text_of(row.get("torch_version")),
                                                text_of(row.get("cuda_version"))) if p)),
        ("Encoder", " ".join(p for p in (text_of(row.get("encoder")),
                                         text_of(row.get("encode_preset"))) if p)),
        ("Output", _output(row)),
        ("Queued", when(row.get("created_at"))),
        ("Started", when(row.get("started_at")) if row.get("started_at") is not None else ""),
        ("Finished", when(row.get("finished_at")) if row.get("finished_at") is not None else ""),
        ("Job seconds", _maybe(format_seconds, _seconds(row, "job_seconds"))),
        ("Frames per second", _maybe(lambda v: f"{v:.2f} (frames / job seconds)",
                                     _seconds(row, "fps"))),
        ("Start-up seconds", _maybe(format_seconds, _seconds(row, "startup_seconds"))),
        ("Launch to result", _maybe(format_seconds, _seconds(row, "client_wall_seconds"))),
        ("GPU cost", _maybe(lambda v: f"{format_cost(v)} (job seconds)", _seconds(row, "cost"))),
        ("All-in cost", _maybe(lambda v: f"{format_cost(v)} (job seconds)",
                               _seconds(row, "cost_all_in"))),
        ("Run id", text_of(row.get("id"))),
        ("Experiment id", text_of(row.get("experiment_id"))),
    ]
    return pd.DataFrame([{"Fact": k, "Value": v} for k, v in facts if v],
                        columns=["Fact", "Value"])


def _maybe(show: Callable[[float], str], value: float | None) -> str:
    return "" if value is None else show(value)


def _span(row: Mapping[str, Any]) -> str:
    start, end = as_finite(row.get("clip_start")), as_finite(row.get("clip_end"))
    return f"{start:g}–{end:g} s of the source" if start is not None and end is not None else ""


def _output(row: Mapping[str, Any]) -> str:
    width, height = as_finite(row.get("output_width")), as_finite(row.get("output_height"))
    frames = as_finite(row.get("frames_out"))
    parts = [f"{int(width)}x{int(height)}" if width and height else "",
             f"{int(frames)} frames" if frames is not None else "",
             text_of(row.get("output_key"))]
    return ", ".join(p for p in parts if p)


def permalink(page_address: str | None, run_id: str) -> str:
    """The address of the run's detail page: absolute when the current page's address is known
    (st.context.url), else relative to the app's root."""
    relative = page_url(DETAIL_PATH, run=run_id)
    if not page_address:
        return relative
    parts = urlsplit(page_address)
    root = parts.path.rsplit("/", 1)[0]
    path, _, query = relative.partition("?")
    return urlunsplit((parts.scheme, parts.netloc, f"{root}/{path}", query, ""))
