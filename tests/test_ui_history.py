"""AppTest of the History page: empty and populated databases, the filters, picking runs and an
experiment to compare, failed runs with reasons, and the E6 import behind the upload widget."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from core.errors import InputError
from tests.ui_helpers import (  # noqa: F401
    E6_SAMPLE,
    app,
    assert_no_exception,
    bench_env,
    page_text,
    populated_db,
)
from ui import history_view

PAGE = "ui/history_page.py"


def runs_table(at):
    """The runs table (the second dataframe: experiments come first)."""
    return at.dataframe[1].value


def test_empty_database_says_what_to_do(bench_env):
    at = app(PAGE)
    assert_no_exception(at)
    assert "No experiments yet — start one on the Run page, or import an E6 results file" in \
        page_text(at)


def test_experiments_runs_and_failures(populated_db):
    at = app(PAGE)
    assert_no_exception(at)
    assert not at.error
    experiments = at.dataframe[0].value
    assert len(experiments) == 2
    assert experiments.iloc[0]["Experiment"].startswith("cpu sample")  # newest first
    assert len(runs_table(at)) == 9  # 7 imported + 2 cpu runs
    failed = at.dataframe[2].value
    assert set(failed["Reason"]) == {"CUDA out of memory", "decode failed: corrupt input"}


@pytest.mark.parametrize("widget, value, rows", [
    ("filter_gpu", ["L4"], 4),
    ("filter_gpu", ["T4", "cpu"], 5),
    ("filter_model", ["animevideov3"], 2),
    ("filter_status", ["failed"], 2),
])
def test_filters_narrow_the_runs(populated_db, widget, value, rows):
    at = app(PAGE)
    at.multiselect(key=widget).set_value(value).run()
    assert_no_exception(at)
    table = runs_table(at)
    assert len(table) == rows
    if widget == "filter_status":
        assert set(table["Status"]) == {"failed"}
        assert len(at.dataframe[2].value) == rows  # the failed runs follow the filters


def test_date_filter_lists_an_import_under_the_day_its_file_says_it_ran(populated_db):
    today = dt.datetime.now(dt.timezone.utc).date()
    at = app(PAGE)
    at.date_input(key="filter_from").set_value(today - dt.timedelta(days=1))
    at.date_input(key="filter_to").set_value(today + dt.timedelta(days=1)).run()
    assert_no_exception(at)
    assert len(runs_table(at)) == 2  # the cpu runs; the import ran on 2025-08-14
    ran = dt.date(2025, 8, 14)
    at.date_input(key="filter_from").set_value(ran)
    at.date_input(key="filter_to").set_value(ran).run()
    assert_no_exception(at)
    assert len(runs_table(at)) == 7 and set(runs_table(at)["Ran at"]) == {"2025-08-14 10:22"}
    at.date_input(key="filter_from").set_value(today + dt.timedelta(days=2))
    at.date_input(key="filter_to").set_value(today + dt.timedelta(days=3)).run()
    assert_no_exception(at)
    assert "No runs match these filters" in page_text(at)


def test_picking_runs_stores_them_for_compare(populated_db):
    at = app(PAGE)
    assert at.button(key="history_compare_runs").disabled
    options = at.multiselect(key="history_pick").options
    assert len(options) == 9
    ids = [history_view.run_id_of_link(link) for link in runs_table(at)["Run"].tolist()[:3]]
    at.multiselect(key="history_pick").set_value(ids).run()
    assert at.button(key="history_compare_runs").label == "Compare 3 picked run(s)"
    at.button(key="history_compare_runs").click().run()
    assert_no_exception(at)
    assert at.session_state["compare_run_ids"] == ids
    # Standalone (no st.navigation) the page cannot switch: it says where to go.
    assert "open the Compare page" in page_text(at)


def test_compare_an_experiment_selects_it(populated_db):
    at = app(PAGE)
    first = populated_db.experiment_ids[0]
    at.selectbox(key="history_experiment").set_value(first).run()
    at.button(key="history_compare_experiment").click().run()
    assert_no_exception(at)
    assert at.query_params["experiment"] == first
    assert at.session_state["compare_run_ids"] == []


# --------------------------------------------------------------------------- import


def test_import_upload_stores_an_experiment(bench_env):
    from store.db import Database
    from store.runs import list_experiments, list_runs

    db = Database(bench_env)
    experiment_id = history_view.import_e6_upload(db, json.dumps(E6_SAMPLE).encode(), "e6.json")
    experiments = list_experiments(db)
    assert experiments["id"].tolist() == [experiment_id]
    assert experiments.iloc[0]["origin"] == "import"
    runs = list_runs(db, experiment_id=experiment_id)
    assert len(runs) == 7 and (runs["status"] == "failed").sum() == 1
    at = app(PAGE)
    assert_no_exception(at)
    assert "import of e6.json" in at.dataframe[0].value.iloc[0]["Experiment"]


@pytest.mark.parametrize("data, message", [
    (b"{not json", "e6.json is not valid JSON (line 1"),
    (b"\xff\xfe\x00", "e6.json is not a text file"),
    (json.dumps({"timestamp": "x"}).encode(), "e6.json: not an E6 results file"),
    (json.dumps(dict(E6_SAMPLE, pricing={"T4": -1})).encode(), "e6.json: pricing of 'T4'"),
])
def test_import_of_a_bad_file_is_one_line_input_error(bench_env, data, message):
    from store.db import Database
    from store.runs import list_experiments

    db = Database(bench_env)
    with pytest.raises(InputError) as caught:
        history_view.import_e6_upload(db, data, "e6.json")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert list_experiments(db).empty


# --------------------------------------------------------------------------- issue 12


def test_rows_link_to_their_experiment_and_run_and_labels_tell_runs_apart(populated_db):
    at = app(PAGE)
    assert_no_exception(at)
    experiments = at.dataframe[0].value
    assert tuple(experiments.columns[:5]) == history_view.EXPERIMENT_KEY_COLUMNS
    assert all(link.startswith("compare?experiment=") for link in experiments["Compare"])
    runs = runs_table(at)
    assert tuple(runs.columns[:6]) == history_view.RUN_KEY_COLUMNS
    assert all(link.startswith("run-detail?run=") for link in runs["Run"])
    assert set(runs["Repeat"]) == {"repeat 1"}
    from store.db import Database
    from store.runs import list_runs
    from ui.labels import run_label_long

    labels = [run_label_long(r) for r in list_runs(Database(populated_db.path)).to_dict("records")]
    assert len(set(labels)) == len(labels) == 9  # every run told apart (short id, experiment)
    assert len(at.multiselect(key="history_pick").options) == 9
    failed = at.dataframe[2].value
    assert all(link.startswith("run-detail?run=") for link in failed["Run"])


def test_an_import_says_where_it_went_with_a_link(bench_env):
    at = app(PAGE)
    at.session_state["history_imported"] = ("e6.json", "0123456789abcdef")
    at.run()
    assert_no_exception(at)
    text = page_text(at)
    assert "Imported e6.json as experiment 01234567" in text
    assert "(compare?experiment=0123456789abcdef)" in text


def test_one_repeat_numbering_in_the_cli_the_dashboard_and_the_exports(populated_db):
    """Repeats count from 1 everywhere: 'repeat 1' is the first run of a clip on a GPU."""
    import subprocess
    import sys

    from bench.experiments import run_titles
    from bench.report import export_experiment
    from store.db import Database
    from store.runs import list_runs
    from tests.ui_helpers import ROOT
    from ui.labels import run_label_long

    db = Database(populated_db.path)
    runs = list_runs(db, experiment_id=populated_db.experiment_ids[0])
    first = runs.to_dict("records")[0]
    assert run_titles(runs)[first["id"]].endswith("· repeat 1")
    assert "· repeat 1 ·" in run_label_long(first)
    markdown = export_experiment(db, populated_db.experiment_ids[0], "md")
    assert "- L4 on 30s (repeat 1): CUDA out of memory" in markdown
    cli = subprocess.run([sys.executable, "-m", "bench", "history", "--db", str(populated_db.path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and "repeat 1" in cli.stdout and "rep " not in cli.stdout
