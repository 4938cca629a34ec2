"""The product's own path, timed: `python -m bench upscale` at the E6 shape, one process per case,
as a user runs it (meant for a GPU).

    python benchmarks/product_path.py [--cases NAME,...] [--json-out FILE]

Source: 1920x1080 at 30 fps, 10 s (generated once); each case trims 3-9 s (180 frames), crops
540x960 at (690, 60) and writes 810x1440 at 30 fps with random weights (speed does not depend on
them). 'fps e2e' is JobResult.fps_end_to_end: frames over the job's wall time less the one-time
model load and compile, which are shown apart. '4 cores' cases run under `taskset -c 0-3`, the
CPU a Modal container of this product requests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import Scenario, write_source  # noqa: E402
from core.job import Keyframe  # noqa: E402

E6_SHAPE = Scenario((1920, 1080), Keyframe(0.0, 690, 60, 540, 960), (810, 1440), 3.0, 9.0, 30.0)

AUTOTUNE = {"BENCH_COMPILE_MODE": "max-autotune-no-cudagraphs"}
CUDA_GRAPHS = {"BENCH_COMPILE_MODE": "max-autotune"}

CPU = ["--decoder", "cpu"]
NVDEC = ["--decoder", "nvdec"]

CASES: dict[str, tuple[list[str], bool] | tuple[list[str], bool, dict[str, str]]] = {
    # name: (extra `bench upscale` arguments, run on 4 cores[, environment])
    "x4plus-reference": (["--model", "x4plus", "--engine", "reference"], False),
    "x4plus-fp16": (["--model", "x4plus", *CPU], False),
    "x4plus-bf16": (["--model", "x4plus", "--precision", "bf16"], False),
    "x4plus-compile-first": (["--model", "x4plus", "--compile", "on", *CPU], False),
    "x4plus-compile-second": (["--model", "x4plus", "--compile", "on"], False),
    "x4plus-compile-auto": (["--model", "x4plus", "--compile", "auto"], False),
    "x4plus-autotune": (["--model", "x4plus", "--compile", "on"], False, AUTOTUNE),
    "x4plus-cudagraphs": (["--model", "x4plus", "--compile", "on"], False, CUDA_GRAPHS),
    "x4plus-fp16-nvdec": (["--model", "x4plus", *NVDEC], False),
    "x4plus-compile-nvdec": (["--model", "x4plus", "--compile", "on", *NVDEC], False),
    "anime-16c-medium": (["--model", "animevideov3", "--preset", "medium", *CPU], False),
    "anime-16c-veryfast": (["--model", "animevideov3", "--preset", "veryfast", *CPU], False),
    "anime-4c-medium": (["--model", "animevideov3", "--preset", "medium", *CPU], True),
    "anime-4c-veryfast": (["--model", "animevideov3", "--preset", "veryfast", *CPU], True),
    "anime-4c-superfast": (["--model", "animevideov3", "--preset", "superfast", *CPU], True),
    "anime-4c-ultrafast": (["--model", "animevideov3", "--preset", "ultrafast", *CPU], True),
    "anime-16c-veryfast-nvdec": (["--model", "animevideov3", "--preset", "veryfast", *NVDEC], False),
    "anime-4c-veryfast-nvdec": (["--model", "animevideov3", "--preset", "veryfast", *NVDEC], True),
    "anime-4c-superfast-nvdec": (["--model", "animevideov3", "--preset", "superfast", *NVDEC], True),
    "anime-4c-ultrafast-nvdec": (["--model", "animevideov3", "--preset", "ultrafast", *NVDEC], True),
    "anime-4c-ultrafast-nvdec-b8": (["--model", "animevideov3", "--preset", "ultrafast",
                                     "--batch-size", "8", *NVDEC], True),
    "anime-16c-ultrafast-nvdec": (["--model", "animevideov3", "--preset", "ultrafast", *NVDEC], False),
    "anime-4c-auto": (["--model", "animevideov3"], True),
    "anime-reference": (["--model", "animevideov3", "--engine", "reference"], False),
}


def run_case(name: str, source: Path, work: Path, env: dict[str, str], timeout: float) -> dict:
    extra, four_cores, *more = CASES[name]
    env = {**env, **(more[0] if more else {})}
    sc = E6_SHAPE
    crop = sc.crop
    command = [sys.executable, "-m", "bench", "upscale", str(source), str(work / f"{name}.mp4"),
               "--start", str(sc.start), "--end", str(sc.end),
               "--crop", f"{crop.x},{crop.y},{crop.width},{crop.height}",
               "--size", f"{sc.output_size[0]}x{sc.output_size[1]}", "--fps", str(sc.fps),
               "--weights", "random", "--batch-size", "4", "--json", *extra]
    if four_cores:
        command = ["taskset", "-c", "0-3", *command]
    began = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": name, "error": [f"did not finish within {timeout:.0f} s"]}
    wall = time.perf_counter() - began
    if done.returncode != 0:
        return {"case": name, "error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    result = json.loads(done.stdout[done.stdout.index("{"):])
    stages = result["stages"]
    return {"case": name, "fps_e2e": result["fps"], "fps_upscale": result["upscale_fps"],
            "stages": stages, "process_wall": wall, "encode_psnr": result.get("encode_psnr"),
            "encoder": result.get("encoder"), "preset": result.get("encode_preset"),
            "compile_choice": result.get("compile_choice"), "cores": result.get("cpu_cores"),
            "mb": result["output_bytes"] / 1e6, "device": result["device_name"],
            "precision": result["precision"], "frames": result["frames_out"],
            "decoder": result.get("decoder"), "decoder_choice": result.get("decoder_choice")}


def print_table(rows: list[dict]) -> None:
    print(f"{'case':<22} {'fps e2e':>7} {'upscale':>7} {'load s':>6} {'compile s':>9} "
          f"{'decode':>6} {'upsc s':>6} {'encode':>6} {'total':>6} {'PSNR enc':>8} {'MB':>5}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<22} FAILED {r['error']}")
            continue
        s = r["stages"]
        print(f"{r['case']:<22} {r['fps_e2e']:>7.2f} {r['fps_upscale']:>7.2f} "
              f"{s.get('model_load', 0):>6.1f} {s.get('compile', 0):>9.1f} {s.get('decode', 0):>6.1f} "
              f"{s.get('upscale', 0):>6.1f} {s.get('encode', 0):>6.1f} {s['total']:>6.1f} "
              f"{(r['encode_psnr'] or 0):>8.2f} {r['mb']:>5.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma list of: " + ", ".join(CASES))
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--case-timeout", type=float, default=900, help="seconds per case")
    parser.add_argument("--source", type=Path, default=None,
                        help="an E6-shaped source already written (default: write one)")
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n]
    unknown = set(names) - CASES.keys()
    if unknown:
        raise SystemExit(f"unknown cases: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = args.source or work / "source.mp4"
        if not source.exists():
            write_source(source, E6_SHAPE, seconds=10.0)
        env = {**os.environ, "BENCH_WEIGHTS_DIR": str(work / "weights"), "BENCH_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        env.pop("TORCHINDUCTOR_CACHE_DIR", None)
        rows = []
        for name in names:
            rows.append(run_case(name, source, work, env, args.case_timeout))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
