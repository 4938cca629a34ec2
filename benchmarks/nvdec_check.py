"""NVDEC against the CPU decoder on the E6 source (meant for a GPU with NVDEC): the same frames for
each trim, how close the on-card crop's RGB is to libswscale's, and how fast each decoder delivers
the job's crops (decode + crop + RGB, nothing else running).

    python benchmarks/nvdec_check.py [--source FILE] [--json-out FILE]

Without --source it writes the 1920x1080 30 fps source product_path.py uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.product_path import E6_SHAPE  # noqa: E402
from benchmarks.throughput import write_source  # noqa: E402
from workers.fidelity import psnr  # noqa: E402
from workers.nvdec import open_nvdec  # noqa: E402
from workers.video import decode_segment, probe  # noqa: E402

TRIMS = ((3.0, 9.0, 30.0), (3.0, 9.0, None), (0.0, 10.0, 24.0), (2.05, 4.41, 60.0))
"""(start, end, output fps) segments compared frame by frame."""


def compare(source: Path) -> dict:
    info = probe(source)
    crop = E6_SHAPE.crop
    box = (crop.x, crop.y, crop.width, crop.height)
    nv = open_nvdec(source, info, torch.device("cuda:0"), "fast")
    rows = []
    for start, end, fps in TRIMS:
        cpu = list(decode_segment(source, start, end, fps=fps))
        gpu = list(nv.frames(start, end, fps))
        same_times = [(f.index, f.time) for f in cpu] == [(f.index, f.time) for f in gpu]
        diffs, scores = [], []
        for c, g in list(zip(cpu, gpu))[::15]:
            a = c.crop(*box).astype(np.int16)
            b = g.crop(*box).cpu().numpy().astype(np.int16)
            diffs.append(int(np.abs(a - b).max()))
            scores.append(psnr(a.astype(np.uint8), b.astype(np.uint8)))
        rows.append({"trim": [start, end, fps], "cpu_frames": len(cpu), "nvdec_frames": len(gpu),
                     "same_frames_and_times": same_times, "rgb_max_diff": max(diffs),
                     "rgb_psnr_db": float(np.mean(scores))})
        print(json.dumps(rows[-1]), flush=True)
    return {"segments": rows, "speed": speed(source, nv, box)}


def speed(source: Path, nv, box) -> dict:
    """Crops per second of [3, 9) at 30 fps from each decoder, every crop materialised."""
    began = time.perf_counter()
    n_cpu = sum(1 for f in decode_segment(source, 3.0, 9.0, fps=30.0) if f.crop(*box) is not None)
    cpu = n_cpu / (time.perf_counter() - began)
    torch.cuda.synchronize()
    began = time.perf_counter()
    n_gpu = 0
    for frame in nv.frames(3.0, 9.0, 30.0):
        frame.crop(*box)
        n_gpu += 1
    torch.cuda.synchronize()
    gpu = n_gpu / (time.perf_counter() - began)
    out = {"cpu_crops_per_s": cpu, "nvdec_crops_per_s": gpu, "frames": n_gpu}
    print(json.dumps(out), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or Path(tmp) / "source.mp4"
        if not source.exists():
            write_source(source, E6_SHAPE, seconds=10.0)
        result = compare(source)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
