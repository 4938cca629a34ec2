"""Generated bad input (hypothesis) for every parser of untrusted text: the results-file parser, the
plan, clip, GPU, size and keyframe parsers, and the escaping of names. Each property: the parser
returns a value inside the product's bounds or raises InputError (one line), never anything else;
whatever a results file parses to exports as strict JSON (no NaN or Infinity)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from tests.reliability.cases import EXAMPLES_PER_PROPERTY

SETTINGS = settings(max_examples=EXAMPLES_PER_PROPERTY, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
INT32 = 2**31 - 1
DB_EXAMPLES = max(10, EXAMPLES_PER_PROPERTY // 5)
"""Examples of the one property that writes to a database (slower per example)."""

hostile_numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e-300, 5e-324, 1e308, 2**31, 2**63, 10**30, 10**400, -(10**400),
                     0.5, 180, 12.5]),
)
hostile_text = st.one_of(st.text(max_size=30), st.sampled_from(
    ["", " ", "T4", "L4", "6s", "\x1b[31mred", "<b>x</b>", "a|b", "ok", "success", "failed",
     "\u202egnp.exe", "x" * 300]))
hostile_scalar = st.one_of(st.none(), st.booleans(), hostile_numbers, hostile_text)
json_values = st.recursive(hostile_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)), max_leaves=20)
FIELDS = ("gpu", "clip", "frames", "elapsed", "fps", "status", "error", "repeat", "cold")
valid_results = st.fixed_dictionaries({
    "gpu": st.sampled_from(["T4", "L4", "H100"]),
    "clip": st.sampled_from(["6s", "15s", "30s"]),
    "frames": st.integers(min_value=1, max_value=2000),
    "elapsed": st.floats(min_value=0.01, max_value=5000),
    "status": st.sampled_from(["success", "ok", "succeeded"]),
}, optional={"repeat": st.integers(min_value=0, max_value=5), "cold": st.booleans()})
corrupted_results = st.tuples(valid_results, st.sampled_from(FIELDS), hostile_scalar).map(
    lambda t: {**t[0], t[1]: t[2]})
results = st.lists(st.one_of(valid_results, valid_results, corrupted_results), max_size=8)
valid_pricing = st.fixed_dictionaries({"T4": st.just(0.000164), "L4": st.just(0.000222),
                                       "H100": st.floats(min_value=1e-6, max_value=0.01)})
e6_documents = st.fixed_dictionaries({"results": results}, optional={
    "timestamp": hostile_scalar,
    "config": st.one_of(json_values, st.fixed_dictionaries({}, optional={
        "gpus": st.lists(hostile_text, max_size=3), "fps": hostile_numbers})),
    "pricing": st.one_of(valid_pricing, valid_pricing, json_values, st.dictionaries(
        st.sampled_from(["T4", "L4", "H100", "Z99", ""]), hostile_numbers, max_size=4)),
    "comparisons": json_values,
})


def _strict(value: object) -> str:
    """JSON text with NaN/Infinity refused (raises ValueError if any is left)."""
    return json.dumps(value, allow_nan=False, default=str)


def _parse_or_refuse(parse, *args):
    try:
        return parse(*args)
    except InputError as exc:
        assert "\n" not in str(exc)
        return None


@SETTINGS
@given(e6_documents)
def test_results_file_parser_bounds_what_it_accepts(document):
    from bench.e6 import MAX_FRAMES, analyse_e6, dump_e6, parse_e6

    e6 = _parse_or_refuse(parse_e6, document)
    event("accepted" if e6 is not None else "refused")
    if e6 is None:
        return
    event(f"{sum(r.status == 'succeeded' for r in e6.results) > 0 and 'some' or 'no'} succeeded")
    for r in e6.results:
        assert 0 <= r.frames <= MAX_FRAMES <= INT32 and 0 <= r.repeat <= INT32
        assert r.elapsed is None or math.isfinite(r.elapsed)
        assert r.fps is None or math.isfinite(r.fps)
    _strict(dump_e6(e6))  # the E6 export of what was accepted is strict JSON
    analysis = _parse_or_refuse(analyse_e6, e6)
    if analysis is not None:
        _strict(analysis.to_dict())


@SETTINGS
@given(json_values)
def test_results_file_parser_takes_any_json(value):
    from bench.e6 import parse_e6

    _parse_or_refuse(parse_e6, value)


@SETTINGS
@given(st.one_of(st.binary(max_size=200), e6_documents.map(
    lambda d: json.dumps(d, default=str).encode())))
def test_results_file_bytes_parser_takes_any_bytes(raw):
    from bench.e6 import parse_e6_bytes

    _parse_or_refuse(parse_e6_bytes, raw, "upload.json")


@pytest.fixture(scope="module")
def import_db(tmp_path_factory):
    from store.db import Database

    return Database(tmp_path_factory.mktemp("props") / "bench.duckdb")


@settings(SETTINGS, max_examples=DB_EXAMPLES)
@given(e6_documents)
def test_whatever_parses_imports_and_exports_as_strict_json(import_db, document):
    from bench.e6 import parse_e6
    from bench.e6_import import import_e6
    from bench.report import export_experiment

    e6 = _parse_or_refuse(parse_e6, document)
    if e6 is None:
        return
    experiment_id = _parse_or_refuse(import_e6, import_db, e6, "generated.json")
    if experiment_id is None:  # a succeeded GPU without a price: refused whole, like verdict
        return
    _strict(export_experiment(import_db, experiment_id, "json"))
    assert export_experiment(import_db, experiment_id, "md").startswith("## Findings")


@SETTINGS
@given(st.one_of(st.text(max_size=60), st.lists(
    st.tuples(hostile_text, hostile_numbers, hostile_numbers), max_size=4).map(
    lambda items: ",".join(f"{n}:{a}:{b}" for n, a, b in items))))
def test_clip_parser(text):
    from bench.plan import MAX_SOURCE_SECONDS, parse_clips

    clips = _parse_or_refuse(parse_clips, text)
    for clip in clips or ():
        assert 0 <= clip.start < clip.end <= MAX_SOURCE_SECONDS


@SETTINGS
@given(st.text(max_size=40), st.sampled_from(["local", "modal", "cloud"]))
def test_gpu_parser(text, backend):
    from bench.plan import parse_gpus

    gpus = _parse_or_refuse(parse_gpus, text, backend)
    if gpus is not None:
        assert len({g.label for g in gpus}) == len(gpus) > 0


@SETTINGS
@given(st.text(max_size=30))
def test_size_parser(text):
    from bench.commands.common import parse_size
    from core.job import MAX_OUTPUT_SIDE

    size = _parse_or_refuse(parse_size, text)
    if size is not None:
        assert all(0 < side <= MAX_OUTPUT_SIDE for side in size)


@SETTINGS
@given(st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {"time": hostile_numbers, "x": hostile_numbers, "y": hostile_numbers,
     "width": hostile_numbers, "height": hostile_numbers})), max_size=4))
def test_keyframe_parser(items):
    from core.job import Keyframe
    from workers.crop import validate_keyframes

    def parse(values):
        frames = [Keyframe.from_dict(v) if isinstance(v, dict) else Keyframe.from_dict({})
                  for v in values]
        validate_keyframes(frames, 64, 48)
        return frames

    for k in _parse_or_refuse(parse, items) or ():
        assert 0 <= k.x < 64 and 0 <= k.y < 48 and k.width > 0 and k.height > 0


@SETTINGS
@given(st.one_of(st.text(max_size=80), json_values.map(lambda v: json.dumps(v, default=str))))
def test_keyframes_file_reader(tmp_path: Path, text):
    from bench.commands.upscale_cmd import load_keyframes

    path = tmp_path / "kf.json"
    path.write_text(text)
    _parse_or_refuse(load_keyframes, path)


@SETTINGS
@given(st.fixed_dictionaries({}, optional={
    "repeats": hostile_numbers, "batch_size": hostile_numbers, "fps": hostile_numbers,
    "output_width": hostile_numbers, "output_height": hostile_numbers,
    "clips": st.text(max_size=30), "gpus": st.text(max_size=20), "model": hostile_text}))
def test_plan_builder(overrides):
    from bench.plan import MAX_REPEATS, MAX_RUNS, build_plan

    plan = _parse_or_refuse(lambda: build_plan("demo", **overrides))
    if plan is not None:
        assert 1 <= plan.repeats <= MAX_REPEATS and plan.run_count() <= MAX_RUNS
        assert math.isfinite(plan.fps) and plan.fps > 0
        _strict(plan.to_dict())


@SETTINGS
@given(st.text())
def test_escaping_leaves_no_control_characters_or_markup(text):
    from bench.escape import markdown_text, one_line_text, terminal_text

    for escaped in (terminal_text(text), one_line_text(text), markdown_text(text)):
        assert not any(ord(c) < 32 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F
                       or c in "\u202e\u202d\u2066\u2067" for c in escaped)
    md = markdown_text(text)
    assert "\n" not in md and "<" not in md and ">" not in md
    assert all(md[i - 1] == "\\" for i, c in enumerate(md) if c in "|`[]*" and i > 0)
    assert not md or md[0] not in "|`[]*"
