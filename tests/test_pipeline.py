"""run_job end to end on tiny clips: outputs decode back right, stages are timed, failures are clean."""

from __future__ import annotations

import numpy as np
import pytest

from core.job import Job, JobResult, Keyframe
from tests.jobs import VIDEO_JOB_STAGES, tiny_job
from workers.overlap import prefetch
from workers.pipeline import ModelCache, run_job
from workers.video import decode_segment, probe, read_image, write_image


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    """One warm model for the whole module (as a worker process keeps it)."""
    return ModelCache()


def test_video_job_writes_the_trimmed_frames_at_the_asked_size(storage, tmp_path, cache):
    events = []
    result = run_job(tiny_job(), storage, on_progress=events.append, cache=cache)
    assert result.ok, result.error
    assert (result.frames_in, result.frames_out) == (10, 10)
    out = tmp_path / "objects" / "u" / "out" / "j1.mp4"
    info = probe(out)
    assert (info.width, info.height) == (36, 24)
    assert sum(1 for _ in decode_segment(out)) == 10
    assert set(VIDEO_JOB_STAGES) | {"total"} <= result.stages.keys()
    assert all(v >= 0 for v in result.stages.values())
    assert result.weights_provenance.startswith("random")
    assert result.fidelity is not None and result.fidelity.frames == 2
    assert events[-1].frames_done == 10 and events[-1].frames_total == 10
    assert [e.frames_done for e in events] == sorted(e.frames_done for e in events)


def test_model_scale_output_and_reference_engine(storage, tmp_path, cache):
    result = run_job(tiny_job(engine="reference", output_width=None, output_height=None,
                              output_key="ref.mp4"), storage, cache=cache)
    assert result.ok, result.error
    assert (result.output_width, result.output_height) == (96, 64)  # 24x16 crop, x4 model
    assert sum(1 for _ in decode_segment(tmp_path / "objects" / "u" / "ref.mp4")) == 10


def test_warm_cache_loads_the_model_once(storage, cache):
    run_job(tiny_job(output_key="a.mp4"), storage, cache=cache)
    again = run_job(tiny_job(output_key="b.mp4"), storage, cache=cache)
    assert again.stages["model_load"] == 0.0


def test_image_job_writes_an_image(storage, tmp_path, cache):
    image = (np.arange(20 * 30 * 3) % 251).astype(np.uint8).reshape(20, 30, 3)
    write_image(tmp_path / "objects" / "u" / "pic.png", image)
    result = run_job(tiny_job(input_key="pic.png", output_key="pic-x4.png", keyframes=(),
                              output_width=None, output_height=None), storage, cache=cache)
    assert result.ok, result.error
    assert read_image(tmp_path / "objects" / "u" / "pic-x4.png").shape == (80, 120, 3)


@pytest.mark.parametrize("changes, message", [
    (dict(trim_start=5.0, trim_end=6.0), "past the end"),
    (dict(keyframes=(Keyframe(0.0, 0, 0, 100, 16),)), "larger than the frame"),
    (dict(keyframes=(Keyframe(1.0, 0, 0, 8, 8), Keyframe(0.5, 0, 0, 8, 8))), "time"),
    (dict(model="nope"), "unknown model"),
    (dict(input_key="missing.mp4"), "no object"),
])
def test_bad_jobs_fail_with_one_line_and_upload_nothing(storage, tmp_path, cache, changes, message):
    result = run_job(tiny_job(output_key="bad.mp4", **changes), storage, cache=cache)
    assert result.status == "failed"
    assert message in result.error and "\n" not in result.error
    assert not (tmp_path / "objects" / "u" / "bad.mp4").exists()
    assert result.output_key is None


def test_corrupt_source_fails_cleanly(storage, tmp_path, tiny_clip, cache):
    data = tiny_clip.read_bytes()
    (tmp_path / "objects" / "u" / "corrupt.mp4").write_bytes(data[: len(data) // 3])
    result = run_job(tiny_job(input_key="corrupt.mp4", output_key="c.mp4", trim_start=None,
                              trim_end=None), storage, cache=cache)
    assert result.status == "failed" and result.error
    assert not (tmp_path / "objects" / "u" / "c.mp4").exists()


def test_result_round_trips_as_json(storage, cache):
    result = run_job(tiny_job(output_key="rt.mp4"), storage, cache=cache)
    assert JobResult.from_dict(result.to_dict()) == result
    job = tiny_job()
    assert Job.from_dict(job.to_dict()) == job
    assert job.to_dict()["segment_data"] == {"trimRange": {"start": 0.5, "end": 1.5}}


def test_prefetch_passes_items_and_errors_through():
    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))

    def broken():
        yield 1
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"):
        list(prefetch(broken(), depth=2))


def test_crops_too_small_to_score_still_succeed_without_fidelity(storage, cache):
    result = run_job(tiny_job(keyframes=(Keyframe(0.0, 0, 0, 8, 8),), output_width=None,
                              output_height=None, output_key="small.mp4"), storage, cache=cache)
    assert result.ok, result.error
    assert result.fidelity is None
