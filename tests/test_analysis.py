"""Cost, break-even, fit, crossover and the four decision rules on realistic T4/L4 and 4-GPU data."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analysis import (
    Choice,
    Crossover,
    GpuFit,
    Measurement,
    analyse,
    crossovers,
    fit_gpu,
    pareto_front,
    summarise_clips,
    verdict,
)
from bench.pricing import DEFAULT_PRICES
from core.errors import InputError

RATES = {g: DEFAULT_PRICES.rate(g) for g in ("T4", "L4", "A100-40GB", "H100")}
CLIPS = (("6s", 180), ("15s", 450), ("30s", 900))


def runs(times: dict[str, tuple], rates: dict[str, float] = RATES) -> list[Measurement]:
    """times: GPU -> per clip either seconds or a tuple of repeat seconds."""
    out = []
    for gpu, per_clip in times.items():
        for (clip, frames), secs in zip(CLIPS, per_clip):
            for i, s in enumerate(secs if isinstance(secs, tuple) else (secs,)):
                out.append(Measurement(gpu, clip, frames, s, "succeeded", rates[gpu], repeat=i))
    return out


def linear(overhead: float, fps: float) -> tuple[float, ...]:
    return tuple(overhead + frames / fps for _, frames in CLIPS)


# --------------------------------------------------------------------------- break-even, summaries


def test_break_even_l4_must_take_under_0739_of_t4_time():
    summary = summarise_clips(runs({"T4": (185, 460, 915), "L4": (140, 345, 690)}), "T4")[0]
    l4 = summary.get("L4")
    assert summary.clip == "6s" and summary.frames == 180
    assert round(l4.break_even_seconds / 185, 3) == 0.739
    assert l4.break_even_seconds == pytest.approx(185 * 0.000164 / 0.000222, rel=1e-12)
    assert l4.speedup == pytest.approx(185 / 140)
    assert l4.cost == pytest.approx(140 * 0.000222)
    assert l4.beats_break_even is False  # 140 s > 136.7 s: L4 costs more than T4 here
    assert summary.winner == "T4"
    assert summary.get("T4").fps == pytest.approx(180 / 185)


def test_clips_sorted_by_length_and_baseline_speedup_is_one():
    summaries = summarise_clips(list(reversed(runs({"T4": (185, 460, 915)}))), "T4")
    assert [s.clip for s in summaries] == ["6s", "15s", "30s"]
    assert all(s.get("T4").speedup == 1.0 for s in summaries)


# --------------------------------------------------------------------------- the four rules, T4/L4


def test_keep_baseline_t4_l4():
    v = analyse(runs({"T4": (185, 460, 915), "L4": (175, 440, 880)})).verdict
    assert (v.rule, v.choice.gpu, v.settled) == ("keep_baseline", "T4", True)
    assert not v.choice.by_length and v.choice.to_json() == "T4"
    assert v.winners == {"6s": "T4", "15s": "T4", "30s": "T4"}
    assert "T4" in v.reason and v.reason.endswith(".")


def test_single_winner_t4_l4():
    v = analyse(runs({"T4": (185, 460, 915), "L4": (110, 270, 540)})).verdict
    assert (v.rule, v.choice.gpu) == ("single_winner", "L4")
    assert "L4 is cheapest on every clip" in v.reason


def test_within_tolerance_prefers_the_faster_t4_l4():
    # T4 is cheapest everywhere, but L4 costs only 2-3% more and is 1.3x faster.
    ms = runs({"T4": (185, 460, 915), "L4": (140, 345, 690)})
    a = analyse(ms)
    assert all(s.winner == "T4" for s in a.summaries)
    v = a.verdict
    assert (v.rule, v.choice.gpu) == ("within_tolerance", "L4")
    assert set(v.candidates) == {"T4", "L4"}
    assert "fastest, L4" in v.reason
    # A tighter tolerance removes L4 from the tie and T4 is kept.
    assert analyse(ms, tolerance=0.01).verdict.rule == "keep_baseline"


def test_threshold_t4_l4_from_the_fit():
    # T4: 20 s overhead + 1.0 fps; L4: 40 s overhead + 1.6 fps. Cheapest: T4 short, L4 long.
    a = analyse(runs({"T4": linear(20, 1.0), "L4": linear(40, 1.6)}))
    assert [s.winner for s in a.summaries] == ["T4", "L4", "L4"]
    v = a.verdict
    assert v.rule == "threshold"
    # 0.000164 (20 + n) = 0.000222 (40 + n / 1.6)  ->  n = 0.0056 / 0.00002525 = 221.78
    exact = (0.000222 * 40 - 0.000164 * 20) / (0.000164 - 0.000222 / 1.6)
    assert v.choice.gpu == "T4" and v.choice.above == "L4" and v.choice.by_length
    assert v.choice.threshold_frames == round(exact) == 222
    assert v.choice.threshold_seconds == pytest.approx(222 / 30, abs=1e-3)
    assert v.choice.source == "fit"
    assert v.choice.to_json() == {"below": "T4", "above": "L4", "threshold_frames": 222,
                                  "threshold_seconds": v.choice.threshold_seconds, "source": "fit"}
    assert v.choice.describe() == "T4 for clips under 7.4 s, L4 above 7.4 s"
    assert a.crossovers[0].frames == pytest.approx(exact)


def test_choice_describes_itself_once_for_every_reader():
    steps = (Crossover(100.0, 10 / 3, "T4", "L4"), Crossover(800.0, 80 / 3, "L4", "H100"))
    choice = Choice("T4", above="L4", threshold_frames=100, threshold_seconds=3.333, source="fit",
                    steps=steps)
    # Every segment is said, not the first change alone (issue 12).
    assert choice.describe() == "T4 for clips under 3.3 s, L4 from 3.3 to 26.7 s, H100 above 26.7 s"
    no_fps = Choice("T4", above="L4", threshold_frames=100, steps=(
        Crossover(100.0, None, "T4", "L4"), Crossover(800.0, None, "L4", "H100")))
    assert no_fps.describe() == \
        "T4 for clips under 100 frames, L4 from 100 to 800 frames, H100 above 800 frames"
    assert choice.to_json()["steps"][1] == {"frames": 800.0, "seconds": 80 / 3, "from": "L4",
                                            "to": "H100"}
    assert Choice("L4").describe() == "L4" and Choice("L4").to_json() == "L4"


# --------------------------------------------------------------------------- the four rules, 4 GPUs


def test_keep_baseline_four_gpus():
    v = analyse(runs({"T4": (185, 460, 915), "L4": (175, 440, 880),
                      "A100-40GB": (60, 150, 300), "H100": (35, 87, 175)})).verdict
    assert (v.rule, v.choice.gpu) == ("keep_baseline", "T4")


def test_single_winner_four_gpus():
    v = analyse(runs({"T4": (185, 460, 915), "L4": (110, 270, 540),
                      "A100-40GB": (60, 150, 300), "H100": (35, 87, 175)})).verdict
    assert (v.rule, v.choice.gpu) == ("single_winner", "L4")


def test_within_tolerance_four_gpus_picks_fastest_of_the_tie():
    # H100 is 6.5x faster than T4 for 1-2% more money; L4 and A100 are well above 10%.
    a = analyse(runs({"T4": (185, 460, 915), "L4": (175, 440, 880),
                      "A100-40GB": (60, 150, 300), "H100": (28, 70, 140)}))
    v = a.verdict
    assert (v.rule, v.choice.gpu) == ("within_tolerance", "H100")
    assert v.candidates == ("T4", "H100")


def test_threshold_four_gpus():
    # H100 pays a 60 s start-up but runs 12 fps: it wins only the longest clip.
    a = analyse(runs({"T4": linear(20, 1.0), "L4": linear(40, 1.3),
                      "A100-40GB": linear(30, 3.0), "H100": linear(60, 12.0)}))
    assert [s.winner for s in a.summaries] == ["T4", "T4", "H100"]
    v = a.verdict
    exact = (0.001097 * 60 - 0.000164 * 20) / (0.000164 - 0.001097 / 12)
    assert v.rule == "threshold"
    assert (v.choice.gpu, v.choice.above) == ("T4", "H100")
    assert v.choice.threshold_frames == round(exact) == 862
    assert "T4 below about 862 frames (28.7 s) and H100 above" in v.reason


def test_threshold_falls_back_to_clips_when_the_fit_has_no_crossover():
    # Winners change between clips but the per-GPU fits never cross inside the range.
    ms = runs({"T4": (185, 470, 915), "L4": (140, 330, 700)})
    fits = {"T4": GpuFit(0.0, 1.0, 1.0, None), "L4": GpuFit(0.0, 1.0, 1.0, None)}
    summaries = summarise_clips(ms, "T4")
    assert [s.winner for s in summaries] == ["T4", "L4", "T4"]
    v = verdict(summaries, fits, RATES, tolerance=0.01)
    assert v.rule == "threshold"
    assert v.choice.source == "clips"
    assert v.choice.threshold_frames == 315  # halfway between 180 and 450


# --------------------------------------------------------------------------- repeats and failures


def test_overlapping_repeats_are_not_settled():
    # T4 costs $0.0303-0.0328, L4 $0.0289-0.0377: the ranges overlap on every clip.
    a = analyse(runs({"T4": ((185, 190, 200),) * 3, "L4": ((130, 150, 170),) * 3}),
                tolerance=0.0)
    s = a.summaries[0]
    assert s.get("T4").runs == 3 and s.get("T4").median_seconds == 190
    assert (s.get("L4").min_seconds, s.get("L4").max_seconds) == (130, 170)
    assert s.settled is False
    assert a.verdict.settled is False
    assert a.verdict.unsettled_clips == ("6s", "15s", "30s")
    assert "not settled" in a.verdict.reason


def test_separated_repeats_are_settled():
    a = analyse(runs({"T4": ((185, 186, 188),) * 3, "L4": ((110, 112, 115),) * 3}))
    assert all(s.settled for s in a.summaries)
    assert a.verdict.settled is True and "not settled" not in a.verdict.reason


def test_failed_runs_are_reported_not_used():
    ms = runs({"T4": (185, 460, 915), "L4": (110, 270)})
    ms += [Measurement("L4", "30s", 900, None, "failed", RATES["L4"], error="CUDA out of memory"),
           Measurement("T4", "30s", 900, 3.0, "failed", RATES["T4"], repeat=1,
                       error="worker died")]
    a = analyse(ms)
    thirty = a.summaries[-1]
    assert [st.gpu for st in thirty.stats] == ["T4"]
    assert thirty.get("T4").runs == 1 and thirty.get("T4").median_seconds == 915
    assert {m.error for m in thirty.failed} == {"CUDA out of memory", "worker died"}
    assert len(a.failed) == 2
    assert a.fits["L4"].points == 2 and a.fits["T4"].points == 3
    # Only L4 and T4 on the first two clips: L4 wins those, T4 the 30 s clip (L4 has no result).
    assert a.verdict.winners == {"6s": "L4", "15s": "L4", "30s": "T4"}
    assert {f["error"] for f in a.to_dict()["failed"]} == {"CUDA out of memory", "worker died"}


def test_nothing_succeeded_is_an_input_error():
    ms = [Measurement("T4", "6s", 180, None, "failed", RATES["T4"], error="boom")]
    with pytest.raises(InputError, match="every run failed"):
        analyse(ms)


def test_bad_tolerance_is_an_input_error():
    with pytest.raises(InputError, match="tolerance"):
        analyse(runs({"T4": (185, 460, 915)}), tolerance=-0.1)


# --------------------------------------------------------------------------- fit, crossovers


def test_fit_recovers_overhead_and_throughput():
    fit = fit_gpu([(f, 12.5 + f / 3.2) for f in (100, 250, 600, 1000)])
    assert fit.overhead_s == pytest.approx(12.5, abs=1e-9)
    assert fit.throughput_fps == pytest.approx(3.2, rel=1e-12)
    assert fit.per_frame_s == pytest.approx(1 / 3.2, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.points == 4 and fit.note == ""


def test_fit_least_squares_on_noisy_points():
    # y = 10 + 0.5 x with residuals +1, -1, -1, +1 (orthogonal to 1 and x): same line back.
    xs = (100, 200, 300, 400)
    fit = fit_gpu([(x, 10 + 0.5 * x + r) for x, r in zip(xs, (1, -1, -1, 1))])
    assert fit.overhead_s == pytest.approx(10.0)
    assert fit.per_frame_s == pytest.approx(0.5)
    assert 0.99 < fit.r2 < 1.0


def test_fit_with_one_clip_length_has_no_overhead_and_says_so():
    fit = fit_gpu([(180, 90.0), (180, 110.0)])
    assert fit.overhead_s == 0.0
    assert fit.per_frame_s == pytest.approx(200 / 360)
    assert fit.r2 is None and "one clip length" in fit.note


def test_fit_never_gives_negative_overhead_or_slope():
    through_origin = fit_gpu([(100, 20.0), (200, 60.0), (300, 100.0)])  # OLS: -20 + 0.4 n
    assert through_origin.overhead_s == 0.0
    assert through_origin.per_frame_s == pytest.approx(44000 / 140000)
    assert "through the origin" in through_origin.note
    flat = fit_gpu([(100, 50.0), (200, 40.0)])
    assert (flat.overhead_s, flat.per_frame_s, flat.throughput_fps) == (45.0, 0.0, None)
    assert "constant" in flat.note


def test_fit_errors():
    with pytest.raises(InputError):
        fit_gpu([])
    with pytest.raises(InputError):
        fit_gpu([(0, 1.0), (10, 2.0)])


def test_crossovers_on_synthetic_lines():
    # $ per clip: A = 1 + 0.01 n, B = 3 + 0.005 n, C = 11 + 0.001 n  ->  A|B at 400, B|C at 2000.
    fits = {"A": GpuFit(1.0, 100.0, 0.01, 1.0), "B": GpuFit(3.0, 200.0, 0.005, 1.0),
            "C": GpuFit(11.0, 1000.0, 0.001, 1.0)}
    rates = {"A": 1.0, "B": 1.0, "C": 1.0}
    found = crossovers(fits, rates, fps=25.0)
    assert [(c.from_gpu, c.to_gpu) for c in found] == [("A", "B"), ("B", "C")]
    assert [c.frames for c in found] == [pytest.approx(400.0), pytest.approx(2000.0)]
    assert found[0].seconds == pytest.approx(16.0)
    assert len(crossovers(fits, rates, max_frames=1000)) == 1
    assert crossovers(fits, rates, min_frames=2500) == []
    # A cheaper line that stays cheaper never gives a crossover.
    assert crossovers({"A": fits["A"], "D": GpuFit(0.5, 200.0, 0.005, 1.0)}, rates | {"D": 1.0}) == []


# --------------------------------------------------------------------------- projections, pareto


def test_monthly_projection_is_the_reuse_projections_steady_state():
    from bench.billing import reuse_projection

    fits = {"T4": GpuFit(10.0, 2.0, 0.5, 1.0)}
    out = reuse_projection(fits, {"T4": 0.0002}, 100, {180: 1, 900: 1}, 0.0, {})
    # ((10 + 90) + (10 + 450)) / 2 s x $0.0002 = $0.056 per clip, x 100 x 30 days
    assert out["T4"].steady_monthly_cost == pytest.approx(168.0)


def test_pareto_front():
    points = [(0.030, 185.0, "T4"), (0.031, 140.0, "L4"), (0.035, 60.0, "A100"),
              (0.034, 90.0, "L40S"), (0.040, 30.0, "H100"), (0.050, 35.0, "H200")]
    assert pareto_front(points) == ["T4", "L4", "L40S", "A100", "H100"]
    assert pareto_front([]) == []


def test_the_verdict_answers_the_seeds_question_first():
    from bench.e6 import analyse_e6, load_e6

    e6 = load_e6(Path(__file__).resolve().parents[1] / "examples" / "e6-original-t4-l4.json")
    v = analyse_e6(e6).verdict
    assert v.headline.startswith("L4 is 1.61x faster at 1.35x the price: 0.84x the cost per clip "
                                 "(against T4, on 30s)")
    assert "L4 $0.1406 per 1,000 frames, $0.2531 per output minute" in v.headline
    (l4,) = v.comparisons
    assert l4.cost_per_1000_frames == pytest.approx(570.0 * 0.000222 / 900 * 1000)
    assert v.to_dict()["headline"] == v.headline and v.to_dict()["rule"] == v.rule


def test_the_headline_ranges_over_repeats_and_names_every_candidate():
    runs = [Measurement("T4", "c", 100, s, "succeeded", 0.001, repeat=i)
            for i, s in enumerate((10.0, 11.0, 12.0))]
    runs += [Measurement("L4", "c", 100, s, "succeeded", 0.002, repeat=i)
             for i, s in enumerate((4.0, 5.0, 6.0))]
    runs += [Measurement("A10", "c", 100, 22.0, "succeeded", 0.001)]
    v = analyse(runs, "T4").verdict
    l4, a10 = v.comparisons
    assert l4.speedup == pytest.approx(11.0 / 5.0) and l4.price_ratio == pytest.approx(2.0)
    assert (l4.cost_ratio_low, l4.cost_ratio_high) == (pytest.approx(8 / 12), pytest.approx(12 / 10))
    assert "L4 is 2.20x faster at 2.00x the price: 0.91x the cost per clip (0.67-1.20x over 3 " \
           "repeats)" in v.headline
    assert "A10 is 2.00x slower at 1.00x the price" in v.headline
