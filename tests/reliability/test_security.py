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
    "_sql_strings(RUN_STATUSES)": "the quoted constants of core.status in a CHECK (DDL takes no ?)",
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




MARKDOWN_FIELDS = {"body", "label", "text", "help", "placeholder", "caption"}
"""Proto fields the browser draws as Markdown (element bodies, alerts, labels, tooltips, captions
of images and progress bars); options of a select box and dataframe cells are plain text."""


def _markdown_strings(at) -> list[str]:
    """Every string of an AppTest page that Streamlit draws as Markdown (charts excepted:
    plotly draws no Markdown)."""
    found: list[str] = []

    def fields(message) -> None:
        if message.DESCRIPTOR.name == "PlotlyChart":
            return
        for field, value in message.ListFields():
            values = [value] if isinstance(value, str) or hasattr(value, "ListFields") else value
            if field.message_type is not None:
                for item in values:
                    fields(item)
            elif field.name in MARKDOWN_FIELDS:
                found.extend(values)

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            fields(proto)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return [s for s in found if isinstance(s, str)]


def test_names_reach_every_page_as_text(env):
    """GPU, clip, model and experiment names, run errors and URL parameters from
    cases.HOSTILE_NAMES reach every page as escaped Markdown (bench.escape.page_text), never as
    the syntax they are; the escaped names are on the pages, so they were shown."""
    from bench.escape import page_text
    from tests.reliability.cases import HOSTILE_NAMES
    from tests.ui_helpers import app, assert_no_exception, store_hostile

    stored = store_hostile(env)
    visits = [("ui/compare_page.py", {"experiment": stored["imported"]}),
              ("ui/compare_page.py", {"experiment": stored["local"]}),
              ("ui/run_page.py", {"experiment": stored["local"]}),
              ("ui/history_page.py", {}), ("ui/start_page.py", {}), ("ui/settings_page.py", {}),
              *[("ui/run_detail_page.py", {"run": run}) for run in stored["runs"]],
              *[(page, {param: name}) for name in HOSTILE_NAMES[:2]
                for page, param in (("ui/compare_page.py", "experiment"),
                                    ("ui/run_page.py", "experiment"),
                                    ("ui/run_detail_page.py", "run"))]]
    shown: list[str] = []
    for page, query in visits:
        at = app(page, query=query)
        assert_no_exception(at)
        strings = _markdown_strings(at)
        for name in HOSTILE_NAMES:
            raw = [s for s in strings if name in s]
            assert not raw, f"{page} {query}: {name!r} reaches Markdown as it is: {raw[:2]}"
        shown.extend(strings)
    everything = "\n".join(shown)
    missing = [n for n in HOSTILE_NAMES if page_text(n) not in everything]
    assert not missing, f"never shown: {missing}"


REVIEWED_PAGE_TEXT = {
    "len(still)": "a count", "len(failed)": "a count", "len(bill.containers)": "a count",
    "len(picked)": "a count", "len(runs)": "a count", "len(orphans)": "a count",
    "len(ids)": "a count", "active": "a count", "per_day": "a number input",
    "bill.scaledown_window": "a number of seconds", "t": "seconds", "box.width": "pixels",
    "box.height": "pixels", "box.x": "pixels", "box.y": "pixels",
    "list(figures)": "the chart names of chart_tabs (constants)",
    "help_text": "bill_view.metrics help (constants)",
    "label": "bill_view.metrics headings, the Run page's 'Each run (N)' (constants, counts)",
    "f['label']": "'E6 JSON' or 'Markdown findings'",
    "experiment_id[:8]": "a hex id made by the store",
    "start_view.INTRO": "a constant",
    "DEFAULT_PRICES.date": "the catalog's date (a constant)",
    "run_form.DEMO_INFO.describe()": "the generated demo source's size and rate",
    "info.describe()": "a probed source's size, rate and length (numbers)",
    "device": "a device of this machine (cpu, cuda:N)",
    "page_url(DETAIL_PATH, run=run_id)": "a link target: url-encoded",
    "page_url(path, **query)": "a link target: url-encoded",
    "link": "the permalink's target (url-encoded); its text is page_text",
    "_details(row.run_id)": "a link to the detail page: a constant text and a url-encoded target",
    "row.text": "live_run.ProgressRow.text: an icon, then text through page_text",
    "v.rule": "the name of a decision rule (constants of bench.analysis)",
    "live_run.progress_row(row, title).text": "live_run.ProgressRow.text, as above",
}
"""Expressions that reach Markdown in ui/ without page_text, and why they cannot carry a name."""
FIRST_ARGUMENT_IS_TEXT = {
    "markdown", "caption", "info", "warning", "error", "success", "write", "subheader", "header",
    "title", "toast", "expander", "tabs", "metric", "badge", "radio", "checkbox", "toggle",
    "button", "download_button", "selectbox", "multiselect", "text_input", "number_input",
    "slider", "file_uploader", "date_input", "popover", "link_button", "status"}
TEXT_KEYWORDS = {"label", "text", "caption", "help", "placeholder"}


def test_every_page_text_is_escaped_or_reviewed():
    """Every text ui/ hands to a Streamlit element that draws Markdown (its body, a label, a
    caption, a tooltip) is a constant, page_text(...) of something, or a reviewed expression
    above; an f-string may interpolate only those. Every chart goes through
    charts.names_as_text (plotly draws no Markdown, but its own HTML subset)."""
    found: dict[str, str] = {}

    def check(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Constant) or (
                isinstance(node, ast.Call) and getattr(node.func, "id", None) == "page_text"):
            return
        if isinstance(node, ast.JoinedStr):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    check(value.value, where)
        elif isinstance(node, ast.BinOp):
            check(node.left, where)
            check(node.right, where)
        elif isinstance(node, ast.IfExp):
            check(node.body, where)
            check(node.orelse, where)
        else:
            found.setdefault(ast.unparse(node), where)

    for path in sorted((ROOT / "ui").glob("*.py")):
        if path.name == "charts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            texts = [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
            if node.func.attr in ("dataframe", "data_editor", "table", "text", "code"):
                texts = []  # plain text, or cells escaped by the caller (st.table)
            if node.func.attr in FIRST_ARGUMENT_IS_TEXT and node.args:
                texts.insert(0, node.args[0])
            if node.func.attr == "plotly_chart":  # plotly draws its own HTML subset in names
                assert ast.unparse(node.args[0]).startswith("charts.names_as_text("), \
                    f"{path.name}:{node.lineno}: a chart drawn without charts.names_as_text"
            for text in texts:
                check(text, f"{path.name}:{node.lineno}")
    unreviewed = {expr: where for expr, where in found.items() if expr not in REVIEWED_PAGE_TEXT}
    assert not unreviewed, f"text drawn as Markdown without page_text: {unreviewed}"
    assert found, "the scan found nothing: it is broken"


def test_pages_draw_no_developer_text():
    """Streamlit's magic draws a bare string in a page script: no page has one but its module
    docstring (and functions' docstrings, which magic skips), and Settings shows none."""
    from tests.ui_helpers import app, page_text

    for path in [ROOT / "dashboard.py", *sorted((ROOT / "ui").glob("*_page.py"))]:
        tree = ast.parse(path.read_text())
        bare = [node.lineno for node in tree.body[1:] if isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
        assert not bare, f"{path.name}: a bare string at line(s) {bare} is drawn on the page"
    assert "session_state key" not in page_text(app("ui/settings_page.py"))


def test_links_at_outputs_are_replaced_not_followed(env, media, tmp_path):
    """A link planted at OUTPUT.part (the old temporary name) or at OUTPUT itself is never
    written through: its target keeps its bytes, and OUTPUT becomes a regular file."""
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(E6_SAMPLE))
    experiment = cli("import", sample).stdout.strip()
    attempts = {
        "upscale-part": (("upscale", media / "clip.mp4", tmp_path / "u.mp4", "--model",
                          "animevideov3", "--weights", "random", "--fidelity-samples", "0"),
                         tmp_path / "u.mp4.part", tmp_path / "u.mp4"),
        "upscale-output": (("upscale", media / "image.png", tmp_path / "i.png", "--model",
                            "animevideov3", "--weights", "random"),
                           tmp_path / "i.png", tmp_path / "i.png"),
        "export-part": (("export", experiment, "--output", tmp_path / "e.json"),
                        tmp_path / "e.json.part", tmp_path / "e.json"),
        "export-output": (("export", experiment, "--output", tmp_path / "f.json"),
                          tmp_path / "f.json", tmp_path / "f.json"),
        "demo-clip-output": (("demo-clip", tmp_path / "d.mp4", "--seconds", "0.2", "--size",
                              "32x32"), tmp_path / "d.mp4", tmp_path / "d.mp4"),
        "demo-clip-part": (("demo-clip", tmp_path / "p.mp4", "--seconds", "0.2", "--size",
                            "32x32"), tmp_path / "p.mp4.part", tmp_path / "p.mp4"),
    }
    for name, (argv, link, output) in attempts.items():
        os.symlink(victim, link)
        outcome = cli(*argv)
        assert outcome.code == 0, (name, outcome.stderr)
        assert victim.read_text() == "precious", f"{name} wrote through the link"
        assert output.is_file() and not output.is_symlink() and output.stat().st_size > 0, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_sources_are_known_by_their_content(env, tmp_path):
    """Two different files with one name and one size are two sources; one file is one source
    wherever it lies; a key stored by an older version (size-name) still resolves as it is."""
    from bench.orchestrator import prepare_source
    from store.objects import LocalDirectoryStore

    store = LocalDirectoryStore(tmp_path / "objects")
    first, second, copy = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", \
        tmp_path / "c" / "clip.mp4"
    for path, content in ((first, b"A" * 4096), (second, b"B" * 4096), (copy, b"A" * 4096)):
        path.parent.mkdir()
        path.write_bytes(content)
    keys = [prepare_source(str(p), store) for p in (first, second, copy)]
    assert keys[0] != keys[1] and keys[0] == keys[2]
    assert [store.get(k).read_bytes()[:1] for k in keys] == [b"A", b"B", b"A"]
    old = "bench/sources/4096-clip.mp4"
    store.put(first, old)
    assert prepare_source(old, store) == old and store.get(old).read_bytes() == b"A" * 4096


def test_concurrent_first_uploads_of_one_source(env, tmp_path):
    """Eight first uploads of one new source at once (as concurrent `run`s do) all succeed with
    one key and an intact object, leaving no temporary file."""
    import threading

    from bench.orchestrator import prepare_source
    from store.objects import LocalDirectoryStore

    store = LocalDirectoryStore(tmp_path / "objects")
    source = tmp_path / "big.mp4"
    source.write_bytes(bytes(range(256)) * 40_000)  # 10 MB: copies overlap
    start, keys, errors = threading.Barrier(8), [], []

    def upload() -> None:
        start.wait()
        try:
            keys.append(prepare_source(str(source), store))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(keys)) == 1, errors
    assert store.get(keys[0]).read_bytes() == source.read_bytes()
    leftovers = [p for p in (tmp_path / "objects").rglob("*") if p.is_file() and p.name != "big.mp4"]
    assert not leftovers, leftovers


def test_every_security_case_has_its_test():
    from tests.reliability.cases import SECURITY_CASES

    names = {name for name in globals() if name.startswith("test_") and
             name != "test_every_security_case_has_its_test"}
    assert names == {f"test_{case}" for case in SECURITY_CASES}
