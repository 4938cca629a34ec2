"""PSNR, SSIM and the known-ground-truth fidelity measurement."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from core.errors import InputError
from core.job import Fidelity
from workers.fidelity import can_score, luma, measure_fidelity, psnr, ssim


def picture(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus a few edges: a stand-in for a video crop."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([120 + 80 * np.sin(x / (4 + c) + rng.uniform(0, 3)) * np.cos(y / (5 + c))
                    for c in range(3)], -1)
    img[h // 4:h // 2, w // 3:] = (20, 200, 90)
    return np.clip(img, 0, 255).astype(np.uint8)


def noisy(img: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, img.shape)
    return np.clip(img + noise, 0, 255).round().astype(np.uint8)


def test_identical_images_score_inf_and_one() -> None:
    img = picture()
    assert psnr(img, img.copy()) == math.inf
    assert ssim(img, img.copy()) == pytest.approx(1.0, abs=1e-12)


def test_psnr_known_value() -> None:
    a = np.full((4, 5, 3), 100, np.uint8)
    assert psnr(a, a + 1) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-9)  # mse = 1
    assert psnr(a, a + 16) == pytest.approx(10 * math.log10(255 ** 2 / 256), abs=1e-9)


def test_more_noise_scores_lower() -> None:
    img = picture()
    light, heavy = noisy(img, 5), noisy(img, 40)
    assert 30 < psnr(img, light) < 40
    assert psnr(img, heavy) < psnr(img, light) - 10
    assert 0 < ssim(img, heavy) < ssim(img, light) < 0.99


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    img, other = picture(), noisy(picture(), 20)
    expected = metrics.structural_similarity(
        luma(img), luma(other), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=255)
    assert ssim(img, other) == pytest.approx(expected, abs=1e-9)


def test_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(InputError, match="11x11"):
        ssim(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20, 3), np.uint8))


class RecordingEngine:
    """Upscales with a cv2 filter and remembers what it was asked."""

    def __init__(self, interpolation: int, blur: float = 0.0) -> None:
        self.interpolation, self.blur = interpolation, blur
        self.calls: list[tuple[tuple[int, ...], tuple[int, int]]] = []

    def upscale(self, frames: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
        self.calls.append((frames.shape, out_size))
        out = [cv2.resize(f, out_size, interpolation=self.interpolation) for f in frames]
        return np.stack([cv2.GaussianBlur(f, (0, 0), self.blur) if self.blur else f for f in out])


def test_bicubic_engine_scores_exactly_like_bicubic() -> None:
    crops = [picture(40, 48, 0), picture(37, 50, 1)]
    engine = RecordingEngine(cv2.INTER_CUBIC)
    result = measure_fidelity(engine, crops, scale=4)
    assert isinstance(result, Fidelity) and result.frames == 2
    assert (result.psnr, result.ssim) == (result.bicubic_psnr, result.bicubic_ssim)
    assert 15 < result.psnr < 50 and 0 < result.ssim < 1
    # the second crop is trimmed to 48x36 before the x4 area-downscale
    assert engine.calls == [((1, 10, 12, 3), (48, 40)), ((1, 9, 12, 3), (48, 36))]


def test_blurrier_engine_scores_below_bicubic() -> None:
    result = measure_fidelity(RecordingEngine(cv2.INTER_CUBIC, blur=2.0), [picture()], scale=2)
    assert result.psnr < result.bicubic_psnr and result.ssim < result.bicubic_ssim


def test_with_a_real_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.engines import create_engine
    from workers.models import load_model

    torch.set_num_threads(1)
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    engine = create_engine("fast", load_model("x2plus", weights="random"))
    result = measure_fidelity(engine, [picture(24, 22)], scale=2)
    assert result.frames == 1 and math.isfinite(result.psnr) and -1 <= result.ssim <= 1


def test_fidelity_input_errors() -> None:
    engine = RecordingEngine(cv2.INTER_CUBIC)
    with pytest.raises(InputError, match="at least one"):
        measure_fidelity(engine, [], scale=4)
    with pytest.raises(InputError, match="too small"):
        measure_fidelity(engine, [picture(40, 10)], scale=4)
    with pytest.raises(InputError, match="uint8"):
        measure_fidelity(engine, [picture().astype(np.float32)], scale=4)


def test_can_score_matches_what_measure_fidelity_accepts() -> None:
    engine = RecordingEngine(cv2.INTER_CUBIC)
    assert can_score(12, 14, 4) and not can_score(11, 40, 4) and can_score(11, 11, 1)
    measure_fidelity(engine, [picture(14, 12)], scale=4)
    with pytest.raises(InputError, match="too small"):
        measure_fidelity(engine, [picture(40, 11)], scale=4)
