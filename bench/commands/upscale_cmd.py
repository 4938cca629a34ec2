"""Upscale one local video or image with a Real-ESRGAN model (the worker, run in this process).

INPUT may be a video (OUTPUT is an H.264 MP4) or an image (OUTPUT is an image). Without --size the
output is the model's own scale of the crop. A failed job leaves no output file behind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.commands.common import parse_size
from core.errors import InputError
from core.job import (
    COMPILE_MODES,
    DEFAULT_ENCODE_PRESET,
    ENCODERS,
    ENGINES,
    PRECISIONS,
    X264_PRESETS,
    Job,
    Keyframe,
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="source video or image")
    parser.add_argument("output", type=Path, help="where to write the result (.mp4 or image)")
    parser.add_argument("--model", default="x4plus", help="x4plus, x2plus, x4plus_anime_6B, general-x4v3, animevideov3")
    parser.add_argument("--engine", choices=ENGINES, default="fast")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--compile", nargs="?", const="on", default="off", choices=COMPILE_MODES,
                        help="torch.compile the model (fast engine): on, off, or auto (when the "
                             "clip is long enough to repay the compile); --compile alone means on")
    parser.add_argument("--encoder", choices=ENCODERS, default="libx264",
                        help="libx264, nvenc (cards with NVENC), or auto (NVENC where it opens)")
    parser.add_argument("--preset", choices=X264_PRESETS, default=DEFAULT_ENCODE_PRESET,
                        help=f"encoder speed preset (default {DEFAULT_ENCODE_PRESET})")
    parser.add_argument("--crf", type=int, default=18, help="constant quality 0..51 (default 18)")
    parser.add_argument("--start", type=float, default=None, help="trim start, seconds (inclusive)")
    parser.add_argument("--end", type=float, default=None, help="trim end, seconds (exclusive)")
    crop = parser.add_mutually_exclusive_group()
    crop.add_argument("--crop", default=None, help="fixed crop X,Y,W,H in source pixels")
    crop.add_argument("--keyframes", type=Path, default=None,
                      help="JSON list of {time, x, y, width, height} crop keyframes")
    parser.add_argument("--size", default=None, help="output WxH (default: the model's scale)")
    parser.add_argument("--fps", type=float, default=None, help="output fps (default: the source's)")
    parser.add_argument("--weights", default="auto", help="auto, random (timing-only) or a .pth path")
    parser.add_argument("--device", default="auto", help="auto (first CUDA card, else CPU), cpu, cuda:N")
    parser.add_argument("--fidelity-samples", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the JobResult as JSON")


def parse_crop(text: str) -> tuple[Keyframe, ...]:
    """'X,Y,W,H' -> one keyframe holding for the whole clip. Raises InputError."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"crop {text!r} must be X,Y,W,H in whole pixels") from None
    return (Keyframe(0.0, x, y, w, h),)


def load_keyframes(path: Path) -> tuple[Keyframe, ...]:
    """Keyframes from a JSON file: a list, or an object with a 'keyframes' list. Raises InputError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read keyframes file {path}: {exc}") from None
    items = data.get("keyframes") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InputError(f"keyframes file {path} must hold a non-empty list of keyframes")
    return tuple(Keyframe.from_dict(k) if isinstance(k, dict) else Keyframe.from_dict({}) for k in items)


def build_job(args: argparse.Namespace) -> Job:
    from workers.video import is_image_path, probe

    if not args.input.is_file():
        raise InputError(f"input file {args.input} does not exist")
    if is_image_path(args.input) != is_image_path(args.output):
        raise InputError("an image input needs an image output and a video input a video output")
    keyframes = parse_crop(args.crop) if args.crop else load_keyframes(args.keyframes) if args.keyframes else ()
    width, height = parse_size(args.size) if args.size else (None, None)
    fps = args.fps
    if fps is None:
        fps = 30.0 if is_image_path(args.input) else probe(args.input).fps
    return Job(
        job_id="cli", user_id="cli", input_key="input" + args.input.suffix.lower(),
        output_key="output" + args.output.suffix.lower(), keyframes=keyframes,
        output_width=width, output_height=height, fps=fps,
        trim_start=args.start, trim_end=args.end, model=args.model, engine=args.engine,
        precision=args.precision, batch_size=args.batch_size, device=args.device,
        weights=args.weights, compile=args.compile, fidelity_samples=args.fidelity_samples,
        encoder=args.encoder, encode_preset=args.preset, crf=args.crf,
    )


def main(args: argparse.Namespace) -> int:
    from store.keys import user_key
    from store.objects import FilePairStore
    from workers.pipeline import run_job

    job = build_job(args)
    storage = FilePairStore(user_key(job.user_id, job.input_key), args.input,
                            user_key(job.user_id, job.output_key), args.output)
    result = run_job(job, storage)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    if not result.ok:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    if not args.json:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.stages.items())
        print(f"wrote {args.output}: {result.frames_out} frame(s) at {result.output_width}x"
              f"{result.output_height} on {result.device_name} ({result.weights_provenance}); {stages}")
    return 0
