"""Threads that overlap a job's stages: a producer that decodes ahead of the model (prefetch), a
consumer that encodes behind it (BackgroundWriter), and StageClock, the busy seconds per stage that
they and the model loop add to from their own threads."""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

import numpy as np

from workers.video import VideoWriter

T = TypeVar("T")


class StageClock:
    """Accumulates busy seconds per stage; safe to use from several threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - began)

    def timed_iter(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """Yield from items, charging the time spent producing each item to stage."""
        iterator = iter(items)
        while True:
            began = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                self.add(stage, time.perf_counter() - began)
                return
            self.add(stage, time.perf_counter() - began)
            yield item


_DONE = object()


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Produce items in a background thread, up to depth ahead; exceptions are re-raised here."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("done", _DONE))
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(("error", exc))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "done":
                return
            else:
                raise value
    finally:
        stop.set()


class BackgroundWriter:
    """Feeds frames to a VideoWriter from a thread so encoding overlaps the model."""

    def __init__(self, writer: VideoWriter, clock: StageClock, depth: int = 8):
        self._writer, self._clock = writer, clock
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="encoder", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is not None:
                continue
            try:
                with self._clock.time("encode"):
                    for frame in batch:
                        self._writer.write(frame)
            except BaseException as exc:
                self._error = exc

    def write_batch(self, frames: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frames)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items in order (the last one shorter)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
