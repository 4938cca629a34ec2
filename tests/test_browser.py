"""A real browser against `streamlit run dashboard.py`, as a newcomer meets it: an empty history ->
load the bundled examples -> the Compare page's verdict -> the CPU demo run with its live elapsed
time and ETA -> History -> a run's detail page (and Settings). Every page is checked at 1440 and
800 px wide: no button or link label is cut, no metric is cut, and no table hides its key columns
off to the right.

Debian's chromium (/usr/bin/chromium, installed by scripts/test.sh) driven by the playwright Python
package; screenshots of every step at both widths go to test-artifacts/browser/ (gitignored).
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
from urllib.parse import quote

import pytest

from tests.ui_helpers import MODAL_VARS, R2_VARS, ROOT
from ui import compare_view, history_view

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SERVER_START_SECONDS = 60.0
DEMO_MS = 150_000  # the demo's 18 short runs on this shared 2-core CPU
STEP_MS = 60_000
WIDE, NARROW = 1440, 800
WIDTHS = (WIDE, NARROW)
HEIGHT = 1000
KEY_COLUMNS = {
    "Clip": compare_view.CLIP_KEY_COLUMNS,  # Compare's per-clip table
    "Experiment": history_view.EXPERIMENT_KEY_COLUMNS,
    history_view.RUN_LINK: history_view.RUN_KEY_COLUMNS,
    "Fact": ("Fact", "Value"),
    "Stage": ("Stage", "Seconds"),
    "GPU": ("GPU", "$ per second", "$ per hour"),  # the Settings price editor
}
"""A table (known by its first column) -> the columns it must show without scrolling. Any other
table must show every column."""

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
    """`streamlit run dashboard.py` on a free port with an empty history in tmp_path; yields the
    URL."""
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
def browser():
    """A chromium browser context, closed afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium.new_context(viewport={"width": WIDE, "height": HEIGHT})
        finally:
            chromium.close()


# Streamlit scrolls its main area inside the page, so a "full page" screenshot shows only the
# viewport: grow the viewport to the content's height for the shot, then restore it.
_CONTENT_HEIGHT = """() => Math.max(document.body.scrollHeight, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"]'),
    e => e.scrollHeight))"""

# Labels of buttons and links whose text is wider than its box (an ellipsis), or that reach past
# the right edge of the window; metric values likewise.
_CUT_LABELS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const cut = [];
  const clipped = el => el.scrollWidth > el.clientWidth + 1 &&
      getComputedStyle(el).overflowX !== 'visible';
  const targets = main.querySelectorAll(
      'button, a[data-testid="stPageLink-NavLink"], [data-testid="stMetricValue"], ' +
      '[data-testid="stMetricLabel"]');
  for (const el of targets) {
    if (el.closest('[data-testid="stElementToolbar"]')) continue;  // icon-only table tools
    if (el.closest('[data-testid="stFileUploader"]') && /icon/.test(el.innerText)) continue;  // its "add" icon
    const box = el.getBoundingClientRect();
    const text = (el.innerText || '').trim();
    if (!text || box.width === 0 || box.height === 0) continue;
    const parts = [el, ...el.querySelectorAll('*')].filter(
        e => Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()));
    if ([el, ...parts].some(clipped)) cut.push(text);
    else if (box.right > window.innerWidth + 1) cut.push(text + ' (past the edge)');
  }
  return cut;
}"""

# Each visible table: its column headers as rendered (glide-data-grid renders the columns in view,
# the last one possibly in part) and whether it scrolls sideways.
_TABLES = """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]'))
  .filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0)
  .map(e => {
    const scroller = e.querySelector('.dvn-scroller');
    return {headers: Array.from(e.querySelectorAll('th[role=columnheader]'), t => t.textContent),
            scrolls: !!scroller && scroller.scrollWidth > scroller.clientWidth + 1};
  })"""


def _settle(page) -> None:
    """Wait until Streamlit is not running the script (the 'Running...' status is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=STEP_MS)


def _shot(page, name: str, width: int) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = min(max(int(page.evaluate(_CONTENT_HEIGHT)), HEIGHT), 12_000)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(500)  # let plotly re-lay out its charts at the new size
    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}px.png"), full_page=True)
    page.set_viewport_size({"width": width, "height": HEIGHT})


def _layout_problems(page) -> list[str]:
    """Cut labels and tables hiding key columns on the page as it is drawn now."""
    problems = [f"cut label: {text!r}" for text in page.evaluate(_CUT_LABELS)]
    for table in page.evaluate(_TABLES):
        headers = table["headers"]
        if not headers:
            continue
        key = KEY_COLUMNS.get(headers[0])
        if key is None:
            if table["scrolls"]:
                problems.append(f"table {headers} scrolls sideways at this width")
            continue
        # Without sideways scrolling every rendered column is whole; with it the last rendered
        # one may be cut: a key column must come before it.
        whole = headers if not table["scrolls"] else headers[:-1]
        hidden = [c for c in key if c not in whole]
        if hidden:
            problems.append(f"table {headers[0]!r} hides key column(s) {hidden} (shows {headers})")
    return problems


def _check_and_shoot(page, name: str) -> None:
    """At 1440 and 800 px: screenshot, and fail on cut labels or hidden key columns."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.wait_for_timeout(700)  # the grids re-measure their columns
        problems += [f"{name} at {width}px: {p}" for p in _layout_problems(page)]
        _shot(page, name, width)
    page.set_viewport_size({"width": WIDE, "height": HEIGHT})
    assert not problems, "\n".join(problems)


def test_a_newcomer_walks_from_examples_to_a_run_detail(dashboard, browser):
    page = browser.new_page()

    # 1. An empty history: the start page says what the tool answers and offers the examples.
    page.goto(dashboard + "/", timeout=STEP_MS)
    page.get_by_role("heading", name="Upscale GPU Bench").wait_for(timeout=STEP_MS)
    page.get_by_text("Which GPU — or engine, or model — upscales").wait_for(timeout=STEP_MS)
    _settle(page)
    _check_and_shoot(page, "01-start-empty-history")

    # 2. Load them: Compare opens on a real verdict.
    page.get_by_role("button", name=re.compile("Load the example experiments")).click()
    page.wait_for_url("**/compare?*experiment=*", timeout=STEP_MS)
    page.get_by_role("heading", name="Use L4").wait_for(timeout=STEP_MS)
    page.locator(".js-plotly-plot svg.main-svg").first.wait_for(timeout=STEP_MS)
    _settle(page)
    assert page.get_by_text("The seed experiment's reported numbers").count() >= 1
    _check_and_shoot(page, "02-compare-verdict-of-the-examples")

    # 3. The CPU demo from the Run page (its own address): live progress with elapsed and ETA.
    page.goto(dashboard + "/run", timeout=STEP_MS)
    page.get_by_role("heading", name="Run a benchmark").wait_for(timeout=STEP_MS)
    page.get_by_text("Frames at 10 fps").wait_for(timeout=STEP_MS)
    assert page.get_by_text("Page not found").count() == 0
    _settle(page)
    _check_and_shoot(page, "03-run-form")
    page.get_by_role("button", name=re.compile(r"Run$")).click()
    live = page.get_by_text(re.compile(r"elapsed, (about \S+ left|estimating the time left)"))
    live.first.wait_for(timeout=STEP_MS)
    assert "experiment=" in page.url
    # Once frames are done, the headline estimates the time left; a fast machine may finish
    # between two polls, so the shot takes whichever moment the page shows.
    eta = page.get_by_text(re.compile(r"^\d+ of 18 runs finished .* elapsed, about \S+ left"))
    try:
        eta.first.wait_for(timeout=20_000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError; finished before a poll
        pass
    _shot(page, "04-demo-running-with-elapsed-and-eta", WIDE)
    page.get_by_text(re.compile("18 of 18 runs finished")).first.wait_for(timeout=DEMO_MS)
    page.get_by_role("heading", name=re.compile(r"^Use cpu")).wait_for(timeout=STEP_MS)
    page.locator(".js-plotly-plot svg.main-svg").first.wait_for(timeout=STEP_MS)
    _settle(page)
    assert page.get_by_text("18 succeeded").count() >= 1
    _check_and_shoot(page, "05-demo-finished-with-verdict")

    # 4. History: every run, linked to its detail page.
    page.goto(dashboard + "/history", timeout=STEP_MS)
    page.get_by_role("heading", name="History").wait_for(timeout=STEP_MS)
    page.get_by_text(re.compile(r"run\(s\); open one")).wait_for(timeout=STEP_MS)
    _settle(page)
    _check_and_shoot(page, "06-history")

    # 5. A run's detail page, from the first row's link in the runs table (a new tab).
    runs_table = page.locator('[data-testid="stDataFrame"]').nth(1)
    runs_table.scroll_into_view_if_needed()
    box = runs_table.bounding_box()
    link = (box["x"] + 30, box["y"] + 35 + 17)  # under the header row: the first run's id
    page.mouse.move(*link)  # the grid draws the link on hover; a click on it opens a new tab
    page.wait_for_timeout(300)
    with browser.expect_page(timeout=STEP_MS) as opened:
        page.mouse.click(*link)
    detail = opened.value
    detail.set_viewport_size({"width": WIDE, "height": HEIGHT})
    detail.wait_for_url("**/run-detail?run=*", timeout=STEP_MS)
    detail.get_by_role("heading", name="Run detail").wait_for(timeout=STEP_MS)
    detail.get_by_text("Permalink:").wait_for(timeout=STEP_MS)
    detail.get_by_role("heading", name="Stages").wait_for(timeout=STEP_MS)
    detail.locator('[data-testid="stVideo"]').wait_for(timeout=STEP_MS)
    _settle(detail)
    assert detail.get_by_text(re.compile(r"\[[0-9a-f]{8}\]\s+done, \d+ frames")).count() >= 1
    _check_and_shoot(detail, "07-run-detail")

    # 6. Settings: buttons and metrics whole at both widths.
    detail.goto(dashboard + "/settings", timeout=STEP_MS)
    detail.get_by_role("heading", name="Settings").wait_for(timeout=STEP_MS)
    detail.get_by_text("Experiments").first.wait_for(timeout=STEP_MS)
    _settle(detail)
    _check_and_shoot(detail, "08-settings")


_MADE_OF_NAMES = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const hostile = s => (s || '').includes('127.0.0.1:9') || (s || '').includes('example.com');
  return {
    images: Array.from(main.querySelectorAll('img, image')).map(e => e.getAttribute('src') ||
        e.getAttribute('href')).filter(hostile),
    links: Array.from(main.querySelectorAll('a')).map(e => e.getAttribute('href') ||
        e.getAttribute('xlink:href')).filter(hostile),
    katex: main.querySelectorAll('.katex, .katex-display, math').length,
    bold: Array.from(main.querySelectorAll('b, strong')).map(e => e.textContent)
        .filter(t => t === 'x'),
    headings: Array.from(main.querySelectorAll('h1, h2, h3, h4, h5, h6'))
        .map(e => e.textContent).filter(t => t.startsWith('heading')),
    text: main.textContent,
  };
}"""


def test_hostile_names_render_as_text(dashboard, browser, tmp_path):
    """Experiments whose GPU, clip, model and experiment names and run errors are Markdown (an
    image of a tracking pixel, links, colour, KaTeX, HTML, a heading; cases.HOSTILE_NAMES), and a
    URL parameter that is a link: Compare, Run detail, the live Run view and History draw them
    as text. No <img> or <a> is made of a name, no KaTeX, no bold or heading, and the browser
    never asks the pixel's host for anything."""
    from tests.reliability.cases import HOSTILE_NAMES
    from tests.ui_helpers import store_hostile

    stored = store_hostile(tmp_path / "data" / "bench.duckdb")
    requests: list[str] = []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))

    visits = {
        "compare-imported": f"/compare?experiment={stored['imported']}",
        "compare-local": f"/compare?experiment={stored['local']}",
        "compare-url-parameter": "/compare?experiment=" + quote(HOSTILE_NAMES[1]),
        "run-live": f"/run?experiment={stored['local']}",
        "history": "/history",
        **{f"run-detail-{i}": f"/run-detail?run={run}" for i, run in enumerate(stored["runs"])},
    }
    for name, path in visits.items():
        page.goto(dashboard + path, timeout=STEP_MS)
        page.wait_for_selector('[data-testid="stMain"] h1', timeout=STEP_MS)
        page.wait_for_timeout(2500)  # the live view's fragment and the charts draw
        found = page.evaluate(_MADE_OF_NAMES)
        _shot(page, f"hostile-{name}", WIDE)
        assert not found["images"], (name, found["images"])
        assert not found["links"], (name, found["links"])
        assert found["katex"] == 0 and not found["bold"] and not found["headings"], (name, found)
        text = found["text"].replace("\u2060", "")  # page_text's word joiners stop autolinks
        assert any(h in text for h in HOSTILE_NAMES), f"{name}: no hostile name shown as text"

    assert not [u for u in requests if "127.0.0.1:9" in u or "example.com" in u], requests
