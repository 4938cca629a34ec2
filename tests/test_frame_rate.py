"""Frames at the output rate: a trimmed segment is resampled by timestamp (like ffmpeg's fps
filter), so the output lasts as long as the trim whatever the source's rate; rotated sources are
decoded as displayed."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from core.job import Job, Keyframe
from store.objects import LocalDirectoryStore
from tests.images import NH, NW, frame_number, numbered_frame
from workers.pipeline import run_job
from workers.video import decode_segment, output_frame_count, probe


def write_clip(path: Path, times: list[float], rotation: int | None = None) -> Path:
    """Frame k (numbered) shown at times[k] seconds; a millisecond time base allows any rate."""
    with av.open(str(path), "w") as container:
        gaps = np.diff(times) if len(times) > 1 else [1 / 30]
        stream = container.add_stream("libx264", rate=Fraction(1 / float(np.median(gaps))).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = NW, NH, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 90000)
        stream.options = {"crf": "18", "preset": "ultrafast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for k, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(numbered_frame(k), format="rgb24")
            frame.pts, frame.time_base = round(t * 90000), Fraction(1, 90000)
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def constant_rate(fps: float, seconds: float) -> list[float]:
    return [k / fps for k in range(round(seconds * fps))]


@pytest.mark.parametrize("source_fps", [23.976, 25.0, 29.97, 30.0, 50.0, 60.0])
def test_any_source_rate_gives_duration_times_output_rate(tmp_path, source_fps):
    clip = write_clip(tmp_path / "clip.mp4", constant_rate(source_fps, 4.0))
    frames = list(decode_segment(clip, 1.0, 3.0, fps=30.0))
    assert len(frames) == output_frame_count(1.0, 3.0, 30.0) == 60
    for k, frame in enumerate(frames):
        wanted = 1.0 + k / 30.0
        shown = frame_number(frame.image) / source_fps
        assert abs(shown - wanted) <= 0.5 / source_fps + 1e-6, (k, shown, wanted)
    numbers = [frame_number(f.image) for f in frames]
    assert numbers == sorted(numbers)
    if source_fps <= 25:
        assert len(set(numbers)) < len(numbers)  # slower sources repeat frames
    if source_fps == 60.0:
        assert numbers == list(range(60, 180, 2))  # faster sources drop them


def test_same_rate_keeps_every_source_frame(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", constant_rate(30.0, 3.0))
    assert [frame_number(f.image) for f in decode_segment(clip, 0.5, 2.5, fps=30.0)] == \
        list(range(15, 75))


def test_variable_frame_rate_is_sampled_by_timestamp(tmp_path):
    times, t = [], 0.0
    for k in range(90):
        times.append(t)
        t += (1 / 20) if k % 3 else (1 / 60)  # irregular gaps, as phones record
    clip = write_clip(tmp_path / "vfr.mp4", times)
    frames = list(decode_segment(clip, 0.5, 2.0, fps=30.0))
    assert len(frames) == 45
    for k, frame in enumerate(frames):
        wanted = 0.5 + k / 30
        nearest = min(range(len(times)), key=lambda i: (abs(times[i] - wanted), times[i]))
        assert frame_number(frame.image) == nearest


def test_a_source_that_stops_early_yields_fewer_frames(tmp_path):
    clip = write_clip(tmp_path / "short.mp4", constant_rate(25.0, 2.0))
    frames = list(decode_segment(clip, 0.0, 2.0, fps=60.0))
    assert len(frames) == 120  # the last source frame lasts until 2.0 s
    assert math.isclose(frames[-1].time, 119 / 60)


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_sources_are_decoded_as_displayed(tmp_path, rotation):
    clip = write_clip(tmp_path / "rot.mp4", constant_rate(10.0, 1.0), rotation=rotation)
    info = probe(clip)
    assert info.rotation == rotation
    frame = next(iter(decode_segment(clip, 0.0, 1.0, fps=10.0))).image
    expected = np.rot90(numbered_frame(0), k=rotation // 90)
    assert (info.height, info.width) == frame.shape[:2] == expected.shape[:2]
    assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 8


def test_the_worker_writes_output_rate_frames_from_a_25fps_source(tmp_path):
    objects = tmp_path / "objects"
    write_clip((objects / "u").mkdir(parents=True) or objects / "u" / "in.mp4",
               constant_rate(25.0, 3.0), rotation=-90)
    job = Job(job_id="j", user_id="u", input_key="in.mp4", output_key="out.mp4",
              keyframes=(Keyframe(0.0, 8, 16, 32, 48),), output_width=32, output_height=48,
              fps=30.0, trim_start=0.5, trim_end=2.5, model="animevideov3", weights="random",
              device="cpu", fidelity_samples=0)
    result = run_job(job, LocalDirectoryStore(objects))
    assert result.status == "succeeded", result.error
    assert result.frames_out == 60
    out = probe(objects / "u" / "out.mp4")
    assert out.frame_count == 60 and math.isclose(out.duration, 2.0, abs_tol=0.05)


@pytest.mark.parametrize("box", [(0, 0, NW, NH), (8, 4, 32, 24), (9, 5, 31, 23), (1, 1, 1, 1)])
def test_cropping_a_decoded_frame_equals_cropping_its_whole_image(tmp_path, box):
    clip = write_clip(tmp_path / "clip.mp4", constant_rate(10.0, 0.5))
    x, y, w, h = box
    for frame in decode_segment(clip):
        assert np.array_equal(frame.crop(x, y, w, h), frame.image[y:y + h, x:x + w])
