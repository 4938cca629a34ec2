"""Compare's estimate vs actual, pure (no st.* calls): the plan's estimate stored with the
experiment against the seconds and cost its succeeded runs took, per candidate."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from bench.estimate import PLAN_KEY, estimate_checks
from bench.formatting import format_cost


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:+.0%}"


def checks_table(plan: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per candidate: basis, runs, estimated and actual job seconds and all-in cost, and
    the error in %; empty when the experiment stored no estimate with an answer. Raises nothing."""
    rows = [{"Candidate": c.candidate, "Basis": c.basis, "Runs": c.runs,
             "Estimated s": round(c.estimated_seconds, 1), "Actual s": round(c.actual_seconds, 1),
             "Time error": _percent(c.error),
             "Estimated cost": format_cost(c.estimated_cost) if c.estimated_cost is not None else "",
             "Actual cost": format_cost(c.actual_cost) if c.actual_cost is not None else "",
             "Cost error": _percent(c.cost_error)}
            for c in estimate_checks(plan.get(PLAN_KEY), runs)]
    return pd.DataFrame(rows)
