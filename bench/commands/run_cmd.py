"""Run a benchmark plan (clips x GPUs x variants x repeats), store every run, print the table and verdict.

Without --preset and --clips the `demo` preset runs: a generated clip on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.analysis import DEFAULT_TOLERANCE
from bench.billing import BASES, DEFAULT_BASIS
from bench.commands import exits
from bench.commands.common import add_db_option, add_plan_options, db_path, plan_from_args
from bench.escape import one_line_text
from bench.estimate import check_cap
from bench.estimate_history import estimate_in
from bench.liveness import recover_gone_runs
from core.errors import UserError, one_line
from core.jsonsafe import json_safe
from core.status import SUCCEEDED


def register(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    parser.add_argument("--max-cost", type=float, default=None, metavar="USD",
                        help="refuse, before anything is stored or started, a plan whose "
                             "estimated cost (its high end) exceeds USD (see `estimate`)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--basis", choices=sorted(BASES), default=DEFAULT_BASIS,
                        help="costs the verdict judges: steady (warm containers, default) or "
                             "billed (this experiment's bill: boots, idle and scaledown tails "
                             "shared over the runs of each container)")
    parser.add_argument("--name", default=None, help="experiment name")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def main(args: argparse.Namespace) -> int:
    from bench.orchestrator import (
        check_clips_in_source,
        create_experiment,
        execute_experiment,
        prepare_source,
        unavailable_gpus,
    )
    from bench.price_settings import load_prices
    from store import runs as store_runs
    from store.config import load_storage_config
    from store.db import Database
    from store.objects import open_object_store

    plan = plan_from_args(args)
    prices = load_prices()
    estimate = estimate_in(db_path(args), plan, prices)
    if args.max_cost is not None:
        check_cap(estimate, args.max_cost)  # refused before anything is stored or started
    db = Database(db_path(args))
    recover_gone_runs(db)
    storage_config = load_storage_config()
    try:
        unavailable = unavailable_gpus(plan, storage_config)
        storage = open_object_store(storage_config)
        source_key = prepare_source(plan.source, storage)
        check_clips_in_source(plan, source_key, storage)  # before any container starts
    except UserError as exc:
        experiment_id, run_ids = create_experiment(db, plan, plan.source, prices, args.name,
                                                   estimate)
        for run_id in run_ids:
            store_runs.fail_run(db, run_id, one_line(exc))
        _report(db, experiment_id, plan, args, launch_error=one_line(exc))
        return exits.USER_ERROR  # refused before launch: the runs are stored failed with why
    experiment_id, _ = create_experiment(db, plan, source_key, prices, args.name, estimate)
    runs = store_runs.list_runs(db, experiment_id=experiment_id)
    for run_id, gpu in zip(runs["id"], runs["gpu"]):  # a missing device fails only its own runs
        if gpu in unavailable:
            store_runs.fail_run(db, run_id, unavailable[gpu])
    listener = None
    if not args.json:
        from bench.experiments import run_titles
        from bench.progress_display import ProgressDisplay

        labels = run_titles(runs)
        listener = ProgressDisplay(labels)
        print(f"experiment {experiment_id}: {len(labels)} run(s) on {plan.backend}", file=sys.stderr)
        for gpu, reason in unavailable.items():
            print(one_line_text(f"not run on {gpu}: {reason}"), file=sys.stderr)
    execute_experiment(db, experiment_id, storage_config, listener=listener)
    return _report(db, experiment_id, plan, args)


def _report(db, experiment_id: str, plan, args: argparse.Namespace,
            launch_error: str | None = None) -> int:
    from bench.commands.verdict_cmd import render_text
    from bench.experiments import (
        analyse_experiment,
        experiment_bill_in,
        load_experiment,
        read_runs,
        run_titles,
    )
    from bench.report import bill_lines, run_summaries

    runs = run_summaries(db, experiment_id)
    analysis, why_not, _ = analyse_experiment(db, experiment_id, args.tolerance, args.basis)
    experiment = load_experiment(db, experiment_id)
    bill = experiment_bill_in(db, experiment, read_runs(runs, experiment))
    failed = [r for r in runs if r["status"] != SUCCEEDED]
    if args.json:
        outcome = {"experiment_id": experiment_id, "runs": runs,
                   "verdict": analysis.verdict.to_dict() if analysis else None,
                   "analysis": analysis.to_dict() if analysis else None,
                   "cost_basis": args.basis, "bill": bill.to_dict(),
                   "error": launch_error or why_not}
        print(json.dumps(json_safe(outcome), indent=2, default=str, allow_nan=False))
    elif launch_error:  # nothing ran: one line says why, every run is stored failed with it
        print(f"experiment {experiment_id} stored in {db.path} ({len(runs)} runs failed)")
    else:
        if analysis:
            print(render_text(analysis))
            print(f"(costs above: {BASES[args.basis]}; --basis switches)")
        if bill.containers:
            print("\n".join(["", "the bill:", *bill_lines(bill)]))
        titles = run_titles(runs)
        for run in failed:
            print(one_line_text(f"failed: {titles[str(run['id'])]}: {run['error']}"), file=sys.stderr)
        if why_not and not analysis:
            print(one_line_text(f"no verdict: {why_not}"), file=sys.stderr)
        print(f"experiment {experiment_id} stored in {db.path}")
    if launch_error:
        print(one_line_text(f"error: {launch_error}"), file=sys.stderr)
    return exits.RUNS_FAILED if failed else exits.OK
