"""Crop keyframes -> one crop box per frame time.

Between two keyframes every field (x, y, width, height) is interpolated linearly by time; before
the first keyframe and after the last the nearest one holds. Values are rounded half up to whole
pixels, then the box is shifted (never shrunk) so it lies inside the frame. No keyframes means the
whole frame. Sizes are not forced even here: the pipeline deals with output sizes.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence

from core.errors import InputError
from core.job import Keyframe


@dataclass(frozen=True)
class CropBox:
    """A crop rectangle in source pixels, fully inside the frame."""

    x: int
    """Left edge."""
    y: int
    """Top edge."""
    width: int
    """Width in pixels (> 0)."""
    height: int
    """Height in pixels (> 0)."""


def _check_frame(frame_width: int, frame_height: int) -> None:
    if frame_width <= 0 or frame_height <= 0:
        raise InputError(f"frame size {frame_width}x{frame_height} must be positive")


def validate_keyframes(keyframes: Sequence[Keyframe], frame_width: int, frame_height: int) -> None:
    """Check keyframes against a frame size.

    Raises InputError for a non-positive frame size, a non-finite or negative time, unsorted or
    duplicate times, a zero/negative box size, a box larger than the frame, or a box entirely
    outside the frame.
    """
    _check_frame(frame_width, frame_height)
    previous: float | None = None
    for n, k in enumerate(keyframes, start=1):
        where = f"keyframe {n} (t={k.time:g} s)"
        if not math.isfinite(k.time) or k.time < 0:
            raise InputError(f"{where}: time must be a finite number of seconds >= 0")
        if previous is not None and k.time <= previous:
            kind = "duplicates" if k.time == previous else "comes before"
            raise InputError(f"{where}: time {kind} the previous keyframe's; keyframe times must increase")
        previous = k.time
        if k.width <= 0 or k.height <= 0:
            raise InputError(f"{where}: crop size {k.width}x{k.height} must be positive")
        if k.width > frame_width or k.height > frame_height:
            raise InputError(
                f"{where}: crop {k.width}x{k.height} is larger than the frame {frame_width}x{frame_height}")
        if k.x >= frame_width or k.y >= frame_height or k.x + k.width <= 0 or k.y + k.height <= 0:
            raise InputError(
                f"{where}: crop at ({k.x}, {k.y}) size {k.width}x{k.height} lies entirely outside "
                f"the frame {frame_width}x{frame_height}")


def _round(value: float) -> int:
    """Round half up (2.5 -> 3, -2.5 -> -2), independent of Python's banker's rounding."""
    return math.floor(value + 0.5)


def _box_at(keyframes: Sequence[Keyframe], times: Sequence[float], t: float,
            frame_width: int, frame_height: int) -> CropBox:
    """The box at t for keyframes already validated; `times` are the keyframes' times."""
    if not keyframes:
        return CropBox(0, 0, frame_width, frame_height)
    if not math.isfinite(t):
        raise InputError(f"crop time {t!r} must be a finite number of seconds")
    i = bisect.bisect_right(times, t)
    if i == 0:
        values = [keyframes[0].x, keyframes[0].y, keyframes[0].width, keyframes[0].height]
    elif i == len(keyframes):
        values = [keyframes[-1].x, keyframes[-1].y, keyframes[-1].width, keyframes[-1].height]
    else:
        a, b = keyframes[i - 1], keyframes[i]
        alpha = (t - a.time) / (b.time - a.time)
        values = [
            _round(va + (vb - va) * alpha)
            for va, vb in ((a.x, b.x), (a.y, b.y), (a.width, b.width), (a.height, b.height))
        ]
    x, y, width, height = values
    x = min(max(x, 0), frame_width - width)
    y = min(max(y, 0), frame_height - height)
    return CropBox(x, y, width, height)


def crop_box_at(keyframes: Sequence[Keyframe], t: float, frame_width: int, frame_height: int) -> CropBox:
    """The crop box at time t (seconds from the start of the source).

    Raises InputError for invalid keyframes (see validate_keyframes) or a non-finite t.
    """
    validate_keyframes(keyframes, frame_width, frame_height)
    return _box_at(keyframes, [k.time for k in keyframes], t, frame_width, frame_height)


def crop_boxes(keyframes: Sequence[Keyframe], times: Sequence[float],
               frame_width: int, frame_height: int) -> list[CropBox]:
    """One crop box per time in `times` (validates the keyframes once).

    Raises InputError for invalid keyframes (see validate_keyframes) or a non-finite time.
    """
    validate_keyframes(keyframes, frame_width, frame_height)
    key_times = [k.time for k in keyframes]
    return [_box_at(keyframes, key_times, t, frame_width, frame_height) for t in times]
