"""The Run page: its pure helpers (ui/run_form.py, ui/crop_preview.py, ui/live_run.py) and the
page itself through AppTest, including a demo run launched from the page and followed until its
runs complete."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from bench import liveness
from bench.analysis import RULE_TITLES
from bench.formatting import format_cost, format_rate
from bench.plan import build_plan
from core.errors import InputError
from core.job import JobResult
from core.paths import run_log_path
from tests.ui_helpers import (  # noqa: F401
    ROOT,
    app,
    assert_no_exception,
    bench_env,
    demo_db,
    page_text,
    plotly_figures,
    populated_db,
    shown,
    verdict_rule,
)
from ui import crop_preview, live_run, run_form, widgets

RUN_PAGE = "ui/run_page.py"
DEMO_WAIT_SECONDS = 240.0


def _row(**values):
    base = {"id": "r1", "seq": 0, "gpu": "T4", "clip": "6s", "repeat_index": 0, "status": "queued",
            "frames_done": None, "frames_total": None, "frames_expected": 180, "progress_stage": None,
            "error": None}
    base.update(values)
    return base


# --------------------------------------------------------------------------- live progress


def test_progress_row_per_status():
    queued = live_run.progress_row(_row())
    assert (queued.fraction, queued.status) == (0.0, "queued")
    assert "T4 · 6s · repeat 1" in shown(queued.text) and "180 frames" in shown(queued.text)

    started = dt.datetime(2026, 12, 1, 12, 0, 0)
    running = live_run.progress_row(_row(status="running", frames_done=45, frames_total=180,
                                         progress_stage="upscale", started_at=started),
                                    now=started + dt.timedelta(seconds=75))
    assert running.fraction == pytest.approx(0.25)
    assert "upscaling: 45/180 frames · 1:15" in shown(running.text)
    # Loading the model shows no frames yet, but the time it has taken so far.
    loading = live_run.progress_row(_row(status="running", frames_done=0, frames_total=3,
                                         progress_stage="model_load", started_at=started),
                                    now=started + dt.timedelta(seconds=12))
    assert shown(loading.text).endswith("loading the model: 0/3 frames · 12 s")

    done = live_run.progress_row(_row(status="succeeded", frames_done=180, frames_total=180,
                                      frames_out=180, job_seconds=185.2, fps=0.972,
                                      cost=0.0303728, cold=True))
    assert done.fraction == 1.0
    assert "185.2 s" in shown(done.text) and "$0.03037" in shown(done.text) and "cold start" in shown(done.text)

    failed = live_run.progress_row(_row(status="failed", repeat_index=1, frames_done=10,
                                        frames_total=180, error="CUDA out of\nmemory"))
    assert failed.error == "CUDA out of memory"
    assert "T4 · 6s · repeat 2 — failed: CUDA out of memory" in shown(failed.text)


def test_experiment_progress_has_elapsed_time_and_an_estimate_of_the_time_left():
    t0 = dt.datetime(2026, 12, 1, 12, 0, 0)
    runs = pd.DataFrame([
        _row(id="a", seq=0, status="succeeded", frames_out=100, frames_total=100, started_at=t0,
             finished_at=t0 + dt.timedelta(seconds=30)),
        _row(id="b", seq=1, status="running", frames_done=50, frames_total=100,
             started_at=t0 + dt.timedelta(seconds=30)),
        _row(id="c", seq=2, status="queued", frames_expected=150, started_at=None),
    ])
    overall = live_run.experiment_progress(runs, now=t0 + dt.timedelta(seconds=60))
    # The finished run did 100 frames in 30 s: the 200 frames left take 60 s on the one device.
    assert (overall.elapsed_s, overall.remaining_s) == (60.0, pytest.approx(60.0))
    assert overall.headline().endswith("150/350 frames · 1:00 elapsed, about 1:00 left")
    # A cold run's pace (its model load) is not the pace once warm ones have ended.
    cold_first = pd.DataFrame([*runs.to_dict("records"), _row(
        id="d", seq=3, status="succeeded", frames_out=10, frames_total=10, cold=True,
        started_at=t0, finished_at=t0 + dt.timedelta(seconds=20))])
    later = live_run.experiment_progress(cold_first, now=t0 + dt.timedelta(seconds=60))
    assert later.remaining_s == pytest.approx(60.0)
    # Before any run has ended there is no pace to go by: the page says it is estimating.
    nothing_yet = live_run.experiment_progress(runs.assign(frames_done=0, status="running",
                                                           frames_out=None),
                                               now=t0 + dt.timedelta(seconds=8))
    assert nothing_yet.timing() == "8 s elapsed, estimating the time left"
    done = runs.assign(status="succeeded", finished_at=t0 + dt.timedelta(seconds=95))
    assert live_run.experiment_progress(done).timing() == "took 1:35"
    assert live_run.experiment_progress(runs.assign(status="queued", started_at=None)).timing() == ""
    assert live_run.experiment_progress(runs.assign(status="failed")).failures == 3


def test_experiment_progress_counts_frames_and_knows_when_it_is_finished():
    runs = pd.DataFrame([
        _row(id="a", seq=0, status="succeeded", frames_out=180, frames_total=180),
        _row(id="b", seq=1, status="running", frames_done=90, frames_total=180),
        _row(id="c", seq=2, status="queued", frames_expected=60),
    ])
    overall = live_run.experiment_progress(runs)
    assert (overall.frames_done, overall.frames_total, overall.finished) == (270, 420, False)
    assert overall.headline() == "1 of 3 runs finished · 1 queued, 1 running, 1 succeeded · 270/420 frames"
    assert [r.run_id for r in live_run.progress_rows(runs.iloc[::-1])] == ["a", "b", "c"]

    runs.loc[1:, "status"] = "failed"
    assert live_run.experiment_progress(runs).finished
    assert not live_run.experiment_progress(pd.DataFrame()).finished
    assert live_run.experiment_progress(None).headline() == "No runs in this experiment"


def test_costs_are_written_out_without_exponents():
    assert format_cost(7.026e-05) == "$0.00007026"
    assert format_cost(0.0303728) == "$0.03037"
    assert format_cost(None) == "—"


def test_launch_log_tail(tmp_path):
    assert live_run.launch_log_tail(tmp_path / "bench.duckdb", "x") == ""
    log = run_log_path(tmp_path / "bench.duckdb", "x")
    log.parent.mkdir()
    log.write_text("\n".join(f"line {i}" for i in range(50)))
    assert live_run.launch_log_tail(tmp_path / "bench.duckdb", "x", lines=2) == "line 48\nline 49"


# --------------------------------------------------------------------------- form helpers


def test_demo_form_builds_the_demo_plan():
    form = run_form.preset_form("demo")
    form.update(precision="auto", weights="auto", batch_size=4)
    plan = run_form.plan_from_form(form)
    assert plan == build_plan("demo") and plan.preset == "demo"
    assert run_form.clip_frames_text(plan.clips, plan.fps) == \
        "Frames at 10 fps: 0.3s 3 · 0.6s 6 · 1s 10 (19 per GPU and repeat)"
    form["repeats"] = 2  # no longer the preset
    assert run_form.plan_from_form(form).preset is None
    form["scale_output"] = False  # the size fields start at x4 of the first crop box
    plan = run_form.plan_from_form(form)
    assert (plan.output_width, plan.output_height) == (384, 256)
    # Two engines chosen: each is a candidate on the CPU; one engine: the GPUs alone.
    assert (form["models"], form["engines"]) == (["animevideov3"], ["reference", "fast"])
    assert plan.candidates() == ["cpu · reference", "cpu · fast"]
    form["engines"] = ["fast"]
    assert run_form.plan_from_form(form).candidates() == ["cpu"]
    form["engines"] = []
    with pytest.raises(InputError, match="choose at least one engine"):
        run_form.plan_from_form(form)


def test_e6_form_keeps_size_and_gpus():
    form = run_form.preset_form("e6")
    assert (form["source_kind"], form["backend"], form["gpus"]) == ("key", "modal", ["T4", "L4"])
    plan = run_form.plan_from_form(form)
    assert (plan.output_width, plan.output_height, plan.baseline) == (810, 1440, "T4")


def test_clip_and_keyframe_tables_skip_blank_rows_and_name_bad_ones():
    table = pd.DataFrame([{"name": "a", "start": 0.0, "end": 1.0},
                          {"name": None, "start": np.nan, "end": np.nan}])
    assert [c.name for c in run_form.clips_from_table(table)] == ["a"]
    with pytest.raises(InputError, match="clip row 2"):
        run_form.clips_from_table(pd.DataFrame([{"name": "a", "start": 0, "end": 1},
                                                {"name": "b", "start": 2.0, "end": None}]))
    with pytest.raises(InputError, match="at least one clip"):
        run_form.clips_from_table(pd.DataFrame(columns=["name", "start", "end"]))
    frames = pd.DataFrame([{"time": 2.0, "x": 1, "y": 2, "width": 3, "height": 4},
                           {"time": 0.0, "x": 5, "y": 6, "width": 7, "height": 8}])
    assert [k.time for k in run_form.keyframes_from_table(frames)] == [0.0, 2.0]
    assert run_form.keyframes_from_table(run_form.keyframes_table(())) == ()
    with pytest.raises(InputError, match="keyframe row 1"):
        run_form.keyframes_from_table(pd.DataFrame([{"time": 0.0, "x": 1, "y": None,
                                                     "width": 3, "height": 4}]))


def test_source_problems_catch_clips_past_the_end_and_crops_outside_the_frame():
    plan = build_plan("demo", clips="late:1.4:2.5,after:1.6:1.8",
                      keyframes=[{"time": 0, "x": 0, "y": 0, "width": 400, "height": 32}])
    problems = run_form.source_problems(plan, run_form.DEMO_INFO)
    assert any("clip late ends at 2.5 s, past the end of the source (1.5 s)" in p for p in problems)
    assert any("clip after starts at 1.6 s" in p for p in problems)
    assert any("larger than the frame 160x120" in p for p in problems)
    assert run_form.source_problems(build_plan("demo"), run_form.DEMO_INFO) == []
    assert run_form.source_problems(plan, None) == []


def test_launch_problems_name_the_missing_token_and_storage(monkeypatch, tmp_path):
    from store.config import StorageConfig

    plan = build_plan("e6")
    problems = run_form.launch_problems(plan, StorageConfig(), modal_token=False)
    assert any("R2" in p for p in problems)
    assert any("no Modal token" in p for p in problems)
    r2 = StorageConfig(kind="r2", endpoint_url="https://x.r2.cloudflarestorage.com", bucket="b",
                       access_key_id="k", secret_access_key="s")
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert run_form.launch_problems(plan, r2, modal_token=False) == \
        ["no Modal token: run `modal token new` or set MODAL_TOKEN_ID/MODAL_TOKEN_SECRET"]


def test_gpu_labels_show_rates_without_exponents():
    from bench.pricing import DEFAULT_PRICES

    assert run_form.gpu_label("L4", DEFAULT_PRICES) == "L4 · $0.000222/s ($0.7992/h) · 24 GB"
    assert format_rate(0.0000131) == "$0.0000131"
    assert run_form.local_gpu_spec("cuda:0", "H100") == "cuda:0=H100"
    assert run_form.local_gpu_spec("cpu", "H100") == "cpu"


def test_crop_preview_draws_the_interpolated_box_on_demo_frames():
    plan = build_plan("demo")
    shots = crop_preview.crop_preview("demo", "", plan, run_form.DEMO_INFO)
    times = [t for t, _, _ in shots]
    assert times == [0.2, 0.6, 1.1]  # first frame of the clips, the middle, their last frame
    for _, _, image in shots:
        assert image.shape == (120, 160, 3)
    # At 0.2 s the box is interpolated between (24,24) at 0 s and (48,40) at 1.5 s: x 27, y 26.
    box, first = shots[0][1], shots[0][2]
    assert (box.x, box.y, box.width, box.height) == (27, 26, 96, 64)
    assert tuple(first[26, 50]) == crop_preview.BOX_COLOURS[0]  # top edge
    assert tuple(first[26 + 63, 27]) == crop_preview.BOX_COLOURS[0]  # bottom-left corner
    assert tuple(first[60, 60]) != crop_preview.BOX_COLOURS[0]  # inside is untouched


def test_crop_preview_of_a_local_file(tiny_clip):
    info = run_form.source_info("file", str(tiny_clip))
    assert (info.width, info.height, info.fps) == (64, 48, 10.0)
    plan = build_plan(None, source=str(tiny_clip), clips="a:0.5:1.5", gpus="cpu", fps=10,
                      keyframes=[{"time": 0, "x": 8, "y": 8, "width": 32, "height": 24}])
    shots = crop_preview.crop_preview("file", str(tiny_clip), plan, info)
    assert [t for t, _, _ in shots] == [0.5, 0.9, 1.4]
    assert tuple(shots[0][2][8, 20]) == crop_preview.BOX_COLOURS[0]
    with pytest.raises(InputError, match="no file"):
        run_form.source_info("file", str(tiny_clip) + ".missing")


# --------------------------------------------------------------------------- the page (AppTest)


def test_page_renders_on_an_empty_database(bench_env):  # noqa: F811
    at = app(RUN_PAGE)
    assert_no_exception(at)
    text = page_text(at)
    assert "Frames at 10 fps: 0.3s 3 · 0.6s 6 · 1s 10" in text
    assert "3 clip(s) x 2 candidate(s) (cpu · reference, cpu · fast) x 3 repeat(s)" in text
    assert not at.button(key="run_launch").disabled
    assert not [w.value for w in at.warning]
    assert len(at.get("image")) == 3  # the crop preview: three frames with their boxes
    assert not bench_env.exists(), "rendering the form must not create the database"


def test_page_shows_a_finished_experiment_with_failures_and_verdict(populated_db):  # noqa: F811
    e6, cpu = populated_db.experiment_ids
    at = app(RUN_PAGE, query={"experiment": e6})
    assert_no_exception(at)
    text = page_text(at)
    assert "Experiment: import of e6-sample.json" in text
    errors = [shown(e.value) for e in at.error]
    assert any(e.startswith("L4 · 30s · repeat 1 — failed: CUDA out of memory · [details]"
                            "(run-detail?run=") for e in errors), errors
    assert verdict_rule(at) == RULE_TITLES["single_winner"] and "### Use L4" in text
    titles = [f["layout"]["title"]["text"] for f in plotly_figures(at)]
    assert any(t.startswith("Time per clip") for t in titles)
    assert any(t.startswith("GPU cost per clip") for t in titles)
    assert not at.button(key="run_compare").disabled
    # A run failed: the overall bar is drawn red (a keyed container the page style colours).
    assert at.get("progress")[0].proto.text.startswith(":red[7 of 7 runs finished")
    assert f".st-key-{widgets.FAILED_PROGRESS_KEY}" in widgets.STYLE
    assert not at.toggle(key="run_show_form").value  # the form is folded under the live view

    at = app(RUN_PAGE, query={"experiment": cpu})
    assert_no_exception(at)
    bars = [shown(p.proto.text) for p in at.get("progress")]
    assert any("cpu · short · repeat 1 — succeeded: 5 frames, 2.5 s" in b and "$0.00041" in b
               for b in bars)
    assert any(e.startswith("cpu · long · repeat 1 — failed: decode failed: corrupt input")
               for e in (shown(e.value) for e in at.error))


def _half_done_experiment(db_path) -> str:
    """A local experiment with one succeeded run and one upscaling (3 of 10 frames)."""
    from store import runs as store_runs
    from store.db import Database

    db = Database(db_path)
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name="half done", preset="demo", source="bench/demo.mp4", model="animevideov3",
        engine="fast", backend="local"))
    specs = [store_runs.RunSpec(clip=clip, gpu="cpu", frames_expected=n, price_gpu="T4")
             for clip, n in (("short", 5), ("long", 10))]
    short, long_ = store_runs.add_runs(db, experiment_id, specs)
    store_runs.update_progress(db, short, 5, 5, "encode")
    store_runs.finish_run(db, short, store_runs.RunOutcome(
        status="succeeded", result=JobResult(job_id=short, status="succeeded", frames_out=5,
                                             stages={"total": 2.5}), cost_gpu=2.5 * 0.000164))
    store_runs.update_progress(db, long_, 3, 10, "upscale")
    return experiment_id


def test_page_shows_live_progress_and_charts_of_a_running_experiment(bench_env, monkeypatch):  # noqa: F811

    experiment_id = _half_done_experiment(bench_env)
    # The running run has no worker pid: pretend its worker is alive so the page does not
    # mark it interrupted.
    monkeypatch.setattr(liveness, "worker_is_alive", lambda run, host=None: True)
    at = app(RUN_PAGE, query={"experiment": experiment_id})
    assert_no_exception(at)
    bars = [(shown(p.proto.text), p.proto.value) for p in at.get("progress")]
    headline, value = bars[0]
    assert headline.startswith("1 of 2 runs finished · 1 running, 1 succeeded · 8/15 frames · ")
    assert " elapsed, " in headline and value == 53  # elapsed time and the time left
    assert any("cpu · long · repeat 1 — upscaling: 3/10 frames · " in text and value == 30
               for text, value in bars)
    titles = [f["layout"]["title"]["text"] for f in plotly_figures(at)]
    assert {"Time per clip", "GPU cost per clip", "Frames per second per clip"} <= set(titles)
    assert "Verdict so far" in page_text(at)


def test_unknown_experiment_in_the_url_says_what_to_do(populated_db):  # noqa: F811
    at = app(RUN_PAGE, query={"experiment": "nope"})
    assert_no_exception(at)
    assert any("No experiment nope" in shown(w.value) and "start a run below" in shown(w.value)
               for w in at.warning)


def test_modal_without_token_warns_and_disables_run(bench_env):  # noqa: F811
    at = app(RUN_PAGE)
    at.selectbox(key="run_preset").set_value("e6").run()
    assert_no_exception(at)
    warnings = [shown(w.value) for w in at.warning]
    assert any("no Modal token" in w for w in warnings), warnings
    assert any("R2" in w for w in warnings), warnings
    assert at.button(key="run_launch").disabled
    assert [str(v) for v in at.multiselect(key="run_modal_gpus").value] == ["T4", "L4"]
    # Back to the demo: the warnings go and Run is enabled again.
    at.selectbox(key="run_preset").set_value("demo").run()
    assert not at.warning and not at.button(key="run_launch").disabled


def test_bad_clip_rows_warn_before_launch(bench_env):  # noqa: F811
    at = app(RUN_PAGE, run=False)
    at.run()
    at.radio(key="run_source_kind").set_value("file").run()
    at.text_input(key="run_source").input("/no/such/video.mp4").run()
    assert_no_exception(at)
    assert any("source: no file at /no/such/video.mp4" in shown(w.value) for w in at.warning)
    assert at.button(key="run_launch").disabled


def test_local_file_source_is_probed_and_the_crop_checked_against_it(bench_env, tiny_clip):  # noqa: F811
    at = app(RUN_PAGE)
    at.radio(key="run_source_kind").set_value("file").run()
    at.text_input(key="run_source").input(str(tiny_clip)).run()
    assert_no_exception(at)
    # The demo preset's 96x64 crop would not fit this 64x48 clip: once probed, the form follows
    # the source (its whole frame, its 10 fps, clips within its 2 s), so nothing stops the run.
    warnings = [shown(w.value) for w in at.warning]
    assert not any("crop" in w or "past the end" in w for w in warnings), warnings
    assert at.session_state["run_keyframes_base"].empty
    assert list(at.session_state["run_clips_base"]["end"]) == [0.5, 1.0, 2.0]
    assert not at.button(key="run_launch").disabled
    assert run_form.source_problems(  # the crop is still checked against the frame
        build_plan("demo", source=str(tiny_clip)), run_form.source_info("file", str(tiny_clip))
    ) == ["keyframe 1 (t=0 s): crop 96x64 is larger than the frame 64x48"]


def _wait_for_runs(db_path, experiment_id: str) -> pd.DataFrame:
    from store.db import Database
    from store.runs import list_runs

    db = Database(db_path)
    deadline = time.monotonic() + DEMO_WAIT_SECONDS
    while True:
        runs = list_runs(db, experiment_id=experiment_id)
        if len(runs) and not runs["status"].isin(["queued", "running"]).any():
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs still active after {DEMO_WAIT_SECONDS:g} s: {list(runs['status'])}")
        time.sleep(0.5)


def test_demo_launches_from_the_page_and_its_runs_complete(bench_env):  # noqa: F811
    at = app(RUN_PAGE)
    at.button(key="run_launch").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    experiment_id = at.query_params["experiment"]
    experiment_id = experiment_id[0] if isinstance(experiment_id, list) else experiment_id
    assert "Experiment: demo: animevideov3 on cpu" in page_text(at)

    # The form folded away: the live view is the page.
    assert not at.toggle(key="run_show_form").value
    assert not [b for b in at.button if b.key == "run_launch"]

    runs = _wait_for_runs(bench_env, experiment_id)
    log = live_run.launch_log_tail(bench_env, experiment_id)
    assert list(runs["status"]) == ["succeeded"] * 18, (list(runs["error"]), log)
    assert list(runs["clip"][:6]) == ["0.3s", "0.3s", "0.6s", "0.6s", "1s", "1s"]
    assert list(runs["engine"][:2]) == ["reference", "fast"]
    # The background process logs each run under its title and short id.
    first = runs.iloc[0]
    lines = live_run.run_log_lines(bench_env, experiment_id, first["id"])
    assert lines and all(line.startswith("cpu · reference · 0.3s · repeat 1 [") for line in lines)

    at.run()  # a reload: the URL still names the experiment, the store has the results
    assert_no_exception(at)
    text = page_text(at)
    bars = [shown(p.proto.text) for p in at.get("progress")]
    assert bars[0].startswith("18 of 18 runs finished · 18 succeeded") and "took " in bars[0]
    assert all("succeeded" in b for b in bars[1:]) and len(bars) == 19
    assert verdict_rule(at) and "### Use " in text and "cpu · " in text
    assert any(f["layout"]["title"]["text"].startswith("Time per clip") for f in plotly_figures(at))


def test_run_page_has_its_own_address_and_compare_jumps_to_the_experiment(populated_db):  # noqa: F811
    e6 = populated_db.experiment_ids[0]
    at = app("dashboard.py", query={"experiment": e6})
    assert_no_exception(at)
    assert [t.value for t in at.title] == ["Upscale GPU Bench"]  # the start page, at /
    pages = [p.url_path for p in _dashboard_pages()]
    assert "run" in pages and "compare" in pages and "run-detail" in pages  # /run exists
    at.switch_page("ui/run_page.py").run()
    assert_no_exception(at)
    assert [t.value for t in at.title] == ["Run a benchmark"]
    at.button(key="run_compare").click().run()
    assert_no_exception(at)
    assert [t.value for t in at.title] == ["Compare"]
    assert at.query_params["experiment"] in (e6, [e6])


def _dashboard_pages():
    """The pages dashboard.py registers (read without running Streamlit)."""
    import ast

    tree = ast.parse((ROOT / "dashboard.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page":
            keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}

            class _Page:
                url_path = keywords.get("url_path", "")
            found.append(_Page)
    return found


# --------------------------------------------------------------------------- Modal runs left behind


def _dead_pid() -> int:
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_orphaned_modal_runs_are_those_whose_collector_is_gone():
    import os
    import socket

    host = socket.gethostname()
    runs = pd.DataFrame([
        _row(id="orphan", status="running", call_id="fc-1", worker_pid=_dead_pid(), worker_host=host),
        _row(id="watched", status="running", call_id="fc-2", worker_pid=os.getpid(), worker_host=host),
        _row(id="local", status="running", call_id=None, worker_pid=_dead_pid(), worker_host=host),
        _row(id="done", status="succeeded", call_id="fc-3", worker_pid=_dead_pid(), worker_host=host),
        _row(id="elsewhere", status="running", call_id="fc-4", worker_pid=_dead_pid(),
             worker_host="another-host"),
    ])
    assert live_run.orphaned_modal_runs(runs, host) == ["orphan"]


def test_run_page_offers_to_reattach_to_orphaned_modal_runs(bench_env):
    from store import runs as store_runs
    from store.db import Database

    db = Database(bench_env)
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name="modal sample", preset="e6", source="modal_test/clip.mp4", model="x4plus",
        engine="reference", backend="modal", price_table_date="2026-06"))
    (run_id,) = store_runs.add_runs(db, experiment_id, [store_runs.RunSpec(clip="6s", gpu="T4")])
    store_runs.mark_running(db, run_id, call_id="fc-gone", worker_pid=_dead_pid())
    at = app(RUN_PAGE, query={"experiment": experiment_id})
    assert_no_exception(at)
    assert "still running remotely" in page_text(at)
    assert any(b.label.startswith("Reattach") for b in at.button)


# --------------------------------------------------------------------------- issue 12


def test_switching_to_modal_and_back_keeps_the_local_devices(bench_env):  # noqa: F811
    at = app(RUN_PAGE)
    assert at.multiselect(key="run_local_gpus").value == ["cpu"]
    at.radio(key="run_backend").set_value("modal").run()
    assert_no_exception(at)
    at.radio(key="run_backend").set_value("local").run()
    assert_no_exception(at)
    assert at.multiselect(key="run_local_gpus").value == ["cpu"]
    assert not any("no GPUs given" in w.value for w in at.warning)


def test_a_weights_file_that_does_not_exist_stops_the_launch(bench_env, tmp_path):  # noqa: F811
    at = app(RUN_PAGE)
    at.text_input(key="run_weights").input(str(tmp_path / "missing.pth")).run()
    assert_no_exception(at)
    assert any(f"weights file {tmp_path / 'missing.pth'} does not exist" in shown(w.value)
               for w in at.warning)
    assert at.button(key="run_launch").disabled


def test_a_new_tab_lists_the_running_and_latest_experiments(bench_env, monkeypatch):  # noqa: F811
    experiment_id = _half_done_experiment(bench_env)
    monkeypatch.setattr(liveness, "worker_is_alive", lambda run, host=None: True)
    at = app(RUN_PAGE)  # no ?experiment=: what a new tab opens
    assert_no_exception(at)
    text = page_text(at)
    assert "Running now" in text and "No experiment started yet" not in text
    assert f"(run?experiment={experiment_id})" in text and "Running: half done" in text


def test_the_run_detail_page_shows_stages_log_output_device_and_a_permalink(demo_db):  # noqa: F811
    from store.db import Database
    from store.runs import list_runs

    runs = list_runs(Database(demo_db.path), experiment_id=demo_db.latest)
    run = runs.iloc[1]  # the fast engine's first run
    log = run_log_path(demo_db.path, demo_db.latest)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"cpu · fast · 0.3s · repeat 1 [{run['id'][:8]}]  started\nother line\n")
    at = app("ui/run_detail_page.py", query={"run": run["id"]})
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    text = page_text(at)
    assert "cpu · fast · 0.3s · repeat 1" in [shown(s.value) for s in at.subheader]
    assert f"run-detail?run={run['id']}" in text  # the permalink
    facts = {k: shown(v) for k, v in at.table[0].value["Value"].to_dict().items()}
    assert facts["Engine"] == "fast" and facts["Device"] and facts["Container / worker"]
    assert facts["Repeat"] == "repeat 1" and facts["GPU cost"].startswith("$")
    stages = at.dataframe[0].value
    assert {"upscale", "encode", "total (worker, fetch to upload)"} <= set(stages["Stage"])
    assert "Fidelity: PSNR" in text
    assert [c.value for c in at.code] == [f"cpu · fast · 0.3s · repeat 1 [{run['id'][:8]}]  started"]
    assert len(at.get("video")) == 1
    unknown = app("ui/run_detail_page.py", query={"run": "nope"})
    assert any("No run nope" in w.value for w in unknown.warning)


def test_the_estimate_stands_beside_run_and_a_spend_cap_stops_it(bench_env):  # noqa: F811
    at = app(RUN_PAGE)
    assert_no_exception(at)
    text = page_text(at)
    assert "Estimate: no estimate for cpu · reference on 0.3s" in text  # nothing measured yet
    assert not at.button(key="run_launch").disabled
    at.number_input(key="run_max_cost").set_value(5.0).run()
    warnings = [shown(w.value) for w in at.warning]
    assert any("the spend cap $5" in w and "cannot be checked" in w for w in warnings), warnings
    assert at.button(key="run_launch").disabled
    assert not bench_env.exists(), "estimating must not create the database"
