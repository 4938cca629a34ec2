"""Each candidate against the baseline the user chose, pure (no st.* calls; unit-tested directly):
one row per clip and candidate with its cost and time beside the baseline's and the change in
percent, coloured green where it is cheaper or faster and red where it is dearer or slower."""

from __future__ import annotations

import pandas as pd
from pandas.io.formats.style import Styler

from bench.analysis import Analysis
from bench.formatting import format_cost, format_seconds
from ui.charts import measured

COST_DELTA = "Cost vs baseline"
"""Column: the candidate's GPU cost against the baseline's on the clip, in percent."""
TIME_DELTA = "Time vs baseline"
"""Column: the candidate's median time against the baseline's on the clip, in percent."""
BETTER = "color: #1a7f37"
"""Style of a change for the better (lower cost or time)."""
WORSE = "color: #cf222e"
"""Style of a change for the worse."""


def _percent(value: float, base: float) -> float | None:
    return None if not base else (value - base) / base * 100.0


def delta_table(analysis: Analysis | None) -> pd.DataFrame:
    """Clip, candidate, its GPU cost and median time, and both against the baseline's on that clip
    (percent; the baseline's own rows and clips it lacks have none)."""
    rows = []
    for summary in measured(analysis):
        base = summary.get(analysis.baseline_gpu)
        for stats in summary.stats:
            mine = base is not None and stats.gpu != base.gpu
            rows.append({
                "Clip": summary.clip, "Candidate": stats.gpu, "GPU cost": format_cost(stats.cost),
                COST_DELTA: _percent(stats.cost, base.cost) if mine else None,
                "Time (median)": format_seconds(stats.median_seconds),
                TIME_DELTA: _percent(stats.median_seconds, base.median_seconds) if mine else None,
            })
    return pd.DataFrame(rows, columns=["Clip", "Candidate", "GPU cost", COST_DELTA,
                                       "Time (median)", TIME_DELTA])


def delta_colour(value: object) -> str:
    """The cell style of a change: green below zero, red above, none otherwise."""
    if not isinstance(value, (int, float)) or pd.isna(value) or value == 0:
        return ""
    return BETTER if value < 0 else WORSE


def styled(table: pd.DataFrame) -> Styler:
    """The table with its changes coloured and written '+12.3%' / '-45.0%' ('—' for none)."""
    deltas = [COST_DELTA, TIME_DELTA]
    return (table.style.map(delta_colour, subset=deltas)
            .format(lambda v: f"{v:+.1f}%", subset=deltas, na_rep="—"))
