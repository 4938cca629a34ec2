"""Judge a results file (the original E6 JSON format, or our export) without running anything.

Prints a per-clip table (time, fps, cost, speedup, break-even per GPU) and the verdict; --json prints
{rule, choice, reason, settled, per_clip, failed, fits, crossovers, ...}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.analysis import DEFAULT_TOLERANCE, Analysis
from bench.e6 import analyse_e6, load_e6
from bench.escape import terminal_text
from bench.formatting import format_cost, format_rate, repeat_label
from core.errors import InputError
from core.jsonsafe import json_safe


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments. Raises nothing."""
    parser.add_argument("file", type=Path, metavar="FILE.json", help="results in the E6 format")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="costs within this fraction of the cheapest count as equal "
                             f"(default {DEFAULT_TOLERANCE})")
    parser.add_argument("--json", action="store_true", help="print the analysis as JSON")


def main(args: argparse.Namespace) -> int:
    """Raises InputError (exit 2, one line) for a missing/bad file, a bad tolerance, a GPU without
    a price, or a file with no succeeded result. Names from the file are printed escaped."""
    e6 = load_e6(args.file)
    try:
        analysis = analyse_e6(e6, args.tolerance)
    except InputError as exc:
        raise InputError(f"{args.file}: {exc}") from None
    if args.json:
        print(json.dumps(json_safe(analysis.to_dict()), indent=2, allow_nan=False))
    else:
        print(render_text(analysis))
    return 0


def render_text(analysis: Analysis) -> str:
    """The per-clip table, failed runs and the verdict as plain text, control characters of names
    and reasons escaped (bench.escape.terminal_text). Raises nothing."""
    width = max([10, *(len(g) for g in analysis.gpus)])
    header = f"{'clip':<8} {'frames':>6}  {'gpu':<{width}} {'runs':>4} {'time s':>9} {'fps':>7} " \
             f"{'cost':>11} {'speedup':>7} {'break-even s':>12}"
    lines = [f"baseline {analysis.baseline_gpu}; rates " +
             ", ".join(f"{g} {format_rate(r)}/s" for g, r in analysis.rates.items()), "", header,
             "-" * len(header)]
    for s in analysis.summaries:
        for st in s.stats:
            mark = " *" if st.gpu == s.winner else ""
            speedup = f"{st.speedup:.2f}x" if st.speedup is not None else "-"
            even = f"{st.break_even_seconds:.1f}" if st.break_even_seconds is not None else "-"
            lines.append(f"{s.clip:<8} {s.frames:>6}  {st.gpu:<{width}} {st.runs:>4} "
                         f"{st.median_seconds:>9.1f} {st.fps:>7.2f} {format_cost(st.cost):>11} "
                         f"{speedup:>7} {even:>12}{mark}")
        if not s.stats:
            lines.append(f"{s.clip:<8} {s.frames:>6}  (no succeeded run)")
    lines.append("* cheapest on the clip")
    if analysis.failed:
        lines += ["", "failed (not used):"]
        lines += [f"  {m.gpu} on {m.clip} ({repeat_label(m.repeat)}): {m.error or m.status}"
                  for m in analysis.failed]
    v = analysis.verdict
    lines += ["", v.headline, f"verdict: {v.rule}: {v.choice.describe()}", v.reason]
    if not v.settled:
        lines.append("(not settled by the repeats)")
    return terminal_text("\n".join(lines))
