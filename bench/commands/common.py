"""Options and checks shared by several commands."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

from bench.plan import CONTAINER_REUSE, PRESETS, Plan, build_plan
from core.atomic import write_bytes_atomically
from core.errors import InputError
from core.job import (
    COMPILE_MODES,
    DECODERS,
    DEFAULT_ENCODE_PRESET,
    ENCODERS,
    ENGINES,
    X264_PRESETS,
    check_output_size,
)
from core.paths import default_db_path, local_objects_dir, object_cache_dir


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The options of a plan (`run`, `estimate`); plan_from_args reads them."""
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
    parser.add_argument("--reuse", choices=CONTAINER_REUSE, default=None,
                        help="modal: run each GPU's runs in sequence on one warm container "
                             "(sequential, default) or all at once (parallel)")
    parser.add_argument("--scaledown-window", type=int, default=None, metavar="SECONDS",
                        help="modal: seconds an idle container stays up, billed (default 120)")
    parser.add_argument("--region", default=None,
                        help="modal: pin containers to a region, 'us' (broad, 1.5x every rate) or "
                             "'us-east-1' (narrow, 1.75x)")
    parser.add_argument("--queue-wait-limit", type=float, default=None, metavar="SECONDS",
                        help="modal: cancel a run still waiting for its GPU after this long "
                             "(default 900)")


def plan_from_args(args: argparse.Namespace) -> Plan:
    """The plan add_plan_options' options describe: without --preset and --clips, the `demo`
    preset. Raises InputError for a bad plan."""
    preset = args.preset or (None if args.clips else "demo")
    return build_plan(preset, backend=args.backend, gpus=args.gpus, clips=args.clips,
                      source=args.source, model=args.model, engine=args.engine,
                      repeats=args.repeats, weights=args.weights, precision=args.precision,
                      batch_size=args.batch_size, compile=args.compile, encoder=args.encoder,
                      encode_preset=args.encode_preset, crf=args.crf, decoder=args.decoder,
                      cpu_cores=args.cpu_cores,
                      container_reuse=args.reuse, scaledown_window_seconds=args.scaledown_window,
                      queue_wait_limit_seconds=args.queue_wait_limit, region=args.region)


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", type=Path, default=None,
                        help="DuckDB file (default: $BENCH_DB or data/bench.duckdb)")


def db_path(args: argparse.Namespace) -> Path:
    return args.db or default_db_path()


_SIZE = re.compile(r"\s*(\d{1,12})\s*[xX×]\s*(\d{1,12})\s*")


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. '810x1440') into (width, height).

    Raises InputError when the text is not two whole numbers joined by 'x', or either is 0 or
    above core.job.MAX_OUTPUT_SIDE (callers writing a video check evenness too)."""
    match = _SIZE.fullmatch(text or "")
    if not match:
        raise InputError(f"size {text!r} must look like WIDTHxHEIGHT, e.g. 810x1440")
    width, height = int(match.group(1)), int(match.group(2))
    check_output_size(width, height, video=False)
    return width, height


def int_in(low: int, high: int):
    """An argparse type: a whole number from low to high. Raises argparse.ArgumentTypeError."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value
    parse.__name__ = f"whole number {low}..{high}"
    return parse


def check_output_file(path: Path, *, source: Path | None = None, db: Path | None = None) -> None:
    """Check, before any work, that a command can write its result to `path`: not a directory,
    in a folder that exists and is writable, not the source file itself (which it would
    overwrite), and not the history (check_not_history). Raises InputError naming the problem."""
    check_not_history(path, db)
    if path.is_dir():
        raise InputError(f"output {path} is a directory; name a file inside it")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    if source is not None and _same_file(path, source):
        raise InputError(f"output {path} is the input file; it would be overwritten: "
                         f"choose another output name")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def check_not_history(path: Path, db: Path | None = None) -> None:
    """Refuse an output path that is the database (`db`, default $BENCH_DB or data/bench.duckdb),
    its write-ahead log, or inside the local object store or its cache (stored sources and
    outputs), links and other spellings resolved. Raises InputError."""
    db = db or default_db_path()
    target = path.resolve()
    if any(_same_file(target, p) for p in (db, db.with_name(db.name + ".wal"))):
        raise InputError(f"output {path} is the history database {db}; choose another output name")
    for folder in (local_objects_dir(), object_cache_dir()):
        if target.is_relative_to(folder.resolve()):
            raise InputError(f"output {path} is inside the object store {folder} (stored sources "
                             f"and outputs); choose a path outside it")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def write_output_file(path: Path, text: str, *, db: Path | None = None) -> None:
    """Write text to path atomically (core.atomic), so a failure never leaves a partial file
    looking valid and a planted link is never written through. Raises InputError as
    check_output_file does, OSError when the disk fills up meanwhile."""
    check_output_file(path, db=db)
    write_bytes_atomically(path, text.encode("utf-8"))


def existing_db(args: argparse.Namespace):
    """The command's database, which must exist already (commands that change stored experiments
    never create one). Raises InputError when the file is missing, StorageError."""
    from store.db import Database

    path = db_path(args)
    if not path.is_file():
        raise InputError(f"no database at {path}: nothing is stored yet (see --db)")
    return Database(path)
