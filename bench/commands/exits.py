"""One exit-code convention for every command (the README's "Exit codes" lists it).

0   done; every run or job succeeded.
1   the work ran but some of it failed: runs of a plan failed or were interrupted (each reason is
    printed and stored), or `upscale`'s job failed while running.
2   refused: bad input or environment the user can fix (a bad option, file, name or size, a
    missing source or credential, a locked, full or unusable disk or database). One line on
    stderr; where runs were already created they are stored failed with that line.
3   an unexpected error (a bug): one line; the traceback is in the CLI log, and on stderr with
    --debug.
130 interrupted (Ctrl-C).
"""

OK = 0
RUNS_FAILED = 1
USER_ERROR = 2
INTERNAL_ERROR = 3
INTERRUPTED = 130
