"""Write a synthetic source video with moving detail, so a fresh machine has something to upscale.

Example: python -m bench demo-clip demo.mp4 --seconds 10 --size 960x540 --fps 30
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.common import check_output_file, parse_size


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", type=Path, help="video file to write (.mp4)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length in seconds (default 2)")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT, both even (default 320x240)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")


def main(args: argparse.Namespace) -> int:
    from workers.synthetic import write_demo_clip  # PyAV loads only for commands that need it

    check_output_file(args.output)
    width, height = parse_size(args.size)
    info = write_demo_clip(args.output, seconds=args.seconds, width=width, height=height, fps=args.fps)
    print(f"wrote {args.output}: {info.width}x{info.height}, {info.fps:g} fps, "
          f"{info.frame_count} frames, {info.duration:.2f} s, {info.codec}")
    return 0
