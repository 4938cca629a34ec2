"""Bad input at every door: the CLI, results files (verdict, import, the dashboard's upload) and
uploads judged by content. Each case gives exit 2 and one line (never a traceback), leaves no output
file, and loses nothing already stored; where runs were created they are stored failed with the
reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError
from tests.e6_samples import E6_SAMPLE
from tests.reliability.cases import (
    CLI_CASES,
    DATABASE_CASES,
    DATABASE_DOORS,
    KEYFRAME_FILES,
    RESULTS_FILES,
    SETTINGS_CASES,
    UPLOAD_CASES,
    VERDICT_ONLY,
    CliCase,
    DatabaseCase,
    SettingsCase,
)
from tests.reliability.conftest import cli, cli_process
from tests.ui_helpers import isolate_env, store_e6


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, media: Path):
    """One product environment for the module, holding an imported experiment (the 'already
    stored' data every case must leave as it was)."""
    root = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_OFFLINE", "1")
        mp.chdir(root)
        db_path = isolate_env(mp, root)
        experiment = store_e6(db_path)
        yield {"db": db_path, "experiment": experiment, "media": media, "root": root}


def _stored(db_path: Path) -> tuple[list[str], list[tuple]]:
    """(experiment ids, every run's id/status/error/seconds), for before/after comparisons."""
    from store import runs as store_runs
    from store.db import Database

    db = Database(db_path)
    runs = store_runs.list_runs(db)
    rows = sorted(map(tuple, runs[["id", "status", "error", "total_seconds"]]
                      .astype(object).where(runs.notna(), None).values.tolist()))
    return list(store_runs.list_experiments(db)["id"]), rows


def _history_bytes(world: dict) -> dict[str, bytes]:
    """The database file and every stored object, by path."""
    data = world["root"] / "data"
    files = [world["db"], *sorted((data / "objects").rglob("*"))]
    return {str(p): p.read_bytes() for p in files if p.is_file()}


def _folder(world: dict, case_id: str) -> Path:
    folder = world["root"] / case_id
    folder.mkdir()
    for name, text in KEYFRAME_FILES.items():
        (folder / name).write_text(text)
    (folder / "sample.json").write_text(json.dumps(E6_SAMPLE))
    return folder


def _values(world: dict, folder: Path) -> dict[str, object]:
    return {"m": world["media"], "t": folder, "mname": world["media"].name,
            "experiment": world["experiment"], "db": world["db"],
            "objects": world["root"] / "data" / "objects"}


def _argv(case: CliCase, world: dict, folder: Path) -> list[str]:
    return [a.format(**_values(world, folder)) for a in case.argv]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_command_line(world, case: CliCase):
    folder = _folder(world, case.id)
    experiments, runs = _stored(world["db"])
    history = _history_bytes(world)
    outcome = cli(*_argv(case, world, folder))
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    line = outcome.one_line_error()
    assert case.says.lower() in line.lower(), line
    if case.leaves_no:
        gone = Path(case.leaves_no.format(**_values(world, folder)))
        assert not gone.exists() and not gone.with_name(gone.name + ".part").exists()
    if any("{db}" in a or "{objects}" in a for a in case.argv):  # an output onto the history
        assert _history_bytes(world) == history  # the database and stored objects as they were
    after_experiments, after_runs = _stored(world["db"])
    assert set(runs) <= set(after_runs) and after_experiments[-len(experiments):] == experiments
    if case.id.startswith("run-source"):  # runs were created: stored failed, with the reason
        from store import runs as store_runs
        from store.db import Database

        new = store_runs.list_runs(Database(world["db"]), experiment_id=after_experiments[0])
        assert set(new["status"]) == {"failed"}
        assert all(e in line for e in new["error"])
    else:
        assert len(after_experiments) == len(experiments)


@pytest.mark.parametrize("name", sorted(RESULTS_FILES))
@pytest.mark.parametrize("door", ["verdict", "import"])
def test_hostile_results_file_on_the_command_line(world, name: str, door: str):
    folder = _folder(world, f"{door}-{name}")
    path = folder / "results.json"
    path.write_bytes(RESULTS_FILES[name])
    before = _stored(world["db"])
    outcome = cli(door, path)
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    assert str(path) in outcome.one_line_error()
    assert _stored(world["db"]) == before


@pytest.mark.parametrize("name", sorted(RESULTS_FILES))
def test_hostile_results_file_as_upload(world, name: str):
    from store.db import Database
    from ui.history_view import import_e6_upload

    before = _stored(world["db"])
    with pytest.raises(InputError) as caught:
        import_e6_upload(Database(world["db"]), RESULTS_FILES[name], "results.json")
    assert str(caught.value).startswith("results.json") and "\n" not in str(caught.value)
    assert _stored(world["db"]) == before


@pytest.mark.parametrize("name", sorted(VERDICT_ONLY))
def test_results_a_verdict_cannot_judge(world, name: str):
    folder = _folder(world, f"verdict-only-{name}")
    path = folder / "results.json"
    path.write_bytes(VERDICT_ONLY[name])
    outcome = cli("verdict", path)
    assert outcome.code == 2
    outcome.one_line_error()
    imported = cli("import", path)  # every result is still stored, with its status
    assert imported.code == 0, imported.stderr
    from store import runs as store_runs
    from store.db import Database

    runs = store_runs.list_runs(Database(world["db"]), experiment_id=imported.stdout.strip())
    if name == "unknown-gpu-that-failed-only":  # a GPU no catalog knows: stored failed, no cost
        assert list(runs["status"]) == ["failed"] and runs["cost_gpu"].isna().all()
    markdown = cli("export", imported.stdout.strip(), "--format", "md")
    assert markdown.code == 0, markdown.stderr
    assert "No verdict" in markdown.stdout  # the findings report the failures instead of refusing
    assert "| OOM |" in markdown.stdout or "| no such card |" in markdown.stdout


@pytest.mark.parametrize("name", sorted(UPLOAD_CASES))
def test_uploads_are_judged_by_content_and_size(world, name: str):
    from store.db import Database
    from ui.history_view import import_e6_upload

    before = _stored(world["db"])
    with pytest.raises(InputError) as caught:
        import_e6_upload(Database(world["db"]), UPLOAD_CASES[name], "results.json")
    assert "\n" not in str(caught.value)
    assert _stored(world["db"]) == before


def test_a_good_results_file_under_any_name_is_accepted(world):
    from store.db import Database
    from ui.history_view import import_e6_upload

    experiment = import_e6_upload(Database(world["db"]), json.dumps(E6_SAMPLE).encode(),
                                  "holiday.png")
    assert len(experiment) == 32


def test_real_process_exit_codes_and_no_traceback(world):
    """The same convention as a shell sees it: bad input 2, one line, no traceback."""
    folder = _folder(world, "process")
    refused = cli_process("upscale", world["media"] / "clip.mp4", world["media"] / "clip.mp4")
    assert refused.code == 2 and refused.one_line_error()
    (folder / "deep.json").write_bytes(RESULTS_FILES["deep-nesting"])
    deep = cli_process("verdict", folder / "deep.json")
    assert deep.code == 2 and "nested too deeply" in deep.one_line_error()
    usage = cli_process("run", "--repeats", "x")
    assert usage.code == 2 and usage.one_line_error()


BUG = """
import sys
import bench.commands.history_cmd as history
history.render = lambda data: 1 / 0  # a planted bug
from bench.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_bug_is_one_line_and_exit_3_with_the_traceback_only_under_debug(world, tmp_path):
    import subprocess
    import sys

    from tests.reliability.conftest import process_env

    def run(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BUG, *extra, "history"], env=process_env(),
                              capture_output=True, text=True, timeout=120)

    quiet = run()
    assert quiet.returncode == 3
    assert "Traceback" not in quiet.stderr and quiet.stderr.count("\n") == 1
    assert "ZeroDivisionError" in quiet.stderr and "--debug" in quiet.stderr
    log = Path(world["root"]) / "data" / "logs" / "cli.log"
    assert "Traceback" in log.read_text()
    loud = run("--debug")
    assert loud.returncode == 3 and "Traceback" in loud.stderr


@pytest.mark.parametrize("door", DATABASE_DOORS)
@pytest.mark.parametrize("case", DATABASE_CASES, ids=[c.id for c in DATABASE_CASES])
def test_database_that_is_not_a_usable_history(world, tmp_path, case: DatabaseCase, door: str):
    import shutil

    import duckdb

    path = tmp_path / "other.duckdb"
    if case.ours:
        shutil.copyfile(world["db"], path)
    connection = duckdb.connect(str(path))
    for statement in case.statements:
        connection.execute(statement)
    connection.close()
    before = path.read_bytes()
    (tmp_path / "sample.json").write_text(json.dumps(E6_SAMPLE))
    argv = {"history": ("history",), "import": ("import", tmp_path / "sample.json"),
            "export": ("export", world["experiment"])}[door]
    outcome = cli(*argv, "--db", path)
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    line = outcome.one_line_error()
    assert str(path) in line and "transaction" not in line.lower(), line
    assert path.read_bytes() == before and not path.with_name(path.name + ".wal").exists()


@pytest.mark.parametrize("case", SETTINGS_CASES, ids=[c.id for c in SETTINGS_CASES])
def test_settings_file_the_user_can_fix(env, case: SettingsCase):
    from tests.ui_helpers import app, assert_no_exception

    root = env.parent.parent
    target = root / case.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(case.content)
    outcome = cli(*case.argv)
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    assert case.says.lower() in outcome.one_line_error().lower()
    for page in ("ui/settings_page.py", "ui/run_page.py"):
        at = app(page)
        assert_no_exception(at)
        boxes = [e.value for e in (*at.error, *at.warning)]
        if not case.path.endswith(".modal.toml") or page.endswith("settings_page.py"):
            assert any(case.says.lower() in str(b).lower().replace("\\", "") for b in boxes), boxes


def test_plans_refuse_odd_and_oversized_output_sizes():
    """Plans (the dashboard's form and presets build them) refuse what the CLI refuses."""
    from bench.plan import build_plan
    from core.errors import InputError

    for size, says in (((811, 1440), "even"), ((8194, 100), "at most 8192")):
        with pytest.raises(InputError, match=says):
            build_plan("demo", output_width=size[0], output_height=size[1])


def test_one_price_bound_for_settings_prices_files_and_imports():
    """A price above bench.pricing.MAX_RATE is refused by the Settings editor, a prices.json and
    an imported results file alike (before, Settings took $1e308/s and stored infinite costs)."""
    from bench.e6 import parse_e6
    from bench.pricing import DEFAULT_PRICES, MAX_RATE, PriceTable
    from ui.settings_view import RATE, apply_price_edits, price_frame

    too_dear = MAX_RATE * 10
    frame = price_frame(DEFAULT_PRICES)
    frame.loc[0, RATE] = too_dear
    saved = DEFAULT_PRICES.to_dict()
    saved["gpus"]["T4"]["usd_per_second"] = too_dear
    results = json.loads(json.dumps(E6_SAMPLE))
    results["pricing"]["T4"] = too_dear
    for attempt in (lambda: apply_price_edits(frame, DEFAULT_PRICES),
                    lambda: PriceTable.from_dict(saved), lambda: parse_e6(results)):
        with pytest.raises(InputError, match=f"to {MAX_RATE:g}"):
            attempt()
