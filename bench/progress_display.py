"""Live progress of runs in a terminal: bars redrawn in place on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from bench.orchestrator import RunEvent

BAR_WIDTH = 24


class ProgressDisplay:
    """A RunEvent listener that shows each run's frames and stage."""

    def __init__(self, labels: dict[str, str], stream: TextIO | None = None, tty: bool | None = None):
        """labels maps run id -> what to call it ('L4 6s #1')."""
        self.labels = labels
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._last_stage: dict[str, str] = {}
        self._width = max((len(label) for label in labels.values()), default=10)

    def __call__(self, event: RunEvent) -> None:
        label = self.labels.get(event.run_id, event.run_id[:8]).ljust(self._width)
        if event.kind == "progress":
            if self.tty:
                self._draw(label, event)
            elif self._last_stage.get(event.run_id) != event.stage:
                self._line(f"{label}  {event.stage} ({event.frames_done}/{event.frames_total} frames)")
            self._last_stage[event.run_id] = event.stage
        elif event.kind == "submitted":
            self._line(f"{label}  started")
        elif event.kind == "succeeded":
            self._line(f"{label}  done, {event.frames_done} frames")
        else:
            self._line(f"{label}  FAILED: {event.error}")

    def _draw(self, label: str, event: RunEvent) -> None:
        total = max(event.frames_total, 1)
        filled = int(BAR_WIDTH * min(event.frames_done, total) / total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.stream.write(f"\r{label}  [{bar}] {event.frames_done:>5}/{event.frames_total:<5} "
                          f"{event.stage:<10}")
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()
