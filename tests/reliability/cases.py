"""The reliability suite's case tables. Every bad input, fault and load figure the README states is
counted from these tables (tests/reliability/figures.py), so adding a case here updates them.

Placeholders in CLI arguments: {m} the folder of tiny media (conftest.media), {t} the test's own
folder (where the keyframes and results files below are written, and outputs must not appear),
{db} the history database, {objects} the local object store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.e6_samples import E6_SAMPLE


@dataclass(frozen=True)
class CliCase:
    """One bad command line: it must exit 2 with one 'error: ...' line mentioning `says`."""

    id: str
    argv: tuple[str, ...]
    says: str
    """A piece of the error line (case-insensitive)."""
    leaves_no: str | None = None
    """A path (with placeholders) that must not exist afterwards: the output it refused."""


def _e6(**changes: object) -> bytes:
    """The sample results file with its first result changed."""
    data = json.loads(json.dumps(E6_SAMPLE))
    data["results"][0].update(changes)
    return json.dumps(data).encode()


def _e6_top(**changes: object) -> bytes:
    data = json.loads(json.dumps(E6_SAMPLE))
    data.update(changes)
    return json.dumps(data).encode()


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


UPSCALE = ("upscale", "{m}/clip.mp4", "{t}/out.mp4", "--model", "animevideov3", "--weights", "random")

KEYFRAME_FILES: dict[str, str] = {
    "kf_not_json.json": "{time: 0",
    "kf_deep.json": "[" * 50_000 + "]" * 50_000,
    "kf_infinite.json": '[{"time": 0, "x": 1e999, "y": 0, "width": 8, "height": 8}]',
    "kf_unsorted.json": json.dumps([{"time": 0.5, "x": 0, "y": 0, "width": 8, "height": 8},
                                    {"time": 0.1, "x": 0, "y": 0, "width": 8, "height": 8}]),
    "kf_empty.json": "[]",
    "kf_strings.json": '[{"time": "soon", "x": 0, "y": 0, "width": 8, "height": 8}]',
    "kf_outside.json": '[{"time": 0, "x": 5000, "y": 5000, "width": 8, "height": 8}]',
}
"""Crop keyframe files given to `upscale --keyframes`."""

CLI_CASES: tuple[CliCase, ...] = (
    # upscale: where the output goes
    CliCase("upscale-in-place", ("upscale", "{m}/clip.mp4", "{m}/clip.mp4"), "is the input file"),
    CliCase("upscale-in-place-other-spelling",
            ("upscale", "{m}/clip.mp4", "{m}/../{mname}/clip.mp4"), "is the input file"),
    CliCase("upscale-output-is-directory", ("upscale", "{m}/clip.mp4", "{t}"), "is a directory"),
    CliCase("upscale-output-folder-missing", ("upscale", "{m}/clip.mp4", "{t}/no/such/out.mp4"),
            "does not exist", "{t}/no"),
    CliCase("upscale-output-unwritable", ("upscale", "{m}/clip.mp4", "/proc/out.mp4"),
            "cannot write"),
    CliCase("upscale-image-to-video", ("upscale", "{m}/image.png", "{t}/out.mp4"), "image input",
            "{t}/out.mp4"),
    # upscale: sizes and numbers
    CliCase("upscale-absurd-size", (*UPSCALE, "--size", "100000x100000"), "at most 8192",
            "{t}/out.mp4"),
    CliCase("upscale-zero-size", (*UPSCALE, "--size", "0x10"), "positive", "{t}/out.mp4"),
    CliCase("upscale-size-words", (*UPSCALE, "--size", "big"), "WIDTHxHEIGHT", "{t}/out.mp4"),
    CliCase("upscale-size-digits", (*UPSCALE, "--size", "9" * 40 + "x2"), "WIDTHxHEIGHT"),
    CliCase("upscale-fps-infinite", (*UPSCALE, "--fps", "inf"), "fps", "{t}/out.mp4"),
    CliCase("upscale-fps-nan", (*UPSCALE, "--fps", "nan"), "fps", "{t}/out.mp4"),
    CliCase("upscale-fps-negative", (*UPSCALE, "--fps", "-5"), "fps", "{t}/out.mp4"),
    CliCase("upscale-batch-zero", (*UPSCALE, "--batch-size", "0"), "batch size"),
    CliCase("upscale-batch-huge", (*UPSCALE, "--batch-size", "100000"), "batch size"),
    CliCase("upscale-fidelity-negative", (*UPSCALE, "--fidelity-samples", "-1"), "fidelity"),
    CliCase("upscale-crf-out-of-range", (*UPSCALE, "--crf", "99"), "crf"),
    CliCase("upscale-compile-reference", (*UPSCALE, "--engine", "reference", "--compile"),
            "compile"),
    # upscale: model, device, weights
    CliCase("upscale-unknown-model", (*UPSCALE, "--model", "nope"), "unknown model"),
    CliCase("upscale-missing-device", (*UPSCALE, "--device", "cuda:7"), "cuda:7"),
    CliCase("upscale-missing-weights", (*UPSCALE, "--weights", "{t}/none.pth"), "weights file"),
    CliCase("upscale-unknown-engine", (*UPSCALE, "--engine", "warp"), "engine"),
    CliCase("upscale-unknown-option", (*UPSCALE, "--frobnicate"), "unrecognized"),
    # upscale: trim and crop
    CliCase("upscale-start-past-end", (*UPSCALE, "--start", "5", "--end", "6"), "trim"),
    CliCase("upscale-start-nan", (*UPSCALE, "--start", "nan"), "finite"),
    CliCase("upscale-end-before-start", (*UPSCALE, "--start", "0.8", "--end", "0.2"), "after"),
    CliCase("upscale-crop-outside", (*UPSCALE, "--crop", "200,200,8,8"), "outside"),
    CliCase("upscale-crop-malformed", (*UPSCALE, "--crop", "1,2,3"), "X,Y,W,H"),
    CliCase("upscale-crop-zero", (*UPSCALE, "--crop", "0,0,0,8"), "keyframe"),
    CliCase("upscale-keyframes-missing", (*UPSCALE, "--keyframes", "{t}/none.json"), "keyframes"),
    *(CliCase(f"upscale-{name[:-5].replace('_', '-')}", (*UPSCALE, "--keyframes", "{t}/" + name),
              "keyframe") for name in KEYFRAME_FILES),
    # upscale: the input itself
    CliCase("upscale-input-missing", ("upscale", "{t}/none.mp4", "{t}/out.mp4"), "does not exist"),
    CliCase("upscale-input-directory", ("upscale", "{m}", "{t}/out.mp4"), "directory"),
    CliCase("upscale-input-corrupt", (*UPSCALE[:1], "{m}/corrupt.mp4", *UPSCALE[2:]), "corrupt.mp4",
            "{t}/out.mp4"),
    CliCase("upscale-input-text-as-mp4", (*UPSCALE[:1], "{m}/text.mp4", *UPSCALE[2:]), "text.mp4",
            "{t}/out.mp4"),
    # run: the plan
    CliCase("run-repeats-10000", ("run", "--repeats", "10000"), "from 1 to 100"),
    CliCase("run-repeats-zero", ("run", "--repeats", "0"), "from 1 to 100"),
    CliCase("run-repeats-words", ("run", "--repeats", "many"), "repeats"),
    CliCase("run-too-many-runs", ("run", "--clips", ",".join(f"c{i}:0:1" for i in range(11)),
                                  "--source", "{m}/clip.mp4", "--gpus", "cpu", "--repeats", "100"),
            "at most 1000"),
    CliCase("run-clip-malformed", ("run", "--clips", "a:1", "--source", "x", "--gpus", "cpu"),
            "NAME:START:END"),
    CliCase("run-clip-backwards", ("run", "--clips", "a:2:1", "--source", "x", "--gpus", "cpu"),
            "after start"),
    CliCase("run-clip-nan", ("run", "--clips", "a:nan:1", "--source", "x", "--gpus", "cpu"),
            "numbers"),
    CliCase("run-clip-endless", ("run", "--clips", "a:0:1e12", "--source", "x", "--gpus", "cpu"),
            "longest source"),
    CliCase("run-clip-name-control", ("run", "--clips", "a\x1b[2J:0:1", "--source", "x",
                                      "--gpus", "cpu"), "clip name"),
    CliCase("run-gpu-unknown-modal", ("run", "--backend", "modal", "--gpus", "Z99", "--clips",
                                      "a:0:1", "--source", "u/x.mp4"), "Z99"),
    CliCase("run-device-unknown", ("run", "--gpus", "tpu:0", "--clips", "a:0:1", "--source", "x"),
            "tpu:0"),
    CliCase("run-gpu-twice", ("run", "--gpus", "cpu,cpu", "--clips", "a:0:1", "--source", "x"),
            "twice"),
    CliCase("run-unknown-model", ("run", "--model", "nope"), "unknown model"),
    CliCase("run-batch-zero", ("run", "--batch-size", "0"), "batch size"),
    CliCase("run-unknown-backend", ("run", "--backend", "cloud"), "backend"),
    CliCase("run-preset-wrong-backend", ("run", "--preset", "e6", "--backend", "local"),
            "name the GPUs"),
    CliCase("run-source-missing", ("run", "--source", "{t}/none.mp4", "--clips", "a:0:1",
                                   "--gpus", "cpu"), "does not exist"),
    CliCase("run-source-relative-missing", ("run", "--source", "none.mp4", "--clips", "a:0:1",
                                            "--gpus", "cpu"), "does not exist"),
    CliCase("run-source-directory", ("run", "--source", "{m}", "--clips", "a:0:1", "--gpus", "cpu"),
            "directory"),
    CliCase("verdict-tolerance-nan", ("verdict", "{t}/sample.json", "--tolerance", "nan"),
            "tolerance"),
    # export, history, execute, demo-clip
    CliCase("export-unknown-experiment", ("export", "0" * 32), "no experiment"),
    CliCase("export-output-directory", ("export", "{experiment}", "--output", "{t}"),
            "is a directory"),
    CliCase("export-output-folder-missing", ("export", "{experiment}", "--output",
                                             "{t}/no/such/x.json"), "does not exist", "{t}/no"),
    CliCase("export-output-unwritable", ("export", "{experiment}", "--output", "/proc/x.json"),
            "cannot write"),
    CliCase("export-unknown-format", ("export", "{experiment}", "--format", "xml"), "format"),
    CliCase("history-negative-limit", ("history", "--limit", "-1"), "limit"),
    CliCase("history-db-is-directory", ("history", "--db", "{t}"), "database"),
    CliCase("history-db-not-duckdb", ("history", "--db", "{m}/text.mp4"), "database"),
    CliCase("execute-unknown-experiment", ("execute", "0" * 32), "no experiment"),
    CliCase("demo-clip-zero-seconds", ("demo-clip", "{t}/d.mp4", "--seconds", "0"), "length",
            "{t}/d.mp4"),
    CliCase("demo-clip-too-small", ("demo-clip", "{t}/d.mp4", "--size", "8x8"), "16x16",
            "{t}/d.mp4"),
    CliCase("demo-clip-output-directory", ("demo-clip", "{t}", "--seconds", "0.2"),
            "is a directory"),
    CliCase("unknown-command", ("frobnicate",), "invalid choice"),
    # outputs onto the history: the database, its write-ahead log, the object store
    CliCase("export-output-is-database", ("export", "{experiment}", "--output", "{db}"),
            "history database"),
    CliCase("export-output-is-wal", ("export", "{experiment}", "--output", "{db}.wal"),
            "history database", "{db}.wal"),
    CliCase("upscale-output-is-database", ("upscale", "{m}/clip.mp4", "{db}"), "history database"),
    CliCase("upscale-output-in-object-store", ("upscale", "{m}/clip.mp4", "{objects}/bench/x.mp4"),
            "object store", "{objects}/bench/x.mp4"),
    CliCase("demo-clip-output-is-database", ("demo-clip", "{db}", "--seconds", "0.2"),
            "history database"),
    CliCase("demo-clip-output-in-object-store", ("demo-clip", "{objects}/d.mp4", "--seconds", "0.2"),
            "object store", "{objects}/d.mp4"),
    # sizes: odd, and implied by the model's scale
    CliCase("upscale-size-odd", (*UPSCALE, "--size", "811x1441"), "even", "{t}/out.mp4"),
    CliCase("upscale-implied-size-too-large", ("upscale", "{m}/wide.png", "{t}/out.png", "--model",
                                               "animevideov3", "--weights", "random"),
            "at most 8192", "{t}/out.png"),
    CliCase("history-limit-10-to-the-24", ("history", "--limit", str(10**24)), "limit"),
)
"""Bad command lines: each exits 2 with one line and leaves stored data and files as they were."""

RESULTS_FILES: dict[str, bytes] = {
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep-nesting-in-config": _e6_top(config=_nested(40)),
    "integer-of-5000-digits": _e6_top(results=[]).replace(b'"results": []',
                                                          b'"results": [' + b"9" * 5000 + b"]"),
    "frames-beyond-int64": _e6(frames=10**30),
    "frames-negative": _e6(frames=-180),
    "frames-fractional": _e6(frames=180.5),
    "frames-huge-text": _e6(frames="1e400"),
    "elapsed-1e308": _e6(elapsed=1e308),
    "elapsed-infinity": _e6(elapsed=1).replace(b'"elapsed": 1,', b'"elapsed": Infinity,'),
    "elapsed-nan": _e6(elapsed=1).replace(b'"elapsed": 1,', b'"elapsed": NaN,'),
    "elapsed-negative": _e6(elapsed=-1.0),
    "fps-non-physical": _e6(elapsed=1e-300),
    "fps-field-1e9": _e6(fps=1e9),
    "repeat-huge": _e6(repeat=10**12),
    "pricing-infinite": _e6_top(pricing={"T4": 0.000164, "L4": 1}).replace(b'"L4": 1}',
                                                                          b'"L4": 1e999}'),
    "pricing-negative": _e6_top(pricing={"T4": -0.000164, "L4": 0.000222}),
    "pricing-zero": _e6_top(pricing={"T4": 0, "L4": 0.000222}),
    "pricing-absurd": _e6_top(pricing={"T4": 1e6, "L4": 0.000222}),
    "gpu-name-10k-chars": _e6(gpu="T" * 10_000),
    "clip-integer-of-400-digits": _e6(clip=10**400),
    "gpu-missing": _e6(gpu=None),
    "clip-missing": _e6(clip=""),
    "result-not-object": _e6_top(results=[1, 2]),
    "results-not-list": _e6_top(results={"a": 1}),
    "config-not-object": _e6_top(config=[1]),
    "top-level-list": b"[1, 2, 3]",
    "top-level-string": b'"results"',
    "empty-file": b"",
    "not-json": b"{results: [}",
    "binary-png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "utf16-json": json.dumps(E6_SAMPLE).encode("utf-16"),
    "gpu-without-any-price": _e6_top(pricing={}, results=[
        {"gpu": "Z99", "clip": "6s", "frames": 180, "elapsed": 10.0, "status": "ok"}]),
}
"""Hostile results files. Each is refused with one line by `verdict`, `import` and the dashboard's
upload, and none leaves anything stored."""

RESULTS_ENTRY_POINTS = ("verdict", "import", "upload")
"""Where a results file enters the product."""

VERDICT_ONLY: dict[str, bytes] = {
    "every-result-failed": _e6_top(results=[{"gpu": "T4", "clip": "6s", "status": "failed",
                                             "error": "OOM"}]),
    "unknown-gpu-that-failed-only": _e6_top(pricing={}, results=[
        {"gpu": "Z99", "clip": "6s", "frames": 180, "status": "failed", "error": "no such card"}]),
}
"""Files that import fine (every run stored with its status) but that `verdict` cannot judge."""

UPLOAD_CASES: dict[str, bytes] = {
    "png-named-json": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "zip-named-json": b"PK\x03\x04" + b"\x00" * 64,
    "null-bytes": b'{"results": [\x00]}',
    "over-the-size-limit": b" " * 50_000_001,
}
"""Uploads judged by content and size, whatever their name says (all named 'results.json')."""

@dataclass(frozen=True)
class DatabaseCase:
    """A database file that is not a usable history: every command refuses it in one line (exit 2,
    naming the file) and leaves it byte for byte as it was."""

    id: str
    statements: tuple[str, ...]
    """SQL run on the file: a new DuckDB file (another application's), or with `ours` a copy of
    a history written by this product."""
    ours: bool = False


DATABASE_CASES: tuple[DatabaseCase, ...] = (
    DatabaseCase("another-applications-database", ("CREATE TABLE invoices (id INTEGER, total DOUBLE)",)),
    DatabaseCase("foreign-experiments-table", ("CREATE TABLE experiments (id INTEGER, title VARCHAR)",)),
    DatabaseCase("schema-version-not-a-number",
                 ("UPDATE meta SET value = 'three' WHERE key = 'schema_version'",), ours=True),
    DatabaseCase("runs-table-dropped", ("DROP TABLE runs",), ours=True),
    DatabaseCase("column-dropped", ("DROP INDEX runs_experiment_idx", "ALTER TABLE runs DROP COLUMN fps"),
                 ours=True),
)
DATABASE_DOORS = ("history", "import", "export")
"""Commands each damaged or foreign database is given (with --db)."""


@dataclass(frozen=True)
class SettingsCase:
    """A settings file the user can fix: the command refuses in one line (exit 2) naming it, and
    the dashboard's Settings and Run pages say so in one box instead of a traceback."""

    id: str
    path: str
    """Where it is written, relative to the product environment's root (cwd; data/ and home/)."""
    content: bytes
    argv: tuple[str, ...]
    says: str


_RUN_DEMO = ("run", "--gpus", "cpu", "--model", "animevideov3", "--weights", "random")
SETTINGS_CASES: tuple[SettingsCase, ...] = (
    SettingsCase("secrets-not-utf8", ".streamlit/secrets.toml", b"\xff\xfe[r2]\nbucket = 1\n",
                 _RUN_DEMO, "UTF-8"),
    SettingsCase("prices-memory-1e400", "data/prices.json", json.dumps({"gpus": {"T4": {
        "usd_per_second": 0.000164, "memory_gb": 1}}}).replace('"memory_gb": 1', '"memory_gb": 1e400')
        .encode(), _RUN_DEMO, "memory_gb"),
    SettingsCase("prices-rate-1e308", "data/prices.json", json.dumps({"gpus": {"T4": {
        "usd_per_second": 1e308, "memory_gb": 16}}}).encode(), _RUN_DEMO, "from 1e-09 to 1"),
    SettingsCase("modal-config-not-toml", "home/.modal.toml", b"garbage = [\n", ("doctor",),
                 "Modal configuration"),
    SettingsCase("modal-config-value-outside-profile", "home/.modal.toml", b"token_id = 'x'\n",
                 ("doctor",), "one [table] per profile"),
)

FAULTS: tuple[str, ...] = (
    "worker_sigkill",
    "parent_sigkill",
    "disk_full_tmpfs",
    "disk_full_injected",
    "storage_unreachable",
    "database_held",
    "database_held_past_timeout",
    "dashboard_restarted",
    "executor_restarted",
    "creator_killed_before_claim",
    "interrupted_before_upload",
    "held_by_another_executor",
    "disk_full_mid_run",
    "logs_unwritable_during_a_bug",
)
"""Faults injected; each has a test_fault_<name> in test_faults.py."""

HOSTILE_NAMES: tuple[str, ...] = (
    "![x](http://127.0.0.1:9/p.png)",
    "[link](http://127.0.0.1:9/l)",
    ":red[x] :material/home:",
    "$x^2$ and $y$",
    "<b>x</b><img src=http://127.0.0.1:9/h.png><a href='http://127.0.0.1:9/c'>c</a>",
    "www.example.com http://127.0.0.1:9/auto a@example.com",
    "# heading *em* `code` ~~s~~ | cell",
)
"""Names that Markdown (with Streamlit's extras) would turn into an image, a link, colour, KaTeX,
HTML or structure, and plotly's HTML subset into a link or bold. Each names a GPU, clip, model,
experiment or run error on every page."""

SECURITY_CASES: tuple[str, ...] = (
    "planted_secret_is_nowhere",
    "every_sql_value_is_a_parameter",
    "dashboard_listens_on_localhost_and_renders_no_raw_html",
    "untrusted_names_are_escaped_for_terminal_and_markdown",
    "json_outputs_are_strict",
    "names_reach_every_page_as_text",
    "every_page_text_is_escaped_or_reviewed",
    "pages_draw_no_developer_text",
    "links_at_outputs_are_replaced_not_followed",
    "sources_are_known_by_their_content",
    "concurrent_first_uploads_of_one_source",
)
"""Attacks tried; each has a test_<name> in test_security.py (the real browser's view of hostile
names is tests/test_browser.py::test_hostile_names_render_as_text)."""

LOAD_RUNS = 200
"""Runs of the load test's plan (2 clips x 100 repeats on the local cpu worker)."""
LOAD_CLIENTS = 2
"""CLIs reading and writing the database while the plan runs."""

EXAMPLES_PER_PROPERTY = 300
"""Examples hypothesis generates for each parser property (test_properties.py)."""
