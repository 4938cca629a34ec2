"""Worker throughput: the same clip through both engines in one process, side by side.

    python benchmarks/throughput.py                 # small sizes, CPU-friendly (< 2 min on 2 cores)
    python benchmarks/throughput.py --full          # 540x960 crop -> 810x1440, 180 frames (GPU)

Prints a table (model, engine, device, frames, fps end to end, fps of the upscale stage alone) and
the fast/reference ratio per model. Each engine gets one untimed warm-up job first, so model load,
cuDNN autotuning and torch.compile stay out of the numbers; model load time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.job import Job, Keyframe  # noqa: E402
from store.objects import LocalDirectoryStore  # noqa: E402
from workers.pipeline import EngineKey, ModelCache, run_job  # noqa: E402
from workers.synthetic import demo_frame  # noqa: E402
from workers.video import VideoWriter  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    """Sizes of one benchmark setting."""

    source_size: tuple[int, int]
    """Generated source video width, height."""
    crop: Keyframe
    """The crop box, held for the whole clip."""
    output_size: tuple[int, int]
    """Output width, height."""
    start: float
    """Trim start (s)."""
    end: float
    """Trim end (s)."""
    fps: float
    """Source and output frame rate."""


FULL = Scenario((1280, 1024), Keyframe(0.0, 690, 60, 540, 960), (810, 1440), 3.0, 9.0, 30.0)
"""The E6 shape: 180 frames of a 540x960 crop to 810x1440."""
SMALL = Scenario((160, 120), Keyframe(0.0, 40, 20, 48, 64), (72, 96), 0.5, 2.1, 10.0)
"""A CPU-sized version: 16 frames of a 48x64 crop to 72x96."""


def write_source(path: Path, sc: Scenario, seconds: float) -> None:
    """A source at full size, fast: the demo clip's moving pattern drawn small and enlarged, plus a
    fine texture that drifts every frame so the model and encoder see real detail everywhere."""
    import cv2
    import numpy as np

    width, height = sc.source_size
    texture = np.random.default_rng(0).integers(0, 48, (height, width + 64, 3), dtype=np.uint8)
    with VideoWriter(path, width, height, sc.fps) as writer:
        for i in range(int(round(seconds * sc.fps))):
            small = demo_frame(i, max(width // 4, 16) // 2 * 2, max(height // 4, 16) // 2 * 2, sc.fps)
            base = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
            shift = (i * 3) % 64
            writer.write(cv2.add(base, texture[:, shift:shift + width]))


def run_engine(cache: ModelCache, storage: LocalDirectoryStore, sc: Scenario, model: str,
               engine: str, args: argparse.Namespace) -> dict:
    """One warm-up job on a short segment, then the timed job; returns a table row."""
    common = dict(user_id="bench", input_key="source.mp4", keyframes=(sc.crop,),
                  output_width=sc.output_size[0], output_height=sc.output_size[1], fps=sc.fps,
                  model=model, engine=engine, precision=args.precision, batch_size=args.batch_size,
                  device=args.device, weights=args.weights, compile="on" if args.compile else "off",
                  fidelity_samples=0)
    load = cache.get(EngineKey.of(Job(job_id="load", output_key="x.mp4", **common)))[1]
    warmup_end = min(sc.end, sc.start + 2 * args.batch_size / sc.fps)
    warm = run_job(Job(job_id="warmup", output_key="warmup.mp4", trim_start=sc.start,
                       trim_end=warmup_end, **common), storage, cache=cache)
    if not warm.ok:
        raise SystemExit(f"warm-up failed for {model}/{engine}: {warm.error}")
    result = run_job(Job(job_id=f"{model}-{engine}", output_key=f"{model}-{engine}.mp4",
                         trim_start=sc.start, trim_end=sc.end, **common), storage, cache=cache)
    if not result.ok:
        raise SystemExit(f"{model}/{engine} failed: {result.error}")
    return {"model": model, "engine": engine, "device": result.device_name,
            "precision": result.precision, "weights": result.weights_provenance,
            "frames": result.frames_out, "fps_end_to_end": result.fps_end_to_end,
            "fps_upscale": result.fps_upscale, "load_seconds": load,
            "stages": result.stages}


def print_table(rows: list[dict]) -> None:
    print(f"{'model':<14} {'engine':<10} {'device':<28} {'prec':<5} {'frames':>6} "
          f"{'fps e2e':>8} {'fps upscale':>11}")
    for r in rows:
        print(f"{r['model']:<14} {r['engine']:<10} {r['device'][:28]:<28} {r['precision']:<5} "
              f"{r['frames']:>6} {r['fps_end_to_end']:>8.2f} {r['fps_upscale']:>11.2f}")
    by_model: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["engine"]] = r
    for model, engines in by_model.items():
        if {"fast", "reference"} <= engines.keys():
            e2e = engines["fast"]["fps_end_to_end"] / engines["reference"]["fps_end_to_end"]
            up = engines["fast"]["fps_upscale"] / engines["reference"]["fps_upscale"]
            print(f"{model}: fast/reference = {e2e:.2f}x end to end, {up:.2f}x upscale stage")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="E6 size (540x960 -> 810x1440, 180 frames)")
    parser.add_argument("--models", default=None, help="comma list (default: x4plus,animevideov3 "
                        "full; animevideov3,general-x4v3 small)")
    parser.add_argument("--engines", default="reference,fast")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--weights", default="random", help="random (speed does not depend on "
                        "weights), auto, or a path")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    sc = FULL if args.full else SMALL
    models = (args.models or ("x4plus,animevideov3" if args.full else "animevideov3,general-x4v3")).split(",")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        storage = LocalDirectoryStore(tmp)
        source = Path(tmp) / "bench" / "source.mp4"
        source.parent.mkdir(parents=True)
        write_source(source, sc, seconds=sc.end + 0.5)
        cache = ModelCache()
        rows = [run_engine(cache, storage, sc, model, engine, args)
                for model in models for engine in args.engines.split(",")]
    print_table(rows)
    print(f"(benchmark wall time {time.perf_counter() - began:.0f} s)")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
