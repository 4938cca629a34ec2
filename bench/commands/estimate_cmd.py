"""Estimate a plan before it runs: per candidate and clip, the job seconds with a low-high range,
the GPU-only and all-in cost and the basis (measured on that card, scaled from another card, or
none), and each candidate's bill (start-ups, scaledown tails) with the plan's total and its high
end. Takes the same plan options as `run`; stores and starts nothing.
"""

from __future__ import annotations

import argparse
import json

from bench.commands import exits
from bench.commands.common import add_db_option, add_plan_options, db_path, plan_from_args
from bench.escape import one_line_text
from bench.estimate import PlanEstimate
from core.jsonsafe import json_safe


def register(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def main(args: argparse.Namespace) -> int:
    from bench.estimate_history import estimate_in
    from bench.price_settings import load_prices

    plan = plan_from_args(args)
    estimate = estimate_in(db_path(args), plan, load_prices())
    if args.json:
        print(json.dumps(json_safe(estimate.to_dict()), indent=2, allow_nan=False))
    else:
        print("\n".join(one_line_text(line) for line in estimate_lines(estimate)))
    return exits.OK


def _money(value: float | None) -> str:
    return "?" if value is None else f"${value:.4f}"


def _secs(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def estimate_lines(estimate: PlanEstimate) -> list[str]:
    """The estimate as text: a line per candidate and clip, a bill line per candidate, the total.
    Raises nothing."""
    lines = []
    for c in estimate.candidates:
        for clip in c.clips:
            lines.append(f"{c.candidate} {clip.clip}: {_secs(clip.seconds)} s "
                         f"({_secs(clip.seconds_low)}-{_secs(clip.seconds_high)}), "
                         f"GPU {_money(clip.cost)}, all-in {_money(clip.cost_all_in)} per run "
                         f"[{clip.basis}]")
        b = c.bill
        lines.append(f"{c.candidate} bill: {b.runs} run(s) on {b.containers} container(s), "
                     f"start-up {b.startup_seconds:.0f} s each [{b.startup_basis}], tail "
                     f"{b.tail_seconds:.0f} s each: {_money(b.cost)} (up to {_money(b.cost_high)})")
    lines.append(f"plan total: {estimate.summary()}")
    return lines
