"""Which run each local device does next.

A run names one device ('cpu', 'cuda:1') or the pool of every card of the machine ('cuda:all').
Each device takes its own runs first, then pooled runs, so every card stays busy until the plan is
done. A card that fails a pooled run with a device fault (its worker died, a CUDA error, out of
memory) leaves the pool: the run goes back for another card once, and the other cards carry on.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

from bench.backends.base import Submission

POOL = "cuda:all"
"""The device name of a run that may go to any card of this machine."""
DEVICE_FAULTS = ("cuda", "out of memory", "worker process died", "device-side")
"""Words in a failure that blame the card rather than the job (compared in lower case)."""


def is_device_fault(reason: str | None) -> bool:
    """Whether a failure reason points at the card (so another card may succeed)."""
    text = (reason or "").lower()
    return any(word in text for word in DEVICE_FAULTS)


class RunQueue:
    """The runs of one execute() call, handed out device by device."""

    def __init__(self, submissions: Sequence[Submission], cards: Sequence[str]):
        """cards: the CUDA devices of this machine (the pool's members), e.g. ('cuda:0', 'cuda:1')."""
        self.cards = tuple(cards)
        self._own: dict[str, deque[Submission]] = {}
        self._pool: deque[Submission] = deque()
        self._left_pool: set[str] = set()
        self._retried: set[str] = set()
        for sub in submissions:
            if sub.gpu == POOL:
                self._pool.append(sub)
            else:
                self._own.setdefault(sub.gpu, deque()).append(sub)

    def devices(self) -> list[str]:
        """Devices that have work: those with runs of their own, and every card when runs are pooled."""
        wanted = list(self._own)
        if self._pool:
            wanted += [card for card in self.cards if card not in wanted]
        return wanted

    def next_for(self, device: str) -> Submission | None:
        """The run `device` does next: its own first, then a pooled one (cards still in the pool)."""
        own = self._own.get(device)
        if own:
            return own.popleft()
        if self._pool and device in self.cards and device not in self._left_pool:
            return self._pool.popleft()
        return None

    def pooled_run_failed(self, device: str, sub: Submission, reason: str | None) -> bool:
        """A pooled run failed on `device`. For a device fault the card leaves the pool and the run
        goes back for another card (once); returns True when it was put back (do not report it)."""
        if sub.gpu != POOL or not is_device_fault(reason):
            return False
        self._left_pool.add(device)
        others = [card for card in self.cards if card not in self._left_pool]
        if sub.run_id in self._retried or not others:
            return False
        self._retried.add(sub.run_id)
        self._pool.appendleft(sub)
        return True

    def stranded(self) -> list[Submission]:
        """Pooled runs no card can take any more (every card left the pool); removes them."""
        if any(card not in self._left_pool for card in self.cards):
            return []
        left, self._pool = list(self._pool), deque()
        return left
