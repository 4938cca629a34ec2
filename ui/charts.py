"""The comparison charts: Analysis / runs DataFrame -> plotly Figure.

No st.* calls here: pages draw what these return, and tests call them directly. Every function
accepts empty input (None, an Analysis without measured clips, an empty DataFrame) and then returns
a figure that says so ("No succeeded runs yet") instead of an empty plot. Costs are in US dollars
with a "$" tick format, times in seconds of wall time; amounts in hovers and labels are written by
bench.formatting.format_cost, as in every table. Cold runs (start-up paid) are kept apart in every
chart: hatched bars and open markers where a median includes one, '(cold)' on a run's own bar,
their own series in the cold-vs-warm chart.
"""

from __future__ import annotations

import html
import math
from typing import Iterable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from bench.analysis import Analysis, ClipSummary, fitted_cost, pareto_front
from bench.experiments import run_title
from bench.formatting import as_finite as _number
from bench.formatting import format_cost, format_seconds, repeat_label  # noqa: F401 (re-exported for pages)
from core.stages import STAGE_TABLE

EMPTY_MESSAGE = "No succeeded runs yet"
"""What an empty chart says."""
COST_TICKS = "$.4~g"
"""d3 format of $ axis ticks: 4 significant digits, trailing zeros dropped ($0.0304), as
format_cost writes amounts under a dollar (hovers use format_cost itself)."""
PALETTE = qualitative.Plotly
"""Colours of GPUs, in plan order (the same GPU has the same colour in every chart)."""
"""Colour of each pipeline stage in the stage breakdown."""
COLD_PATTERN = "/"
"""Bar pattern of a median that includes a cold run."""
COLD_LEGEND = "hatched: includes a cold run"
"""Legend entry explaining the hatching."""
SECONDS_AXIS = {"steady": "Job seconds (s)", "billed": "Billed seconds (s)"}
"""Analysis basis -> the axis label of its seconds: every chart says which seconds it shows."""
METRICS = {
    "seconds": ("Time per clip", SECONDS_AXIS["steady"]),
    "fps": ("Frames per second per clip", "Throughput (frames/s)"),
    "cost": ("GPU cost per clip", "GPU cost per clip ($)"),
}
"""clip_bars metric -> (title, y-axis label)."""


# --------------------------------------------------------------------------- formatting


def cost_tickformat(values: Iterable[float]) -> str:
    """d3 tick format of a $ axis: cents for amounts of a dollar or more, else COST_TICKS."""
    top = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    return "$,.2f" if top >= 1 else COST_TICKS


def gpu_colours(gpus: Iterable[str]) -> dict[str, str]:
    """GPU -> colour, by position (cycles after len(PALETTE) GPUs)."""
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(gpus))}


# --------------------------------------------------------------------------- shared pieces


def empty_figure(title: str, message: str = EMPTY_MESSAGE) -> go.Figure:
    """A titled figure with no data and `message` in the middle."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=16))
    fig.update_layout(title=title, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      height=300)
    return fig


_DATA_FIELDS = ("name", "text", "hovertext", "x", "y", "customdata", "labels")
"""Trace fields that carry data (GPU, clip and run names, formatted values) into the chart."""


def names_as_text(fig: go.Figure) -> go.Figure:
    """The figure with every name drawn as text. Plotly draws its own HTML subset (<a href>, <b>,
    <br>, ...) in trace names, categories, texts and hover labels, so a GPU called
    '<a href=...>' would be a link: the data fields' < > & become entities (which plotly shows as
    the characters), and the same names inside this module's templates and titles likewise.
    Changes and returns fig."""
    names: set[str] = set()

    def escaped(value):
        if isinstance(value, str):
            if any(c in value for c in "<>&"):
                names.add(value)
                return html.escape(value, quote=False)
            return value
        if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, str)):
            return [escaped(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
        return value

    for trace in fig.data:
        for field in _DATA_FIELDS:
            if field in trace and trace[field] is not None:
                trace[field] = escaped(trace[field])

    def within(text):
        if not isinstance(text, str):
            return text
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, html.escape(name, quote=False))
        return text

    if names:
        for trace in fig.data:
            for field in ("hovertemplate", "texttemplate"):
                if field in trace and isinstance(trace[field], str):
                    trace[field] = within(trace[field])
        fig.layout.title.text = within(fig.layout.title.text)
        for annotation in fig.layout.annotations or ():
            annotation.text = within(annotation.text)
    return fig


def measured(analysis: Analysis | None) -> list[ClipSummary]:
    """Clips of the analysis with at least one succeeded run (empty for None)."""
    if analysis is None:
        return []
    return [s for s in analysis.summaries if s.stats]


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, **extra) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                      legend_title_text=extra.pop("legend", "GPU"), hovermode="closest",
                      margin=dict(t=60, l=60, r=20, b=50), **extra)
    return fig


def _succeeded(runs: pd.DataFrame | None) -> pd.DataFrame:
    """The succeeded rows of a list_runs DataFrame (empty frame for None/empty)."""
    if runs is None or runs.empty or "status" not in runs:
        return pd.DataFrame()
    return runs[runs["status"] == "succeeded"]


def _cold_view_seconds(row: Mapping) -> float | None:
    """What a run took as the cold-vs-warm view shows it, alike for every candidate: its job
    seconds, plus its start-up when it was cold."""
    job = _number(row.get("job_seconds"))
    if job is None:
        return None
    return job + ((_number(row.get("startup_seconds")) or 0.0) if row.get("cold") is True else 0.0)


# --------------------------------------------------------------------------- per-clip bars


def _metric(stats, frames: int, metric: str) -> tuple[float, float, float]:
    """(value, spread below, spread above) of one GPU on one clip."""
    if metric == "seconds":
        return stats.median_seconds, stats.median_seconds - stats.min_seconds, \
            stats.max_seconds - stats.median_seconds
    if metric == "fps":
        fast, slow = frames / stats.min_seconds, frames / stats.max_seconds
        return stats.fps, stats.fps - slow, fast - stats.fps
    return stats.cost, stats.cost - stats.cost_min, stats.cost_max - stats.cost


def clip_bars(analysis: Analysis | None, metric: str = "seconds") -> go.Figure:
    """Grouped bars per clip, one bar per GPU, of its median time, fps or GPU cost, with the
    spread over repeats (min..max) as error bars; a bar whose runs include a cold start is
    hatched. metric: 'seconds', 'fps' or 'cost'.

    Raises ValueError for another metric."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}: choose one of {', '.join(METRICS)}")
    title, y_title = METRICS[metric]
    clips = measured(analysis)
    if not clips:
        return empty_figure(title)
    if metric == "seconds":
        y_title = SECONDS_AXIS.get(analysis.basis, y_title)
    colours = gpu_colours(analysis.gpus)
    fig = go.Figure()
    for gpu in analysis.gpus:
        xs, ys, lo, hi, text, patterns = [], [], [], [], [], []
        for s in clips:
            stats = s.get(gpu)
            if stats is None:
                continue
            value, below, above = _metric(stats, s.frames, metric)
            xs.append(s.clip)
            ys.append(value)
            lo.append(below)
            hi.append(above)
            text.append([_value_text(metric, value), _runs_text(stats)])
            patterns.append(COLD_PATTERN if stats.cold_runs else "")
        if not xs:
            continue
        fig.add_bar(name=gpu, x=xs, y=ys, marker_color=colours[gpu], customdata=text,
                    marker_pattern_shape=patterns,
                    error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                    hovertemplate=f"{gpu} on %{{x}}: %{{customdata[0]}} (%{{customdata[1]}})"
                                  "<extra></extra>")
    fig.update_layout(barmode="group")
    _cold_legend(fig, [st for s in clips for st in s.stats])
    _layout(fig, f"{title} (median; bars show the min..max over repeats)", "Clip", y_title)
    if metric == "cost":
        fig.update_yaxes(tickformat=cost_tickformat(s.cost_max for s in _all_stats(clips)))
    return fig


def _value_text(metric: str, value: float) -> str:
    return {"seconds": format_seconds, "fps": lambda v: f"{v:.2f} frames/s",
            "cost": format_cost}[metric](value)


def _runs_text(stats) -> str:
    text = f"{stats.runs} run{'s' if stats.runs != 1 else ''}"
    return text + (f", {stats.cold_runs} cold: start-up included" if stats.cold_runs else "")


def _cold_legend(fig: go.Figure, stats: Sequence) -> None:
    """A legend entry explaining the hatching, when some bar is hatched."""
    if any(st.cold_runs for st in stats):
        fig.add_bar(name=COLD_LEGEND, x=[None], y=[None], marker_color="white",
                    marker_pattern_shape=COLD_PATTERN, marker_line_color="grey",
                    hoverinfo="skip")


def _all_stats(clips: Sequence[ClipSummary]) -> list:
    """Every GpuClipStats of the clips."""
    return [st for s in clips for st in s.stats]


def time_bars(analysis: Analysis | None) -> go.Figure:
    """clip_bars of the median seconds."""
    return clip_bars(analysis, "seconds")


def fps_bars(analysis: Analysis | None) -> go.Figure:
    """clip_bars of frames per second."""
    return clip_bars(analysis, "fps")


def cost_bars(analysis: Analysis | None) -> go.Figure:
    """clip_bars of the GPU-only cost."""
    return clip_bars(analysis, "cost")


# --------------------------------------------------------------------------- break-even


def break_even_chart(analysis: Analysis | None) -> go.Figure:
    """Per clip and candidate GPU: its median time (bar; green when under break-even, red when
    over) and the break-even time against the baseline (a black tick): the time at which it would
    cost as much as the baseline (baseline seconds x baseline rate / its rate)."""
    title = "Break-even against the baseline"
    rows = [(s.clip, st) for s in measured(analysis) for st in s.stats
            if st.gpu != analysis.baseline_gpu and st.break_even_seconds is not None]
    if not rows:
        message = EMPTY_MESSAGE if not measured(analysis) else \
            "Break-even needs the baseline and another GPU on the same clip"
        return empty_figure(title, message)
    x = [[clip for clip, _ in rows], [st.gpu for _, st in rows]]
    beats = [st.beats_break_even for _, st in rows]
    fig = go.Figure()
    fig.add_bar(name="Measured time", x=x, y=[st.median_seconds for _, st in rows],
                marker_color=["#2ca02c" if b else "#d62728" for b in beats],
                marker_pattern_shape=[COLD_PATTERN if st.cold_runs else "" for _, st in rows],
                customdata=[("cheaper" if b else "dearer") + f" than {analysis.baseline_gpu}"
                            for b in beats],
                hovertemplate="%{x}: %{y:.1f} s, %{customdata}<extra></extra>")
    fig.add_scatter(name=f"Break-even vs {analysis.baseline_gpu}", x=x,
                    y=[st.break_even_seconds for _, st in rows], mode="markers",
                    marker=dict(symbol="line-ew-open", size=40, line=dict(width=4, color="black"),
                                color="black"),
                    hovertemplate="%{x}: break-even %{y:.1f} s<extra></extra>")
    fig.update_xaxes(tickangle=0)
    _cold_legend(fig, [st for _, st in rows])
    return _layout(fig, f"{title} ({analysis.baseline_gpu}): green bars run under break-even "
                   "(cheaper), red over", "Clip · candidate",
                   SECONDS_AXIS.get(analysis.basis, SECONDS_AXIS["steady"]), legend="")


# --------------------------------------------------------------------------- cost curves


def cost_curves(analysis: Analysis | None, points: int = 60) -> go.Figure:
    """GPU-only cost per clip against clip length (seconds of video) from each GPU's fit
    (overhead + frames / throughput, x its rate), the measured medians as dots, and the crossovers
    (where the cheapest GPU changes) marked."""
    title = "Cost vs clip length (fitted)"
    clips = measured(analysis)
    if not clips or not analysis.fits:
        return empty_figure(title)
    fps = analysis.fps
    top = max([s.frames for s in clips] + [c.frames for c in analysis.crossovers]) * 1.2
    grid = [top * i / (points - 1) for i in range(points)]
    colours = gpu_colours(analysis.gpus)
    fig = go.Figure()
    for gpu, fit in analysis.fits.items():
        rate = analysis.rates.get(gpu)
        if rate is None:
            continue
        costs = [fitted_cost(fit, rate, n) for n in grid]
        fig.add_scatter(name=f"{gpu} (fit)", x=[n / fps for n in grid], y=costs, mode="lines",
                        line=dict(color=colours.get(gpu)), legendgroup=gpu,
                        customdata=[format_cost(c) for c in costs],
                        hovertemplate=f"{gpu}: %{{customdata}} for a %{{x:.1f}} s clip"
                                      "<extra>fit</extra>")
        dots = [(s.frames / fps, s.get(gpu)) for s in clips if s.get(gpu) is not None]
        fig.add_scatter(name=f"{gpu} (measured)", x=[d[0] for d in dots],
                        y=[d[1].cost for d in dots], mode="markers",
                        marker=dict(color=colours.get(gpu), size=9,
                                    symbol=["circle-open" if d[1].cold_runs else "circle"
                                            for d in dots]),
                        customdata=[[format_cost(d[1].cost), _runs_text(d[1])] for d in dots],
                        legendgroup=gpu, showlegend=False,
                        hovertemplate=f"{gpu} measured: %{{customdata[0]}} for %{{x:.1f}} s "
                                      "(%{customdata[1]})<extra></extra>")
    _mark_crossovers(fig, analysis)
    _layout(fig, title, "Clip length (s of video)", "GPU cost per clip ($)", legend="")
    fig.update_yaxes(tickformat=cost_tickformat(y for t in fig.data for y in t.y),
                     rangemode="tozero")
    fig.update_xaxes(rangemode="tozero")
    return fig


def _mark_crossovers(fig: go.Figure, analysis: Analysis) -> None:
    """A diamond and a label at every crossover of the fitted cost lines."""
    xs, ys, labels = [], [], []
    for c in analysis.crossovers:
        seconds = c.frames / analysis.fps
        fit, rate = analysis.fits[c.to_gpu], analysis.rates[c.to_gpu]
        xs.append(seconds)
        ys.append(fitted_cost(fit, rate, c.frames))
        labels.append(f"{c.from_gpu} → {c.to_gpu} at {seconds:.1f} s")
    if not xs:
        return
    fig.add_scatter(name="Crossover", x=xs, y=ys, mode="markers", text=labels,
                    marker=dict(symbol="diamond", size=13, color="black"),
                    customdata=[format_cost(y) for y in ys],
                    hovertemplate="%{text}: %{customdata}<extra></extra>")
    for i, (x, y, label) in enumerate(zip(xs, ys, labels)):
        fig.add_annotation(x=x, y=y, text=label, showarrow=True, arrowhead=2, ax=-40,
                           ay=-45 - 25 * (i % 3), bgcolor="rgba(255,255,255,0.85)",
                           bordercolor="black", borderwidth=1)


# --------------------------------------------------------------------------- stages


def run_label(row: Mapping, mark_cold: bool = True) -> str:
    """The run's title (bench.experiments.run_title: 'candidate · clip · repeat N'), and
    '(cold)' when the run paid for a start-up (mark_cold)."""
    cold = mark_cold and row.get("cold") is True
    return run_title(row, str(row.get("candidate") or row.get("gpu"))) + (" (cold)" if cold else "")


def stage_breakdown(runs: pd.DataFrame | None) -> go.Figure:
    """Stacked horizontal bars, one per succeeded run, of the seconds of each pipeline stage
    (fetch, model_load, decode, upscale, encode, upload). In the fast engine decode, upscale and
    encode overlap, so a bar can be longer than the run's wall time."""
    title = "Where the time goes, per run"
    rows = _succeeded(runs)
    if rows.empty:
        return empty_figure(title)
    records = rows.to_dict("records")
    labels = _unique_labels([run_label(r) for r in records])
    fig = go.Figure()
    for stage in STAGE_TABLE:
        values = [_number(r.get(stage.column)) for r in records]
        if all(v is None for v in values):
            continue
        name = stage.name.replace("_", " ") + (" (measurement)" if stage.kind == "measurement" else "")
        fig.add_bar(name=name, y=labels, x=[v or 0.0 for v in values],
                    orientation="h", marker_color=stage.colour,
                    hovertemplate=f"%{{y}}: {name} %{{x:.2f}} s<extra></extra>")
    if not fig.data:
        return empty_figure(title, "No stage timings recorded for these runs (imported results?)")
    fig.update_layout(barmode="stack", height=max(300, 40 + 28 * len(labels)))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, "Stage seconds (s)", "Run", legend="Stage")


def _unique_labels(labels: Sequence[str]) -> list[str]:
    """Labels made unique by a numeric suffix (a category axis merges equal labels)."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


# --------------------------------------------------------------------------- cold vs warm


COLD_SERIES = ((True, "Cold (job + start-up seconds)", "#1f77b4"), (False, "Warm", "#ff7f0e"),
               (None, "Not recorded", "#b0b0b0"))
"""(cold flag, series name, colour) of the cold-vs-warm chart: runs that do not record whether
they were cold (imported results) are their own series, never counted as warm."""


def cold_warm_chart(runs: pd.DataFrame | None) -> go.Figure:
    """Per clip and GPU, the median seconds of its cold runs (start-up paid) beside its warm ones
    and those that do not record it."""
    title = "Cold vs warm runs"
    rows = _succeeded(runs)
    if rows.empty:
        return empty_figure(title)
    groups: dict[tuple[str, str], dict[bool | None, list[float]]] = {}
    for r in rows.to_dict("records"):
        seconds = _cold_view_seconds(r)
        if seconds is None:
            continue
        flag = r.get("cold")
        cold = None if flag is None or (isinstance(flag, float) and math.isnan(flag)) else bool(flag)
        groups.setdefault((str(r["clip"]), str(r["candidate"])),
                          {True: [], False: [], None: []})[cold].append(seconds)
    if not groups:
        return empty_figure(title)
    keys = list(groups)
    x = [[k[0] for k in keys], [k[1] for k in keys]]
    fig = go.Figure()
    for cold, name, colour in COLD_SERIES:
        if not any(groups[k][cold] for k in keys):
            continue
        ys = [_median(groups[k][cold]) for k in keys]
        counts = [len(groups[k][cold]) for k in keys]
        fig.add_bar(name=name, x=x, y=ys, marker_color=colour, customdata=counts,
                    hovertemplate="%{x}: %{y:.1f} s median of %{customdata} run(s)<extra>"
                                  + name + "</extra>")
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickangle=0)
    return _layout(fig, f"{title} (median; cold: job + start-up seconds)", "Clip · candidate",
                   "Seconds (s)", legend="")


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --------------------------------------------------------------------------- cost / latency


def cost_latency_scatter(analysis: Analysis | None, clip: str | None = None) -> go.Figure:
    """Every GPU on every clip (or only `clip`) as a point (GPU cost, median seconds); per clip,
    the Pareto front (no other GPU is both cheaper and faster) is joined by a dashed line and its
    points ringed."""
    title = "Cost vs latency with the Pareto front"
    clips = [s for s in measured(analysis) if clip is None or s.clip == clip]
    if not clips:
        return empty_figure(title)
    colours = gpu_colours(analysis.gpus)
    symbols = ["circle", "square", "triangle-up", "diamond", "cross", "star", "x", "hexagon"]
    fig = go.Figure()
    for i, s in enumerate(clips):
        front = pareto_front((st.cost, st.median_seconds, st.gpu) for st in s.stats)
        on_front = [s.get(g) for g in front]
        fig.add_scatter(name=f"Pareto front, {s.clip}", x=[st.cost for st in on_front],
                        y=[st.median_seconds for st in on_front], mode="lines",
                        line=dict(dash="dash", color="grey"), legendgroup=s.clip,
                        hoverinfo="skip")
        fig.add_scatter(name=s.clip, x=[st.cost for st in s.stats],
                        y=[st.median_seconds for st in s.stats], mode="markers+text",
                        text=[st.gpu for st in s.stats], textposition="top center",
                        marker=dict(symbol=[symbols[i % len(symbols)] + ("-open" if st.cold_runs
                                                                        else "") for st in s.stats],
                                    size=12,
                                    color=[colours[st.gpu] for st in s.stats],
                                    line=dict(width=[3 if st.gpu in front else 0 for st in s.stats],
                                              color="black")),
                        legendgroup=s.clip,
                        customdata=[[format_cost(st.cost), _runs_text(st)] for st in s.stats],
                        hovertemplate=f"%{{text}} on {s.clip}: %{{customdata[0]}}, %{{y:.1f}} s "
                                      "(%{customdata[1]})<extra></extra>")
    _layout(fig, f"{title} (ringed: not beaten on both)", "GPU cost per clip ($)",
            "Wall time (s)", legend="Clip")
    fig.update_xaxes(tickformat=cost_tickformat(st.cost for st in _all_stats(clips)))
    return fig


# --------------------------------------------------------------------------- projection


def monthly_projection_chart(costs: Mapping[str, float] | None, clips_per_day: float = 0) -> go.Figure:
    """Bars of $ per month per GPU (from ui.compare_view.projection), cheapest first and labelled
    with its amount."""
    title = "Monthly cost projection"
    if not costs:
        return empty_figure(title)
    order = sorted(costs, key=lambda g: costs[g])
    colours = gpu_colours(costs)
    fig = go.Figure()
    fig.add_bar(x=order, y=[costs[g] for g in order], marker_color=[colours[g] for g in order],
                text=[format_cost(costs[g]) for g in order], textposition="outside",
                cliponaxis=False, showlegend=False,
                customdata=[format_cost(costs[g]) for g in order],
                hovertemplate="%{x}: %{customdata} per month<extra></extra>")
    per_day = f"{clips_per_day:g} clips/day, " if clips_per_day else ""
    _layout(fig, f"{title} ({per_day}30 days, steady state, all-in, by the fit)", "Candidate",
            "$ per month")
    fig.update_yaxes(tickformat=cost_tickformat(costs.values()), rangemode="tozero")
    return fig
