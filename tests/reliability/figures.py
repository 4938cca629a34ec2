"""The reliability suite's figures, counted from its own case tables, and the README section that
states them. `python -m tests.reliability.figures` prints the section; test_figures.py fails when
the README's copy differs from it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.reliability import cases

HERE = Path(__file__).parent


def property_count() -> int:
    """How many hypothesis properties test_properties.py holds (functions decorated @given)."""
    tree = ast.parse((HERE / "test_properties.py").read_text())
    return sum(1 for node in tree.body if isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Call) and getattr(d.func, "id", "") == "given" for d in node.decorator_list))


def figures() -> dict[str, int]:
    """Every number the README's Reliability section states."""
    from tests.reliability.test_properties import DB_EXAMPLES

    files = len(cases.RESULTS_FILES) * len(cases.RESULTS_ENTRY_POINTS) + len(cases.VERDICT_ONLY)
    databases = len(cases.DATABASE_CASES) * len(cases.DATABASE_DOORS)
    properties = property_count()
    return {
        "cli": len(cases.CLI_CASES), "files": len(cases.RESULTS_FILES),
        "doors": len(cases.RESULTS_ENTRY_POINTS), "verdict_only": len(cases.VERDICT_ONLY),
        "file_cases": files, "uploads": len(cases.UPLOAD_CASES),
        "databases": len(cases.DATABASE_CASES), "db_doors": len(cases.DATABASE_DOORS),
        "database_cases": databases, "settings": len(cases.SETTINGS_CASES),
        "bad_inputs": len(cases.CLI_CASES) + files + len(cases.UPLOAD_CASES) + databases
        + len(cases.SETTINGS_CASES),
        "security": len(cases.SECURITY_CASES), "names": len(cases.HOSTILE_NAMES),
        "properties": properties,
        "examples": (properties - 1) * cases.EXAMPLES_PER_PROPERTY + DB_EXAMPLES,
        "faults": len(cases.FAULTS), "load_runs": cases.LOAD_RUNS,
        "load_clients": cases.LOAD_CLIENTS,
    }


def readme_section() -> str:
    """The README's '## Reliability' section, figures filled in."""
    f = figures()
    return f"""## Reliability

`tests/reliability/` runs with the rest of the tests (in CI too; 2-4 minutes on two shared cores).
Its figures come from its own case tables (`tests/reliability/cases.py`; `python -m
tests.reliability.figures` prints this section and a test checks that it matches):

- **{f['bad_inputs']} bad inputs**, each answered with one line (the CLI: on stderr, exit 2; the
  dashboard: one error box), no output file left behind and nothing already stored lost: {f['cli']} command lines across every command (the
  output is the input, a directory or unwritable, the history database, its WAL or inside the
  object store, sizes of 100000x100000, odd sizes and a model's scale past 8192, NaN and infinite
  numbers, 10,000 repeats, missing or corrupt files, hostile keyframes, ...); {f['files']} hostile results
  files (nesting 100,000 deep, integers of 5,000 digits, NaN and Infinity, non-physical speeds and
  prices, binary, UTF-16, ...) at each of {f['doors']} doors (`verdict`, `import`, the dashboard's
  upload) and {f['verdict_only']} that only a verdict refuses; {f['uploads']} uploads judged by content
  and size, not by name (a good file named `.png` is taken, a PNG named `.json` is not);
  {f['databases']} database files that are not a usable history (another application's, a
  foreign `experiments` table, a schema version that is no number, a dropped table or column) at
  each of {f['db_doors']} doors (`history`, `import`, `export`), each left byte for byte as it was;
  {f['settings']} settings files a user can fix (a `secrets.toml` that is not UTF-8, prices with
  `memory_gb: 1e400` or $1e308/s, a broken Modal config), one line in the CLI and one box on the
  Settings page (and on the Run page where it reads them). On top, {f['properties']} hypothesis properties feed {f['examples']:,} generated
  inputs to the results-file, plan, clip, GPU, size and keyframe parsers and to the escaping: each
  either parses within the product's bounds or refuses in one line, and whatever parses exports as
  strict JSON.
- **{f['faults']} faults injected** into real processes: a worker SIGKILLed (its run fails within
  seconds, the plan goes on), its parent SIGKILLed (the worker stops within 2 s and uploads nothing),
  a full disk (a 3 MB tmpfs, and ENOSPC injected where tmpfs cannot be mounted: one line, what was
  stored intact, later writes work), unreachable R2 storage (bounded retries, runs failed with the
  reason), the database held by another process (writes wait and land; past the wait, one line),
  the dashboard and the executor restarted mid-experiment, the creating process killed before any
  run was claimed, a job whose requester vanished before its upload, `execute` while another live
  executor holds the runs (one line naming it), the disk filling up mid-run (the line says what
  was kept; unfinished runs stored failed with the reason where the disk lets them), and a bug
  while the log folder cannot be created (still one line, exit 3). Afterwards every run row
  is present and final (none queued or running forever), none ran twice, and only succeeded runs
  have outputs.
- **Load**: a {f['load_runs']}-run plan (real upscales, a few frames each) on the local backend while
  {f['load_clients']} CLIs read and write the same database and the dashboard renders: all
  {f['load_runs']} rows present and succeeded with their outputs, every import whole, no reader ever
  saw the plan go backwards. Nothing lost. (History and compare at 100,000 runs: `benchmarks/`.)
- **Security** ({f['security']} checks): a planted Modal and R2 secret appears in none of the
  database files, logs, CLI output, exports or dashboard pages; every SQL value in `store/` is a
  parameter (a test reads the code); the dashboard listens on localhost (`.streamlit/config.toml`)
  and renders no raw HTML; names from files are escaped for the terminal (control characters) and
  for markdown (HTML, table pipes); on the dashboard every name, reason and URL parameter is text
  (`bench.escape.page_text`; a test reads `ui/` for any other text drawn as Markdown): {f['names']}
  hostile names (a tracking-pixel image, links, autolinks, colour, KaTeX, HTML, a heading) reach
  every page escaped, and in a real browser no `<img>`, `<a>` or KaTeX is made of them and no
  request goes to their host; no page draws a developer comment; outputs are written in a private
  temporary folder and replaced atomically, never through a planted link; sources are known by
  their content (sha256), and concurrent first uploads of one source are safe.
"""


if __name__ == "__main__":
    print(readme_section(), end="")
