"""The Run page's live view, pure (no st.* calls; unit-tested directly): stored run rows -> one
progress row per run and the experiment's overall progress; the background process's log; the
Modal runs nobody is collecting any more.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.formatting import as_finite as _float
from bench.formatting import format_cost, format_seconds
from core.paths import run_log_path
from core.status import ACTIVE_STATUSES, FAILED_STATUSES, RUN_STATUSES
from ui.statuses import STATUS_ICONS, UNKNOWN_ICON

STAGE_WORDS = {"fetch": "fetching the input", "model_load": "loading the model", "decode": "decoding",
               "upscale": "upscaling", "encode": "encoding", "upload": "uploading"}
"""Worker stage -> what the progress line says."""


@dataclass(frozen=True)
class ProgressRow:
    """How far one run has got, ready to draw as a progress bar."""

    run_id: str
    """Run id."""
    label: str
    """'GPU · clip · #repeat'."""
    status: str
    """queued, running, succeeded, failed or interrupted."""
    fraction: float
    """0..1 for the progress bar (1 once succeeded)."""
    text: str
    """One line: icon, label, and frames/stage or time/cost or the reason."""
    error: str | None = None
    """Why it failed or was interrupted."""


@dataclass(frozen=True)
class ExperimentProgress:
    """The whole experiment at a glance."""

    counts: dict[str, int] = field(default_factory=dict)
    """Status -> number of runs."""
    frames_done: int = 0
    """Frames upscaled so far over all runs."""
    frames_total: int = 0
    """Frames all runs will produce."""

    @property
    def runs(self) -> int:
        """Number of runs."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """True when there are runs and none is queued or running."""
        return self.runs > 0 and not any(self.counts.get(s, 0) for s in ACTIVE_STATUSES)

    @property
    def fraction(self) -> float:
        """Frames done over frames total (0 when unknown)."""
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def headline(self) -> str:
        """'3 of 5 runs finished · 2 succeeded, 1 failed · 12/30 frames'."""
        if not self.runs:
            return "No runs in this experiment"
        ended = sum(n for s, n in self.counts.items() if s not in ACTIVE_STATUSES)
        parts = [f"{ended} of {self.runs} run{'s' if self.runs != 1 else ''} finished"]
        states = [f"{n} {s}" for s, n in self.counts.items() if n]
        if states:
            parts.append(", ".join(states))
        if self.frames_total:
            parts.append(f"{self.frames_done}/{self.frames_total} frames")
        return " · ".join(parts)


def _int(value: Any) -> int | None:
    """A whole number from a DataFrame cell (None for NaN/None)."""
    number = _float(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def run_title(row: Mapping[str, Any]) -> str:
    """'cpu · 0.3s · #1' for a run row."""
    repeat = _int(row.get("repeat_index"))
    return " · ".join([str(row.get("gpu")), str(row.get("clip"))]
                      + ([f"#{repeat + 1}"] if repeat is not None else []))


def frames_of(row: Mapping[str, Any]) -> tuple[int, int]:
    """(frames done, frames total) of a run row; the total falls back to the frames expected."""
    done = _int(row.get("frames_done")) or 0
    total = _int(row.get("frames_total")) or _int(row.get("frames_expected")) or 0
    if row.get("status") == "succeeded":
        out = _int(row.get("frames_out"))
        done = out if out is not None else max(done, total)
        total = max(total, done)
    return done, total


def progress_row(row: Mapping[str, Any]) -> ProgressRow:
    """One run row (a list_runs record) as a progress row."""
    status = str(row.get("status"))
    label = run_title(row)
    done, total = frames_of(row)
    error = _text(row.get("error"))
    icon = STATUS_ICONS.get(status, UNKNOWN_ICON)
    if status == "succeeded":
        fraction = 1.0
        seconds = _float(row.get("billed_seconds")) or _float(row.get("total_seconds"))
        details = [f"{done} frames", format_seconds(seconds)]
        fps = _float(row.get("fps"))
        if fps is not None:
            details.append(f"{fps:.2f} frames/s")
        cost = _float(row.get("cost_gpu"))
        if cost is not None:
            details.append(format_cost(cost))
        if row.get("cold") is True:
            details.append("cold start")
        text = f"{icon} {label} — succeeded: " + ", ".join(details)
    elif status in FAILED_STATUSES:
        fraction = min(1.0, done / total) if total else 0.0
        text = f"{icon} {label} — {status}: {error or 'no reason recorded'}"
    elif status == "running":
        fraction = min(1.0, done / total) if total else 0.0
        stage = _text(row.get("progress_stage"))
        doing = STAGE_WORDS.get(stage or "", stage or "starting")
        text = f"{icon} {label} — {doing}: {done}/{total or '?'} frames"
    else:
        fraction = 0.0
        text = f"{icon} {label} — {status}" + (f" ({total} frames)" if total else "")
    return ProgressRow(str(row.get("id")), label, status, fraction, text, error)


def progress_rows(runs: pd.DataFrame | None) -> list[ProgressRow]:
    """A progress row per run of a list_runs DataFrame, in plan order."""
    if runs is None or runs.empty:
        return []
    frame = runs.sort_values("seq") if "seq" in runs else runs
    return [progress_row(r) for r in frame.to_dict("records")]


def experiment_progress(runs: pd.DataFrame | None) -> ExperimentProgress:
    """Counts per status and frames done/total over the experiment's runs."""
    if runs is None or runs.empty:
        return ExperimentProgress()
    counts: dict[str, int] = {}
    done_sum = total_sum = 0
    for row in runs.to_dict("records"):
        status = str(row.get("status"))
        counts[status] = counts.get(status, 0) + 1
        done, total = frames_of(row)
        done_sum += min(done, total) if total else done
        total_sum += total
    ordered = {s: counts[s] for s in RUN_STATUSES if s in counts}
    ordered.update({s: n for s, n in counts.items() if s not in ordered})
    return ExperimentProgress(ordered, done_sum, total_sum)


# --------------------------------------------------------------------------- background process


def launch_log_tail(db_path: Path | str, experiment_id: str, lines: int = 30) -> str:
    """The last `lines` lines of the background process's log ('' when there is none)."""
    try:
        text = run_log_path(db_path, experiment_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def orphaned_modal_runs(runs: pd.DataFrame, host: str | None = None) -> list[str]:
    """Ids of Modal runs still running remotely (call id stored) whose collecting process on this
    machine is gone, so nobody is gathering their results: the page offers to reattach."""
    from bench.liveness import pid_exists

    host = host or socket.gethostname()
    orphans = []
    for row in runs.to_dict("records"):
        pid = _int(row.get("worker_pid"))
        if (row.get("status") == "running" and _text(row.get("call_id")) and pid is not None
                and (row.get("worker_host") or host) == host and not pid_exists(pid)):
            orphans.append(str(row["id"]))
    return orphans
