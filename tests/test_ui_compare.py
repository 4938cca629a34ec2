"""AppTest of the Compare page: empty and populated databases, the verdict card and its tolerance,
a selection of runs from History, the projection, outputs side by side, and the exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import experiments
from bench.analysis import RULE_TITLES
from tests.ui_helpers import (  # noqa: F401
    E6_SAMPLE,
    app,
    assert_no_exception,
    bench_env,
    dataframes,
    demo_db,
    page_text,
    plotly_figures,
    populated_db,
    verdict_rule,
)
from ui import charts, compare_view

PAGE = "ui/compare_page.py"
CHART_TITLES = ("Time per clip", "Frames per second per clip", "GPU cost per clip",
                "Break-even against the baseline", "Cost vs clip length",
                "Where the time goes, per run", "Cold vs warm runs",
                "Cost vs latency with the Pareto front", "Monthly cost projection")


def titles(at) -> list[str]:
    return [f["layout"]["title"]["text"] for f in plotly_figures(at)]


def e6_page(populated_db, **query):
    """The page on the imported E6 experiment (T4/L4, L4 cheapest on every clip)."""
    return app(PAGE, query={"experiment": populated_db.experiment_ids[0], **query})


def test_empty_database_says_what_to_do(bench_env):
    at = app(PAGE)
    assert_no_exception(at)
    text = page_text(at)
    assert "No experiments yet — load the bundled examples, start one on the Run page" in text
    assert "Which GPU — or engine, or model — upscales your clips" in text  # the one-line intro
    assert not plotly_figures(at)
    assert at.button(key="compare_load_examples").label == "Load the example experiments"


def test_examples_load_once_and_the_dashboard_lands_on_their_verdict(bench_env):
    """An empty history: the start page offers the bundled examples; loading them opens Compare
    on a real verdict (the original T4/L4 numbers: L4 on every clip)."""
    from store.db import Database
    from store.runs import list_experiments
    from ui import start_view

    at = app("dashboard.py")
    assert_no_exception(at)
    assert [t.value for t in at.title] == ["Upscale GPU Bench"]
    assert start_view.INTRO in page_text(at)
    at.button(key="start_load_examples").click().run()
    assert_no_exception(at)
    assert [t.value for t in at.title] == ["Compare"]
    assert "### Use L4" in page_text(at) and verdict_rule(at) == "One candidate wins every clip"
    assert "The seed experiment's reported numbers" in page_text(at)
    experiments = list_experiments(Database(bench_env))
    names = [e.import_name for e in start_view.examples()]
    assert sorted(experiments["name"]) == sorted(names)  # every examples/*.json, once
    assert start_view.load_examples(Database(bench_env))[1] == []
    assert len(list_experiments(Database(bench_env))) == len(names)  # loading again adds nothing
    # The start page's latest answer is the newest that compares something (not one GPU alone).
    latest = start_view.latest_answer(Database(bench_env))
    assert latest.analysis.verdict.choice.describe() == "L4" and len(latest.analysis.fits) == 2


def test_e6_experiment_verdict_table_and_every_chart(populated_db):
    at = e6_page(populated_db)
    assert_no_exception(at)
    assert not at.error
    text = page_text(at)
    assert verdict_rule(at) == "One candidate wins every clip"  # in words, not single_winner
    assert "### Use L4" in text
    assert "L4 is cheapest on every clip" in text
    # One run per GPU and clip: not claimed as settled.
    assert "Not tested against run-to-run spread" in text and "Settled" not in text
    shown = titles(at)
    for title in CHART_TITLES:
        assert any(t.startswith(title) for t in shown), (title, shown)
    table = at.dataframe[0].value
    assert set(table["Candidate"]) == {"T4", "L4"} and len(table) == 6
    assert table[(table["Clip"] == "6s") & (table["Candidate"] == "T4")].iloc[0]["GPU cost"] == \
        charts.format_cost(185.2 * 0.000164)
    # The failed L4 run is listed with its reason, not used.
    assert "1 run(s) not used" in text
    failed = next(df for df in dataframes(at) if "Reason" in df.columns)
    assert "CUDA out of memory" in failed["Reason"].tolist()
    assert "original E6 files do not record them" in text
    # Imported runs do not say whether they were cold: their own series, never "Warm".
    cold_warm = next(f for f in plotly_figures(at) if f["layout"]["title"]["text"].startswith("Cold"))
    assert [t["name"] for t in cold_warm["data"]] == ["Not recorded"]
    # The per-clip table shows every row (no inner scroll) with the key columns first.
    assert tuple(table.columns[:5]) == compare_view.CLIP_KEY_COLUMNS


def test_default_is_the_latest_experiment_and_the_url_follows(populated_db):
    at = app(PAGE)
    assert_no_exception(at)
    assert at.selectbox(key="compare_experiment").value == populated_db.latest
    assert at.query_params["experiment"] == populated_db.latest
    # The latest is the CPU experiment: one clip, one device, the baseline kept, and the page
    # says there was nothing to compare it with instead of calling it settled.
    assert verdict_rule(at) == RULE_TITLES["keep_baseline"]
    assert "Only cpu was measured, so there is nothing to compare" in page_text(at)


def test_unknown_experiment_in_url_falls_back_with_a_warning(populated_db):
    at = app(PAGE, query={"experiment": "no-such-id"})
    assert_no_exception(at)
    assert "not in the database" in at.warning[0].value
    assert at.selectbox(key="compare_experiment").value == populated_db.latest


def test_tolerance_slider_changes_the_rule(populated_db):
    at = e6_page(populated_db)
    # T4 costs 13.6% more than L4 on 6s; at 20% every clip is within tolerance.
    at.slider(key="compare_tolerance").set_value(20).run()
    assert_no_exception(at)
    text = page_text(at)
    assert verdict_rule(at) == RULE_TITLES["within_tolerance"] and "the fastest, L4" in text


def test_runs_picked_on_history_are_compared(populated_db):
    from store.db import Database
    from store.runs import list_runs

    runs = list_runs(Database(populated_db.path), experiment_id=populated_db.experiment_ids[0])
    picked = runs[(runs["clip"] == "6s")]["id"].tolist()
    at = app(PAGE, run=False)
    at.session_state["compare_run_ids"] = picked
    at.run()
    assert_no_exception(at)
    assert at.radio(key="compare_mode").value.startswith("the 2 runs picked")
    table = at.dataframe[0].value
    assert set(table["Clip"]) == {"6s"} and set(table["Candidate"]) == {"T4", "L4"}
    assert "Exports are per experiment" in page_text(at)
    at.button(key="compare_clear").click().run()
    assert_no_exception(at)
    assert at.session_state["compare_run_ids"] == []
    assert at.selectbox(key="compare_experiment").value == populated_db.latest


def test_projection_follows_clips_per_day(populated_db):
    at = e6_page(populated_db)
    at.number_input(key="projection_per_day").set_value(1000.0).run()
    assert_no_exception(at)
    from store.db import Database

    analysis, _, _ = experiments.analyse_experiment(Database(populated_db.path),
                                                    populated_db.experiment_ids[0])
    expected = compare_view.projection(
        analysis, 1000, compare_view.mix_from_table(compare_view.default_mix(analysis), 30))
    assert expected["L4"] < expected["T4"]
    assert f"L4 is cheapest at {charts.format_cost(expected['L4'])} per month" in page_text(at)
    bar = next(f for f in plotly_figures(at)
               if f["layout"]["title"]["text"].startswith("Monthly"))["data"][0]
    assert bar["y"][0] == pytest.approx(expected["L4"])


def test_exports_are_valid_json_and_markdown(populated_db):
    from store.db import Database

    files, missing = compare_view.export_files(Database(populated_db.path), populated_db.experiment_ids[0])
    assert not missing
    by_label = {f["label"]: f for f in files}
    document = json.loads(by_label["E6 JSON"]["data"],
                          parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert {"timestamp", "config", "pricing", "results"} <= set(document)
    assert len(document["results"]) == len(E6_SAMPLE["results"])
    assert "single_winner" in by_label["Markdown findings"]["data"]
    at = e6_page(populated_db)
    buttons = at.get("download_button")
    assert len([b for b in buttons if b.key.startswith("export_")]) == 2
    # Every table of the page comes with its CSV (per clip, against the baseline, runs not used).
    assert {b.key for b in buttons if b.label == "CSV"} == {"csv_per_clip", "csv_deltas", "csv_failed"}


def test_exports_without_succeeded_runs_report_the_failures(bench_env):
    from store.db import Database
    from tests.ui_helpers import store_e6

    failed = dict(E6_SAMPLE, results=[dict(E6_SAMPLE["results"][-1])])
    experiment_id = store_e6(bench_env, failed)
    files, missing = compare_view.export_files(Database(bench_env), experiment_id)
    assert [f["label"] for f in files] == ["E6 JSON", "Markdown findings"] and not missing
    markdown = files[1]["data"]
    assert "No verdict" in markdown and "CUDA out of memory" in markdown
    at = app(PAGE)
    assert_no_exception(at)
    assert "No verdict yet" in page_text(at)


# --------------------------------------------------------------------------- outputs


@pytest.fixture
def two_models(bench_env: Path, tiny_clip: Path) -> str:
    """An experiment whose two runs of one clip used different models, each with a stored output
    video (the tiny clip) and fidelity numbers; returns its id."""
    from core.job import Fidelity, JobResult
    from store import runs as store_runs
    from store.db import Database

    db = Database(bench_env)
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name="models", source="alice/sources/tiny.mp4", backend="local", engine="fast",
        model="x4plus", price_table_date="2026-06"))
    specs = [store_runs.RunSpec(clip="short", gpu="cpu", frames_expected=20, price_gpu="T4",
                                model=m, engine="fast") for m in ("x4plus", "animevideov3")]
    for run_id, model, psnr in zip(store_runs.add_runs(db, experiment_id, specs),
                                   ("x4plus", "animevideov3"), (31.0, 28.5)):
        key = f"outputs/{experiment_id}/{run_id}.mp4"
        target = bench_env.parent / "objects" / "alice" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_clip, target)
        result = JobResult(job_id=run_id, status="succeeded", frames_in=20, frames_out=20,
                           stages={"fetch": 0.1, "model_load": 1.0, "decode": 0.2,
                                   "upscale": 5.0 if model == "x4plus" else 1.0, "encode": 0.3,
                                   "upload": 0.1, "total": 6.7 if model == "x4plus" else 2.7},
                           output_key=key, model=model, engine="fast",
                           fidelity=Fidelity(frames=3, psnr=psnr, ssim=0.9, bicubic_psnr=27.0,
                                             bicubic_ssim=0.8))
        seconds = result.stages["total"]
        store_runs.finish_run(db, run_id, store_runs.RunOutcome(
            status="succeeded", result=result, cold=False,
            cost_gpu=seconds * 0.000164))
    return experiment_id


def test_models_side_by_side_with_fidelity_and_video(two_models):
    at = app(PAGE)
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    text = page_text(at)
    assert "Same frame, different models or engines" in text
    assert "PSNR 31.0 dB, SSIM 0.900 (bicubic 27.0 dB, 0.800)" in text
    assert "PSNR 28.5 dB" in text
    assert len(at.get("image")) == 2
    assert len(at.get("video")) == 1
    # The analysis tells the two models apart instead of pooling them as repeats.
    assert set(at.dataframe[0].value["Candidate"]) == {"cpu · x4plus", "cpu · animevideov3"}
    at.slider(key="sbs_zoom").set_value(4.0).run()
    at.slider(key="sbs_frame").set_value(5).run()
    assert_no_exception(at)
    assert not at.error


def test_missing_output_file_is_one_line_error(two_models, bench_env):
    shutil.rmtree(bench_env.parent / "objects")
    at = app(PAGE)
    assert_no_exception(at)
    assert at.error and all("\n" not in e.value for e in at.error)


# --------------------------------------------------------------------------- a real demo run


def test_demo_run_compares_with_charts_and_video(demo_db):
    at = app(PAGE, query={"experiment": demo_db.latest})
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    # The demo compares two engines on this CPU: a verdict between two candidates.
    assert verdict_rule(at) in RULE_TITLES.values()
    assert set(at.dataframe[0].value["Candidate"]) == {"cpu · reference", "cpu · fast"}
    stages = next(f for f in plotly_figures(at) if f["layout"]["title"]["text"].startswith("Where"))
    assert {t["name"] for t in stages["data"]} >= {"decode", "upscale", "encode"}
    assert len(at.get("video")) == 1


def test_runs_still_going_are_announced_until_they_finish(populated_db):
    from store import runs as store_runs
    from store.db import Database

    db = Database(populated_db.path)
    queued = store_runs.add_runs(db, populated_db.latest, [store_runs.RunSpec(
        clip="short", gpu="cpu", frames_expected=5, price_gpu="T4", repeat_index=1)])[0]
    at = app(PAGE)
    assert_no_exception(at)
    assert "1 run(s) still queued or running" in page_text(at)
    store_runs.fail_run(db, queued, "stopped")
    at.run()
    assert_no_exception(at)
    assert "still queued or running" not in page_text(at)


def test_an_imported_experiment_exports_the_files_date_and_prices(populated_db):
    """Not the import time, not a 'user override': the file's own timestamp and pricing."""
    from bench.report import export_experiment
    from store.db import Database

    db = Database(populated_db.path)
    experiment_id = populated_db.experiment_ids[0]
    document = export_experiment(db, experiment_id, "json")
    assert document["timestamp"] == E6_SAMPLE["timestamp"]
    table = document["bench"]["price_table"]
    assert table["date"] == "2025-08-14" and "results file's own pricing" in table["source"]
    assert "user override" not in json.dumps(document)
    markdown = export_experiment(db, experiment_id, "md")
    assert "Prices: the results file's own pricing" in markdown and "2025-08-14" in markdown
    assert "user override" not in markdown
