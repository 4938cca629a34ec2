"""The Run page's live view, pure (no st.* calls; unit-tested directly): stored run rows -> one
progress row per run (with the time it has been running) and the experiment's overall progress
(elapsed time and an estimate of the time left); the background process's log; the Modal runs
nobody is collecting any more.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from bench.escape import page_text
from bench.experiments import run_title, run_titles
from bench.formatting import as_finite as _float
from bench.formatting import format_cost, format_duration, format_seconds
from core.paths import run_log_path
from core.stages import STAGE_BY_NAME
from core.status import ACTIVE_STATUSES, FAILED_STATUSES, RUN_STATUSES
from ui.statuses import STATUS_ICONS, UNKNOWN_ICON


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
    """One line of Markdown: the status icon, then (as text, bench.escape.page_text) the label
    and frames/stage or time/cost or the reason."""
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
    elapsed_s: float | None = None
    """Seconds since the first run started (to the last run's end once finished); None before."""
    remaining_s: float | None = None
    """Estimated seconds left (remaining_seconds; None until a run has succeeded, 0 once
    finished)."""

    @property
    def runs(self) -> int:
        """Number of runs."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """True when there are runs and none is queued or running."""
        return self.runs > 0 and not any(self.counts.get(s, 0) for s in ACTIVE_STATUSES)

    @property
    def failures(self) -> int:
        """Runs that failed or were interrupted."""
        return sum(self.counts.get(s, 0) for s in FAILED_STATUSES)

    @property
    def fraction(self) -> float:
        """Frames done over frames total (0 when unknown)."""
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    def timing(self) -> str:
        """'0:14 elapsed, about 0:20 left' (while running), 'took 0:34' (finished), '' before."""
        if self.elapsed_s is None:
            return ""
        if self.finished:
            return f"took {format_duration(self.elapsed_s)}"
        left = "estimating the time left" if self.remaining_s is None else \
            f"about {format_duration(self.remaining_s)} left"
        return f"{format_duration(self.elapsed_s)} elapsed, {left}"

    def headline(self) -> str:
        """'3 of 5 runs finished · 2 succeeded, 1 failed · 12/30 frames · 0:14 elapsed, about
        0:20 left'."""
        if not self.runs:
            return "No runs in this experiment"
        ended = sum(n for s, n in self.counts.items() if s not in ACTIVE_STATUSES)
        parts = [f"{ended} of {self.runs} run{'s' if self.runs != 1 else ''} finished"]
        states = [f"{n} {s}" for s, n in self.counts.items() if n]
        if states:
            parts.append(", ".join(states))
        if self.frames_total:
            parts.append(f"{self.frames_done}/{self.frames_total} frames")
        if self.timing():
            parts.append(self.timing())
        return " · ".join(parts)


def is_cold(row: Mapping[str, Any]) -> bool:
    """Whether the run is recorded as cold (False when not, or not recorded)."""
    value = row.get("cold")
    return value is not None and not (isinstance(value, float) and math.isnan(value)) \
        and value is not pd.NA and bool(value)


def utc_now() -> datetime:
    """Now as the store writes times: UTC without a zone."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _time(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (not isinstance(value, (datetime, str))
                                            and pd.isna(value)):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _int(value: Any) -> int | None:
    """A whole number from a DataFrame cell (None for NaN/None)."""
    number = _float(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = " ".join(str(value).split())
    return text or None


def frames_of(row: Mapping[str, Any]) -> tuple[int, int]:
    """(frames done, frames total) of a run row; the total falls back to the frames expected."""
    done = _int(row.get("frames_done")) or 0
    total = _int(row.get("frames_total")) or _int(row.get("frames_expected")) or 0
    if row.get("status") == "succeeded":
        out = _int(row.get("frames_out"))
        done = out if out is not None else max(done, total)
        total = max(total, done)
    return done, total


def progress_row(row: Mapping[str, Any], title: str | None = None,
                 now: datetime | None = None) -> ProgressRow:
    """One run row (as bench.experiments.read_runs gives it) as a progress row; `title` names it
    (default: its run_title),
    `now` (UTC, default now) dates a running run's time."""
    status = str(row.get("status"))
    label = title or run_title(row, str(row.get("candidate") or row.get("gpu")))
    done, total = frames_of(row)
    error = _text(row.get("error"))
    icon = STATUS_ICONS.get(status, UNKNOWN_ICON)
    if status == "succeeded":
        fraction = 1.0
        seconds = _float(row.get("job_seconds"))
        details = [f"{done} frames", f"{format_seconds(seconds)} job"]
        fps = _float(row.get("fps"))
        if fps is not None:
            details.append(f"{fps:.2f} frames/s")
        cost = _float(row.get("cost"))
        if cost is not None:
            details.append(format_cost(cost))
        if is_cold(row):
            details.append("cold start")
        line = f"{label} — succeeded: " + ", ".join(details)
    elif status in FAILED_STATUSES:
        fraction = min(1.0, done / total) if total else 0.0
        line = f"{label} — {status}: {error or 'no reason recorded'}"
    elif status == "running":
        fraction = min(1.0, done / total) if total else 0.0
        stage = _text(row.get("progress_stage"))
        doing = STAGE_BY_NAME[stage].words if stage in STAGE_BY_NAME else (stage or "starting")
        started = _time(row.get("started_at"))
        running = f" · {format_duration(((now or utc_now()) - started).total_seconds())}" \
            if started is not None else ""
        line = f"{label} — {doing}: {done}/{total or '?'} frames{running}"
    else:
        fraction = 0.0
        line = f"{label} — {status}" + (f" ({total} frames)" if total else "")
    text = f"{icon} {page_text(line)}"  # the icon is Markdown; names and reasons are text
    return ProgressRow(str(row.get("id")), label, status, fraction, text, error)


def progress_rows(runs: pd.DataFrame | None, now: datetime | None = None) -> list[ProgressRow]:
    """A progress row per run (read_runs rows), in plan order, named as run_titles names them."""
    if runs is None or runs.empty:
        return []
    frame = runs.sort_values("seq") if "seq" in runs else runs
    titles = run_titles(frame)
    return [progress_row(r, titles.get(str(r.get("id"))), now) for r in frame.to_dict("records")]


def experiment_progress(runs: pd.DataFrame | None, now: datetime | None = None) -> ExperimentProgress:
    """Counts per status, frames done/total, the time since the first run started and the time
    left (see remaining_seconds) over the experiment's runs."""
    if runs is None or runs.empty:
        return ExperimentProgress()
    counts: dict[str, int] = {}
    done_sum = total_sum = 0
    starts, ends = [], []
    records = runs.to_dict("records")
    for row in records:
        status = str(row.get("status"))
        counts[status] = counts.get(status, 0) + 1
        done, total = frames_of(row)
        done_sum += min(done, total) if total else done
        total_sum += total
        started, ended = _time(row.get("started_at")), _time(row.get("finished_at"))
        if started is not None:
            starts.append(started)
        if ended is not None:
            ends.append(ended)
    ordered = {s: counts[s] for s in RUN_STATUSES if s in counts}
    ordered.update({s: n for s, n in counts.items() if s not in ordered})
    progress = ExperimentProgress(ordered, done_sum, total_sum)
    if not starts:
        return progress
    end = max(ends) if progress.finished and ends else (now or utc_now())
    elapsed = max(0.0, (end - min(starts)).total_seconds())
    remaining = 0.0 if progress.finished else remaining_seconds(records, total_sum - done_sum)
    return ExperimentProgress(ordered, done_sum, total_sum, elapsed, remaining)


def remaining_seconds(records: list[Mapping[str, Any]], frames_left: int) -> float | None:
    """The time the frames left should take: at the pace of the runs that ended (frames per
    second of their wall time, start-up and hand-over included; warm runs only when there are
    some, so a model load does not set the pace), on as many devices as are running now. None
    until a run has succeeded: the first one's pace is mostly its model load."""
    finished = []
    for row in records:
        started, ended = _time(row.get("started_at")), _time(row.get("finished_at"))
        frames = _int(row.get("frames_out"))
        if row.get("status") == "succeeded" and started and ended and frames and ended > started:
            finished.append((frames, (ended - started).total_seconds(), is_cold(row)))
    warm = [f for f in finished if not f[2]] or finished
    if not warm:
        return None
    pace = sum(f[0] for f in warm) / sum(f[1] for f in warm)
    lanes = len({str(r.get("gpu")) for r in records if r.get("status") == "running"}) or 1
    return max(0, frames_left) / (pace * lanes)


def run_log_lines(db_path: Path | str, experiment_id: str, run_id: str) -> list[str]:
    """The background process's log lines about one run (execute names each run with its short
    id in brackets); [] when there are none."""
    from bench.experiments import short_id

    tag = f"[{short_id(run_id)}]"
    try:
        text = run_log_path(db_path, experiment_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if tag in line]


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
