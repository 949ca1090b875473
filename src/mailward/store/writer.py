"""``EventWriter``: store writes from asyncio code without blocking the event loop.

The record_* methods (the same as ``Store``'s) only build the rows and queue them (a few
microseconds); one writer thread commits them in batches, in order. ``flush()`` returns once
everything queued before it is committed; ``close()`` drains the queue and stops the thread.
Both block: from a coroutine, ``await asyncio.to_thread(writer.flush)``.

Failures never reach the caller (the hub must not fail a message because the log is down):
a batch that hits a database outage is retried with back-off; a batch with a bad row is
retried one job at a time so only that job is lost. Lost and dropped jobs are counted in
``failed`` and ``dropped`` and logged (kind and ids only, never values).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.exc import OperationalError

from mailward.store.jobs import WriteJob
from mailward.store.recorder import Recorder

if TYPE_CHECKING:
    from mailward.store.api import Store

log = logging.getLogger("mailward.store")


@dataclass(slots=True)
class _Barrier:
    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class EventWriter(Recorder):
    """Queue of write jobs and the one thread that commits them."""

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 500,
        max_pending: int = 100_000,
        retry_delays: Sequence[float] = (0.1, 0.5, 2.0, 5.0),
    ) -> None:
        self.instance = store.instance
        self.keep_raw = store.keep_raw
        self.failed = 0  # jobs that could not be written
        self.dropped = 0  # jobs refused because the queue was full
        self.batches = 0  # commits done
        self._store = store
        self._batch_size = batch_size
        self._retry_delays = tuple(retry_delays)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mailward-store-writer", daemon=True)
        self._thread.start()

    # -- caller side -----------------------------------------------------------------------

    def _submit(self, job: WriteJob) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("EventWriter is closed")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error("store writer queue full: %d jobs dropped so far", self.dropped)

    def pending(self) -> int:
        """Jobs queued and not yet taken by the writer thread (approximate)."""
        return self._queue.qsize()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every job queued before this call is committed (or given up on)."""
        barrier = _Barrier()
        with self._lock:
            closed = self._closed
            if not closed:
                self._queue.put(barrier)
        if closed:  # close() already drains everything: wait for that
            self._thread.join(timeout)
            done = not self._thread.is_alive()
        else:
            done = barrier.done.wait(timeout)
        if not done:
            raise TimeoutError("store writer did not catch up in time")

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("store writer did not finish in time")

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self._batch_size:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            jobs = [item for item in items if isinstance(item, WriteJob)]
            if jobs:
                try:
                    self._commit(jobs)
                except Exception:  # never let the thread die: the hub would stop logging
                    self.failed += len(jobs)
                    log.exception("store writer: %d jobs lost", len(jobs))
            stop = False
            for item in items:
                if isinstance(item, _Barrier):
                    item.done.set()
                elif item is _STOP:
                    stop = True
            if stop:
                return

    def _commit(self, jobs: list[WriteJob]) -> None:
        for delay in (*self._retry_delays, None):
            try:
                self._store.apply(jobs)
                self.batches += 1
                return
            except OperationalError as exc:  # database unreachable, locked, restarting, ...
                if delay is None:
                    break
                log.warning("store writer: %s; retrying in %.1fs", _short(exc), delay)
                time.sleep(delay)
            except Exception:  # a bad row (constraint, value, ...): isolate it below
                break
        self._one_by_one(jobs)

    def _one_by_one(self, jobs: list[WriteJob]) -> None:
        for job in jobs:
            try:
                self._store.apply([job])
                self.batches += 1
            except Exception as exc:
                self.failed += 1
                log.error("store writer: could not write %s: %s", job.what, _short(exc))


def _short(exc: BaseException) -> str:
    """First line of a database error (parameters are hidden by the engine anyway)."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__
