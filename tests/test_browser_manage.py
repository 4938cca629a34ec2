"""A real browser against `streamlit run dashboard.py`, as a team uses it: load the examples ->
Compare's verdict -> add another experiment to compare -> choose the baseline -> download a table
as CSV -> the Run form with an uploaded video (its clips and fps follow the video) -> launch ->
Stop -> rename, note and delete the stopped experiment (deleting asks first). Every step at 1440
and 800 px with no cut label; screenshots in test-artifacts/browser/ (see tests/test_browser.py,
whose server, browser and layout checks this walk shares).
"""

from __future__ import annotations

import re

import pytest

from store import runs as store_runs
from store.db import Database
from tests.test_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    STEP_MS,
    _check_and_shoot,
    _settle,
    browser,
    dashboard,
)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="chromium not installed (scripts/test.sh installs it)")


def _pick(page, label: str, option: str | re.Pattern) -> None:
    """Choose an option of the Streamlit selectbox or multiselect labelled `label`."""
    page.get_by_label(label).click()
    page.get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")  # a multiselect stays open for more
    _settle(page)


def _wait_for_param(page, name: str) -> None:
    """Until the URL holds the query parameter (Streamlit sets it without navigating)."""
    page.wait_for_function(f"() => new URLSearchParams(location.search).has({name!r})",
                           timeout=STEP_MS)


def test_a_team_compares_stops_and_manages_experiments(dashboard, browser, tmp_path):
    from workers.synthetic import write_demo_clip

    page = browser.new_page()  # the context accepts downloads (playwright default)

    # 1. Load the examples: Compare opens on a verdict.
    page.goto(dashboard + "/", timeout=STEP_MS)
    page.get_by_role("button", name=re.compile("Load the example experiments")).click()
    page.wait_for_url("**/compare?*experiment=*", timeout=STEP_MS)
    page.get_by_role("heading", name=re.compile("^Use ")).wait_for(timeout=STEP_MS)
    _settle(page)

    # 2. Another experiment joins the comparison, from Compare itself; the URL keeps it.
    _pick(page, "Compare with", re.compile("e6-h200-fast"))
    _wait_for_param(page, "with")
    page.get_by_role("heading", name="Against the baseline").wait_for(timeout=STEP_MS)
    _check_and_shoot(page, "m01-compare-with-another-experiment")

    # 3. A baseline of the user's choice; the deltas are measured against it.
    _pick(page, "Baseline: the candidate the others are measured against", re.compile("^L4"))
    _wait_for_param(page, "baseline")
    _check_and_shoot(page, "m02-compare-baseline-chosen")

    # 4. Every table downloads as CSV: the per-clip one here.
    with page.expect_download(timeout=STEP_MS) as download:
        page.locator('[data-testid="stDownloadButton"]').filter(has_text="CSV").first.click()
    csv = download.value.path().read_text(encoding="utf-8")
    assert csv.splitlines()[0].startswith("Clip,Candidate,GPU cost")

    # 5. The Run form with an uploaded video: its frame rate and clips follow it.
    video = tmp_path / "uploaded clip.mp4"
    write_demo_clip(video, seconds=3.0, width=96, height=64, fps=12.0)
    page.goto(dashboard + "/run", timeout=STEP_MS)
    page.get_by_role("heading", name="Run a benchmark").wait_for(timeout=STEP_MS)
    page.get_by_text("Upload a video").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(video))
    page.get_by_text(re.compile(r"follow this source \(96x64, 12 fps, 3\.0 s\)")).wait_for(
        timeout=STEP_MS)
    page.get_by_text(re.compile("Frames at 12 fps")).wait_for(timeout=STEP_MS)
    _settle(page)
    _check_and_shoot(page, "m03-run-form-uploaded-video")

    # 6. Launch, then Stop: the queued runs never start, the running one stops.
    page.get_by_role("button", name=re.compile(r"Run$")).click()
    page.wait_for_url("**/run?*experiment=*", timeout=STEP_MS)
    experiment_id = re.search(r"experiment=(\w+)", page.url).group(1)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"Cancelled \d+ run\(s\)")).wait_for(timeout=STEP_MS)
    _settle(page)
    db = Database(tmp_path / "data" / "bench.duckdb")  # the dashboard fixture's history
    statuses = set(store_runs.list_runs(db, experiment_id=experiment_id)["status"])
    assert statuses <= {"cancelled", "succeeded"} and "cancelled" in statuses
    _check_and_shoot(page, "m04-stopped")

    # 7. Rename and note it, then delete it (asked first).
    page.get_by_text("Rename, notes, rerun or delete").click()
    page.get_by_label("Name").fill("uploaded clip, stopped")
    page.get_by_label("Notes").fill("stopped on purpose")
    page.get_by_label("Tags (comma-separated)").fill("upload, stopped")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for(timeout=STEP_MS)
    _settle(page)
    row = store_runs.get_experiment(db, experiment_id)
    assert (row.name, row.notes, list(row.tags)) == ("uploaded clip, stopped",
                                                     "stopped on purpose", ["upload", "stopped"])
    page.get_by_role("button", name="Delete…").click()  # the expander stays open
    page.get_by_text("This cannot be undone").wait_for(timeout=STEP_MS)
    _settle(page)
    _check_and_shoot(page, "m05-delete-asks-first")
    page.get_by_role("button", name="Delete for good").click()
    page.get_by_text(re.compile(r"Deleted the experiment: \d+ run\(s\)")).wait_for(timeout=STEP_MS)
    assert store_runs.get_experiment(db, experiment_id) is None
    assert len(store_runs.list_experiments(db)) == 3  # the examples are untouched
    _settle(page)
    _check_and_shoot(page, "m06-deleted")

