"""The states a run goes through, named once: the database's CHECK constraint, the store's
queries, the CLI and the dashboard compare a run's status with these names instead of spelling
them."""

QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, CANCELLED = (
    "queued", "running", "succeeded", "failed", "interrupted", "cancelled")
"""Each state by name; SUCCEEDED is the one state with a result; CANCELLED a run the user
stopped (`bench cancel`, the live view's Stop): queued ones never start, running ones are
stopped, and nothing they wrote is kept."""
RUN_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED, CANCELLED)
"""Every state a run can be in, in lifecycle order."""
ACTIVE_STATUSES = (QUEUED, RUNNING)
"""Runs that have not reached a final state."""
FINAL_STATUSES = (SUCCEEDED, FAILED, INTERRUPTED, CANCELLED)
"""States a run ends in."""
FAILED_STATUSES = (FAILED, INTERRUPTED, CANCELLED)
"""Final states of runs that brought no result (failed, interrupted, cancelled)."""
