"""The synthetic demo clip: a deterministic painter of frames with moving detail, and the writer
that encodes them into a clip byte-identical run to run (the CPU demo's source and the tests')."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from core.atomic import atomic_path
from core.errors import InputError
from workers.video import VideoInfo, VideoWriter, probe

DETERMINISTIC_X264 = "mbtree=0"
"""x264 settings that make encodes byte-identical run to run. With the default mbtree on, x264's
AVX-512 code (Xeons of these machines) gives slightly different bytes each run from identical frames
(same quality); turning macroblock-tree rate control off removes that."""

def demo_frame(index: int, width: int, height: int, fps: float) -> np.ndarray:
    """Frame `index` of the demo clip (H x W x 3 uint8 RGB): deterministic, with moving detail."""
    t = index / fps
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    # Moving colour gradients as the background.
    r = 0.5 + 0.5 * np.sin(2 * np.pi * (u + 0.25 * t))
    g = 0.5 + 0.5 * np.sin(2 * np.pi * (v * 1.5 - 0.2 * t) + 1.0)
    b = 0.5 + 0.5 * np.sin(2 * np.pi * (u + v + 0.1 * t) + 2.0)
    img = np.stack([r, g, b], axis=-1) * 200 + 20
    # Rotating stripes inside a disc on the left.
    cx, cy, radius = 0.3 * width, 0.5 * height, 0.28 * min(width, height)
    angle = 0.8 * t
    along = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    stripes = np.sin(2 * np.pi * along / max(4.0, radius / 4)) > 0
    disc = (x - cx) ** 2 + (y - cy) ** 2 < radius ** 2
    img[disc] = np.where(stripes[disc, None], 235.0, 25.0) * np.array([1.0, 0.9, 0.7], np.float32)
    # Text-like rows of 3x5-cell glyphs scrolling left along the bottom.
    cell = max(1, min(width, height) // 60)
    glyphs = np.random.default_rng(2024).random((64, 5, 3)) > 0.45
    gx = (x + 40 * t * cell).astype(np.int64) // cell
    gy = (y - 0.8 * height).astype(np.int64) // cell
    band = (gy >= 0) & (gy < 2 * 6)
    glyph = (gx // 4 + 16 * (gy // 6)) % 64
    col, row = gx % 4, gy % 6
    ink = band & (col < 3) & (row < 5) & glyphs[glyph, np.clip(row, 0, 4), np.clip(col, 0, 2)]
    img[band] = 245.0
    img[ink] = 10.0
    # A checkerboard square moving on a circle on the right.
    side = 0.3 * min(width, height)
    qx = 0.7 * width + 0.12 * width * np.cos(1.3 * t) - side / 2
    qy = 0.4 * height + 0.15 * height * np.sin(1.3 * t) - side / 2
    inside = (x >= qx) & (x < qx + side) & (y >= qy) & (y < qy + side)
    square = max(2, int(side) // 8)
    checker = ((x - qx).astype(np.int64) // square + (y - qy).astype(np.int64) // square) % 2 == 0
    img[inside] = np.where(checker[inside, None], [250.0, 60.0, 60.0], [20.0, 20.0, 90.0])
    return np.clip(img, 0, 255).astype(np.uint8)


def write_demo_clip(path: Path | str, seconds: float = 2.0, width: int = 320, height: int = 240,
                    fps: float = 30.0) -> VideoInfo:
    """Write a synthetic H.264 clip with moving detail (gradients, rotating stripes, scrolling
    text-like blocks, a moving checker) and return its probe. The same arguments give the same bytes.

    Raises InputError for seconds/fps <= 0, sizes that are odd or under 16 pixels, or a path that
    cannot be created; MediaError if encoding fails; OSError when path's folder is unwritable.
    The file appears whole or not at all (core.atomic).
    """
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"demo clip length {seconds} s must be positive")
    if not (math.isfinite(fps) and fps > 0):
        raise InputError(f"fps {fps} must be positive")
    if width < 16 or height < 16:
        raise InputError(f"demo clip size {width}x{height} must be at least 16x16")
    frames = max(1, round(seconds * fps))
    with atomic_path(path) as tmp:  # whole or absent; a link at path is replaced, not followed
        with VideoWriter(tmp, width, height, fps, crf=18, preset="fast",
                         x264_params=DETERMINISTIC_X264) as writer:
            for i in range(frames):
                writer.write(demo_frame(i, width, height, fps))
    return probe(path)
