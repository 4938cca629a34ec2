"""How the dashboard shows run statuses (the statuses themselves are core.status's)."""

from __future__ import annotations

STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:",
                "succeeded": ":material/check_circle:", "failed": ":material/error:",
                "interrupted": ":material/warning:", "cancelled": ":material/cancel:"}
"""Status (one of core.status.RUN_STATUSES) -> Material icon (Streamlit markdown) shown before a
run's progress line."""
UNKNOWN_ICON = ":material/radio_button_unchecked:"
"""Icon of a status the dashboard does not know."""
