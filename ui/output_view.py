"""The Compare page's outputs, pure (no st.* calls; unit-tested directly): which runs stored an
output video, the clips whose runs used several models or engines (shown side by side), fidelity as
text, and one zoomable frame of an output (decoded through workers.video, imported when needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from core.errors import InputError
from core.status import SUCCEEDED


def runs_with_output(runs: pd.DataFrame) -> pd.DataFrame:
    """Succeeded runs that stored an output video."""
    if runs.empty or "output_key" not in runs:
        return runs.iloc[0:0]
    return runs[(runs["status"] == SUCCEEDED) & runs["output_key"].notna()]


def side_by_side_clips(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Clip -> its runs with outputs (one per model/engine, first run of each) for the clips where
    runs used more than one model or engine."""
    done = runs_with_output(runs)
    out = {}
    for clip, group in done.groupby("clip", sort=False):
        firsts = group.assign(_variant=group["model"].fillna("?") + "/" + group["engine"].fillna("?"))
        firsts = firsts.drop_duplicates("_variant").drop(columns="_variant")
        if len(firsts) > 1:
            out[str(clip)] = firsts
    return out


def fidelity_text(row: Mapping[str, Any]) -> str:
    """'PSNR 31.2 dB, SSIM 0.912 (bicubic 29.8 dB, 0.880)' or what is known of it."""
    def num(key: str, spec: str) -> str | None:
        value = row.get(key)
        return None if value is None or pd.isna(value) else format(float(value), spec)

    psnr, ssim = num("psnr", ".1f"), num("ssim", ".3f")
    if psnr is None and ssim is None:
        return "no fidelity measured"
    text = f"PSNR {psnr or '—'} dB, SSIM {ssim or '—'}"
    b_psnr, b_ssim = num("bicubic_psnr", ".1f"), num("bicubic_ssim", ".3f")
    if b_psnr is not None or b_ssim is not None:
        text += f" (bicubic {b_psnr or '—'} dB, {b_ssim or '—'})"
    return text


def read_frame(path: Path | str, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video as an RGB array. Raises InputError past the last frame,
    MediaError for an unreadable file."""
    from workers.video import decode_segment

    if index < 0:
        raise InputError(f"frame {index} must not be negative")
    for frame in decode_segment(path):
        if frame.index == index:
            return frame.image
    raise InputError(f"the video has no frame {index}")


def crop_region(image: np.ndarray, zoom: float, centre_x: float, centre_y: float) -> np.ndarray:
    """The part of the image shown at `zoom` (1 = whole image, 4 = a quarter of each side) around
    the centre given as fractions (0..1) of the width and height, kept inside the image."""
    height, width = image.shape[:2]
    zoom = max(1.0, float(zoom))
    w, h = max(1, round(width / zoom)), max(1, round(height / zoom))
    left = min(max(0, round(centre_x * width - w / 2)), width - w)
    top = min(max(0, round(centre_y * height - h / 2)), height - h)
    return image[top:top + h, left:left + w]


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """The image with each pixel repeated factor x factor times (nearest neighbour), so a zoomed
    crop shows the model's pixels instead of the browser's smoothing. factor < 2 returns it as is."""
    if factor < 2:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
