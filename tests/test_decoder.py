"""The decoder setting (--decoder cpu|nvdec|auto) on this CPU-only machine: option parsing, the
fall-backs where NVDEC cannot open (one line and exit 2 when asked for by name, silent under auto
with the reason recorded per run), and the NVDEC path's segment and colour rules, checked against
the CPU decoder with PyAV standing in for NVDEC's frame source (the GPU run is in
benchmarks/product_path.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.plan import Plan, build_plan
from core.errors import InputError
from core.job import Job, JobResult
from workers import nvdec
from workers.nvdec import NvdecSource, choose_decoder, nv12_to_rgb, nvdec_preflight, nvdec_refusal
from workers.synthetic import write_demo_clip
from workers.video import decode_segment, probe, stream_index

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_OFFLINE": "1",
           "BENCH_DATA_DIR": str(cwd / "data")}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def no_nvdec_package(monkeypatch):
    """PyNvVideoCodec as absent (whether or not this machine has it), tried afresh."""
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", None)
    monkeypatch.setattr(nvdec, "_LOADED", {})


def test_the_decoder_setting_is_checked_and_carried_by_jobs_plans_and_results():
    base = dict(job_id="j", user_id="u", input_key="a.mp4", output_key="b.mp4")
    assert Job(**base).decoder == "auto"
    assert Job.from_dict(Job(**base, decoder="nvdec").to_dict()).decoder == "nvdec"
    with pytest.raises(InputError, match="unknown decoder 'gpu'"):
        Job(**base, decoder="gpu")
    plan = build_plan("demo", decoder="cpu")
    assert Plan.from_dict(plan.to_dict()).decoder == "cpu"
    assert build_plan("demo").decoder == "auto"
    with pytest.raises(InputError, match="unknown decoder"):
        build_plan("demo", decoder="hw")
    result = JobResult(job_id="j", status="succeeded", decoder="cpu", decoder_choice="auto: cpu (x)")
    assert JobResult.from_dict(result.to_dict()).decoder_choice == "auto: cpu (x)"


def test_cli_rejects_an_unknown_decoder(tmp_path, tiny_clip):
    done = cli("upscale", str(tiny_clip), str(tmp_path / "o.mp4"), "--decoder", "gpu", cwd=tmp_path)
    assert done.returncode == 2 and "invalid choice: 'gpu'" in done.stderr


def test_nvdec_by_name_on_a_cpu_is_refused_in_one_line(tmp_path, tiny_clip):
    out = tmp_path / "o.mp4"
    done = cli("upscale", str(tiny_clip), str(out), "--model", "animevideov3", "--weights", "random",
               "--device", "cpu", "--decoder", "nvdec", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "NVDEC cannot decode tiny.mp4 here: the job runs on cpu" in lines[0]
    assert "Traceback" not in done.stderr and not out.exists()


@pytest.mark.parametrize("setting, choice", [("auto", "auto: cpu (the job runs on cpu, not a CUDA card)"),
                                             ("cpu", "cpu")])
def test_auto_and_cpu_decode_on_the_cpu_and_say_why(tmp_path, tiny_clip, setting, choice):
    done = cli("upscale", str(tiny_clip), str(tmp_path / "o.mp4"), "--model", "animevideov3",
               "--weights", "random", "--device", "cpu", "--start", "0.5", "--end", "1.5",
               "--fidelity-samples", "0", "--decoder", setting, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["decoder"], result["decoder_choice"], result["frames_out"]) == ("cpu", choice, 10)


def test_a_card_without_pynvvideocodec_falls_back_under_auto_only(tmp_path, tiny_clip, no_nvdec_package):
    info, card = probe(tiny_clip), torch.device("cuda:0")  # a device name; nothing runs on it
    chosen = choose_decoder("auto", tiny_clip, info, card, "fast")
    assert (chosen.decoder, chosen.reason) == ("cpu", "auto: cpu (PyNvVideoCodec is not installed)")
    assert len(list(chosen.frames(tiny_clip, 0.0, 1.0, None))) == 10  # the CPU decoder's frames
    with pytest.raises(InputError, match="PyNvVideoCodec is not installed; use decoder cpu or auto"):
        choose_decoder("nvdec", tiny_clip, info, card, "fast")
    assert nvdec_refusal(card, "reference") == "the reference engine takes its frames from the CPU"


def test_a_package_that_does_not_load_falls_back_with_its_first_line(tmp_path, tiny_clip, monkeypatch):
    package = tmp_path / "site" / "PyNvVideoCodec"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise RuntimeError('libnvidia-encode.so.1: cannot open shared object file\\n\\n"
        "=== TROUBLESHOOTING STEPS ===')\n")
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "PyNvVideoCodec", raising=False)
    monkeypatch.setattr(nvdec, "_LOADED", {})
    chosen = choose_decoder("auto", tiny_clip, probe(tiny_clip), torch.device("cuda:0"), "fast")
    assert chosen.reason == ("auto: cpu (PyNvVideoCodec does not load (libnvidia-encode.so.1: "
                             "cannot open shared object file))")


def test_run_with_nvdec_by_name_is_refused_before_launch_on_a_cpu(tmp_path, tiny_clip):
    done = cli("run", "--source", str(tiny_clip), "--clips", "a:0:1", "--gpus", "cpu",
               "--weights", "random", "--decoder", "nvdec", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "error: NVDEC needs a CUDA card, not cpu"
    assert nvdec_preflight("cuda:0") in (None, "NVDEC needs PyNvVideoCodec, which is not installed")


def test_each_run_records_the_decoder_it_got(tmp_path, tiny_clip):
    done = cli("run", "--source", str(tiny_clip), "--clips", "a:0:1", "--gpus", "cpu", "--engine",
               "fast", "--model", "animevideov3", "--weights", "random", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from store import runs as store_runs
    from store.db import Database

    experiment = json.loads(done.stdout)["experiment_id"]
    row = store_runs.list_runs(Database(tmp_path / "data" / "bench.duckdb"),
                               experiment_id=experiment, with_result_json=True).iloc[0]
    stored = json.loads(row["result_json"])
    assert (stored["decoder"], stored["decoder_choice"]) == (
        "cpu", "auto: cpu (the job runs on cpu, not a CUDA card)")


def nv12_of(planes: np.ndarray) -> torch.Tensor:
    """yuv420p planes ((H * 3 / 2) x W) as NV12, the layout NVDEC returns."""
    h = planes.shape[0] * 2 // 3
    w = planes.shape[1]
    u = planes[h:h + h // 4].reshape(h // 2, w // 2)
    v = planes[h + h // 4:].reshape(h // 2, w // 2)
    return torch.from_numpy(np.concatenate([planes[:h], np.stack([u, v], -1).reshape(h // 2, w)]))


class PyAvFrames:
    """NVDEC's frame source as SimpleDecoder serves it (frames by display position, NV12, through
    DLPack), decoded here by PyAV so the segment rules can be checked on a CPU."""

    def __init__(self, path: Path) -> None:
        import av

        with av.open(str(path)) as container:
            self.frames = [nv12_of(f.to_ndarray(format="yuv420p")) for f in container.decode(video=0)]
        self.asked: list[list[int]] = []

    def get_batch_frames_by_index(self, indices: list[int]) -> list[torch.Tensor]:
        self.asked.append(list(indices))
        return [self.frames[i] for i in indices]


@pytest.fixture(scope="module")
def clip_25fps(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nv") / "c25.mp4"
    write_demo_clip(path, seconds=3.0, width=64, height=48, fps=25.0)
    return path


@pytest.mark.parametrize("start, end, fps", [(0.0, 3.0, None), (0.37, 2.21, None), (1.0, 2.0, None),
                                             (0.37, 2.21, 30.0), (0.0, 3.0, 10.0), (2.5, 3.0, 60.0)])
def test_the_nvdec_segment_is_the_cpu_decoders_segment(clip_25fps, start, end, fps):
    info = probe(clip_25fps)
    frames = PyAvFrames(clip_25fps)
    source = NvdecSource(frames, stream_index(clip_25fps), info)
    gpu = list(source.frames(start, end, fps))
    cpu = list(decode_segment(clip_25fps, start, end, fps=fps))
    assert [(f.index, f.time) for f in gpu] == [(f.index, f.time) for f in cpu] and gpu
    for g, c in zip(gpu, cpu):  # the same source frame at each position
        assert torch.equal(g.nv12[:48], torch.from_numpy(c.picture.to_ndarray(format="yuv420p")[:48]))
    assert all(len(batch) <= nvdec.BATCH_FRAMES for batch in frames.asked)


@pytest.mark.parametrize("box", [(0, 0, 64, 48), (7, 5, 33, 21), (8, 8, 24, 16), (63, 47, 1, 1)])
def test_the_gpu_colour_conversion_matches_libswscale_within_two_levels(tiny_clip, box):
    frame = next(iter(decode_segment(tiny_clip, 0.5, 1.0)))
    expected = frame.crop(*box).astype(int)
    got = nv12_to_rgb(nv12_of(frame.picture.to_ndarray(format="yuv420p")), *box).numpy().astype(int)
    assert got.shape == expected.shape
    diff = np.abs(got - expected)
    assert diff.max() <= 2 and diff.mean() <= 0.8, (diff.max(), diff.mean())
