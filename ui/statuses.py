"""How the dashboard shows run statuses (the statuses themselves are core.status's)."""

from __future__ import annotations

from core.status import CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, SUCCEEDED

STATUS_ICONS = {QUEUED: ":material/schedule:", RUNNING: ":material/autorenew:",
                SUCCEEDED: ":material/check_circle:", FAILED: ":material/error:",
                INTERRUPTED: ":material/warning:", CANCELLED: ":material/cancel:"}
"""Status (one of core.status.RUN_STATUSES) -> Material icon (Streamlit markdown) shown before a
run's progress line."""
UNKNOWN_ICON = ":material/radio_button_unchecked:"
"""Icon of a status the dashboard does not know."""
