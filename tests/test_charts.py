"""Every chart of ui/charts.py on a small Analysis built from Measurements, and on empty input;
the pure helpers behind the Compare and History pages (ui/compare_view.py, ui/output_view.py,
ui/history_view.py: tables, projection, frames) and the verdict's choice as text."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from bench.analysis import Choice, Measurement, analyse
from bench.experiments import candidate_labels, read_runs
from bench.pricing import DEFAULT_PRICES
from core.errors import InputError
from store.keys import output_object_key
from ui import charts, compare_view, history_view, output_view

T4, L4 = DEFAULT_PRICES.rate("T4"), DEFAULT_PRICES.rate("L4")
CLIPS = (("6s", 180), ("15s", 450), ("30s", 900))


def measurements(times: dict[str, tuple], failed: bool = False) -> list[Measurement]:
    """GPU -> per clip a tuple of repeat seconds; the first repeat of each is cold."""
    rates = {"T4": T4, "L4": L4}
    out = []
    for gpu, per_clip in times.items():
        for (clip, frames), secs in zip(CLIPS, per_clip):
            for i, s in enumerate(secs):
                out.append(Measurement(gpu, clip, frames, s, "succeeded", rates[gpu], repeat=i,
                                       cold=i == 0, all_in_rate=rates[gpu]))
    if failed:
        out.append(Measurement("L4", "30s", 900, None, "failed", L4, repeat=2,
                               error="CUDA out of memory"))
    return out


@pytest.fixture
def with_repeats():
    """T4 and L4 with two repeats each; L4 single winner; one failed run."""
    return analyse(measurements({"T4": ((185, 195), (460, 470), (915, 925)),
                                 "L4": ((110, 120), (270, 280), (540, 560))}, failed=True))


@pytest.fixture
def threshold():
    """T4: 20 s + 1.0 fps, L4: 40 s + 1.6 fps -> crossover at ~222 frames."""
    return analyse(measurements({
        "T4": tuple((20 + f / 1.0,) for _, f in CLIPS),
        "L4": tuple((40 + f / 1.6,) for _, f in CLIPS)}))


def runs_frame() -> pd.DataFrame:
    """Two succeeded runs (one cold) with stage timings and one failed run, as read_runs gives."""
    return pd.DataFrame(read_runs(_stored_runs(), None))


def _stored_runs() -> pd.DataFrame:
    base = dict(model="x4plus", engine="fast", output_key=None)
    return pd.DataFrame([
        dict(id="a", clip="6s", gpu="T4", repeat_index=0, status="succeeded", cold=True,
             fetch_seconds=1.0, model_load_seconds=8.0, decode_seconds=2.0, upscale_seconds=150.0,
             encode_seconds=3.0, upload_seconds=0.5, total_seconds=165.0, billed_seconds=170.0,
             startup_seconds=13.0, **base),
        dict(id="b", clip="6s", gpu="T4", repeat_index=1, status="succeeded", cold=False,
             fetch_seconds=1.0, model_load_seconds=0.0, decode_seconds=2.0, upscale_seconds=148.0,
             encode_seconds=3.0, upload_seconds=0.4, total_seconds=155.0, billed_seconds=None,
             **base),
        dict(id="c", clip="6s", gpu="L4", repeat_index=0, status="failed", cold=None,
             fetch_seconds=None, model_load_seconds=None, decode_seconds=None,
             upscale_seconds=None, encode_seconds=None, upload_seconds=None, total_seconds=None,
             billed_seconds=None, error="boom", **base),
    ])


def annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


EMPTY_ANALYSIS_CHARTS = (charts.time_bars, charts.fps_bars, charts.cost_bars,
                         charts.break_even_chart, charts.cost_curves, charts.cost_latency_scatter)
EMPTY_RUNS_CHARTS = (charts.stage_breakdown, charts.cold_warm_chart)


# --------------------------------------------------------------------------- empty input


@pytest.mark.parametrize("chart", EMPTY_ANALYSIS_CHARTS)
def test_analysis_charts_say_no_runs_on_none(chart):
    fig = chart(None)
    assert isinstance(fig, go.Figure)
    assert not fig.data
    assert annotations(fig) == [charts.EMPTY_MESSAGE]
    assert fig.layout.title.text


@pytest.mark.parametrize("chart", EMPTY_RUNS_CHARTS)
@pytest.mark.parametrize("frame", [None, pd.DataFrame(), runs_frame().iloc[2:]])
def test_run_charts_say_no_runs_on_empty_or_only_failed(chart, frame):
    fig = chart(frame)
    assert not fig.data and annotations(fig) == [charts.EMPTY_MESSAGE]


def test_projection_chart_empty():
    fig = charts.monthly_projection_chart({})
    assert not fig.data and annotations(fig) == [charts.EMPTY_MESSAGE]


# --------------------------------------------------------------------------- per-clip bars


def test_time_bars_grouped_with_repeat_spread(with_repeats):
    fig = charts.time_bars(with_repeats)
    assert fig.layout.barmode == "group"
    # The first repeat of each clip is cold: its bars are hatched and the legend says why.
    assert [t.name for t in fig.data] == ["T4", "L4", charts.COLD_LEGEND]
    t4 = fig.data[0]
    assert list(t4.marker.pattern.shape) == [charts.COLD_PATTERN] * 3
    assert "1 cold: start-up included" in t4.customdata[0][1]
    assert list(t4.x) == ["6s", "15s", "30s"]
    assert list(t4.y) == [190, 465, 920]
    # min..max over repeats as asymmetric error bars around the median.
    assert list(t4.error_y.arrayminus) == [5, 5, 5] and list(t4.error_y.array) == [5, 5, 5]
    assert "(s)" in fig.layout.yaxis.title.text and fig.layout.xaxis.title.text == "Clip"
    # The failed L4 run is not a bar value: L4's 30s median comes from its two successes.
    assert fig.data[1].y[2] == 550


def test_fps_bars_spread_is_frames_over_extreme_times(with_repeats):
    l4 = charts.fps_bars(with_repeats).data[1]
    assert l4.y[0] == pytest.approx(180 / 115)
    assert l4.y[0] + l4.error_y.array[0] == pytest.approx(180 / 110)
    assert l4.y[0] - l4.error_y.arrayminus[0] == pytest.approx(180 / 120)


def test_cost_bars_in_dollars(with_repeats):
    fig = charts.cost_bars(with_repeats)
    assert fig.layout.yaxis.tickformat == charts.COST_TICKS
    assert "($)" in fig.layout.yaxis.title.text
    assert fig.data[0].y[0] == pytest.approx(190 * T4)
    assert fig.data[0].error_y.array[0] == pytest.approx(5 * T4)


def test_clip_bars_rejects_an_unknown_metric(with_repeats):
    with pytest.raises(ValueError, match="metric"):
        charts.clip_bars(with_repeats, "watts")


# --------------------------------------------------------------------------- break-even


def test_break_even_marks_candidate_against_baseline(with_repeats):
    fig = charts.break_even_chart(with_repeats)
    bars, ticks, legend = fig.data
    assert legend.name == charts.COLD_LEGEND
    assert [list(a) for a in bars.x] == [["6s", "15s", "30s"], ["L4", "L4", "L4"]]
    assert list(ticks.y) == pytest.approx([190 * T4 / L4, 465 * T4 / L4, 920 * T4 / L4])
    assert ticks.y[0] / 190 == pytest.approx(0.739, abs=1e-3)
    # L4 runs under its break-even everywhere: every bar is green.
    assert set(bars.marker.color) == {"#2ca02c"}
    assert "T4" in ticks.name


def test_break_even_with_only_the_baseline_says_why():
    a = analyse(measurements({"T4": ((185,), (460,), (915,))}))
    fig = charts.break_even_chart(a)
    assert not fig.data and "baseline and another GPU" in annotations(fig)[0]


# --------------------------------------------------------------------------- cost curves


def test_cost_curves_fit_lines_and_crossover(threshold):
    fig = charts.cost_curves(threshold)
    names = [t.name for t in fig.data]
    assert names[:2] == ["T4 (fit)", "T4 (measured)"] and "Crossover" in names
    line = fig.data[0]
    # T4's fitted cost: (20 + frames) x rate, x in seconds of video at 30 fps.
    assert line.y[1] == pytest.approx((20 + line.x[1] * 30) * T4)
    cross = fig.data[names.index("Crossover")]
    frames = (L4 * 40 - T4 * 20) / (T4 - L4 / 1.6)
    assert cross.x[0] == pytest.approx(frames / 30)
    assert cross.y[0] == pytest.approx((20 + frames) * T4)
    assert "T4 → L4" in cross.text[0]
    assert fig.layout.yaxis.tickformat == charts.COST_TICKS
    assert "s of video" in fig.layout.xaxis.title.text
    # The lines reach past the longest clip and past the crossover.
    assert max(line.x) >= 900 / 30


def test_cost_curves_without_crossover_has_no_marker(with_repeats):
    assert "Crossover" not in [t.name for t in charts.cost_curves(with_repeats).data]


# --------------------------------------------------------------------------- stages, cold/warm


def test_stage_breakdown_stacks_each_stage_per_succeeded_run():
    fig = charts.stage_breakdown(runs_frame())
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == ["fetch", "model load", "decode", "upscale", "encode",
                                         "upload"]
    upscale = fig.data[3]
    assert list(upscale.y) == ["T4 · 6s · repeat 1 (cold)", "T4 · 6s · repeat 2"]
    assert list(upscale.x) == [150.0, 148.0]
    assert upscale.orientation == "h"


def test_stage_breakdown_without_timings_says_so():
    frame = runs_frame().iloc[:1].copy()
    for stage in ("fetch", "model_load", "decode", "upscale", "encode", "upload"):
        frame[f"{stage}_seconds"] = None
    fig = charts.stage_breakdown(frame)
    assert not fig.data and "No stage timings" in annotations(fig)[0]


def test_cold_warm_medians_per_clip_and_gpu():
    fig = charts.cold_warm_chart(runs_frame())
    cold, warm = fig.data
    assert [list(a) for a in cold.x] == [["6s"], ["T4"]]
    assert list(cold.y) == [170.0]  # job seconds (165 - 8 of model load) + 13 of start-up
    assert list(warm.y) == [155.0]  # job seconds
    assert cold.name.startswith("Cold") and warm.name == "Warm"


# --------------------------------------------------------------------------- pareto, projection


def test_cost_latency_scatter_draws_front_per_clip():
    # 6s: L4 dearer but faster -> both on the front; A third point dominated by both is not.
    ms = measurements({"T4": ((185,), (460,), (915,)), "L4": ((140,), (345,), (690,))})
    ms.append(Measurement("H100", "6s", 180, 200, "succeeded", DEFAULT_PRICES.rate("H100")))
    fig = charts.cost_latency_scatter(analyse(ms))
    front_6s = next(t for t in fig.data if t.name == "Pareto front, 6s")
    assert len(front_6s.x) == 2 and list(front_6s.x) == sorted(front_6s.x)
    points_6s = next(t for t in fig.data if t.name == "6s")
    widths = dict(zip(points_6s.text, points_6s.marker.line.width))
    assert widths == {"T4": 3, "L4": 3, "H100": 0}
    assert fig.layout.xaxis.tickformat == charts.COST_TICKS


def test_monthly_projection_chart_cheapest_first_with_dollar_labels(threshold):
    costs = compare_view.projection(threshold, 100, {180: 1, 900: 1})
    fig = charts.monthly_projection_chart(costs, 100)
    bar = fig.data[0]
    assert list(bar.x) == sorted(costs, key=costs.get)
    assert all(t.startswith("$") for t in bar.text)
    assert "100 clips/day" in fig.layout.title.text
    assert fig.layout.yaxis.tickformat == "$,.2f"


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("value, text", [
    (0.0304, "$0.0304"), (0.03041234, "$0.03041"), (12.345, "$12.35"), (1234.4, "$1,234"),
    (0, "$0"), (None, "—"), (float("nan"), "—"), (0.00009261234, "$0.00009261"),
    (0.99996, "$1"), (1e-15, "$0"), (-0.0304, "-$0.0304")])
def test_format_cost(value, text):
    assert charts.format_cost(value) == text


@pytest.mark.parametrize("value, text", [(185.24, "185.2 s"), (0.05, "0.050 s"), (None, "—")])
def test_format_seconds(value, text):
    assert charts.format_seconds(value) == text


# --------------------------------------------------------------------------- projection helpers


def test_projection_matches_fit_by_hand(threshold):
    mix = compare_view.mix_from_table(compare_view.default_mix(threshold), threshold.fps)
    assert sorted(mix) == pytest.approx([180, 450, 900])
    costs = compare_view.projection(threshold, 10, mix)
    per_clip_t4 = sum((20 + f) * T4 for f in (180, 450, 900)) / 3
    assert costs["T4"] == pytest.approx(per_clip_t4 * 10 * 30, rel=1e-3)
    assert compare_view.projection_sentence(costs).startswith("L4 is cheapest at $")


def test_mix_table_errors():
    def table(rows):
        return pd.DataFrame(rows, columns=[compare_view.MIX_LENGTH, compare_view.MIX_SHARE])

    with pytest.raises(InputError, match="positive"):
        compare_view.mix_from_table(table([[0, 50]]), 30)
    with pytest.raises(InputError, match="negative"):
        compare_view.mix_from_table(table([[6, -1]]), 30)
    with pytest.raises(InputError, match="at least one"):
        compare_view.mix_from_table(table([[None, 50]]), 30)
    assert compare_view.mix_from_table(table([[6, 25], [6, 25], [None, 3]]), 30) == {180: 50}


def test_clip_table_and_failed_table(with_repeats):
    table = compare_view.clip_table(with_repeats)
    assert len(table) == 6
    l4_6s = table[(table["Clip"] == "6s") & (table["Candidate"] == "L4")].iloc[0]
    assert l4_6s["Job time (median)"] == "115.0 s" and l4_6s["Spread"] == "110.0 s–120.0 s"
    assert l4_6s["GPU cost"] == charts.format_cost(115 * L4)
    assert l4_6s["Cheapest"] == "yes" and l4_6s["Runs"] == "2 (1 cold)"
    # The key columns come first, so a narrow screen shows them without scrolling.
    assert tuple(table.columns[:5]) == compare_view.CLIP_KEY_COLUMNS
    failed = compare_view.failed_table(with_repeats)
    assert failed.iloc[0]["Reason"] == "CUDA out of memory"
    assert compare_view.clip_table(None).empty


def test_choice_text():
    assert Choice("L4").describe() == "L4"
    assert Choice("T4", above="L4", threshold_frames=222, threshold_seconds=7.4).describe() == \
        "T4 for clips under 7.4 s, L4 above 7.4 s"


def test_cold_warm_note():
    note = compare_view.cold_warm_note(runs_frame())
    assert note.startswith("1 of 2 succeeded runs were cold") and note.endswith(": T4 · 6s · repeat 1.")
    frame = runs_frame()
    frame["cold"] = None
    assert "not recorded" in compare_view.cold_warm_note(frame)
    assert compare_view.cold_warm_note(pd.DataFrame()) == "No runs yet."


def test_candidate_labels_name_only_what_differs():
    same = [dict(gpu="T4", model="x4plus", engine="fast")] * 2
    assert candidate_labels(same) == ["T4", "T4"]
    mixed = [dict(gpu="T4", model="x4plus", engine="fast", price_gpu=None),
             dict(gpu="T4", model="animevideov3", engine="fast", price_gpu="T4"),
             dict(gpu="L4", model=None, engine="fast", price_gpu=None)]
    assert candidate_labels(mixed) == ["T4 · x4plus", "T4 · animevideov3", "L4 · unknown model"]
    # read_runs keeps the device and the price card apart from the candidate
    read = read_runs(mixed, None)
    assert [r["device"] for r in read] == ["T4", "T4", "L4"]
    assert [r["price_card"] for r in read] == ["T4", "T4", "L4"]
    engines = [dict(gpu="T4", model="x4plus", engine=e) for e in ("fast", "reference")]
    assert candidate_labels(engines) == ["T4 · fast", "T4 · reference"]


def test_side_by_side_only_where_models_differ():
    frame = pd.DataFrame([
        dict(clip="6s", gpu="T4", status="succeeded", output_key="o/a.mp4", model="x4plus",
             engine="fast", repeat_index=0),
        dict(clip="6s", gpu="T4", status="succeeded", output_key="o/b.mp4", model="x4plus",
             engine="fast", repeat_index=1),
        dict(clip="6s", gpu="T4", status="succeeded", output_key="o/c.mp4", model="animevideov3",
             engine="fast", repeat_index=0),
        dict(clip="15s", gpu="T4", status="succeeded", output_key="o/d.mp4", model="x4plus",
             engine="fast", repeat_index=0),
    ])
    groups = output_view.side_by_side_clips(frame)
    assert list(groups) == ["6s"]
    assert list(groups["6s"]["output_key"]) == ["o/a.mp4", "o/c.mp4"]


def test_output_object_key_uses_the_source_user():
    assert output_object_key("alice/videos/x.mp4", "outputs/e/r.mp4") == \
        "alice/outputs/e/r.mp4"
    assert output_object_key(None, "outputs/e/r.mp4") == "bench/outputs/e/r.mp4"


def test_fidelity_text():
    row = dict(psnr=31.234, ssim=0.91234, bicubic_psnr=29.81, bicubic_ssim=0.88)
    assert output_view.fidelity_text(row) == "PSNR 31.2 dB, SSIM 0.912 (bicubic 29.8 dB, 0.880)"
    assert output_view.fidelity_text(dict(psnr=None, ssim=float("nan"))) == "no fidelity measured"


def test_crop_region_zooms_inside_the_image():
    image = np.arange(40 * 80 * 3, dtype=np.uint8).reshape(40, 80, 3)
    assert output_view.crop_region(image, 1, 0.5, 0.5).shape == image.shape
    part = output_view.crop_region(image, 4, 1.0, 0.0)
    assert part.shape == (10, 20, 3)
    assert np.array_equal(part, image[0:10, 60:80])


def test_enlarge_repeats_pixels():
    image = np.array([[[1, 1, 1], [2, 2, 2]]], dtype=np.uint8)
    big = output_view.enlarge(image, 3)
    assert big.shape == (3, 6, 3)
    assert (big[:, :3] == 1).all() and (big[:, 3:] == 2).all()
    assert output_view.enlarge(image, 1) is image


def test_read_frame(tiny_clip):
    first = output_view.read_frame(tiny_clip, 0)
    fifth = output_view.read_frame(tiny_clip, 5)
    assert first.shape == (48, 64, 3) and not np.array_equal(first, fifth)
    with pytest.raises(InputError, match="no frame 99"):
        output_view.read_frame(tiny_clip, 99)


def test_date_bounds_end_inclusive():
    import datetime as dt

    since, until = history_view.date_bounds(dt.date(2026, 11, 1), dt.date(2026, 11, 2))
    assert since == dt.datetime(2026, 11, 1) and until == dt.datetime(2026, 11, 3)
    assert history_view.date_bounds(None, None) == (None, None)


def test_every_chart_serialises(with_repeats, threshold):
    """Streamlit sends figures as JSON: each must survive to_json."""
    for chart in EMPTY_ANALYSIS_CHARTS:
        for analysis in (with_repeats, threshold):
            json.loads(chart(analysis).to_json())
    for chart in EMPTY_RUNS_CHARTS:
        json.loads(chart(runs_frame()).to_json())


def test_cold_warm_note_of_imported_results_claims_nothing():
    frame = runs_frame()
    frame["cold"] = False
    assert "marks no run as cold" in compare_view.cold_warm_note(frame, imported=True)
    assert compare_view.cold_warm_note(frame).startswith("All 2 succeeded runs were warm")
    frame["cold"] = frame["cold"].astype(object)
    frame.loc[1, "cold"] = None  # imports leave cold unknown: not counted as warm
    assert "1 run(s) do not record whether they were cold" in compare_view.cold_warm_note(frame)
    chart = charts.cold_warm_chart(frame)
    assert [t.name for t in chart.data] == ["Warm", "Not recorded"]


def test_cost_latency_scatter_of_one_clip(with_repeats):
    fig = charts.cost_latency_scatter(with_repeats, "15s")
    assert [t.name for t in fig.data] == ["Pareto front, 15s", "15s"]
    assert not charts.cost_latency_scatter(with_repeats, "nope").data


def test_cold_warm_note_names_at_most_a_few_runs():
    frame = pd.concat([runs_frame().iloc[:1]] * 9, ignore_index=True)
    note = compare_view.cold_warm_note(frame)
    assert note.startswith("9 of 9") and note.endswith("and 3 more.")
