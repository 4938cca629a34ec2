"""The Settings page: price edits, storage/credential status without secrets, the database facts."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.price_settings import load_prices, prices_path, save_prices
from bench.pricing import DEFAULT_PRICES
from core.errors import InputError
from tests.ui_helpers import (  # noqa: F401
    app,
    assert_no_exception,
    bench_env,
    dataframes,
    page_text,
    populated_db,
    shown,
)
from ui import settings_view as settings

SETTINGS_PAGE = "ui/settings_page.py"


# --------------------------------------------------------------------------- pure helpers


def test_price_frame_lists_the_catalog_with_hourly_prices():
    frame = settings.price_frame(DEFAULT_PRICES)
    assert list(frame[settings.GPU])[:2] == ["T4", "L4"]
    t4 = frame.iloc[0]
    # Money is written by the one formatter every page uses (the Run page's GPU label too).
    assert t4[settings.RATE] == 0.000164 and t4[settings.HOURLY] == "$0.5904"
    assert t4[settings.CATALOG] == "$0.000164"
    assert t4[settings.MODAL] == "T4" and t4[settings.MEMORY] == 16


def test_editing_a_rate_makes_a_dated_user_override():
    frame = settings.price_frame(DEFAULT_PRICES)
    assert settings.apply_price_edits(frame, DEFAULT_PRICES) is DEFAULT_PRICES
    frame.loc[frame[settings.GPU] == "L4", settings.RATE] = 0.0002
    edited = settings.apply_price_edits(frame, DEFAULT_PRICES)
    assert edited.date == "user override"
    assert edited.rate("L4") == 0.0002 and edited.rate("T4") == 0.000164
    assert settings.changed_rates(settings.price_frame(edited), edited) == {}


def test_empty_or_negative_rates_are_refused():
    frame = settings.price_frame(DEFAULT_PRICES)
    frame.loc[0, settings.RATE] = float("nan")
    with pytest.raises(InputError, match="price for T4 is empty"):
        settings.apply_price_edits(frame, DEFAULT_PRICES)
    frame.loc[0, settings.RATE] = -1.0
    with pytest.raises(InputError, match="from 1e-09 to 1"):
        settings.apply_price_edits(frame, DEFAULT_PRICES)


def test_human_size_and_counts():
    assert [settings.human_size(n) for n in (512, 2_400_000, 3_000_000_000)] == \
        ["512 B", "2.4 MB", "3.0 GB"]
    experiments = pd.DataFrame([{"runs": 7, "queued": 0, "running": 0, "succeeded": 6, "failed": 1,
                                 "interrupted": 0, "cancelled": 0},
                                {"runs": 3, "queued": 1, "running": 0, "succeeded": 1, "failed": 0,
                                 "interrupted": 0, "cancelled": 1}])
    counts = settings.run_counts(experiments)
    assert counts == {"experiments": 2, "runs": 10, "queued": 1, "running": 0, "succeeded": 7,
                      "failed": 1, "interrupted": 0, "cancelled": 1}
    assert settings.run_counts(experiments.iloc[:0])["runs"] == 0


# --------------------------------------------------------------------------- the page (AppTest)


def test_page_renders_on_an_empty_database_without_creating_it(bench_env):  # noqa: F811
    at = app(SETTINGS_PAGE)
    assert_no_exception(at)
    text = page_text(at)
    assert "catalog of **2026-06**" in text
    assert "No database yet" in text and str(bench_env) in text
    assert "local directory" in text
    assert any("no Modal token" in w.value for w in at.warning)
    assert not bench_env.exists()


def test_page_counts_runs_of_a_populated_database(populated_db):  # noqa: F811
    at = app(SETTINGS_PAGE)
    assert_no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Experiments"] == "2" and metrics["Runs"] == "9"
    assert metrics["Succeeded"] == "7" and metrics["Failed or interrupted"] == "2"
    assert metrics["Size"].endswith("MB") or metrics["Size"].endswith("kB")


def test_credentials_show_as_set_never_their_values(bench_env, monkeypatch):  # noqa: F811
    secret = "s3cr3t-value-never-shown"
    monkeypatch.setenv("R2_ENDPOINT_URL", "https://acct123.r2.cloudflarestorage.com")
    monkeypatch.setenv("R2_BUCKET", "videos")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "AKIA-also-secret")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-123")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-456")
    at = app(SETTINGS_PAGE)
    assert_no_exception(at)
    shown = page_text(at) + "\n".join(df.to_string() for df in dataframes(at))
    assert secret not in shown and "AKIA-also-secret" not in shown and "as-456" not in shown
    assert "R2 bucket videos at acct123.r2.cloudflarestorage.com" in shown
    table = next(df for df in dataframes(at) if "Setting" in df.columns)
    assert dict(zip(table["Setting"], table["State"])) == {
        "R2_ENDPOINT_URL": "set", "R2_BUCKET": "set", "R2_ACCESS_KEY_ID": "set",
        "R2_SECRET_ACCESS_KEY": "set"}
    assert any("Modal token found" in s.value for s in at.success)


def test_partial_r2_settings_say_which_are_missing(bench_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BENCH_STORAGE", "r2")
    monkeypatch.setenv("R2_BUCKET", "videos")
    at = app(SETTINGS_PAGE)
    assert_no_exception(at)
    assert any("R2 storage needs R2_ENDPOINT_URL, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY"
               in shown(e.value) for e in at.error)


def test_user_override_is_shown_and_reset_restores_the_catalog(bench_env):  # noqa: F811
    save_prices(DEFAULT_PRICES.with_overrides({"L4": 0.0002}))
    at = app(SETTINGS_PAGE)
    assert_no_exception(at)
    assert any("user override" in i.value for i in at.info)
    editor = next(df for df in dataframes(at) if settings.RATE in df.columns)
    assert editor.set_index(settings.GPU).loc["L4", settings.RATE] == 0.0002
    at.button(key="settings_reset_prices").click().run()
    assert_no_exception(at)
    assert load_prices() == DEFAULT_PRICES and not prices_path().exists()
    assert "catalog of **2026-06**" in page_text(at)
    assert at.button(key="settings_reset_prices").disabled


def test_saving_unchanged_prices_says_so(bench_env):  # noqa: F811
    at = app(SETTINGS_PAGE)
    at.button(key="settings_save_prices").click().run()
    assert_no_exception(at)
    assert any(i.value == "Nothing changed." for i in at.info)


def test_saved_prices_persist_and_cost_cli_runs(bench_env):  # noqa: F811
    """A price saved in Settings is the table every later run uses, the CLI's too."""
    import json
    import os
    import subprocess
    import sys

    from tests.ui_helpers import ROOT

    save_prices(DEFAULT_PRICES.with_overrides({"T4": 0.0002}))
    assert load_prices().rate("T4") == 0.0002 and load_prices().date == "user override"
    at = app("ui/settings_page.py")
    assert_no_exception(at)
    assert "user override" in page_text(at)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "e6", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    experiment = json.loads(subprocess.run(
        [sys.executable, "-m", "bench", "history", "--json"], env=env, capture_output=True,
        text=True, timeout=60).stdout)["experiments"][0]
    assert proc.returncode == 2  # no R2/Modal here: stored as failed, priced all the same
    assert experiment["price_table"]["gpus"]["T4"]["usd_per_second"] == 0.0002
    save_prices(DEFAULT_PRICES)
    assert not prices_path().exists()


def test_unreadable_saved_prices_warn_and_fall_back_to_the_catalog(bench_env):  # noqa: F811
    prices_path().parent.mkdir(parents=True, exist_ok=True)
    prices_path().write_text("{not json")
    at = app("ui/settings_page.py")
    assert_no_exception(at)
    assert "fix or delete the file" in page_text(at)
