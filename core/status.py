"""The states a run goes through, in one place (the database's CHECK constraint, the store's
queries, the CLI and the dashboard all read them from here)."""

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted", "cancelled")
"""Every state a run can be in, in lifecycle order."""
ACTIVE_STATUSES = ("queued", "running")
"""Runs that have not reached a final state."""
FINAL_STATUSES = ("succeeded", "failed", "interrupted", "cancelled")
"""States a run ends in."""
SUCCEEDED = "succeeded"
"""The one state with a result."""
FAILED_STATUSES = tuple(s for s in FINAL_STATUSES if s != SUCCEEDED)
"""Final states of runs that brought no result (failed, interrupted, cancelled)."""
CANCELLED = "cancelled"
"""A run the user stopped (`bench cancel`, the live view's Stop): queued ones never start,
running ones are stopped, and nothing they wrote is kept."""
