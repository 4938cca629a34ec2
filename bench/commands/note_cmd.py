"""Set an experiment's notes and tags (History shows them and searches them): TEXT replaces the
notes ('' clears them), --tag adds a tag, --untag removes one; at least one of them is needed."""

from __future__ import annotations

import argparse

from bench.commands.common import add_db_option, existing_db
from bench.escape import one_line_text
from core.errors import InputError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment_id")
    parser.add_argument("text", nargs="?", default=None, help="the notes (replace the old ones)")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="add a tag (repeat for several)")
    parser.add_argument("--untag", action="append", default=[], metavar="TAG",
                        help="remove a tag (repeat for several)")
    add_db_option(parser)


def main(args: argparse.Namespace) -> int:
    """Raises InputError for an unknown experiment or database, a bad tag, nothing to change,
    StorageError."""
    from store.manage import annotate_experiment

    if args.text is None and not args.tag and not args.untag:
        raise InputError("give the notes TEXT, --tag or --untag")
    notes, tags = annotate_experiment(existing_db(args), args.experiment_id, args.text,
                                      args.tag, args.untag)
    shown = one_line_text(notes) if notes else "(none)"
    print(f"{args.experiment_id}: notes {shown}; tags {', '.join(map(one_line_text, tags)) or '(none)'}")
    return 0
