"""The original experiment's JSON format, stored runs as Measurements (bench.experiments), and the
exports built on them (bench.report)."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest

from bench.analysis import Measurement
from bench.e6 import E6Result, analyse_e6, dump_e6, load_e6, parse_e6
from bench.experiments import analyse_runs, measurements_from_runs, read_runs
from bench.plan import build_plan
from bench.report import (
    EXPERIMENT_FIELDS,
    experiment_to_e6,
    findings_markdown,
    measurements_from_e6,
)
from core.errors import InputError
from store.runs import ExperimentRow

ORIGINAL = {
    "timestamp": "2025-08-14T10:22:31",
    "config": {"gpus": ["T4", "L4"], "model": "RealESRGAN_x4plus", "output": "810x1440", "fps": 30,
               "clips": {"6s": [3.0, 9.0], "15s": [3.0, 18.0], "30s": [3.0, 33.0]}},
    "pricing": {"T4": 0.000164, "L4": 0.000222},
    "results": [
        {"gpu": "T4", "clip": "6s", "frames": 180, "elapsed": 185.2, "fps": 0.972, "status": "success"},
        {"gpu": "L4", "clip": "6s", "frames": 180, "elapsed": 120.4, "fps": 1.495,
         "status": "completed"},
        {"gpu": "T4", "clip": "15s", "frames": 450, "elapsed": 460.0, "status": "ok"},
        {"gpu": "L4", "clip": "15s", "frames": 450, "elapsed": 290.0, "status": "Succeeded"},
        {"gpu": "T4", "clip": "30s", "frames": 900, "elapsed": 915.0, "status": "success"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": None, "fps": None, "status": "failed",
         "error": "CUDA out of memory"},
        {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": 12.0, "status": "success",
         "error": "container killed\n(preempted)"},
    ],
    "comparisons": {"6s": {"t4_time": 185.2, "l4_time": 120.4, "speedup": 1.54}},
}


def test_parse_normalises_statuses_and_fills_fps():
    e6 = parse_e6(ORIGINAL)
    assert e6.timestamp == "2025-08-14T10:22:31" and e6.pricing == {"T4": 0.000164, "L4": 0.000222}
    assert [r.status for r in e6.results] == ["succeeded"] * 5 + ["failed"] * 2
    assert e6.results[2].fps == pytest.approx(450 / 460.0)
    assert e6.results[5] == E6Result("L4", "30s", 900, None, None, "failed", "CUDA out of memory")
    assert e6.results[6].error == "container killed (preempted)"
    assert e6.comparisons == ORIGINAL["comparisons"]


@pytest.mark.parametrize("status, error", [
    ("error", "failed (no reason given)"), ("timeout", "status 'timeout'"),
    ("FAILED", "failed (no reason given)"),
])
def test_other_statuses_are_failures(status, error):
    data = copy.deepcopy(ORIGINAL)
    data["results"][0]["status"] = status
    result = parse_e6(data).results[0]
    assert (result.status, result.error) == ("failed", error)


def test_success_without_time_is_a_failure():
    data = copy.deepcopy(ORIGINAL)
    data["results"][0]["elapsed"] = None
    assert parse_e6(data).results[0].status == "failed"


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.pop("results"), "no 'results' list"),
    (lambda d: d["results"].append("x"), "result 7 must be an object"),
    (lambda d: d["results"][0].pop("gpu"), "no 'gpu'"),
    (lambda d: d["results"][1].update(frames=-3), r"result 1 \(L4 on 6s\): frames"),
    (lambda d: d["results"][1].update(elapsed="slow"), "elapsed"),
    (lambda d: d.update(pricing={"T4": "cheap"}), "pricing of 'T4'"),
    (lambda d: d.update(config=[1]), "'config' must be an object"),
])
def test_bad_shapes(mutate, match):
    data = copy.deepcopy(ORIGINAL)
    mutate(data)
    with pytest.raises(InputError, match=match):
        parse_e6(data)
    with pytest.raises(InputError):
        parse_e6([data])


def test_load_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": [\n  {"gpu": "T4",,}\n]}')
    with pytest.raises(InputError) as err:
        load_e6(bad)
    message = str(err.value)
    assert "bad.json is not valid JSON (line 2" in message and "\n" not in message
    with pytest.raises(InputError, match="no such file"):
        load_e6(tmp_path / "missing.json")
    shape = tmp_path / "shape.json"
    shape.write_text('{"results": 3}')
    with pytest.raises(InputError, match="shape.json: not an E6 results file"):
        load_e6(shape)


def test_round_trip(tmp_path):
    e6 = parse_e6(ORIGINAL)
    path = tmp_path / "out.json"
    path.write_text(json.dumps(dump_e6(e6)))
    again = load_e6(path)
    assert (again.timestamp, again.config, again.pricing, again.results) == \
        (e6.timestamp, e6.config, e6.pricing, e6.results)
    assert dump_e6(again) == dump_e6(e6)


def test_dump_recomputes_comparisons():
    out = dump_e6(parse_e6(ORIGINAL))
    comp = out["comparisons"]
    assert comp["baseline"] == "T4"
    six = comp["clips"]["6s"]
    assert six["gpus"]["L4"]["break_even_elapsed"] == pytest.approx(185.2 * 0.000164 / 0.000222)
    assert round(six["gpus"]["L4"]["break_even_elapsed"] / 185.2, 3) == 0.739
    assert six["gpus"]["L4"]["speedup_vs_baseline"] == pytest.approx(185.2 / 120.4)
    assert six["gpus"]["L4"]["cheaper_than_baseline"] is True
    assert six["winner"] == "L4"
    # L4 failed on 30s: T4 is its winner; the cheapest changes with length.
    assert comp["clips"]["30s"]["winner"] == "T4" and list(comp["clips"]["30s"]["gpus"]) == ["T4"]
    assert comp["verdict"]["rule"] == "threshold"
    assert "no succeeded run of L4 on 30s" in comp["verdict"]["reason"]
    assert out["results"][5] == {"gpu": "L4", "clip": "30s", "frames": 900, "elapsed": None,
                                 "fps": None, "status": "failed", "error": "CUDA out of memory"}


def test_dump_extra_and_all_failed():
    data = copy.deepcopy(ORIGINAL)
    for r in data["results"]:
        r["status"] = "failed"
    e6 = parse_e6(data)
    out = dump_e6(e6, {"note": "x"})
    assert out["comparisons"] == ORIGINAL["comparisons"] and out["note"] == "x"
    with pytest.raises(InputError, match="replace"):
        dump_e6(e6, {"results": []})


def test_measurements_and_prices():
    data = copy.deepcopy(ORIGINAL)
    data["results"].append({"gpu": "H100", "clip": "6s", "frames": 180, "elapsed": 40.0,
                            "status": "success"})
    ms = measurements_from_e6(parse_e6(data))
    assert ms[0] == Measurement("T4", "6s", 180, 185.2, "succeeded", 0.000164)
    assert ms[-1].rate == 0.001097  # not in the file's pricing: the catalog's
    data["results"].append({"gpu": "V100", "clip": "6s", "frames": 180, "elapsed": 40.0,
                            "status": "success"})
    with pytest.raises(InputError, match="no price for GPU 'V100'"):
        measurements_from_e6(parse_e6(data))


# --------------------------------------------------------------------------- exports (bench.report)


def store_runs() -> list[dict]:
    """Runs as the store hands them out (rows of list_runs): 2 clips x T4/L4 x 2 repeats, one
    failed, one cold."""
    runs = []
    times = {"T4": (185.0, 188.0, 460.0, 466.0), "L4": (118.0, 121.0, 290.0, 296.0)}
    for gpu, secs in times.items():
        for i, (clip, frames) in enumerate((("6s", 180), ("6s", 180), ("15s", 450), ("15s", 450))):
            s = secs[i]
            runs.append({"id": f"{gpu}-{i}", "gpu": gpu, "clip": clip, "status": "succeeded",
                         "error": None, "frames_out": frames, "frames_expected": frames,
                         "total_seconds": s, "cost_gpu": s * {"T4": 0.000164, "L4": 0.000222}[gpu],
                         "cost_all_in": s * 0.0003, "cold": i == 0, "repeat_index": i % 2,
                         "fps": frames / s, "price_gpu": gpu, "device_name": f"NVIDIA {gpu}"})
    runs.append({"id": "L4-x", "gpu": "L4", "clip": "15s", "status": "failed",
                 "error": "corrupt source: invalid data", "frames_out": 0, "frames_expected": 450,
                 "total_seconds": 0.4, "cold": False, "repeat_index": 2, "price_gpu": "L4"})
    return runs


EXPERIMENT = ExperimentRow(name="exp-1", id="exp-1",
                           created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                           source="clip.mp4", model="x4plus", engine="fast", backend="modal",
                           preset="e6", notes="log-only note",
                           plan_json=build_plan("e6", clips="6s:3:9,15s:3:18").to_dict())


def test_experiment_to_e6_reads_back():
    out = experiment_to_e6(EXPERIMENT, read_runs(store_runs(), EXPERIMENT))
    text = json.dumps(out)
    assert set(out["bench"]["experiment"]) <= set(EXPERIMENT_FIELDS)
    e6 = parse_e6(json.loads(text))
    assert e6.timestamp == "2026-01-01T00:00:00+00:00"
    assert e6.config["gpus"] == ["T4", "L4"] and e6.pricing == {"T4": 0.000164, "L4": 0.000222}
    assert len(e6.results) == 9
    assert [r.repeat for r in e6.results[:4]] == [0, 1, 0, 1] and e6.results[0].cold is True
    assert e6.results[-1].status == "failed" and e6.results[-1].error == "corrupt source: invalid data"
    assert out["comparisons"]["verdict"]["rule"] == "single_winner"
    assert out["bench"]["experiment"]["id"] == "exp-1"
    assert out["bench"]["analysis"]["choice"] == "L4"
    # The export judges the same as the runs themselves.
    assert analyse_e6(e6).verdict.to_dict() == \
        analyse_runs(EXPERIMENT, read_runs(store_runs(), EXPERIMENT)).verdict.to_dict()


def test_measurements_from_runs_prices():
    cpu = {"gpu": "cpu", "clip": "a", "status": "succeeded", "frames_out": 10, "total_seconds": 2.0,
           "cpu_cores": 2.0, "price_gpu": None, "device_name": "AMD EPYC"}
    local = {"gpu": "cuda:0", "clip": "a", "status": "succeeded", "frames_out": 10,
             "total_seconds": 1.0, "device_name": "NVIDIA H100 80GB HBM3"}
    ms = measurements_from_runs(read_runs([cpu, local], None))
    assert ms[0].rate == pytest.approx(2 * 0.0000131) and ms[1].rate == 0.001097
    unknown = {"gpu": "cuda:0", "clip": "a", "status": "succeeded", "frames_out": 10,
               "total_seconds": 1.0, "device_name": "Some accelerator"}
    with pytest.raises(InputError, match="no price"):
        measurements_from_runs(read_runs([unknown], None))


def test_findings_markdown():
    a = analyse_runs(EXPERIMENT, read_runs(store_runs(), EXPERIMENT))
    md = findings_markdown(a, EXPERIMENT)
    assert md.startswith("## Findings: exp-1")
    assert "| Clip | Frames | Candidate |" in md
    assert "| 6s | 180 | L4 **(cheapest)** | 2 | 119.5 |" in md
    assert "**single_winner**: use L4." in md
    assert "### Cost curves" in md and "- T4:" in md and "- L4:" in md
    assert "- L4 on 15s (repeat 3): corrupt source: invalid data" in md  # repeat_index 2
    assert "T4 on 6s: 1 of 2 runs were cold" in md
    assert "log-only note" not in md  # markdown names only the context fields


def test_imported_flat_pricing_and_unfinished_runs():
    runs = store_runs()
    for run in runs:
        run.pop("cost_gpu", None)
        run["finished_at"] = dt.datetime(2026, 1, 1, 12, 0)
    runs.append({"gpu": "T4", "clip": "15s", "status": "queued", "frames_expected": 450,
                 "repeat_index": 2})
    experiment = ExperimentRow(name="imp", id="imp", origin="import",
                               price_table_json={"T4": 0.0002, "L4": 0.0003, "V100": 0.0004})
    out = experiment_to_e6(experiment, read_runs(runs, experiment))
    assert out["pricing"] == {"T4": 0.0002, "L4": 0.0003}
    assert out["bench"]["runs"][0]["finished_at"] == "2026-01-01T12:00:00"
    assert out["results"][-1]["status"] == "failed"
    assert out["results"][-1]["error"] == "run queued, not finished"
    json.dumps(out)
