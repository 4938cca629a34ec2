"""Upscale one local video or image with a Real-ESRGAN model (the worker, run in this process).

INPUT may be a video (OUTPUT is an H.264 MP4) or an image (OUTPUT is an image). Without --size the
output is the model's own scale of the crop. A failed job leaves no output file behind.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bench.commands import exits
from bench.commands.common import check_output_file, int_in, parse_size
from bench.escape import one_line_text
from bench.plan import MAX_BATCH_SIZE, MAX_FPS
from core.errors import InputError
from core.job import (
    COMPILE_MODES,
    DECODERS,
    DEFAULT_ENCODE_PRESET,
    ENCODERS,
    ENGINES,
    PRECISIONS,
    X264_PRESETS,
    Job,
    Keyframe,
    check_output_size,
)

if TYPE_CHECKING:
    from workers.video import VideoInfo

MAX_KEYFRAMES = 10_000
"""Most crop keyframes one job takes."""
MAX_KEYFRAMES_BYTES = 2_000_000
"""Largest keyframes file read."""


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
    parser.add_argument("--decoder", choices=DECODERS, default="auto",
                        help="video decoder: cpu, nvdec (the card's, frames stay on it), or auto "
                             "(NVDEC where it opens for the source, else the CPU; the default)")
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
    parser.add_argument("--fidelity-samples", type=int_in(0, 100), default=3)
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
        if path.stat().st_size > MAX_KEYFRAMES_BYTES:
            raise InputError(f"keyframes file {path} is over {MAX_KEYFRAMES_BYTES // 1000} kB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = (exc.strerror if isinstance(exc, OSError) else "nested too deeply"
                  if isinstance(exc, RecursionError) else str(exc)[:200])
        raise InputError(f"cannot read keyframes file {path}: {reason}") from None
    items = data.get("keyframes") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InputError(f"keyframes file {path} must hold a non-empty list of keyframes")
    if len(items) > MAX_KEYFRAMES:
        raise InputError(f"keyframes file {path} holds {len(items)} keyframes; at most {MAX_KEYFRAMES}")
    return tuple(Keyframe.from_dict(k) if isinstance(k, dict) else Keyframe.from_dict({}) for k in items)


def build_job(args: argparse.Namespace) -> Job:
    """The job, with everything that can be checked before running it checked: the files, the
    model, device and weights, the trim, crop and size. Raises InputError/MediaError (one line)."""
    from workers.catalog import get_model_spec
    from workers.crop import validate_keyframes
    from workers.video import check_trim, is_image_path, probe, read_image

    if not args.input.is_file():
        what = "is a directory, not a file" if args.input.is_dir() else "does not exist"
        raise InputError(f"input {args.input} {what}")
    check_output_file(args.output, source=args.input)
    if is_image_path(args.input) != is_image_path(args.output):
        raise InputError("an image input needs an image output and a video input a video output")
    scale = get_model_spec(args.model).scale
    _check_weights_and_device(args.weights, args.device)
    keyframes = parse_crop(args.crop) if args.crop else load_keyframes(args.keyframes) if args.keyframes else ()
    width, height = parse_size(args.size) if args.size else (None, None)
    if is_image_path(args.input):
        frame_height, frame_width = read_image(args.input).shape[:2]
        fps = 30.0 if args.fps is None else args.fps
    else:
        info = probe(args.input)
        check_trim(info, args.start, args.end)
        frame_width, frame_height, fps = info.width, info.height, args.fps or info.fps
        if args.decoder == "nvdec":
            _check_nvdec(args, info)
    validate_keyframes(keyframes, frame_width, frame_height)
    implied = width is None
    if implied:  # the model's own scale of the crop: bounded like an explicit size
        crop = (keyframes[0].width, keyframes[0].height) if keyframes else (frame_width, frame_height)
        width, height = crop[0] * scale, crop[1] * scale
    check_output_size(width, height, video=not is_image_path(args.input))
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"fps {fps:g} must be positive, at most {MAX_FPS:g}")
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        raise InputError(f"batch size {args.batch_size} must be from 1 to {MAX_BATCH_SIZE}")
    return Job(
        job_id="cli", user_id="cli", input_key="input" + args.input.suffix.lower(),
        output_key="output" + args.output.suffix.lower(), keyframes=keyframes,
        output_width=None if implied else width, output_height=None if implied else height,
        fps=fps,
        trim_start=args.start, trim_end=args.end, model=args.model, engine=args.engine,
        precision=args.precision, batch_size=args.batch_size, device=args.device,
        weights=args.weights, compile=args.compile, fidelity_samples=args.fidelity_samples,
        encoder=args.encoder, encode_preset=args.preset, crf=args.crf, decoder=args.decoder,
    )


def _check_nvdec(args: argparse.Namespace, info: "VideoInfo") -> None:
    """Raises InputError (one line) when NVDEC, asked for by name, cannot decode the input on the
    job's device with its engine."""
    from workers.models import resolve_device
    from workers.nvdec import choose_decoder

    choose_decoder("nvdec", args.input, info, resolve_device(args.device), args.engine)


def _check_weights_and_device(weights: str, device: str) -> None:
    """Raises InputError for a weights file that does not exist or a device this machine lacks."""
    from bench.backends.local import validate_device

    if weights not in ("auto", "random") and not Path(weights).expanduser().is_file():
        raise InputError(f"weights file {weights} does not exist (or use auto or random)")
    if device != "auto":
        validate_device(device)


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
    if not result.ok:  # nothing was written: the pipeline uploads only a finished output
        print(f"error: {one_line_text(result.error)}", file=sys.stderr)
        return exits.RUNS_FAILED
    if not args.json:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in result.stages.items())
        print(f"wrote {args.output}: {result.frames_out} frame(s) at {result.output_width}x"
              f"{result.output_height} on {result.device_name} ({result.weights_provenance}); {stages}")
    return 0
