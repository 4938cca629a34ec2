"""Plans, presets and their validation."""

from __future__ import annotations

import pytest

from bench.plan import (
    DEMO_SOURCE_SECONDS,
    DEMO_SOURCE_SIZE,
    ClipSpec,
    GpuChoice,
    Plan,
    build_plan,
    parse_clips,
    parse_gpus,
)
from core.errors import InputError
from core.job import Keyframe


def test_e6_preset_is_the_original_experiment():
    plan = build_plan("e6")
    assert plan.source == "modal_test/test_videos/wcfc-carlsbad-trimmed.mp4"
    assert [(c.name, c.start, c.end, c.frames(30)) for c in plan.clips] == [
        ("6s", 3.0, 9.0, 180), ("15s", 3.0, 18.0, 450), ("30s", 3.0, 33.0, 900)]
    assert plan.keyframes == (Keyframe(0.0, 690, 60, 540, 960),)
    assert (plan.output_width, plan.output_height, plan.fps) == (810, 1440, 30.0)
    assert plan.model == "x4plus" and plan.backend == "modal"
    assert plan.gpus == (GpuChoice("T4", "T4", "modal"), GpuChoice("L4", "L4", "modal"))
    assert plan.baseline == "T4" and plan.preset == "e6"
    assert plan.run_count() == 6


def test_demo_preset_is_tiny_and_local_and_compares_two_engines():
    plan = build_plan("demo")
    assert plan.backend == "local" and plan.gpus == (GpuChoice("cpu", None, "local"),)
    assert plan.source == "demo" and plan.model == "animevideov3" and plan.engine == "reference"
    assert plan.output_width is None and plan.output_height is None
    frames = [c.frames(plan.fps) for c in plan.clips]
    assert frames == [3, 6, 10]
    assert all(c.end <= DEMO_SOURCE_SECONDS for c in plan.clips)
    w, h = DEMO_SOURCE_SIZE
    for k in plan.keyframes:
        assert k.width * k.height <= 96 * 64
        assert k.x + k.width <= w and k.y + k.height <= h
    # One CPU, two candidates: the reference loop (baseline) and the fast engine.
    assert plan.candidates() == ["cpu · reference", "cpu · fast"]
    assert plan.baseline == "cpu · reference"
    assert plan.run_count() == 3 * 2 * 3


def test_variants_are_a_plan_dimension():
    from bench.orchestrator import run_specs
    from bench.plan import Plan, Variant

    plan = build_plan(None, source="x.mp4", clips="a:0:1", gpus="cpu,cuda:0=T4",
                      model="x4plus,animevideov3", engine="fast")
    assert plan.variants == (Variant("x4plus", "fast"), Variant("animevideov3", "fast"))
    assert plan.candidates() == ["cpu · x4plus", "cpu · animevideov3", "cuda:0 · x4plus",
                                 "cuda:0 · animevideov3"]
    assert Plan.from_dict(plan.to_dict()) == plan
    specs = run_specs(plan)
    assert [(s.gpu, s.model, s.engine) for s in specs] == [
        ("cpu", "x4plus", "fast"), ("cpu", "animevideov3", "fast"),
        ("cuda:0", "x4plus", "fast"), ("cuda:0", "animevideov3", "fast")]
    # A preset's compared engines stay unless replaced; one engine given: no variants.
    assert build_plan("demo", model="x4plus").candidates() == ["cpu · reference", "cpu · fast"]
    assert build_plan("demo", engine="fast").candidates() == ["cpu"]
    assert build_plan("e6").candidates() == ["T4", "L4"]  # GPUs stay the candidates
    with pytest.raises(InputError, match="unknown engine"):
        build_plan("demo", engine="fast,slow")


def test_overrides_and_strings():
    plan = build_plan("e6", gpus="t4,l4,a100,h100", clips="a:0:1,b:1:3.5", repeats="3",
                      model=None, engine="fast")
    assert [g.label for g in plan.gpus] == ["T4", "L4", "A100-40GB", "H100"]
    assert [c.frames(30) for c in plan.clips] == [30, 75]
    assert plan.repeats == 3 and plan.model == "x4plus" and plan.engine == "fast"
    assert plan.run_count() == 2 * 4 * 3


def test_local_gpus_with_price_cards():
    gpus = parse_gpus("cpu, cuda, cuda:1=h100", "local")
    assert gpus == (GpuChoice("cpu", None, "local"), GpuChoice("cuda:0", None, "local"),
                    GpuChoice("cuda:1", "H100", "local"))


@pytest.mark.parametrize("text, backend, match", [
    ("V100", "modal", "unknown GPU"),
    ("T4,t4", "modal", "listed twice"),
    ("cuda:0=H100", "modal", "=CARD"),
    ("gpu0", "local", "unknown local device"),
    ("cuda:0=K80", "local", "unknown GPU"),
    ("", "local", "no GPUs"),
    ("T4", "cloud", "unknown backend"),
])
def test_bad_gpus(text, backend, match):
    with pytest.raises(InputError, match=match):
        parse_gpus(text, backend)


@pytest.mark.parametrize("text, match", [
    ("6s:3:9:1", "NAME:START:END"), ("6s:a:9", "numbers"), ("6s:9:3", "after start"),
    ("6s:-1:3", "before the video"), ("", "no clips"), ("bad name:0:1", "clip name"),
])
def test_bad_clips(text, match):
    with pytest.raises(InputError, match=match):
        parse_clips(text)


def test_clip_frames_are_exact_on_fractional_bounds():
    assert ClipSpec("x", 0.2, 0.5).frames(10) == 3
    assert ClipSpec("x", 0.1, 0.7).frames(30) == 18


@pytest.mark.parametrize("preset, overrides, match", [
    ("nope", {}, "unknown preset"),
    ("e6", {"backend": "local"}, "name the GPUs"),
    ("e6", {"colour": "red"}, "unknown plan option"),
    ("e6", {"model": "x8"}, "unknown model"),
    ("e6", {"engine": "turbo"}, "unknown engine"),
    ("e6", {"repeats": 0}, "repeats"),
    ("e6", {"repeats": "2.5"}, "whole number"),
    ("e6", {"clips": "a:0:1,a:1:2"}, "unique"),
    ("demo", {"output_width": 100}, "both output width and height"),
    ("demo", {"clips": "a:0.05:0.05"}, "must be after start"),
    ("demo", {"keyframes": [{"time": 1, "x": 0, "y": 0, "width": 8, "height": 8},
                            {"time": 0, "x": 0, "y": 0, "width": 8, "height": 8}]}, "increasing"),
    (None, {"source": "x.mp4"}, "needs clips, gpus"),
])
def test_bad_plans(preset, overrides, match):
    with pytest.raises(InputError, match=match):
        build_plan(preset, **overrides)


def test_plan_without_preset_and_backend_switch():
    plan = build_plan(source="in.mp4", clips="c:0:2", gpus="cuda:0=T4", model="general-x4v3",
                      engine="fast", fps=24, keyframes=[{"time": 0, "x": 1, "y": 2, "width": 30,
                                                        "height": 20}])
    assert plan.backend == "local" and plan.preset is None and plan.clips[0].frames(24) == 48
    assert plan.keyframes == (Keyframe(0.0, 1, 2, 30, 20),)
    bare = build_plan(source="in.mp4", clips="c:0:1", gpus="cpu")
    assert (bare.model, bare.engine, bare.fps, bare.output_width) == ("x4plus", "fast", 30.0, None)
    moved = build_plan("demo", backend="modal", gpus="L4")
    assert moved.gpus == (GpuChoice("L4", "L4", "modal"),)


def test_plan_dict_round_trip():
    plan = build_plan("e6", repeats=2)
    assert Plan.from_dict(plan.to_dict()) == plan
    with pytest.raises(InputError, match="malformed plan"):
        Plan.from_dict({"clips": [{"name": "a"}]})


def test_a_clip_counts_the_frames_its_output_has():
    plan = build_plan("demo", clips="a:0.01:0.05,b:3.0:9.0,c:1.25:3.25", fps=30)
    assert [c.frames(plan.fps) for c in plan.clips] == [2, 180, 60]


@pytest.mark.parametrize("overrides, match", [
    ({"compile": "sometimes"}, "compile mode"),
    ({"compile": "on", "engine": "reference"}, "fast engine only"),
    ({"encoder": "x265"}, "unknown encoder"),
    ({"encode_preset": "warp"}, "preset"),
    ({"crf": 52}, "crf"),
    ({"crf": 1.5}, "crf"),
    ({"cpu_cores": 0}, "cpu cores"),
    ({"cpu_cores": float("nan")}, "cpu cores"),
])
def test_encoder_compile_and_cores_are_checked(overrides, match):
    with pytest.raises(InputError, match=match):
        build_plan("demo", **overrides)


def test_a_plan_hands_its_encoder_and_compile_settings_to_every_job():
    from bench.orchestrator import job_for_run
    from store.runs import RunRow

    plan = build_plan("demo", compile="auto", encoder="auto", encode_preset="superfast", crf=23,
                      cpu_cores=8)
    assert type(plan).from_dict(plan.to_dict()) == plan
    row = RunRow(**{f: None for f in RunRow.__dataclass_fields__} | {
        "id": "r", "experiment_id": "e", "gpu": "cpu", "clip_start": 0.2, "clip_end": 0.5})
    job = job_for_run(plan, row, "bench/sources/demo.mp4")
    assert (job.compile, job.encoder, job.encode_preset, job.crf) == ("auto", "auto", "superfast", 23)
