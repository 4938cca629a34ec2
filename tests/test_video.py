"""Video I/O: probe, exact trimmed decode, H.264 writer, images, the demo clip and its CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from bench.commands.demo_clip_cmd import parse_size
from core.errors import InputError, MediaError
from tests.images import GOP, NFPS, NFRAMES, NH, NW, frame_number, numbered_frame
from workers.synthetic import demo_frame, write_demo_clip
from workers.video import (
    VideoInfo,
    VideoWriter,
    check_trim,
    decode_segment,
    is_image_path,
    probe,
    read_image,
    write_image,
)

ROOT = Path(__file__).resolve().parents[1]

def keyframe_indices(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = 1 / (stream.average_rate * stream.time_base)
        return sorted(round(p.pts / step) for p in container.demux(stream) if p.size and p.is_keyframe)


@pytest.fixture(scope="module")
def numbered_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("numbered") / "numbered.mp4"
    with VideoWriter(path, NW, NH, NFPS, crf=18, preset="ultrafast", gop=GOP) as writer:
        for k in range(NFRAMES):
            writer.write(numbered_frame(k))
    return path


def test_frame_numbers_survive_encoding(numbered_clip):
    frames = list(decode_segment(numbered_clip))
    assert [frame_number(f.image) for f in frames] == list(range(NFRAMES))


def test_probe(numbered_clip):
    info = probe(numbered_clip)
    assert info == VideoInfo(width=NW, height=NH, fps=30.0, frame_count=NFRAMES, duration=10.0, codec="h264")


def test_trim_3_to_9_is_exactly_180_frames_though_3s_is_not_a_keyframe(numbered_clip):
    keys = keyframe_indices(numbered_clip)
    assert 90 not in keys and any(0 < k < 90 for k in keys)  # the seek lands before 3.0 s
    frames = list(decode_segment(numbered_clip, 3.0, 9.0))
    assert len(frames) == 180
    assert [frame_number(f.image) for f in frames] == list(range(90, 270))
    assert [f.index for f in frames] == list(range(180))
    assert frames[0].time == pytest.approx(3.0) and frames[-1].time == pytest.approx(269 / 30)
    assert frames[0].image.shape == (NH, NW, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.parametrize(
    "start, end, first, stop",
    [(None, None, 0, 300), (0.1, 0.2, 3, 6), (9.5, None, 285, 300), (4.01, 4.1, 121, 123), (0.0, 1 / 30, 0, 1)],
)
def test_trims_match_the_expected_frames(numbered_clip, start, end, first, stop):
    frames = list(decode_segment(numbered_clip, start, end))
    assert [frame_number(f.image) for f in frames] == list(range(first, stop))


def test_check_trim_resolves_none():
    info = VideoInfo(96, 64, 30.0, 300, 10.0, "h264")
    assert check_trim(info, None, None) == (0.0, 10.0)
    assert check_trim(info, 2.0, None) == (2.0, 10.0)
    assert check_trim(info, None, 10.01) == (0.0, 10.01)  # within half a frame of the end


@pytest.mark.parametrize(
    "start, end, fragment",
    [(-1.0, 2.0, "before the start"), (5.0, 5.0, "after trim start"), (5.0, 4.0, "after trim start"),
     (10.0, None, "past the end"), (12.0, 13.0, "past the end"), (1.0, 10.1, "past the end")],
)
def test_trim_outside_the_video_raises_input_error(numbered_clip, start, end, fragment):
    with pytest.raises(InputError, match=fragment):
        decode_segment(numbered_clip, start, end)  # raised before iterating


@pytest.mark.parametrize("content", [b"", b"hello, not a video\n" * 50, bytes(range(256)) * 40])
def test_non_video_file_raises_media_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        probe(path)
    assert "\n" not in str(info.value) and "bad.mp4" in str(info.value)


def test_text_file_is_not_a_video(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("FFmpeg would read this as an ANSI art video\n" * 20)
    with pytest.raises(MediaError, match="no video stream"):
        probe(path)


def test_missing_file_raises_media_error(tmp_path):
    with pytest.raises(MediaError):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(MediaError):
        decode_segment(tmp_path / "missing.mp4")


def test_corrupt_data_mid_stream_raises_media_error(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "noise.mp4"
    with VideoWriter(path, 64, 48, 30.0, preset="ultrafast", gop=10) as writer:
        for _ in range(30):
            writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    data = bytearray(path.read_bytes())
    mdat = data.find(b"mdat")
    assert 0 < mdat < len(data) // 4  # faststart: the index is before the media data
    middle = (mdat + len(data)) // 2
    data[middle:middle + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
    frames = decode_segment(path)
    with pytest.raises(MediaError, match="noise.mp4"):
        for _ in frames:
            pass


def test_writer_round_trip_and_few_keyframes(tmp_path):
    path = tmp_path / "out.mp4"
    source = [demo_frame(i, 64, 48, 10.0) for i in range(24)]
    with VideoWriter(path, 64, 48, 10.0, preset="ultrafast") as writer:
        for img in source:
            writer.write(img)
    assert writer.frames_written == 24
    info = probe(path)
    assert (info.width, info.height, info.frame_count, info.fps) == (64, 48, 24, 10.0)
    decoded = [f.image for f in decode_segment(path)]
    assert len(decoded) == 24 and decoded[0].shape == (48, 64, 3)
    error = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(decoded, source)])
    assert error < 12  # lossy, but the same pictures
    assert len(keyframe_indices(path)) <= 3


def test_writer_keeps_fractional_frame_rates(tmp_path):
    path = tmp_path / "ntsc.mp4"
    with VideoWriter(path, 16, 16, 30000 / 1001, preset="ultrafast") as writer:
        for _ in range(3):
            writer.write(np.zeros((16, 16, 3), np.uint8))
    assert probe(path).fps == pytest.approx(29.97, abs=0.001)


@pytest.mark.parametrize("size", [(63, 48), (64, 47), (0, 48), (64, -2)])
def test_writer_rejects_odd_or_empty_sizes(tmp_path, size):
    with pytest.raises(InputError):
        VideoWriter(tmp_path / "x.mp4", *size, 30.0)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    "kwargs", [{"fps": 0.0}, {"crf": 60}, {"preset": "warp"}, {"gop": 0}, {"x264_params": "mbtree 0; rm"}])
def test_writer_rejects_bad_options(tmp_path, kwargs):
    with pytest.raises(InputError):
        VideoWriter(tmp_path / "x.mp4", **{"width": 16, "height": 16, "fps": 30.0, **kwargs})


def test_writer_in_missing_directory_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot create"):
        VideoWriter(tmp_path / "no" / "such" / "x.mp4", 16, 16, 30.0)


def test_exception_inside_with_block_removes_partial_file(tmp_path):
    path = tmp_path / "partial.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path, 16, 16, 30.0, preset="ultrafast") as writer:
            for _ in range(5):
                writer.write(np.zeros((16, 16, 3), np.uint8))
            assert path.exists()
            raise RuntimeError("a frame failed")
    assert not path.exists()


def test_writer_rejects_wrong_frame_shape(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "x.mp4", 16, 16, 30.0) as writer:
            writer.write(np.zeros((16, 18, 3), np.uint8))
    assert not (tmp_path / "x.mp4").exists()


def test_image_helpers(tmp_path):
    assert is_image_path("a.PNG") and is_image_path(Path("b.jpeg")) and is_image_path("c.webp")
    assert not is_image_path("clip.mp4") and not is_image_path("png")
    img = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", img)
    assert np.array_equal(read_image(tmp_path / "x.png"), img)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(MediaError):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputError):
        write_image(tmp_path / "x.mp4", img)


def test_read_image_drops_alpha(tmp_path):
    from PIL import Image

    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 6, 3) and out[0, 0].tolist() == [200, 0, 0]


def test_tiny_clip_fixture(tiny_clip):
    info = probe(tiny_clip)
    assert (info.width, info.height, info.fps, info.frame_count) == (64, 48, 10.0, 20)


def test_demo_clip_has_moving_detail(tiny_clip):
    frames = [f.image.astype(np.float32) for f in decode_segment(tiny_clip)]
    assert len(frames) == 20
    assert min(f.std() for f in frames) > 30  # not a flat colour
    assert min(np.abs(a - b).mean() for a, b in zip(frames, frames[1:])) > 1  # it moves
    assert np.abs(np.diff(frames[0], axis=1)).mean() > 5  # fine detail, not only smooth gradients


def test_demo_clip_is_deterministic(tmp_path):
    paths = [tmp_path / f"{name}.mp4" for name in "abc"]
    for path in paths:
        write_demo_clip(path, seconds=0.3, width=32, height=24, fps=10.0)
        list(decode_segment(path))  # decoding in between once exposed x264's nondeterminism
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()
    assert [demo_frame(i, 32, 24, 10.0).tobytes() for i in range(3)] == \
        [demo_frame(i, 32, 24, 10.0).tobytes() for i in range(3)]


@pytest.mark.parametrize("kwargs", [{"seconds": 0.0}, {"fps": -1.0}, {"width": 8}, {"width": 33}])
def test_demo_clip_rejects_bad_options(tmp_path, kwargs):
    with pytest.raises(InputError):
        write_demo_clip(tmp_path / "d.mp4", **{"seconds": 0.2, "width": 32, "height": 24, **kwargs})
    assert not (tmp_path / "d.mp4").exists()


def test_parse_size():
    assert parse_size("810x1440") == (810, 1440)
    assert parse_size(" 64X48 ") == (64, 48)
    for bad in ("", "810", "810x", "x1440", "0x10", "a x b", "10x10x10", "-4x8", "1.5x2"):
        with pytest.raises(InputError):
            parse_size(bad)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_cli_demo_clip_writes_a_video(tmp_path):
    out = tmp_path / "demo.mp4"
    done = run_cli("demo-clip", str(out), "--seconds", "0.5", "--size", "32x24", "--fps", "8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "32x24" in done.stdout and len(done.stdout.strip().splitlines()) == 1
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (32, 24, 4)


@pytest.mark.parametrize("size", ["32by24", "33x24"])
def test_cli_demo_clip_bad_size_is_one_line_error(tmp_path, size):
    out = tmp_path / "demo.mp4"
    done = run_cli("demo-clip", str(out), "--size", size, cwd=tmp_path)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "size" in done.stderr
    assert not out.exists()
