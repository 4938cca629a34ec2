"""An EventSink for tests: it keeps every event a backend reports, in order."""

from __future__ import annotations

from bench.backends.base import Finished
from core.job import JobResult, Progress


class Sink:
    """An EventSink that keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.cancel: set[str] = set()
        """Runs a test cancels: cancelled() answers with these."""

    def submitted(self, run_id: str, call_id: str | None, worker: str | None) -> None:
        self.events.append(("submitted", run_id, call_id, worker))

    def progress(self, run_id: str, progress: Progress) -> None:
        self.events.append(("progress", run_id, progress))

    def finished(self, outcome: Finished) -> None:
        self.events.append(("finished", outcome.run_id, outcome))

    def failed(self, run_id: str, reason: str) -> None:
        self.events.append(("failed", run_id, reason))

    def cancelled(self, run_ids) -> set[str]:
        return self.cancel & set(run_ids)

    def of(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]

    @property
    def results(self) -> dict[str, JobResult]:
        """Run id -> the result each finished run came back with."""
        return {e[1]: e[2].result for e in self.of("finished")}

    @property
    def failures(self) -> dict[str, str]:
        """Run id -> the reason of each run that failed without a result."""
        return {e[1]: e[2] for e in self.of("failed")}
