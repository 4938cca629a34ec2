"""A real browser against `streamlit run dashboard.py`: run the demo from the Run page, watch the
progress, see the comparison charts appear, then visit Compare, History and Settings.

Debian's chromium (/usr/bin/chromium, installed by scripts/test.sh) driven by the playwright Python
package; screenshots of every step go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ui_helpers import MODAL_VARS, R2_VARS, ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SERVER_START_SECONDS = 60.0
DEMO_MS = 150_000  # the demo's three runs on this shared 2-core CPU
STEP_MS = 60_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="chromium not installed (scripts/test.sh installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer /_stcore/health in {SERVER_START_SECONDS:g} s")


@pytest.fixture
def dashboard(tmp_path: Path):
    """`streamlit run dashboard.py` on a free port with its data in tmp_path; yields the URL."""
    port = _free_port()
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (*R2_VARS, *MODAL_VARS)}
    env.update(BENCH_DATA_DIR=str(data), BENCH_DB=str(data / "bench.duckdb"), HOME=str(home),
               PYTHONUNBUFFERED="1")
    log = tmp_path / "streamlit.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             # No file watcher: edits to the checkout during the test would show "File change,
             # Rerun" in the status widget that _settle waits on.
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        # The server only; runs it launched live in their own session and end once done.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def page():
    """A chromium page 1400x1000, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


VIEWPORT = {"width": 1400, "height": 1000}
# Streamlit scrolls its main area inside the page, so a "full page" screenshot shows only the
# viewport: grow the viewport to the content's height for the shot, then restore it.
_CONTENT_HEIGHT = """() => Math.max(document.body.scrollHeight, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]'),
    e => e.scrollHeight))"""


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = min(max(int(page.evaluate(_CONTENT_HEIGHT)), VIEWPORT["height"]), 12_000)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.wait_for_timeout(500)  # let plotly re-lay out its charts at the new size
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def _settle(page) -> None:
    """Wait until Streamlit is not running the script (the 'Running...' status is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=STEP_MS)


def _shot_while_running(page) -> None:
    """A screenshot while the first run has finished and the others go on, when the browser
    catches that moment (a fast machine may finish the runs between two polls: no shot then)."""
    headline = page.get_by_text(re.compile(r"^[1-3] of 3 runs finished"))
    headline.first.wait_for(timeout=DEMO_MS)
    if not headline.first.inner_text().startswith("3 of 3"):
        _shot(page, "02b-running-charts-filling")


def test_run_the_demo_watch_progress_and_compare(dashboard, page):
    page.goto(dashboard + "/", timeout=STEP_MS)  # Run is the default page
    page.get_by_role("heading", name="Run a benchmark").wait_for(timeout=STEP_MS)
    page.get_by_text("No experiment started yet").wait_for(timeout=STEP_MS)
    page.get_by_text("Frames at 10 fps").wait_for(timeout=STEP_MS)
    _settle(page)
    _shot(page, "01-run-form")

    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("runs finished").first.wait_for(timeout=STEP_MS)
    assert "experiment=" in page.url
    _shot(page, "02-progress")

    _shot_while_running(page)
    page.get_by_text("3 of 3 runs finished").wait_for(timeout=DEMO_MS)
    page.locator(".js-plotly-plot svg.main-svg").first.wait_for(timeout=STEP_MS)
    page.get_by_text("Verdict:").wait_for(timeout=STEP_MS)
    _settle(page)
    assert page.get_by_text("3 succeeded").count() >= 1
    assert page.get_by_text("failed:").count() == 0
    assert page.locator(".js-plotly-plot").count() >= 4
    _shot(page, "03-finished-with-charts")

    page.reload()  # nothing is lost: the URL names the experiment, the store has the results
    page.get_by_text("3 of 3 runs finished").wait_for(timeout=STEP_MS)
    page.locator(".js-plotly-plot svg.main-svg").first.wait_for(timeout=STEP_MS)

    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_url("**/compare?*experiment=*", timeout=STEP_MS)
    page.locator(".js-plotly-plot svg.main-svg").first.wait_for(timeout=STEP_MS)
    _settle(page)
    assert page.locator(".js-plotly-plot").count() >= 3
    _shot(page, "04-compare")

    page.goto(dashboard + "/history", timeout=STEP_MS)
    page.get_by_role("heading", name="History").wait_for(timeout=STEP_MS)
    _settle(page)
    _shot(page, "05-history")

    page.goto(dashboard + "/settings", timeout=STEP_MS)
    page.get_by_role("heading", name="Settings").wait_for(timeout=STEP_MS)
    page.get_by_text("Experiments").first.wait_for(timeout=STEP_MS)
    _settle(page)
    _shot(page, "06-settings")
