"""Synthetic test pictures shared by the model, engine, fidelity and video tests."""

from __future__ import annotations

import cv2
import numpy as np


def scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB picture with a sharp-edged disc (not noise, not flat)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.05, 0.35, 3)
        img[..., c] = 128 + 60 * np.sin(fx * x + phase * 6) * np.cos(fy * y)
    img[(y - h * 0.5) ** 2 + (x - w * 0.4) ** 2 < (min(h, w) * 0.3) ** 2] = (230, 60, 40)
    img[:, int(w * 0.75):] *= 0.5
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.8).round(), 0, 255).astype(np.uint8)


# The numbered clip: frame k shows k in binary as 9 black/white 16x16 blocks (robust to H.264).
NW, NH, NFPS, NFRAMES, GOP, BLOCK, BITS = 96, 64, 30.0, 300, 40, 16, 9


def numbered_frame(k: int) -> np.ndarray:
    """Frame k of the numbered clip."""
    img = np.full((NH, NW, 3), 128, np.uint8)
    for bit in range(BITS):
        row, col = divmod(bit, NW // BLOCK)
        value = 255 if (k >> bit) & 1 else 0
        img[row * BLOCK:(row + 1) * BLOCK, col * BLOCK:(col + 1) * BLOCK] = value
    return img


def frame_number(img: np.ndarray) -> int:
    """The k a decoded numbered frame shows."""
    k = 0
    for bit in range(BITS):
        row, col = divmod(bit, NW // BLOCK)
        centre = img[row * BLOCK + 4:(row + 1) * BLOCK - 4, col * BLOCK + 4:(col + 1) * BLOCK - 4]
        k |= int(centre.mean() > 128) << bit
    return k
