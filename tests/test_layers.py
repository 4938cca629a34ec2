"""The layer contracts (.importlinter) hold, and the light modules stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.split("Contracts:")[-1].replace("0 broken", "")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    return set(done.stdout.split())


def test_plans_and_the_model_catalog_load_no_torch():
    loaded = _modules_after("import bench.plan, bench.analysis, workers.catalog")
    assert not {"torch", "av", "modal", "streamlit"} & loaded


def test_modal_image_ships_only_the_worker_side():
    loaded = _modules_after("import workers.modal_app")
    assert not {"bench", "ui", "streamlit", "duckdb", "torch"} & loaded
    source = (ROOT / "workers" / "modal_app.py").read_text()
    assert 'add_local_python_source("core", "store", "workers")' in source
    assert '"requirements-worker.txt"' in source
    worker_requirements = (ROOT / "requirements-worker.txt").read_text().lower()
    for package in ("streamlit", "plotly", "duckdb", "pandas", "-r "):
        assert package not in worker_requirements
    assert "-r requirements-worker.txt" in (ROOT / "requirements.txt").read_text()
