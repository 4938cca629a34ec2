"""The compile stage's bookkeeping and decision, the encoder choice and its fall-back, and the
encode quality recorded per run (CPU, tiny clips; the speed itself is measured in benchmarks/)."""

from __future__ import annotations

import time

import pytest

from core.errors import InputError
from core.job import Job, JobResult, WarmShape
from tests.jobs import tiny_job
from workers import compile_policy
from workers.compile_policy import CompileStats, decide
from workers.pipeline import EngineKey, ModelCache, WarmEngine, run_job
from workers.video import nvenc_opens, resolve_encoder


@pytest.fixture(autouse=True)
def private_compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))


class CountingCompiler:
    """A real fast engine whose compile step is replaced by a short sleep that it counts."""

    def __init__(self, engine) -> None:
        self._engine, self.compiles = engine, 0

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def prepare(self, height, width, out_size, compile):
        if not compile or self.compiles:
            return 0.0
        self.compiles += 1
        time.sleep(0.2)
        return 0.2


def cache_with_counting_compiler(j: Job) -> tuple[ModelCache, CountingCompiler]:
    cache = ModelCache()
    warm, _ = cache.get(EngineKey.of(j))
    counting = CountingCompiler(warm.engine)
    cache._engines[EngineKey.of(j)] = WarmEngine(counting, warm.model, "fake card")
    return cache, counting


def test_compile_is_its_own_stage_paid_once_per_process(storage):
    first_job = tiny_job(compile="on")
    cache, counting = cache_with_counting_compiler(first_job)
    first = run_job(first_job, storage, cache=cache)
    second = run_job(tiny_job(compile="on", job_id="k", output_key="out2.mp4"), storage, cache=cache)
    assert first.ok and second.ok, (first.error, second.error)
    assert counting.compiles == 1
    assert first.stages["compile"] >= 0.2 and second.stages["compile"] < 0.1
    assert first.compile_choice == second.compile_choice == "on"
    # end-to-end fps leaves out the one-time compile and model load
    steady = first.stages["total"] - first.stages["compile"] - first.stages["model_load"]
    assert first.fps_end_to_end == pytest.approx(first.frames_out / steady)
    stats = compile_policy.load_stats(compile_policy.stats_key(
        "animevideov3", "fp32", (16, 24, 36, 24), 3, "fake card", __import__("torch").__version__))
    assert stats is not None and stats.compile_seconds >= 0.2


def test_off_records_no_compile_stage_and_auto_declines_on_the_cpu(storage):
    off = run_job(tiny_job(), storage)
    assert off.ok and "compile" not in off.stages and off.compile_choice == "off"
    auto = run_job(tiny_job(compile="auto"), storage)
    assert auto.ok and auto.compile_choice == "auto: off (no CUDA device)"


def test_auto_compiles_when_the_frames_repay_it():
    long = decide("auto", cuda=True, frames=3000, eager_seconds_per_frame=0.15, stats=None)
    short = decide("auto", cuda=True, frames=30, eager_seconds_per_frame=0.15, stats=None)
    assert long.compile and long.reason.startswith("auto: on (3000 frames")
    assert not short.compile and short.reason.startswith("auto: off (30 frames")
    warm_cache = CompileStats(compile_seconds=4.0, speedup=1.6)
    assert decide("auto", cuda=True, frames=90, eager_seconds_per_frame=0.15, stats=warm_cache).compile
    assert decide("on", cuda=False, frames=1, eager_seconds_per_frame=0, stats=None).compile
    with pytest.raises(InputError, match="compile mode"):
        decide("sometimes", cuda=True, frames=1, eager_seconds_per_frame=0, stats=None)


def test_compile_stats_survive_a_damaged_file():
    key = compile_policy.stats_key("x4plus", "fp16", (960, 540, 810, 1440), 4, "H200", "2.x")
    compile_policy.save_stats(key, CompileStats(12.5, 1.6))
    assert compile_policy.load_stats(key) == CompileStats(12.5, 1.6)
    (compile_policy.cache_dir() / compile_policy.STATS_FILE).write_text("{not json")
    assert compile_policy.load_stats(key) is None
    compile_policy.save_stats(key, CompileStats(3.0))
    assert compile_policy.load_stats(key) == CompileStats(3.0, None)


def test_compile_needs_the_fast_engine():
    with pytest.raises(InputError, match="fast engine"):
        tiny_job(engine="reference", compile="on")
    assert tiny_job(compile=True).compile == "on" and tiny_job(compile=False).compile == "off"  # schema 1


def test_warm_shape_round_trips_through_the_modal_parameter():
    shape = WarmShape.of(tiny_job(trim_start=3.0, trim_end=9.0, fps=30.0))
    assert shape == WarmShape((24, 16), (36, 24), 180)
    # the text holds what compiles, not the clip's length: every length shares a container pool
    assert shape.to_text() == "24x16>36x24"
    assert WarmShape.from_text(shape.to_text()) == WarmShape((24, 16), (36, 24))
    assert WarmShape.from_text("24x16>36x24@180") == shape  # text of older clients
    assert WarmShape.of(tiny_job(trim_start=0.0, trim_end=2.0, fps=30.0)).to_text() == shape.to_text()
    assert WarmShape.from_text("") is None and WarmShape.from_text("9x9") is None
    assert WarmShape.of(tiny_job(keyframes=())) is None


def test_nvenc_falls_back_to_libx264_where_it_does_not_open(storage):
    if nvenc_opens(64, 64):
        pytest.skip("this machine has NVENC")
    assert resolve_encoder("auto", 64, 64) == "libx264"
    assert resolve_encoder("libx264", 64, 64) == "libx264"
    with pytest.raises(InputError, match="NVENC"):
        resolve_encoder("nvenc", 64, 64)
    result = run_job(tiny_job(encoder="auto", encode_preset="ultrafast"), storage)
    assert result.ok and (result.encoder, result.encode_preset) == ("libx264", "ultrafast")
    failed = run_job(tiny_job(encoder="nvenc", output_key="nv.mp4"), storage)
    assert not failed.ok and "NVENC" in failed.error and not (storage.root / "u" / "nv.mp4").exists()


def test_encode_quality_is_measured_and_follows_the_crf(storage):
    fine = run_job(tiny_job(crf=10, output_key="fine.mp4"), storage)
    coarse = run_job(tiny_job(crf=40, output_key="coarse.mp4"), storage)
    assert fine.ok and coarse.ok
    assert fine.encode_psnr > coarse.encode_psnr > 15.0
    assert fine.encoder == "libx264" and fine.cpu_cores >= 1 and ":" in fine.container_id
    stored = JobResult.from_dict(fine.to_dict())
    assert stored.encode_psnr == fine.encode_psnr and stored.compile_choice == "off"
