"""Video and image I/O with PyAV and Pillow: probe, exact trimmed decode, H.264 encode.

Times are seconds from the first frame of the video stream (its start_time is subtracted), so a
trim [3.0, 9.0) of a 30 fps clip is exactly frames 90..269 whatever the container's offset.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator, TypeVar

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InputError, MediaError
from core.job import X264_PRESETS, output_frame_count

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""File suffixes treated as still images (case-insensitive)."""


_TIME_TOLERANCE = 1e-6
"""Seconds of slack when comparing frame times with trim bounds (float vs exact pts)."""

_X264_PARAMS = re.compile(r"[a-z0-9_-]+=[A-Za-z0-9_.,+-]+(:[a-z0-9_-]+=[A-Za-z0-9_.,+-]+)*")
"""Shape of an x264-params string."""

NVENC_PRESETS = {"ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p3",
                 "medium": "p4", "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7"}
"""libx264 preset -> the NVENC speed preset of the same intent (p1 fastest .. p7 best)."""

_NOT_VIDEO_CODECS = ("ansi",)
"""Codecs FFmpeg 'finds' in text files; treated as 'not a video'."""


@dataclass(frozen=True)
class VideoInfo:
    """What probe() learns about a video's first video stream."""

    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: float
    """Average frame rate (frames per second)."""
    frame_count: int
    """Number of frames; estimated from duration x fps when the container does not store it."""
    duration: float
    """Duration of the video stream in seconds."""
    codec: str
    """Codec name as FFmpeg calls it, e.g. 'h264'."""
    rotation: int = 0
    """Display rotation in degrees counterclockwise (0, 90, 180 or -90; phone videos carry it as
    a display matrix). width and height are the displayed size, after this rotation."""


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame of a trimmed segment; its pixels are converted to RGB only when asked,
    and crop() converts just the crop."""

    index: int
    """0-based position of the frame within the decoded segment."""
    time: float
    """Presentation time in seconds from the start of the video (not of the segment); for a
    segment resampled to an output rate, the output frame's time."""
    picture: av.VideoFrame
    """The decoder's frame (pixels in the stream's own format and orientation)."""

    @property
    def image(self) -> np.ndarray:
        """Pixels, H x W x 3 uint8 RGB, as displayed (the stream's rotation applied)."""
        return _displayed(self.picture)

    def crop(self, x: int, y: int, width: int, height: int) -> np.ndarray:
        """image[y:y+height, x:x+width], converting only that part to RGB where the frame is
        yuv420p and unrotated (bit-identical to converting the whole frame: libswscale converts
        the even-aligned planes around the box)."""
        picture = self.picture
        x0, y0 = x // 2 * 2, y // 2 * 2
        x1, y1 = min(picture.width, (x + width + 1) // 2 * 2), min(picture.height, (y + height + 1) // 2 * 2)
        if (y1 - y0) % 4:  # packed yuv420p holds each chroma plane as whole rows of the width
            y1, y0 = (y1 + 2, y0) if y1 + 2 <= picture.height else (y1, y0 - 2)
        if picture.format.name != "yuv420p" or _quarter_turns(picture.rotation) or y0 < 0:
            return np.ascontiguousarray(self.image[y:y + height, x:x + width])
        w, h = x1 - x0, y1 - y0
        planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size) for p in picture.planes]
        packed = np.empty((h * 3 // 2, w), np.uint8)
        packed[:h] = planes[0][y0:y1, x0:x1]
        packed[h:h + h // 4] = planes[1][y0 // 2:y1 // 2, x0 // 2:x1 // 2].reshape(h // 4, w)
        packed[h + h // 4:] = planes[2][y0 // 2:y1 // 2, x0 // 2:x1 // 2].reshape(h // 4, w)
        rgb = av.VideoFrame.from_ndarray(packed, format="yuv420p").to_ndarray(format="rgb24")
        return np.ascontiguousarray(rgb[y - y0:y - y0 + height, x - x0:x - x0 + width])


def _media_error(path: Path, exc: BaseException) -> MediaError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return MediaError(f"cannot read video {path.name}: {' '.join(str(reason).split())}")


def _open_video(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open path and return the container and its first video stream. Raises MediaError."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise _media_error(path, exc) from exc
    streams = container.streams.video
    if not streams or streams[0].codec_context.name in _NOT_VIDEO_CODECS:
        container.close()
        raise MediaError(f"cannot read video {path.name}: it has no video stream")
    return container, streams[0]


def _start_pts(stream: av.video.stream.VideoStream) -> int:
    return stream.start_time if stream.start_time is not None else 0


def _quarter_turns(rotation: float | int | None) -> int:
    """A display rotation in degrees as counterclockwise quarter turns (0..3)."""
    return int(round((rotation or 0) / 90.0)) % 4


def _displayed(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as RGB pixels the way players show it (display rotation applied)."""
    image = frame.to_ndarray(format="rgb24")
    turns = _quarter_turns(frame.rotation)
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _first_frame_rotation(container: av.container.InputContainer,
                          stream: av.video.stream.VideoStream) -> int:
    """The display rotation of the stream, read from its first decodable frame (0 when none)."""
    try:
        for frame in container.decode(stream):
            return {0: 0, 1: 90, 2: 180, 3: -90}[_quarter_turns(frame.rotation)]
    except (av.FFmpegError, ValueError):
        return 0
    return 0


def probe(path: Path | str) -> VideoInfo:
    """Size, frame rate, frame count, duration and codec of a video file.

    Raises MediaError when the file is missing, corrupt, not a video, or has no frame rate.
    """
    path = Path(path)
    container, stream = _open_video(path)
    try:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise MediaError(f"cannot read video {path.name}: it has no frame rate")
        fps = float(rate)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frame_count = stream.frames or round(duration * fps)
        if duration <= 0 and frame_count > 0:
            duration = frame_count / fps
        if frame_count <= 0 or stream.width <= 0 or stream.height <= 0:
            raise MediaError(f"cannot read video {path.name}: it has no frames")
        width, height, codec = stream.width, stream.height, stream.codec_context.name
        rotation = _first_frame_rotation(container, stream)
        if rotation in (90, -90):
            width, height = height, width
        return VideoInfo(width=width, height=height, fps=fps, frame_count=int(frame_count),
                         duration=duration, codec=codec, rotation=rotation)
    finally:
        container.close()


def check_trim(info: VideoInfo, start: float | None, end: float | None) -> tuple[float, float]:
    """Resolve a trim range against a video: None means its start (0) or its end (duration).

    Raises InputError when start < 0, end <= start, start >= duration, or end lies more than half
    a frame past the end of the video.
    """
    start = 0.0 if start is None else float(start)
    end = info.duration if end is None else float(end)
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError(f"trim range {start}..{end} s must be finite numbers")
    if start < 0:
        raise InputError(f"trim start {start:g} s is before the start of the video")
    if start >= info.duration:
        raise InputError(f"trim start {start:g} s is at or past the end of the video ({info.duration:g} s)")
    if end <= start:
        raise InputError(f"trim end {end:g} s must be after trim start {start:g} s")
    if end > info.duration + 0.5 / info.fps:
        raise InputError(f"trim end {end:g} s is past the end of the video ({info.duration:g} s)")
    return start, end


def decode_segment(path: Path | str, start: float | None = None, end: float | None = None,
                   fps: float | None = None) -> Iterator[DecodedFrame]:
    """Yield the frames of [start, end), in order, as displayed.

    fps None: exactly the source frames whose presentation time lies in [start, end).
    fps given: the segment resampled by timestamp to that rate, as ffmpeg's fps filter does:
    output frame k shows the source frame nearest to start + k / fps, so the segment keeps its
    duration whatever the source's rate (25, 29.97, 60 fps or variable). A source frame is shown
    at most until its own duration (the gap to the next frame) ends: a source that stops early
    yields fewer frames.

    Seeks backward to the keyframe at or before start, decodes and drops frames before start, and
    stops at end. Raises MediaError for a file that cannot be read or corrupt data mid-stream,
    InputError for a trim range check_trim rejects or a bad fps (both before the first frame is
    yielded, except mid-stream corruption).
    """
    path = Path(path)
    info = probe(path)
    start, end = check_trim(info, start, end)
    if fps is None:
        return _decode(path, start, end)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"output fps {fps} must be a positive number")
    return resample(_decode(path, *segment_window(start, end, fps, info.fps)), start, end,
                    float(fps), info.fps)


def segment_window(start: float, end: float, fps: float | None, source_fps: float) -> tuple[float, float]:
    """The source times [from, to) a segment decodes: [start, end) itself, or, resampled to fps,
    from one source frame earlier (the nearest frame to start may precede it)."""
    return (start if fps is None else start - 1.0 / source_fps), end


def in_window(time: float, window: tuple[float, float]) -> bool:
    """Whether a frame at this presentation time belongs to the decoded window [from, to)."""
    return window[0] - _TIME_TOLERANCE <= time < window[1] - _TIME_TOLERANCE


FrameT = TypeVar("FrameT")


def resample(frames: Iterator[FrameT], start: float, end: float, fps: float,
             source_fps: float) -> Iterator[FrameT]:
    """Nearest-in-time sampling of decoded source frames (any frame dataclass with index and
    time) at output times start + k / fps (decode_segment's rule, for every decoder)."""
    count = output_frame_count(start, end, fps)
    previous: DecodedFrame | None = None
    upcoming = next(frames, None)
    frame_gap = 1.0 / source_fps
    for k in range(count):
        t = start + k / fps
        while upcoming is not None and upcoming.time <= t + _TIME_TOLERANCE:
            previous, upcoming = upcoming, next(frames, None)
        candidates = [f for f in (previous, upcoming) if f is not None]
        if not candidates:
            return
        chosen = min(candidates, key=lambda f: (abs(f.time - t), f.time))
        if upcoming is None and t > chosen.time + frame_gap - _TIME_TOLERANCE:
            return  # past the end of the last source frame: the source stopped early
        yield dataclasses.replace(chosen, index=k, time=t)


@dataclass(frozen=True)
class StreamIndex:
    """What the demuxer alone says about a video stream, without decoding it."""

    times: tuple[float, ...]
    """Presentation time of every frame in display order, seconds from the first frame (the
    times decode_segment gives the decoded frames)."""
    pixel_format: str
    """The decoder's pixel format as FFmpeg names it, e.g. 'yuv420p'."""


def stream_index(path: Path | str) -> StreamIndex:
    """Read the presentation times of all frames from the packets (no decoding). Raises
    MediaError for a file that cannot be read."""
    path = Path(path)
    container, stream = _open_video(path)
    try:
        base, time_base = _start_pts(stream), stream.time_base
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
        return StreamIndex(tuple(float((p - base) * time_base) for p in pts),
                           stream.codec_context.pix_fmt or "")
    except (av.FFmpegError, ValueError) as exc:
        raise _media_error(path, exc) from exc
    finally:
        container.close()


def _decode(path: Path, start: float, end: float) -> Iterator[DecodedFrame]:
    container, stream = _open_video(path)
    try:
        stream.thread_type = "AUTO"
        base = _start_pts(stream)
        time_base = stream.time_base
        frames = _frames_from(container, stream, path, base, start)
        index = 0
        for frame in frames:
            t = float((frame.pts - base) * time_base)
            if not in_window(t, (start, end)):
                if t < start:
                    continue
                break
            if frame.is_corrupt:
                raise MediaError(f"cannot read video {path.name}: corrupt frame at {t:.3f} s")
            yield DecodedFrame(index=index, time=t, picture=frame)
            index += 1
    finally:
        container.close()


def _frames_from(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                 path: Path, base: int, start: float) -> Iterator[av.VideoFrame]:
    """Decoded frames (with pts) from the keyframe at or before start; if the demuxer's seek
    overshoots start, decode again from the beginning. Raises MediaError on bad data."""
    seeked = start > 0
    if seeked:
        try:
            container.seek(base + int(Fraction(start) / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise _media_error(path, exc) from exc
    decoded = container.decode(stream)
    first = True
    while True:
        try:
            frame = next(decoded)
        except StopIteration:
            return
        except (av.FFmpegError, ValueError) as exc:
            raise _media_error(path, exc) from exc
        if frame.pts is None:
            raise MediaError(f"cannot read video {path.name}: frame without a timestamp")
        if first and seeked and float((frame.pts - base) * stream.time_base) > start + _TIME_TOLERANCE:
            try:
                container.seek(base, stream=stream, backward=True)
            except av.FFmpegError as exc:
                raise _media_error(path, exc) from exc
            decoded, seeked = container.decode(stream), False
            continue
        first = False
        yield frame


def _container_format(path: Path) -> str:
    return {".mov": "mov", ".mkv": "matroska"}.get(path.suffix.lower(), "mp4")


_NVENC_OPENS: dict[tuple[int, int], bool] = {}


def nvenc_opens(width: int, height: int) -> bool:
    """Whether this process can open NVENC (h264_nvenc) at this size: the card must have the
    encoder (T4, L4, A10, L40S do; H100, H200 do not) and libcuda must load. Tried once per size by
    opening a codec context; raises nothing."""
    key = (width, height)
    if key not in _NVENC_OPENS:
        try:
            context = av.CodecContext.create("h264_nvenc", "w")
            context.width, context.height, context.pix_fmt = width, height, "yuv420p"
            context.time_base = Fraction(1, 30)
            context.open()
            context.close()
            _NVENC_OPENS[key] = True
        except Exception:  # noqa: BLE001 - any failure to open means "use libx264"
            _NVENC_OPENS[key] = False
    return _NVENC_OPENS[key]


def resolve_encoder(encoder: str, width: int, height: int) -> str:
    """The FFmpeg encoder a job's setting gives: 'libx264' -> libx264; 'nvenc' -> h264_nvenc
    (InputError when it does not open here); 'auto' -> h264_nvenc where it opens, else libx264."""
    if encoder == "libx264":
        return "libx264"
    if encoder not in ("nvenc", "auto"):
        raise InputError(f"unknown encoder {encoder!r}; choose libx264, nvenc or auto")
    if nvenc_opens(width, height):
        return "h264_nvenc"
    if encoder == "nvenc":
        raise InputError("NVENC (h264_nvenc) does not open on this machine (no NVENC on this card "
                         "or no CUDA driver); use --encoder libx264 or auto")
    return "libx264"


class VideoWriter:
    """H.264 yuv420p writer (libx264, or NVENC where asked), MP4 unless the suffix says
    .mov/.mkv. A context manager: an exception inside the with-block removes the partial file.

    Frames are new pictures (pict_type NONE), so the encoder chooses keyframes by its GOP.
    """

    def __init__(self, path: Path | str, width: int, height: int, fps: float, crf: int = 18,
                 preset: str = "medium", gop: int | None = None, x264_params: str | None = None,
                 encoder: str = "libx264"):
        """Open path for writing.

        gop: keyframe interval in frames; None keeps the encoder's default.
        x264_params: extra libx264 settings as 'key=value:key=value', e.g. 'mbtree=0'.
        encoder: 'libx264' or 'h264_nvenc' (resolve_encoder picks one); NVENC gets the preset of
        the same intent (NVENC_PRESETS) and constant quality at crf.
        Raises InputError for odd or non-positive sizes, fps <= 0, crf outside 0..51, an unknown
        preset or encoder, a gop < 1, malformed x264_params, or a path that cannot be created.
        """
        self.path = Path(path)
        if width <= 0 or height <= 0:
            raise InputError(f"video size {width}x{height} must be positive")
        if width % 2 or height % 2:
            raise InputError(f"video size {width}x{height} must be even in both directions (yuv420p)")
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise InputError(f"fps {fps} must be a positive number")
        if not 0 <= crf <= 51:
            raise InputError(f"crf {crf} must be between 0 and 51")
        if preset not in X264_PRESETS:
            raise InputError(f"unknown x264 preset {preset!r}; choose one of {', '.join(X264_PRESETS)}")
        if gop is not None and gop < 1:
            raise InputError(f"gop {gop} must be at least 1 frame")
        if x264_params is not None and not _X264_PARAMS.fullmatch(x264_params):
            raise InputError(f"x264 params {x264_params!r} must look like key=value:key=value")
        if encoder not in ("libx264", "h264_nvenc"):
            raise InputError(f"unknown encoder {encoder!r}; choose libx264 or h264_nvenc")
        self.encoder, self.preset = encoder, preset
        self.width, self.height = width, height
        self.frames_written = 0
        if not self.path.parent.is_dir():
            raise InputError(f"cannot create video {self.path}: no directory {self.path.parent}")
        fmt = _container_format(self.path)
        try:
            self._container = av.open(str(self.path), "w", format=fmt,
                                      options={"movflags": "+faststart"} if fmt in ("mp4", "mov") else {})
        except (av.FFmpegError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(f"cannot create video {self.path}: {reason}") from exc
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(encoder, rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / rate
        if gop is not None:
            self._stream.codec_context.gop_size = gop
        if encoder == "h264_nvenc":
            options = {"preset": NVENC_PRESETS[preset], "rc": "vbr", "cq": str(crf), "b": "0"}
        else:
            options = {"crf": str(crf), "preset": preset}
            if x264_params:
                options["x264-params"] = x264_params
        self._stream.options = options
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Encode one frame: H x W x 3 uint8 RGB, or yuv420p planes as one (H * 3 / 2) x W uint8
        array (Y, then U, then V), which the encoder takes without a conversion.

        Raises ValueError for a frame of the wrong shape or dtype, MediaError if encoding fails.
        """
        if self._closed:
            raise ValueError("write() on a closed VideoWriter")
        if frame.dtype == np.uint8 and frame.shape == (self.height * 3 // 2, self.width):
            pixel_format = "yuv420p"
        elif frame.dtype == np.uint8 and frame.shape == (self.height, self.width, 3):
            pixel_format = "rgb24"
        else:
            raise ValueError(f"frame {frame.shape} {frame.dtype} is neither ({self.height}, "
                             f"{self.width}, 3) RGB nor ({self.height * 3 // 2}, {self.width}) yuv420p uint8")
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=pixel_format)
        picture.pict_type = av.video.frame.PictureType.NONE
        picture.pts = self.frames_written
        picture.time_base = self._stream.codec_context.time_base
        self._mux(picture)
        self.frames_written += 1

    def _mux(self, picture: av.VideoFrame | None) -> None:
        try:
            for packet in self._stream.encode(picture):
                self._container.mux(packet)
        except av.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise MediaError(f"cannot encode video {self.path.name}: {reason}") from exc

    def close(self) -> None:
        """Flush the encoder and finish the file. Raises MediaError if that fails (file removed)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._mux(None)
            self._container.close()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop writing and remove the partial file. Raises nothing."""
        self._closed = True
        try:
            self._container.close()
        except Exception:  # the file is being thrown away; its close error does not matter
            pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def as_yuv420p(frame: np.ndarray) -> np.ndarray:
    """An H x W x 3 RGB frame as the yuv420p planes libswscale gives the encoder ((H * 3 / 2) x W);
    planes pass through unchanged."""
    if frame.ndim == 2:
        return frame
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return picture.reformat(format="yuv420p").to_ndarray()


def decoded_planes(path: Path | str, indices: set[int]) -> dict[int, np.ndarray]:
    """yuv420p planes of the frames at these 0-based positions of a video (for encode PSNR).
    Raises MediaError for a file that cannot be read."""
    path = Path(path)
    container, stream = _open_video(path)
    found: dict[int, np.ndarray] = {}
    try:
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index in indices:
                found[index] = frame.reformat(format="yuv420p").to_ndarray()
                if len(found) == len(indices):
                    break
    except (av.FFmpegError, ValueError) as exc:
        raise _media_error(path, exc) from exc
    finally:
        container.close()
    return found


def is_image_path(path: Path | str) -> bool:
    """Whether the path names a still image by its suffix (png, jpg, jpeg, webp, bmp)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: Path | str) -> np.ndarray:
    """Read an image as H x W x 3 uint8 RGB (EXIF rotation applied, alpha dropped).

    Raises MediaError when the file is missing or not a readable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MediaError(f"cannot read image {path.name}: {' '.join(reason.split())}") from exc


def write_image(path: Path | str, image: np.ndarray) -> None:
    """Write an H x W x 3 uint8 RGB image; the format follows the suffix.

    Raises InputError for a suffix that is not an image type or a path that cannot be written,
    ValueError for an array that is not H x W x 3 uint8.
    """
    path = Path(path)
    if not is_image_path(path):
        raise InputError(f"image output {path.name} must end in one of {', '.join(IMAGE_SUFFIXES)}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} {image.dtype} is not H x W x 3 uint8")
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(path)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise InputError(f"cannot write image {path}: {exc.strerror or exc}") from exc
