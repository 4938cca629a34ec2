"""The states a run goes through, named once: the database's CHECK constraint, the store's
queries, the CLI and the dashboard compare a run's status with these names instead of spelling
them."""

QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "queued", "running", "succeeded", "failed", "interrupted"
"""Each state by name; SUCCEEDED is the one state with a result."""
RUN_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, INTERRUPTED)
"""Every state a run can be in, in lifecycle order."""
ACTIVE_STATUSES = (QUEUED, RUNNING)
"""Runs that have not reached a final state."""
FINAL_STATUSES = (SUCCEEDED, FAILED, INTERRUPTED)
"""States a run ends in."""
FAILED_STATUSES = (FAILED, INTERRUPTED)
"""Final states of runs that brought no result (failed, interrupted)."""
