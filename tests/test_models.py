"""Model catalog, weight resolution (never touching the network), ncnn conversion, devices."""

from __future__ import annotations

import io
import shutil
import urllib.error
from pathlib import Path

import cv2
import pytest
import torch

from core.errors import InputError, WeightsError
from tests.images import scene
from workers import models, ncnn_weights
from workers.catalog import MODELS
from workers.fidelity import psnr
from workers.models import get_model_spec, load_model, resolve_device, resolve_weights

NCNN_MODELS = ("x4plus", "x4plus_anime_6B", "animevideov3")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any real download attempt fails the test; tests that need one install a fake."""
    monkeypatch.setenv("BENCH_OFFLINE", "1")

    def refuse(*_args, **_kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(models.urllib.request, "urlopen", refuse)


def test_catalog_has_the_five_models_with_official_urls() -> None:
    assert set(MODELS) == {"x4plus", "x2plus", "x4plus_anime_6B", "general-x4v3", "animevideov3"}
    for spec in MODELS.values():
        assert spec.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/")
        assert spec.url.endswith("/" + spec.filename)
    assert get_model_spec("x2plus").scale == 2
    assert {n for n, s in MODELS.items() if s.ncnn_name} == set(NCNN_MODELS)


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(InputError, match="unknown model 'x8'.*x4plus.*animevideov3"):
        get_model_spec("x8")
    with pytest.raises(InputError):
        load_model("x8", weights="random")


def test_missing_user_file_is_a_weights_error() -> None:
    with pytest.raises(WeightsError, match="/no/such/file"):
        resolve_weights("x4plus", weights="/no/such/file")


def test_random_weights_are_labelled_timing_only_and_deterministic() -> None:
    resolved = resolve_weights("general-x4v3", weights="random")
    assert resolved == models.ResolvedWeights(None, "random (timing-only)", None)
    a = load_model("general-x4v3", weights="random")
    b = load_model("general-x4v3", weights="random")
    assert a.weights.provenance == "random (timing-only)"
    for pa, pb in zip(a.module.parameters(), b.module.parameters()):
        assert torch.equal(pa, pb)
    state = torch.get_rng_state()
    load_model("animevideov3", weights="random")
    assert torch.equal(state, torch.get_rng_state()), "random init must not disturb the global RNG"


@pytest.mark.parametrize("name, size", [("x2plus", (5, 7)), ("general-x4v3", (6, 5))])
def test_random_models_map_to_the_model_scale(name: str, size: tuple[int, int]) -> None:
    torch.set_num_threads(1)
    loaded = load_model(name, weights="random")
    assert not loaded.module.training
    with torch.no_grad():
        out = loaded.module(torch.rand(1, 3, *size))
    assert out.shape == (1, 3, size[0] * loaded.spec.scale, size[1] * loaded.spec.scale)


def test_offline_without_source_says_so_and_offers_random(tmp_path: Path) -> None:
    for kwargs in ({"allow_download": False}, {}):  # BENCH_OFFLINE=1 is set by the fixture
        with pytest.raises(WeightsError, match="offline.*--weights random"):
            resolve_weights("general-x4v3", cache_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_ncnn_conversions_load_in_spandrel(ncnn_cache: Path) -> None:
    from spandrel import ModelLoader

    for name in NCNN_MODELS:
        spec = get_model_spec(name)
        resolved = resolve_weights(name, cache_dir=ncnn_cache, allow_download=False)
        assert resolved.provenance == "ncnn-derived"
        assert resolved.path == ncnn_cache / f"{name}.ncnn-derived.pth"
        assert resolved.sha256 == models.file_sha256(resolved.path)
        descriptor = ModelLoader().load_from_file(resolved.path)
        assert descriptor.scale == spec.scale
        assert type(descriptor.model).__name__ == spec.arch
        assert load_model(name, cache_dir=ncnn_cache, allow_download=False).weights == resolved


def test_cached_conversion_is_reused(ncnn_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "_convert_ncnn", fail)
    assert resolve_weights("animevideov3", cache_dir=ncnn_cache).provenance == "ncnn-derived"


def test_real_x4plus_weights_round_trip_far_better_than_random(ncnn_cache: Path) -> None:
    torch.set_num_threads(1)
    image = scene(12, 16)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255

    def round_trip(weights: str) -> float:
        module = load_model("x4plus", weights=weights, cache_dir=ncnn_cache).module
        with torch.no_grad():
            out = (module(x).clamp(0, 1)[0].permute(1, 2, 0) * 255).round().byte().numpy()
        back = cv2.resize(out, (16, 12), interpolation=cv2.INTER_AREA)
        return psnr(back, image)

    real, random = round_trip("auto"), round_trip("random")
    assert real > 20.0
    assert real - random > 10.0, (real, random)


def test_ncnn_bin_with_extra_bytes_is_rejected(tmp_path: Path) -> None:
    param, weights = ncnn_weights.ncnn_files("REALESRGAN_ANIMAVIDEOV3_UP4X")
    assert len(ncnn_weights.read_tensors(param, weights)) == 2 * 18 + 17
    bad = tmp_path / "bad.bin"
    bad.write_bytes(weights.read_bytes() + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="4 bytes left over"):
        ncnn_weights.read_tensors(param, bad)
    bad.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(WeightsError, match="ends early"):
        ncnn_weights.read_tensors(param, bad)


def test_user_file_is_loaded_and_checked_against_the_model(ncnn_cache: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.pth"
    shutil.copy(ncnn_cache / "animevideov3.ncnn-derived.pth", mine)
    loaded = load_model("animevideov3", weights=str(mine))
    assert loaded.weights.provenance == "user-file"
    assert loaded.weights.path == mine and loaded.weights.sha256 == models.file_sha256(mine)
    with pytest.raises(WeightsError, match="not the RRDBNet of model x4plus"):
        load_model("x4plus", weights=str(mine))
    with pytest.raises(WeightsError, match="num_conv=16 \\(want 32\\)"):
        load_model("general-x4v3", weights=str(mine))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot load weights file"):
        load_model("animevideov3", weights=str(junk))


def test_cached_official_file_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"truncated download")
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights("x4plus", cache_dir=tmp_path)


class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()


def test_download_is_cached_and_checksummed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_OFFLINE")
    buffer = io.BytesIO()
    torch.save(models.build_architecture(get_model_spec("general-x4v3"), seed=3).state_dict(), buffer)
    urls: list[str] = []

    def fake_urlopen(url: str, timeout: float):
        urls.append(url)
        assert timeout <= 30
        return _FakeResponse(buffer.getvalue())

    monkeypatch.setattr(models.urllib.request, "urlopen", fake_urlopen)
    resolved = resolve_weights("general-x4v3", cache_dir=tmp_path)
    assert urls == [get_model_spec("general-x4v3").url]
    assert resolved.provenance == "official"
    assert resolved.path == tmp_path / "realesr-general-x4v3.pth"
    assert resolved.path.read_bytes() == buffer.getvalue()
    assert resolve_weights("general-x4v3", cache_dir=tmp_path) == resolved and len(urls) == 1

    # x4plus has a known sha256: a download that does not match is refused and leaves nothing
    with pytest.raises(WeightsError, match="sha256"):
        resolve_weights("x4plus", cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["realesr-general-x4v3.pth"]


def test_unreachable_download_falls_through_to_ncnn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_OFFLINE")

    def unreachable(url: str, timeout: float):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(models.urllib.request, "urlopen", unreachable)
    assert resolve_weights("animevideov3", cache_dir=tmp_path).provenance == "ncnn-derived"
    with pytest.raises(WeightsError, match="could not be downloaded \\(Name or service not known\\)"):
        resolve_weights("x2plus", cache_dir=tmp_path)


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    for bad in ("gpu", "cuda:x", "cuda:99"):
        with pytest.raises(InputError):
            resolve_device(bad)
    name = models.device_name(torch.device("cpu"))
    assert isinstance(name, str) and name.strip() == name and name


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_an_input_error() -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda:0")
