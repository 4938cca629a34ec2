"""The CLI: `python -m bench COMMAND ...`. Each command lives in bench/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.errors import UserError, one_line

COMMANDS = ("demo-clip", "upscale", "run", "verdict", "export", "import", "history")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"bench.commands.{name.replace('-', '_')}_cmd")
        cmd = sub.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__)
        module.register(cmd)
        cmd.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
