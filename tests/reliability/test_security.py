"""Security: a planted secret never reaches the database, logs, exports, CLI output or the pages;
every SQL value is a parameter; the dashboard listens on localhost and never renders raw HTML;
untrusted names are escaped for the terminal and for markdown."""

from __future__ import annotations

import ast
import json
import time
import tomllib

from tests.e6_samples import E6_SAMPLE
from tests.reliability.conftest import ROOT, cli, cli_process

SECRETS = {
    "R2_SECRET_ACCESS_KEY": "planted-r2-secret-7f3a9c",
    "R2_ACCESS_KEY_ID": "planted-r2-key-id-51be20",
    "MODAL_TOKEN_ID": "ak-planted-modal-id-9d1e",
    "MODAL_TOKEN_SECRET": "as-planted-modal-secret-4c7b",
}
PAGES = ("ui/run_page.py", "ui/compare_page.py", "ui/history_page.py", "ui/settings_page.py")


def _everything_on(at) -> str:
    """Every element of an AppTest page as its protobuf text (what the browser is sent)."""
    parts = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts.extend(frame.to_csv() for frame in [el.value for el in at.dataframe])
    return "\n".join(parts)


def test_planted_secret_is_nowhere(env, media, monkeypatch, tmp_path):
    from bench.orchestrator import create_experiment, launch_detached, prepare_source
    from bench.plan import build_plan
    from store.config import load_storage_config
    from store.db import Database
    from store.objects import open_object_store
    from tests.ui_helpers import app, assert_no_exception

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("R2_ENDPOINT_URL", "https://example.invalid")
    monkeypatch.setenv("R2_BUCKET", "bench")
    monkeypatch.setenv("BENCH_STORAGE", "local")  # the credentials are loaded, runs stay local
    seen = []
    run = cli("run", "--source", media / "clip.mp4", "--clips", "a:0:0.2", "--gpus", "cpu",
              "--model", "animevideov3", "--weights", "random", "--json")
    assert run.code == 0, run.stderr
    experiment_id = json.loads(run.stdout)["experiment_id"]
    seen += [run.stdout, run.stderr]
    modal = cli("run", "--preset", "e6")  # refused at launch: Modal needs R2 storage
    seen += [modal.stdout, modal.stderr]
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    for argv in (("import", sample), ("history", "--json"), ("history",),
                 ("export", experiment_id), ("export", experiment_id, "--format", "md"),
                 ("verdict", sample, "--json"), ("--debug", "history", "--limit", "-1")):
        outcome = cli(*argv)
        seen += [outcome.stdout, outcome.stderr]
    # the dashboard's way: an executor in the background, writing its own log
    plan = build_plan(None, source=str(media / "clip.mp4"), clips="b:0:0.2", gpus="cpu",
                      model="animevideov3", weights="random")
    background, _ = create_experiment(Database(env), plan,
                                      prepare_source(plan.source, open_object_store(load_storage_config())))
    launch_detached(env, background)
    deadline = time.monotonic() + 120
    while cli("history", "--json").stdout.count('"status": "succeeded"') < 2 + 6:
        assert time.monotonic() < deadline, "the background run did not finish"
        time.sleep(0.5)
    for page in PAGES:
        at = app(page, query={"experiment": experiment_id})
        assert_no_exception(at)
        seen.append(_everything_on(at))
    files = [p for p in env.parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in files) and any(p.name.endswith(".wal") or p == env
                                                          for p in files)
    blobs = seen + [p.read_bytes().decode("latin-1") for p in files]
    for name, value in SECRETS.items():
        leaks = [b[:80] for b in blobs if value in b]
        assert not leaks, f"{name} leaked into {leaks}"


SQL_WORDS = ("SELECT ", "INSERT ", "UPDATE ", "DELETE ", "ATTACH ", "DETACH ", "CREATE ", "ALTER ",
             "USE ", "WHERE ", " IN (", "LIMIT ")
ALLOWED_IN_SQL = {
    "_EXPERIMENT_SELECT": "column list built from the dataclass fields",
    "_RUN_SELECT": "column list built from the dataclass fields",
    "columns": "column list built from RUN_COLUMNS",
    "select": "the fixed SELECT ... FROM ... JOIN above it",
    "condition": "WHERE built from fixed fragments; every value went to params",
    "order": "a fixed ORDER BY",
    "_limit(limit)": "int() of the limit",
    "int(limit)": "an int",
    "counts": "count(...) FILTER per status from core.status (constants)",
    "s": "a status from core.status.RUN_STATUSES (constant)",
    "_ACTIVE": "quoted constants from core.status",
    "_STATUS_LIST": "quoted constants from core.status",
    "_ORIGIN_LIST": "quoted constants from store.db.ORIGINS",
    "sets": '"column" = ? pairs; the values are parameters',
    "', '.join(map(_q, names))": "quoted column names from the dataclass fields",
    "', '.join('?' * len(names))": "placeholders",
    "table": "'experiments' or 'runs' (callers in this module)",
    "column": "'gpu' or 'model' (a fixed loop)",
    "self._alias": "'bench_' + a hex digest (no user text)",
    "alias": "'bench_' + a hex digest (no user text)",
    "quoted": "the database path with quotes doubled: ATTACH takes no parameters",
    "' (READ_ONLY)' if read_only else ''": "a fixed option",
    "_q(column)": "a quoted column name from a fixed tuple",
}
"""Every expression interpolated into SQL text in store/, and why it cannot carry a value."""


def test_every_sql_value_is_a_parameter():
    """store/ is the one place with SQL; an f-string that builds SQL may interpolate only the
    reviewed fragments above (names, placeholders, constants), never a value."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "store").glob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.JoinedStr):
                continue
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if not any(word in text for word in SQL_WORDS):  # SQL here is written in capitals
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    found[ast.get_source_segment(source, value.value)] = f"{path.name}:{node.lineno}"
    unreviewed = {expr: where for expr, where in found.items() if expr not in ALLOWED_IN_SQL}
    assert not unreviewed, f"SQL built with interpolated values (use ? parameters): {unreviewed}"
    assert found, "the scan found no SQL at all: it is broken"


def test_dashboard_listens_on_localhost_and_renders_no_raw_html():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] in ("localhost", "127.0.0.1")
    launcher = (ROOT / "scripts" / "dashboard.sh").read_text()
    assert "server.address" not in launcher and "0.0.0.0" not in launcher
    for path in [ROOT / "dashboard.py", *sorted((ROOT / "ui").glob("*.py"))]:
        assert "unsafe_allow_html=True" not in path.read_text(), path


HOSTILE = dict(E6_SAMPLE, results=[dict(r, gpu="T4\x1b[2J\x1b[31m<script>x</script>|", clip="6s\u202e")
                                   if r["gpu"] == "T4" else r for r in E6_SAMPLE["results"]],
               pricing={"T4\x1b[2J\x1b[31m<script>x</script>|": 0.000164, "L4": 0.000222})


def test_untrusted_names_are_escaped_for_terminal_and_markdown(env, tmp_path):
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(HOSTILE))
    verdict = cli("verdict", path)
    imported = cli("import", path)
    assert verdict.code == imported.code == 0, verdict.stderr + imported.stderr
    experiment_id = imported.stdout.strip()
    history = cli("history")
    markdown = cli("export", experiment_id, "--format", "md")
    exported = cli("export", experiment_id)
    for text in (verdict.stdout, history.stdout, markdown.stdout):
        assert "\x1b" not in text and "\u202e" not in text
        assert "\\x1b" in text or "\\u202e" in text
    assert "<script>" not in markdown.stdout and "&lt;script&gt;" in markdown.stdout
    assert "\\|" in markdown.stdout  # a name cannot end a table cell
    json.loads(exported.stdout, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    real = cli_process("verdict", path)
    assert real.code == 0 and "\x1b" not in real.stdout


def test_json_outputs_are_strict(env, tmp_path):
    """No NaN or Infinity in what the CLI prints as JSON, whatever is stored."""
    from bench.e6 import parse_e6
    from bench.e6_import import import_e6
    from store.db import Database

    data = json.loads(json.dumps(E6_SAMPLE))
    data["results"].append({"gpu": "T4", "clip": "6s", "frames": 180, "status": "failed"})
    experiment_id = import_e6(Database(env), parse_e6(data), "strict.json")
    strict = {"parse_constant": lambda name: (_ for _ in ()).throw(ValueError(name))}
    for argv in (("export", experiment_id), ("history", "--json")):
        outcome = cli(*argv)
        assert outcome.code == 0
        json.loads(outcome.stdout, **strict)
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(data))
    json.loads(cli("verdict", path, "--json").stdout, **strict)


