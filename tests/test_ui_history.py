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


def test_date_filter(populated_db):
    today = dt.datetime.now(dt.timezone.utc).date()
    at = app(PAGE)
    at.date_input(key="filter_from").set_value(today - dt.timedelta(days=1))
    at.date_input(key="filter_to").set_value(today + dt.timedelta(days=1)).run()
    assert_no_exception(at)
    assert len(runs_table(at)) == 9
    at.date_input(key="filter_from").set_value(today + dt.timedelta(days=2))
    at.date_input(key="filter_to").set_value(today + dt.timedelta(days=3)).run()
    assert_no_exception(at)
    assert "No runs match these filters" in page_text(at)


def test_picking_runs_stores_them_for_compare(populated_db):
    at = app(PAGE)
    assert at.button(key="history_compare_runs").disabled
    options = at.multiselect(key="history_pick").options
    assert len(options) == 9
    ids = runs_table(at)["Run id"].tolist()[:3]
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
