"""The dashboard as a team uses it (AppTest on real databases): Stop, rename, notes and tags, Rerun
and Delete (asked first) on the Run page; comparing two experiments with a chosen baseline and the
deltas coloured; History's search and shareable filters; the Run form following a real source."""

from __future__ import annotations

import os

from bench.experiments import read_runs_in
from store import runs as store_runs
from store.db import Database
from tests.ui_helpers import (  # noqa: F401
    E6_SAMPLE,
    app,
    assert_no_exception,
    bench_env,
    dataframes,
    page_text,
    populated_db,
    store_e6,
)
from ui import delta_view, history_view, run_form

RUN_PAGE = "ui/run_page.py"
COMPARE_PAGE = "ui/compare_page.py"
HISTORY_PAGE = "ui/history_page.py"


def _queued_demo(db_path) -> tuple[str, list[str]]:
    """A demo experiment stored with its runs queued (answered for by this live test process)."""
    from bench.orchestrator import create_experiment
    from bench.plan import build_plan

    return create_experiment(Database(db_path), build_plan("demo", repeats=1), "bench/sources/x.mp4",
                             name="queued demo")


# --------------------------------------------------------------------------- Run page: manage


def test_stop_cancels_the_queued_runs_of_the_live_view(bench_env):
    experiment_id, run_ids = _queued_demo(bench_env)
    at = app(RUN_PAGE, query={"experiment": experiment_id})
    assert_no_exception(at)
    at.button(key="manage_stop").click().run()
    assert_no_exception(at)
    statuses = {store_runs.get_run(Database(bench_env), r).status for r in run_ids}
    assert statuses == {"cancelled"}
    assert f"Cancelled {len(run_ids)} run(s): {len(run_ids)} queued, 0 running (stopped)." in \
        page_text(at)
    assert not [b for b in at.button if b.key == "manage_stop"]  # nothing left to stop


def test_rename_notes_rerun_and_delete_asked_first(populated_db):
    e6, cpu = populated_db.experiment_ids
    db = Database(populated_db.path)
    at = app(RUN_PAGE, query={"experiment": e6})
    assert_no_exception(at)
    form_inputs = {w.label: w for w in at.text_input}
    form_inputs["Name"].set_value("T4 vs L4 <b>seed</b>")
    at.text_area[0].set_value("the seed's numbers")
    form_inputs["Tags (comma-separated)"].set_value("seed, t4 , l4")
    next(b for b in at.button if b.label == "Save").click().run()
    assert_no_exception(at)
    row = store_runs.get_experiment(db, e6)
    assert (row.name, row.notes, list(row.tags)) == ("T4 vs L4 <b>seed</b>", "the seed's numbers",
                                                     ["seed", "t4", "l4"])
    assert store_runs.get_experiment(db, cpu).notes is None  # the other one is untouched

    assert at.button(key="manage_rerun").disabled  # an import holds no plan to run again

    at.button(key="manage_delete").click().run()
    assert "cannot be undone" in page_text(at) and store_runs.get_experiment(db, e6) is not None
    at.button(key="manage_delete_no").click().run()
    assert store_runs.get_experiment(db, e6) is not None
    at.button(key="manage_delete").click().run()
    at.button(key="manage_delete_yes").click().run()
    assert_no_exception(at)
    assert store_runs.get_experiment(db, e6) is None
    assert store_runs.get_experiment(db, cpu) is not None
    assert "experiment" not in at.query_params
    assert "Deleted the experiment: 7 run(s), 0 output video(s)." in page_text(at)


def test_rerun_fills_the_form_from_a_stored_plan(bench_env):
    from bench.orchestrator import create_experiment
    from bench.plan import build_plan

    plan = build_plan("demo", repeats=2, clips="a:0.0:0.5,b:0.5:1.5", engine="fast")
    experiment_id, _ = create_experiment(Database(bench_env), plan, "bench/sources/x.mp4",
                                         name="two clips")
    at = app(RUN_PAGE, query={"experiment": experiment_id})
    at.button(key="manage_rerun").click().run()
    assert_no_exception(at)
    assert at.session_state["run_name"] == "two clips (rerun)"
    assert at.toggle(key="run_show_form").value
    assert list(at.session_state["run_clips_base"]["name"]) == ["a", "b"]
    assert at.number_input(key="run_repeats").value == 2
    assert at.multiselect(key="run_engines").value == ["fast"]
    assert at.text_input(key="run_name").value == "two clips (rerun)"


# --------------------------------------------------------------------------- Compare


def test_compare_with_another_experiment_and_a_chosen_baseline(populated_db):
    e6, cpu = populated_db.experiment_ids
    second = store_e6(populated_db.path, E6_SAMPLE, name="again.json")
    at = app(COMPARE_PAGE, query={"experiment": e6})
    assert_no_exception(at)
    at.multiselect(key="compare_with").set_value([second]).run()
    assert_no_exception(at)
    assert at.query_params["with"] in ([second], second)
    baseline = at.selectbox(key="compare_baseline")
    # The same candidates in two experiments are told apart by the experiment's name.
    names = [store_runs.get_experiment(Database(populated_db.path), i).name for i in (e6, second)]
    assert sorted(baseline.options) == sorted(f"{gpu} · {name}" for gpu in ("T4", "L4")
                                              for name in names)
    l4 = next(o for o in baseline.options if o.startswith("L4"))
    baseline.set_value(l4).run()
    assert_no_exception(at)
    assert at.query_params["baseline"] in (l4, [l4])
    deltas = next(df for df in dataframes(at) if delta_view.COST_DELTA in df.columns)
    mine = deltas[deltas["Candidate"] == l4]
    assert mine[delta_view.COST_DELTA].isna().all()  # the baseline against itself: none
    t4 = deltas[deltas["Candidate"].str.startswith("T4") & (deltas["Clip"] == "6s")]
    # On the seed's 6 s clip T4 takes 185.2 s at $0.000164/s against L4's 120.4 s at $0.000222/s.
    assert t4[delta_view.COST_DELTA].round(1).tolist() == [13.6, 13.6]
    assert t4[delta_view.TIME_DELTA].round(1).tolist() == [53.8, 53.8]
    # A link with the choices opens the same view.
    again = app(COMPARE_PAGE, query={"experiment": e6, "with": second, "baseline": l4})
    assert_no_exception(again)
    assert again.selectbox(key="compare_baseline").value == l4
    assert again.multiselect(key="compare_with").value == [second]


def test_delta_table_colours_cheaper_green_and_dearer_red():
    assert delta_view.delta_colour(-12.0) == delta_view.BETTER
    assert delta_view.delta_colour(3.0) == delta_view.WORSE
    assert delta_view.delta_colour(float("nan")) == "" and delta_view.delta_colour(None) == ""


# --------------------------------------------------------------------------- History


def test_history_searches_notes_and_tags_and_keeps_filters_in_the_url(populated_db):
    from store.manage import annotate_experiment

    e6, cpu = populated_db.experiment_ids
    annotate_experiment(Database(populated_db.path), cpu, "nightly check", ["H200"])
    at = app(HISTORY_PAGE)
    assert_no_exception(at)
    at.text_input(key="history_search").set_value("h200 nightly").run()
    assert_no_exception(at)
    experiments = dataframes(at)[0]
    assert list(experiments["Experiment"]) == ["cpu sample"]
    assert list(experiments["Tags"]) == ["H200"] and list(experiments["Notes"]) == ["nightly check"]
    assert at.query_params["q"] in ("h200 nightly", ["h200 nightly"])
    at.multiselect(key="filter_gpu").set_value(["T4"]).run()
    assert at.query_params["gpu"] in ("T4", ["T4"])
    shared = app(HISTORY_PAGE, query={"gpu": "L4", "q": "sample"})
    assert_no_exception(shared)
    assert shared.multiselect(key="filter_gpu").value == ["L4"]
    runs = next(df for df in dataframes(shared) if history_view.JOB_TIME in df.columns)
    assert set(runs["Candidate"]) == {"L4"}
    assert runs[history_view.JOB_TIME].dtype.kind == "f"  # sorts as a number, not as text


def test_run_times_are_numbers_in_the_history_table(populated_db):
    db = Database(populated_db.path)
    table = history_view.runs_display(read_runs_in(db, store_runs.list_runs(db)))
    times = table[history_view.JOB_TIME].dropna().tolist()
    assert times and all(isinstance(t, float) for t in times)
    assert sorted(times)[-1] == max(times)


# --------------------------------------------------------------------------- the Run form


def test_source_defaults_follow_the_video():
    defaults = run_form.source_defaults(run_form.SourceInfo(1920, 1080, 30.0, 6.0))
    assert defaults["fps"] == 30.0
    assert list(defaults["clips"]["end"]) == [1.5, 3.0, 6.0]
    box = defaults["keyframes"].iloc[0]
    assert (box["x"], box["y"], box["width"], box["height"]) == (480, 270, 960, 540)
    small = run_form.source_defaults(run_form.SourceInfo(160, 120, 10.0, 1.5))
    assert small["keyframes"].empty and small["fps"] == 10.0


def test_an_uploaded_name_becomes_a_safe_key_named_by_its_content():
    key = run_form.upload_key(b"video", "../../etc/My clip (1).mp4")
    assert key.startswith("bench/sources/uploads/") and key.endswith("-My_clip_1_.mp4")
    assert ".." not in key and run_form.upload_key(b"video", "x.mp4") != run_form.upload_key(b"other", "x.mp4")


def test_a_stored_plan_fills_the_form_the_way_it_was_run():
    from bench.plan import build_plan

    for preset in ("demo", "e6"):
        plan = build_plan(preset)
        assert run_form.plan_from_form(run_form.plan_form(plan)) == plan


def test_a_local_file_sets_the_forms_fps_clips_and_crop(bench_env, tmp_path):
    from workers.synthetic import write_demo_clip

    video = tmp_path / "real.mp4"
    write_demo_clip(video, seconds=2.0, width=64, height=48, fps=24.0)
    at = app(RUN_PAGE)
    at.radio(key="run_source_kind").set_value("file").run()
    at.text_input(key="run_source").set_value(str(video)).run()
    assert_no_exception(at)
    assert at.number_input(key="run_fps").value == 24.0
    clips = at.session_state["run_clips_base"]
    assert list(clips["end"]) == [0.5, 1.0, 2.0]
    assert "follow this source (64x48, 24 fps, 2.0 s)" in page_text(at)
    assert not [w for w in at.warning if "past the end" in str(w.value)]
    assert os.path.getsize(video) > 0


# --------------------------------------------------------------------------- Start


def test_start_prefers_a_complete_experiment_and_names_it(bench_env):
    from ui import start_view

    complete = dict(E6_SAMPLE, timestamp="2025-08-01T00:00:00",
                    results=[r for r in E6_SAMPLE["results"] if r["status"] == "success"])
    store_e6(bench_env, complete, name="complete.json")
    store_e6(bench_env, E6_SAMPLE, name="newer-with-a-failure.json")  # newer, one run failed
    answer = start_view.latest_answer(Database(bench_env))
    assert answer.name == "import of complete.json" and answer.complete
    assert answer.completeness() == "all 6 runs succeeded"
    at = app("ui/start_page.py")
    assert_no_exception(at)
    assert "From the experiment “import of complete.json”: all 6 runs succeeded." in page_text(at)
