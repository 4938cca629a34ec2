"""Fidelity on known ground truth: area-downscale a crop by the model's scale, upscale it back with
the model and with bicubic, and score both against the crop (PSNR on RGB, SSIM on luma).

This is fidelity, not perceived quality: GAN models often score below bicubic on PSNR.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import InputError
from core.job import Fidelity

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_K1, _K2, _L = 0.01, 0.03, 255.0


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("images are empty")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of one shape, over all channels; inf when identical.

    Raises ValueError when the shapes differ or the images are empty.
    """
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_L * _L / mse)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma Y' of an [H, W, 3] RGB uint8 image as float64 in 0..255 (2-D input is returned
    as float64 unchanged). Raises ValueError for other shapes."""
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected [H, W, 3] RGB or [H, W] gray, got {image.shape}")
    rgb = image.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _gaussian_window() -> np.ndarray:
    offsets = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2
    weights = np.exp(-(offsets ** 2) / (2 * SSIM_SIGMA ** 2))
    return weights / weights.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering keeping only positions where the window fits ('valid')."""
    view = np.lib.stride_tricks.sliding_window_view(image, kernel.size, axis=0)
    rows = view @ kernel
    view = np.lib.stride_tricks.sliding_window_view(rows, kernel.size, axis=1)
    return view @ kernel


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004) of the luma of two uint8 images: 11x11 gaussian window with
    sigma 1.5, K1=0.01, K2=0.03, L=255, over the positions where the window fits.

    Raises ValueError when the shapes differ, and InputError when an image is smaller than 11x11.
    """
    _check_pair(a, b)
    x, y = luma(a), luma(b)
    if min(x.shape) < SSIM_WINDOW:
        raise InputError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
                         f"got {x.shape[1]}x{x.shape[0]}")
    g = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x ** 2
    var_y = _filter_valid(y * y, g) - mu_y ** 2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def can_score(width: int, height: int, scale: int) -> bool:
    """Whether a width x height crop is large enough for measure_fidelity at `scale`. Raises nothing."""
    side = min(width // scale * scale, height // scale * scale) if scale >= 1 else 0
    return side >= max(SSIM_WINDOW, scale)


def measure_fidelity(engine, crops: list[np.ndarray], scale: int) -> Fidelity:
    """Score `engine` (anything with upscale(frames, out_size)) on ground-truth crops.

    Each [H, W, 3] uint8 RGB crop is trimmed to a multiple of `scale`, area-downscaled by `scale`,
    upscaled back to its size by the engine and by bicubic (cv2.INTER_CUBIC); the means over crops
    of PSNR and SSIM against the crop are returned. Raises InputError when there are no crops, a
    crop is not RGB uint8, or a crop is too small to score (under 11 pixels or under `scale`).
    """
    import cv2

    if scale < 1:
        raise InputError(f"scale {scale} must be at least 1")
    if not crops:
        raise InputError("fidelity needs at least one frame")
    scores: list[tuple[float, float, float, float]] = []
    for crop in crops:
        if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise InputError("fidelity crops must be [H, W, 3] uint8 RGB arrays")
        h, w = crop.shape[0] // scale * scale, crop.shape[1] // scale * scale
        if not can_score(crop.shape[1], crop.shape[0], scale):
            raise InputError(f"a {crop.shape[1]}x{crop.shape[0]} crop is too small to score fidelity "
                             f"at x{scale} (needs {max(SSIM_WINDOW, scale)} pixels a side)")
        truth = np.ascontiguousarray(crop[:h, :w])
        low = cv2.resize(truth, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
        model = engine.upscale(low[None], out_size=(w, h))[0]
        bicubic = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        scores.append((psnr(model, truth), ssim(model, truth), psnr(bicubic, truth), ssim(bicubic, truth)))
    means = [float(np.mean(column)) for column in zip(*scores)]
    return Fidelity(frames=len(scores), psnr=means[0], ssim=means[1],
                    bicubic_psnr=means[2], bicubic_ssim=means[3])
