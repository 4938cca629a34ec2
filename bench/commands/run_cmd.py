"""Run a benchmark plan (clips x GPUs x repeats), store every run, print the table and verdict.

Without --preset and --clips the `demo` preset runs: a generated clip on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.analysis import DEFAULT_TOLERANCE
from bench.billing import BASES, DEFAULT_BASIS
from bench.commands import exits
from bench.commands.common import add_db_option, db_path
from bench.escape import one_line_text
from bench.liveness import recover_gone_runs
from bench.plan import CONTAINER_REUSE, PRESETS, build_plan
from core.errors import UserError, one_line
from core.job import COMPILE_MODES, DECODERS, DEFAULT_ENCODE_PRESET, ENCODERS, ENGINES, X264_PRESETS
from core.jsonsafe import json_safe


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None)
    parser.add_argument("--backend", choices=("local", "modal"), default=None)
    parser.add_argument("--gpus", default=None,
                        help="modal: catalog GPUs (T4,L4,...); local: devices (cpu, cuda:0, or "
                             "cuda:all = every card as one candidate; optionally =CARD for its "
                             "price, e.g. cuda:0=H100)")
    parser.add_argument("--clips", default=None, help="NAME:START:END,... in seconds of the source")
    parser.add_argument("--source", default=None, help="local video file, object key USER/PATH, or 'demo'")
    parser.add_argument("--model", default=None,
                        help="a model, or several (a,b) to compare each on every device")
    parser.add_argument("--engine", default=None,
                        help=f"{' or '.join(ENGINES)}, or both (reference,fast) to compare them "
                             "on every device")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--weights", default=None, help="auto, random (timing-only) or a .pth path")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--compile", choices=COMPILE_MODES, default=None,
                        help="torch.compile (fast engine): off, on, or auto (when a clip repays it)")
    parser.add_argument("--encoder", choices=ENCODERS, default=None, help="libx264, nvenc or auto")
    parser.add_argument("--preset-encode", dest="encode_preset", choices=X264_PRESETS, default=None,
                        help=f"encoder speed preset (default {DEFAULT_ENCODE_PRESET})")
    parser.add_argument("--crf", type=int, default=None, help="encoder constant quality (default 18)")
    parser.add_argument("--decoder", choices=DECODERS, default=None,
                        help="video decoder: cpu, nvdec or auto (NVDEC where it opens; default)")
    parser.add_argument("--cpu", dest="cpu_cores", type=float, default=None,
                        help="CPU cores per Modal container (default 4; billed apart)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--basis", choices=sorted(BASES), default=DEFAULT_BASIS,
                        help="costs the verdict judges: steady (warm containers, default) or "
                             "billed (this experiment's bill: boots, idle and scaledown tails "
                             "shared over the runs of each container)")
    parser.add_argument("--reuse", choices=CONTAINER_REUSE, default=None,
                        help="modal: run each GPU's runs in sequence on one warm container "
                             "(sequential, default) or all at once (parallel)")
    parser.add_argument("--scaledown-window", type=int, default=None, metavar="SECONDS",
                        help="modal: seconds an idle container stays up, billed (default 120)")
    parser.add_argument("--queue-wait-limit", type=float, default=None, metavar="SECONDS",
                        help="modal: cancel a run still waiting for its GPU after this long "
                             "(default 900)")
    parser.add_argument("--name", default=None, help="experiment name")
    add_db_option(parser)
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def main(args: argparse.Namespace) -> int:
    from bench.orchestrator import (
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

    preset = args.preset or (None if args.clips else "demo")
    plan = build_plan(preset, backend=args.backend, gpus=args.gpus, clips=args.clips,
                      source=args.source, model=args.model, engine=args.engine,
                      repeats=args.repeats, weights=args.weights, precision=args.precision,
                      batch_size=args.batch_size, compile=args.compile, encoder=args.encoder,
                      encode_preset=args.encode_preset, crf=args.crf, decoder=args.decoder,
                      cpu_cores=args.cpu_cores,
                      container_reuse=args.reuse, scaledown_window_seconds=args.scaledown_window,
                      queue_wait_limit_seconds=args.queue_wait_limit)
    prices = load_prices()
    db = Database(db_path(args))
    recover_gone_runs(db)
    storage_config = load_storage_config()
    try:
        unavailable = unavailable_gpus(plan, storage_config)
        source_key = prepare_source(plan.source, open_object_store(storage_config))
    except UserError as exc:
        experiment_id, run_ids = create_experiment(db, plan, plan.source, prices, args.name)
        for run_id in run_ids:
            store_runs.fail_run(db, run_id, one_line(exc))
        _report(db, experiment_id, plan, args, launch_error=one_line(exc))
        return exits.USER_ERROR  # refused before launch: the runs are stored failed with why
    experiment_id, _ = create_experiment(db, plan, source_key, prices, args.name)
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
    from bench.experiments import analyse_experiment, bill_of, load_experiment, run_titles
    from bench.report import bill_lines, run_summaries

    runs = run_summaries(db, experiment_id)
    analysis, why_not, _ = analyse_experiment(db, experiment_id, args.tolerance, args.basis)
    bill = bill_of(load_experiment(db, experiment_id), runs)
    failed = [r for r in runs if r["status"] != "succeeded"]
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
