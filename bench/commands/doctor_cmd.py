"""Check everything a first live Modal run needs, one line each with the fix: the Modal token, the
r2-credentials secret (names only), the deployed app's code version against this checkout, the R2
bucket and the weights Volume. Starts no container and costs nothing. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json


def register(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments. Raises nothing."""
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds each Modal or R2 look-up may take (default 20)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def main(args: argparse.Namespace) -> int:
    """Every problem is a failed check, except a Modal config file the client cannot read:
    InputError (one line; importing modal would print a banner and raise)."""
    from bench.backends.modal_credentials import config_problem
    from core.errors import InputError

    problem = config_problem()
    if problem:
        raise InputError(f"{problem}; fix or move it (`modal token new` writes a good one)")
    from bench.doctor import render, run_checks
    from bench.price_settings import load_prices

    checks = run_checks(timeout=args.timeout, prices=load_prices())
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        print(render(checks))
    return 1 if any(c.failed for c in checks) else 0
