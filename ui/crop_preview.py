"""The Run page's crop preview: a few source frames with the plan's crop boxes drawn on them.
Pure (no st.* calls); source frames are decoded through workers.video, imported when needed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.plan import Plan
from core.errors import InputError
from ui.run_form import SourceInfo

BOX_COLOURS = ((255, 40, 40), (40, 220, 40), (60, 120, 255), (255, 200, 0))
"""Outline colours of the crop boxes, one per preview frame."""


def preview_times(plan: Plan, info: SourceInfo, count: int = 3) -> list[float]:
    """Up to `count` source times evenly spread from the first frame of the earliest clip to the
    last frame of the latest one (frame times inside the source)."""
    last = max(0, math.ceil(info.duration * info.fps - 1e-9) - 1)
    first_frame = min(last, math.ceil(min(c.start for c in plan.clips) * info.fps - 1e-9))
    last_frame = min(last, max(first_frame, math.ceil(max(c.end for c in plan.clips) * info.fps - 1e-9) - 1))
    steps = max(1, count - 1)
    frames = sorted({first_frame + (last_frame - first_frame) * i // steps for i in range(count)})
    return [round(f / info.fps, 6) for f in frames]


def draw_box(image: np.ndarray, box: Any, colour: tuple[int, int, int]) -> np.ndarray:
    """A copy of an RGB frame with the box (x, y, width, height) outlined."""
    picture = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    thickness = max(1, min(picture.size) // 120)
    draw.rectangle([box.x, box.y, box.x + box.width - 1, box.y + box.height - 1], outline=colour,
                   width=thickness)
    return np.asarray(picture)


def source_frame(kind: str, source: str, info: SourceInfo, t: float) -> np.ndarray:
    """The source frame shown at time t (RGB). Raises MediaError/InputError for a bad file."""
    if kind == "demo":
        from workers.synthetic import demo_frame

        return demo_frame(round(t * info.fps), info.width, info.height, info.fps)
    from workers.video import decode_segment

    end = min(info.duration, t + 1.0 / info.fps)
    for frame in decode_segment(Path(source).expanduser(), t, end):
        return frame.image
    raise InputError(f"no frame at {t:g} s in {source}")


def crop_preview(kind: str, source: str, plan: Plan, info: SourceInfo,
                 count: int = 3) -> list[tuple[float, Any, np.ndarray]]:
    """(time, crop box, frame with the box drawn) for a few times of the source; the box is the whole
    frame when the plan has no keyframes. Raises InputError for keyframes that do not fit the frame,
    MediaError for an unreadable file."""
    from workers.crop import crop_boxes

    times = preview_times(plan, info, count)
    boxes = crop_boxes(plan.keyframes, times, info.width, info.height)
    out = []
    for i, (t, box) in enumerate(zip(times, boxes)):
        frame = source_frame(kind, source, info, t)
        out.append((t, box, draw_box(frame, box, BOX_COLOURS[i % len(BOX_COLOURS)])))
    return out
