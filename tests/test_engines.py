"""The fast engine against the reference engine (realesrgan.RealESRGANer) on the same weights.

On the CPU in fp32 at the model's own scale they are bit-identical when the fast engine runs one
frame per model call. With several frames per call oneDNN picks other convolution kernels, whose
sums round differently: the outputs then differ by at most one level on a few pixels.

Resizing to a size that is not the model's scale cannot be bit-exact: the reference resizes the
rounded uint8 result with cv2.INTER_LANCZOS4 (no antialiasing when shrinking), the fast engine
resizes the float result with antialiased bicubic before rounding. Measured on the smooth test
scene below (x4plus and animevideov3 converted from ncnn, x2plus random): shrinking to 1.5x (the
product's 540x960 -> 810x1440 ratio) gives 39-43 dB between the two and a mean absolute difference
of 1.2 levels, the differences sitting on sharp edges where Lanczos aliases; enlarging to a
non-integer size gives 49-54 dB and a mean under 0.4 levels. The bounds below (35 dB / 2 levels,
45 dB / 1 level) leave margin for other CPUs' rounding.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.errors import InputError
from tests.images import scene
from workers.engines import FastEngine, ReferenceEngine, create_engine
from workers.fidelity import psnr
from workers.models import LoadedModel, load_model


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    monkeypatch.setenv("BENCH_OFFLINE", "1")


@pytest.fixture()
def cache(ncnn_cache: Path) -> Path:
    return ncnn_cache


def real(name: str, cache: Path) -> LoadedModel:
    """The ncnn-derived weights (converted into the module's cache on first use)."""
    loaded = load_model(name, cache_dir=cache, allow_download=False)
    assert loaded.weights.provenance == "ncnn-derived"
    return loaded


def noise_frames(n: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name, h, w", [
    ("x2plus", 11, 15),         # odd sizes: RealESRGANer's reflect mod-pad for x2, cropped after
    ("animevideov3", 12, 16),
    ("general-x4v3", 9, 13),
    ("x4plus", 12, 16),
])
def test_fast_equals_reference_bit_exact_random_weights(name: str, h: int, w: int) -> None:
    model = load_model(name, weights="random")
    frames = noise_frames(2, h, w)
    expected = create_engine("reference", model).upscale(frames)
    got = create_engine("fast", model, batch_size=1).upscale(frames)
    scale = model.spec.scale
    assert expected.shape == got.shape == (2, h * scale, w * scale, 3)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", ["x4plus", "animevideov3"])
def test_fast_equals_reference_bit_exact_real_weights(name: str, cache: Path) -> None:
    model = real(name, cache)
    frames = np.stack([scene(12, 16, 0), scene(12, 16, 1)])
    expected = create_engine("reference", model).upscale(frames)
    np.testing.assert_array_equal(create_engine("fast", model, batch_size=1).upscale(frames), expected)
    assert psnr(expected[0], cv2.resize(frames[0], (64, 48), interpolation=cv2.INTER_CUBIC)) > 20


def test_batched_fast_differs_by_at_most_one_level(cache: Path) -> None:
    model = real("animevideov3", cache)
    frames = noise_frames(3, 12, 16)
    expected = create_engine("reference", model).upscale(frames)
    got = create_engine("fast", model, batch_size=4).upscale(frames)
    diff = np.abs(expected.astype(np.int16) - got)
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= diff.size // 1000


@pytest.mark.parametrize("name", ["x4plus", "animevideov3", "x2plus"])
def test_fast_close_to_reference_after_resizing(name: str, cache: Path) -> None:
    model = real(name, cache) if name != "x2plus" else load_model(name, weights="random")
    frames = np.stack([scene(24, 32, 0), scene(24, 32, 1)])
    ref = create_engine("reference", model)
    fast = create_engine("fast", model, batch_size=1)
    s = model.spec.scale
    for size, min_psnr, max_mean in (((48, 36), 35.0, 2.0), ((32 * s + 6, 24 * s + 5), 45.0, 1.0)):
        expected, got = ref.upscale(frames, out_size=size), fast.upscale(frames, out_size=size)
        assert expected.shape == got.shape == (2, size[1], size[0], 3)
        mean = float(np.abs(expected.astype(np.int16) - got).mean())
        assert psnr(expected, got) >= min_psnr and mean <= max_mean, (size, psnr(expected, got), mean)


def test_engines_leave_the_shared_model_alone() -> None:
    model = load_model("animevideov3", weights="random")
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    create_engine("reference", model).upscale(noise_frames(1, 8, 8))
    create_engine("fast", model).upscale(noise_frames(1, 8, 8))
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(model.module.parameters()).dtype == torch.float32


def test_engine_attributes_and_prepare() -> None:
    model = load_model("animevideov3", weights="random")
    fast = create_engine("fast", model, batch_size=2)
    ref = create_engine("reference", model)
    assert isinstance(fast, FastEngine) and isinstance(ref, ReferenceEngine)
    for engine, name in ((fast, "fast"), (ref, "reference")):
        assert (engine.name, engine.scale, engine.device.type, engine.precision) == (name, 4, "cpu", "fp32")
        assert engine.prepare(8, 8, (32, 32), compile=False) == 0.0
    out = fast.upscale(noise_frames(5, 6, 7), out_size=(10, 9))  # 5 frames in batches of 2
    assert out.shape == (5, 9, 10, 3)


def test_bad_requests_are_input_errors() -> None:
    model = load_model("animevideov3", weights="random")
    with pytest.raises(InputError, match="unknown engine 'turbo'"):
        create_engine("turbo", model)
    for precision in ("fp16", "bf16"):
        with pytest.raises(InputError, match="needs a CUDA device"):
            create_engine("fast", model, precision=precision)
    with pytest.raises(InputError, match="unknown precision"):
        create_engine("fast", model, precision="fp8")
    with pytest.raises(InputError, match="compile"):
        create_engine("reference", model).prepare(8, 8, (32, 32), compile=True)
    with pytest.raises(InputError, match="batch size"):
        create_engine("fast", model, batch_size=0)
    fast = create_engine("fast", model)
    with pytest.raises(InputError, match="uint8"):
        fast.upscale(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(InputError, match="uint8"):
        fast.upscale(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="positive"):
        fast.upscale(np.zeros((1, 8, 8, 3), dtype=np.uint8), out_size=(0, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["animevideov3", "x2plus"])
@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_fast_on_cuda_tracks_the_reference(name: str, precision: str) -> None:
    model = load_model(name, weights="random", device="cuda")
    frames = np.stack([scene(48, 64, seed) for seed in range(3)])
    ref = create_engine("reference", model, precision="fp16" if precision == "bf16" else precision)
    fast = create_engine("fast", model, precision=precision, batch_size=2)
    assert fast.precision == precision and fast.device.type == "cuda"
    expected, got = ref.upscale(frames), fast.upscale(frames)
    assert got.shape == expected.shape
    assert psnr(expected, got) > (30.0 if precision == "bf16" else 40.0), psnr(expected, got)
    size = (96, 72)
    resized = fast.upscale(frames, out_size=size)
    assert resized.shape == (3, 72, 96, 3)
    assert psnr(ref.upscale(frames, out_size=size), resized) > 30.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_fast_engine_matches_eager_on_cuda() -> None:
    model = load_model("animevideov3", weights="random", device="cuda")
    frames = np.stack([scene(32, 48, seed) for seed in range(3)])  # 3 frames: a short last batch
    eager = create_engine("fast", model, batch_size=2).upscale(frames, out_size=(72, 48))
    compiled = create_engine("fast", model, batch_size=2)
    assert compiled.prepare(32, 48, (72, 48), compile=True) > 0
    assert compiled.prepare(32, 48, (72, 48), compile=True) == 0.0  # once per shape
    got = compiled.upscale(frames, out_size=(72, 48))
    assert got.shape == eager.shape == (3, 48, 72, 3)
    assert psnr(eager, got) > 40.0
    compiled.upscale(frames[:, :16, :24], out_size=(36, 24))  # another shape runs eager


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_yuv_planes_from_the_device_match_libswscale() -> None:
    from workers.video import as_yuv420p

    model = load_model("animevideov3", weights="random", device="cuda")
    fast = create_engine("fast", model, batch_size=2)
    frames = np.stack([scene(32, 48, seed) for seed in range(2)])
    rgb = fast.upscale(frames, out_size=(72, 48))
    yuv = fast.upscale(frames, out_size=(72, 48), pixel_format="yuv420p")
    assert yuv.shape == (2, 72, 72) and fast.yuv_output
    for i in range(2):
        assert_planes_close(yuv[i], as_yuv420p(rgb[i]), height=48)


def test_yuv_planes_on_the_cpu_match_libswscale() -> None:
    from workers.engines import rgb_to_yuv420p
    from workers.video import as_yuv420p

    rgb = np.stack([scene(24, 32, seed) for seed in range(2)])
    planes = rgb_to_yuv420p(torch.from_numpy(rgb).permute(0, 3, 1, 2).float()).numpy()
    assert planes.shape == (2, 36, 32) and planes.dtype == np.uint8
    for i in range(2):
        assert_planes_close(planes[i], as_yuv420p(rgb[i]), height=24)


def assert_planes_close(ours: np.ndarray, swscale: np.ndarray, height: int) -> None:
    """Luma within rounding of libswscale; chroma as close as a 2x2 mean is to its chroma filter."""
    diff = np.abs(ours.astype(int) - swscale.astype(int))
    assert diff[:height].max() <= 1
    assert diff[height:].mean() < 1.0 and diff[height:].max() <= 6
