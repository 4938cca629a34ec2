"""Shared helpers for the dashboard tests (AppTest and the browser test).

Import the fixtures you need into a test module:

    from tests.ui_helpers import bench_env, populated_db, demo_db, app, page_text, plotly_figures

(each fixture depends only on pytest's own fixtures, so importing the ones you use is enough).

- bench_env: BENCH_DB / BENCH_DATA_DIR in a tmp dir, no Modal token and no R2 credentials (HOME is a
  tmp dir too), so a page sees an empty database and local storage. Returns the db path.
- populated_db: bench_env plus an imported E6 experiment (T4/L4, clips 6s/15s/30s, one failed run)
  and a stored CPU run experiment; fast (no upscaling). Returns a PopulatedDb.
- demo_db: bench_env plus a real demo run of the CLI (`python -m bench run --preset demo`), made once
  per test session (about 10-30 s) and copied per test. Returns a PopulatedDb.
- app(path): an AppTest of a page file with a generous timeout, run once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e6_samples import E6_SAMPLE

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (pages are given to AppTest relative to it)."""
APP_TIMEOUT = 60.0
"""Seconds AppTest waits for one script run (this machine's two cores are shared)."""
R2_VARS = ("R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET", "R2_ENDPOINT",
           "R2_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BENCH_STORAGE")
"""Storage variables cleared so tests see local storage whatever the developer's shell has."""
MODAL_VARS = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE", "MODAL_CONFIG_PATH")
"""Modal variables cleared so tests see no token."""



@dataclass(frozen=True)
class PopulatedDb:
    """A test database with experiments in it."""

    path: Path
    """The DuckDB file (also in $BENCH_DB)."""
    experiment_ids: tuple[str, ...]
    """Experiments stored, in the order they were made."""

    @property
    def latest(self) -> str:
        """The most recently stored experiment."""
        return self.experiment_ids[-1]


def isolate_env(monkeypatch: pytest.MonkeyPatch, root: Path) -> Path:
    """Point the product at root (db, data dir, HOME) with no Modal token or R2 credentials.
    Returns the db path."""
    data = root / "data"
    home = root / "home"
    data.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    db = data / "bench.duckdb"
    monkeypatch.setenv("BENCH_DATA_DIR", str(data))
    monkeypatch.setenv("BENCH_DB", str(db))
    monkeypatch.setenv("HOME", str(home))
    for name in (*R2_VARS, *MODAL_VARS):
        monkeypatch.delenv(name, raising=False)
    return db


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty product environment in tmp_path; returns the database path (not yet created)."""
    return isolate_env(monkeypatch, tmp_path)


def store_e6(db_path: Path, data: dict[str, Any] = E6_SAMPLE, name: str = "e6-sample.json") -> str:
    """Import an E6 results dict into the database; return the experiment id."""
    from bench.e6 import parse_e6
    from bench.e6_import import import_e6
    from store.db import Database

    return import_e6(Database(db_path), parse_e6(data), name)


def store_cpu_experiment(db_path: Path) -> str:
    """Store a finished local 'cpu' experiment of two clips (one run failed) without running
    anything; return its id."""
    from core.job import JobResult
    from store import runs as store_runs
    from store.db import Database

    db = Database(db_path)
    experiment_id = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name="cpu sample", preset="demo", source="bench/demo.mp4", model="animevideov3",
        engine="fast", backend="local", price_table_date="2026-06"))
    specs = [store_runs.RunSpec(clip=clip, gpu="cpu", clip_start=0.0, clip_end=end,
                                frames_expected=frames, price_gpu="T4")
             for clip, end, frames in (("short", 0.5, 5), ("long", 1.0, 10))]
    short, long_ = store_runs.add_runs(db, experiment_id, specs)
    store_runs.update_progress(db, short, 5, 5, "encode")
    store_runs.finish_run(db, short, store_runs.RunOutcome(
        status="succeeded", cold=True, result=JobResult(job_id=short, status="succeeded",
                                                        frames_out=5, stages={"total": 2.5}),
        cost_gpu=2.5 * 0.000164, cost_all_in=2.5 * 0.0002))
    store_runs.fail_run(db, long_, "decode failed: corrupt input")
    return experiment_id


def store_hostile(db_path: Path) -> dict[str, Any]:
    """Store experiments whose every name is one of tests.reliability.cases.HOSTILE_NAMES: an
    imported results file (GPUs, clips, a run error and the experiment's name from the file) and
    a local experiment (its name, model, GPU, clips, a failed run's error, a run still running
    under this process). Returns {"imported": id, "local": id, "runs": [ids of both]}."""
    import os

    from bench.e6 import parse_e6
    from bench.e6_import import import_e6
    from core.job import JobResult
    from store import runs as store_runs
    from store.db import Database
    from tests.reliability.cases import HOSTILE_NAMES as H

    gpus, clips = {"T4": H[0], "L4": H[1]}, {"6s": H[2], "15s": H[3], "30s": H[4]}
    data = json.loads(json.dumps(E6_SAMPLE))
    data["pricing"] = {gpus[g]: rate for g, rate in data["pricing"].items()}
    data["config"]["clips"] = {clips[c]: span for c, span in data["config"]["clips"].items()}
    for result in data["results"]:
        result.update(gpu=gpus[result["gpu"]], clip=clips[result["clip"]])
        if result.get("error"):
            result["error"] = H[5]
    db = Database(db_path)
    imported = import_e6(db, parse_e6(data), H[6])
    local = store_runs.create_experiment(db, store_runs.ExperimentRecord(
        name=H[0], preset=None, source="bench/sources/" + "x" * 8, model=H[2], engine="fast",
        backend="local", price_table_date="2026-06"))
    specs = [store_runs.RunSpec(clip=clip, gpu=H[1], clip_start=0.0, clip_end=1.0,
                                frames_expected=10, price_gpu="T4", model=H[2], engine="fast")
             for clip in (H[3], H[4], H[5])]
    done, failed, running = store_runs.add_runs(db, local, specs)
    store_runs.finish_run(db, done, store_runs.RunOutcome(
        status="succeeded", cold=False, result=JobResult(job_id=done, status="succeeded",
                                                         frames_out=10, stages={"total": 2.0}),
        cost_gpu=2.0 * 0.000164, cost_all_in=2.0 * 0.0002))
    store_runs.fail_run(db, failed, f"{H[4]} {H[5]} {H[6]}")
    store_runs.mark_running(db, running, worker_pid=os.getpid())
    store_runs.update_progress(db, running, 3, 10, "upscale")
    runs = store_runs.list_runs(db)
    return {"imported": imported, "local": local, "runs": list(runs["id"])}


@pytest.fixture
def populated_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PopulatedDb:
    """bench_env with an imported E6 experiment and a stored CPU experiment (no upscaling)."""
    db = isolate_env(monkeypatch, tmp_path)
    first = store_e6(db)
    second = store_cpu_experiment(db)
    return PopulatedDb(db, (first, second))


def run_demo_cli(db_path: Path, env: dict[str, str], timeout: float = 300.0) -> str:
    """Run `python -m bench run --preset demo --json` into db_path; return the experiment id.
    Fails the test (with the CLI's stderr) if it does not succeed."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--preset", "demo", "--db", str(db_path), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"demo run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)["experiment_id"]


_DEMO_TEMPLATE: dict[str, tuple[Path, str]] = {}
"""The session's one demo run: its data directory and experiment id (made on first use)."""


def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo run per session: the data directory it wrote and its experiment id."""
    if "demo" in _DEMO_TEMPLATE:
        return _DEMO_TEMPLATE["demo"]
    root = tmp_path_factory.mktemp("demo-template")
    data, home = root / "data", root / "home"
    data.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (*R2_VARS, *MODAL_VARS)}
    env.update(BENCH_DATA_DIR=str(data), BENCH_DB=str(data / "bench.duckdb"), HOME=str(home))
    experiment_id = run_demo_cli(data / "bench.duckdb", env)
    _DEMO_TEMPLATE["demo"] = (data, experiment_id)
    return data, experiment_id


@pytest.fixture
def demo_db(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> PopulatedDb:
    """bench_env holding a copy of a real demo run (database and output videos)."""
    template, experiment_id = demo_template(tmp_path_factory)
    db = isolate_env(monkeypatch, tmp_path)
    shutil.copytree(template, db.parent, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock", "*.gate"))
    return PopulatedDb(db, (experiment_id,))


def app(page: str, *, query: dict[str, str] | None = None, run: bool = True):
    """An AppTest of a page file (path relative to the repo root), run once unless run=False.
    query sets URL query parameters (e.g. {"experiment": ID})."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / page), default_timeout=APP_TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if run:
        at.run()
    return at


def assert_no_exception(at) -> None:
    """Fail with the exception messages if the script raised."""
    errors = [e.value for e in at.exception]
    assert not errors, f"page raised: {errors}"


def page_text(at) -> str:
    """Every visible text of the page, one string (titles, markdown, captions, alerts, metrics,
    buttons' labels, expanders' labels)."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "code",
                 "error", "warning", "info", "success"):
        parts.extend(str(el.value) for el in getattr(at, kind))
    parts.extend(f"{m.label} {m.value}" for m in at.metric)
    parts.extend(str(b.label) for b in at.button)
    parts.extend(str(e.label) for e in at.expander)
    return shown("\n".join(parts))


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """What a reader sees of Markdown escaped by bench.escape.page_text: the backslashes before
    punctuation and the invisible word joiners gone."""
    return _ESCAPED.sub(r"\1", str(markdown)).replace("\u2060", "")


def plotly_figures(at) -> list[dict[str, Any]]:
    """The figure JSON of every plotly chart on the page (AppTest shows them as UnknownElement)."""
    figures = []
    for node in at.get("plotly_chart"):
        spec = getattr(node.proto, "spec", "") or getattr(node.proto, "figure", None)
        if isinstance(spec, str) and spec:
            figures.append(json.loads(spec))
        elif spec is not None and getattr(spec, "spec", ""):
            figures.append(json.loads(spec.spec))
    return figures


def verdict_rule(at) -> str | None:
    """The rule tag of the page's verdict card (ui.widgets.verdict_card draws it as a badge)."""
    for md in at.markdown:
        text = str(md.value)
        if text.startswith(":gray-badge[") and text.endswith("]"):
            return shown(text[len(":gray-badge["):-1])
    return None


def dataframes(at) -> list[Any]:
    """The DataFrames shown by st.dataframe / st.table / st.data_editor."""
    return [el.value for el in at.dataframe] + [el.value for el in at.table]
