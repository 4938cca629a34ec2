"""The CLI: `python -m bench [--debug] COMMAND ...`. Each command lives in
bench/commands/<name>_cmd.py and is imported only when it runs, so one command's heavy imports never
slow another. Exit codes: bench/commands/exits.py (0 ok, 1 runs failed, 2 user error, 3 bug)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

from bench.commands import exits
from bench.escape import one_line_text
from bench.logsetup import DEBUG_ENV, logging_to_file
from core.errors import UserError, one_line

log = logging.getLogger("bench.cli")

COMMANDS = {
    "demo-clip": "write a synthetic source video with moving detail",
    "upscale": "upscale one local video or image (the worker, in this process)",
    "run": "run a benchmark plan, store every run, print the table and verdict",
    "estimate": "estimate a plan's time, cost and bill per candidate before running it",
    "execute": "run the queued runs of a stored experiment",
    "verdict": "judge an E6-format results file without running anything",
    "export": "export an experiment as E6 JSON or markdown findings",
    "import": "import an E6-format results file as a new experiment",
    "history": "list stored experiments and runs",
    "cancel": "cancel an experiment: queued runs never start, running ones stop",
    "rename": "rename a stored experiment",
    "note": "set an experiment's notes and tags",
    "delete": "delete an experiment, its runs and their outputs (needs --yes)",
    "doctor": "check the Modal token, R2 secret, deployed code version, bucket and weights volume",
    "reconcile": "compare an experiment's computed bill with Modal's billing report",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: 'error: ... (see --help)' and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Raises SystemExit(2) after one line on stderr."""
        print(f"error: {one_line_text(message)} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(exits.USER_ERROR)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported and gets its full options."""
    parser = _Parser(prog="python -m bench", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="print tracebacks of unexpected errors (they always go to the log)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        cmd = sub.add_parser(name, help=summary, description=summary)
        if name == command:
            module = importlib.import_module(f"bench.commands.{name.replace('-', '_')}_cmd")
            cmd.description = module.__doc__
            module.register(cmd)
            cmd.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see bench.commands.exits). Raises nothing."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = ["--debug"] * debug + [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else exits.USER_ERROR
    previous = os.environ.get(DEBUG_ENV)
    os.environ[DEBUG_ENV] = "1" if debug else "0"
    try:
        with logging_to_file(debug) as log_file:
            return _run(args, log_file)
    finally:
        if previous is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = previous


def _run(args: argparse.Namespace, log_file: os.PathLike) -> int:
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        log.info("user error in %s", args.command, exc_info=True)
        return _error(one_line(exc), exits.USER_ERROR)
    except BrokenPipeError:  # the reader went away (`... | head`): not an error
        return exits.OK
    except OSError as exc:  # the environment: a full or read-only disk, a missing folder
        log.warning("%s failed on a file", args.command, exc_info=True)
        where = f" ({exc.filename})" if exc.filename else ""
        return _error(f"{exc.strerror or one_line(exc)}{where}", exits.USER_ERROR)
    except KeyboardInterrupt:
        return _error("interrupted", exits.INTERRUPTED)
    except RecursionError:
        log.exception("%s recursed too deep", args.command)
        return _error("input nested too deeply to process", exits.USER_ERROR)
    except Exception as exc:  # a bug: one line here, the traceback in the log (and with --debug)
        log.exception("unexpected error in %s", args.command)
        hint = "" if args.debug else "; --debug prints it"
        return _error(f"unexpected error (a bug): {one_line(exc)} [traceback in {log_file}{hint}]",
                      exits.INTERNAL_ERROR)


def _error(message: str, code: int) -> int:
    try:
        print(f"error: {one_line_text(message)}", file=sys.stderr)
    except (BrokenPipeError, OSError):
        pass
    return code


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`... | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = exits.OK
    sys.exit(code)
