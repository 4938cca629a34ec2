"""The CLI: `python -m bench COMMAND ...`. Each command lives in bench/commands/<name>_cmd.py and
is imported only when it runs, so one command's heavy imports never slow another."""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import UserError, one_line

COMMANDS = {
    "demo-clip": "write a synthetic source video with moving detail",
    "upscale": "upscale one local video or image (the worker, in this process)",
    "run": "run a benchmark plan, store every run, print the table and verdict",
    "execute": "run the queued runs of a stored experiment",
    "verdict": "judge an E6-format results file without running anything",
    "export": "export an experiment as E6 JSON or markdown findings",
    "import": "import an E6-format results file as a new experiment",
    "history": "list stored experiments and runs",
    "doctor": "check the Modal token, R2 secret, deployed code version, bucket and weights volume",
    "reconcile": "compare an experiment's computed bill with Modal's billing report",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported and gets its full options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
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
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
