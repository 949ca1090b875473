"""Delivery scheduling: workers take due messages from the spool, retry with backoff, bounce.

The schedule lives in memory (a ready queue and a heap of retry times) so that a busy hub never
rescans its spool directory per message; it is rebuilt from the spool on start and on flush.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mailward import dsn
from mailward.config import DeliveryConfig
from mailward.delivery import Attempt
from mailward.spool import Recipient, Spool, SpoolEntry, new_queue_id

if TYPE_CHECKING:
    from mailward.store.recorder import Recorder

log = logging.getLogger("mailward.queue")

Router = Callable[[SpoolEntry, bytes], Awaitable[dict[str, Attempt]]]


class QueueRunner:
    """Delivers what the spool holds; never drops a message it has not finished with."""

    def __init__(
        self, spool: Spool, route: Router, config: DeliveryConfig, hostname: str,
        recorder: Recorder | None = None,
        on_delivery: Callable[[str, float], None] | None = None,
    ) -> None:
        self.spool = spool
        # told of every delivery outcome and the seconds since arrival (metrics)
        self.on_delivery = on_delivery
        self.route = route
        self.config = config
        self.hostname = hostname
        self.recorder = recorder
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._later: list[tuple[float, str]] = []
        self._known: set[str] = set()  # queued ids that are ready, waiting or in delivery
        self._timer_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, recover: bool = True) -> None:
        """Schedule what the spool holds and start the workers. ``recover`` also discards
        half-written files: only when no other process can be writing to the spool."""
        self.flush(recovering=recover)
        self._tasks = [asyncio.create_task(self._worker(), name=f"delivery-{i}")
                       for i in range(self.config.concurrency)]
        self._tasks.append(asyncio.create_task(self._timer(), name="delivery-timer"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def enqueued(self, queue_id: str) -> None:
        """A message was just committed to the spool: deliver it now (once: a spool scan may
        have found it already)."""
        if queue_id in self._known:
            return
        self._known.add(queue_id)
        self._ready.put_nowait(queue_id)

    def flush(self, recovering: bool = False) -> None:
        """Everything waiting for a retry is due now; messages the spool has that we did not
        know of (start, `mailward queue flush`) are scheduled too."""
        while self._later:
            self._ready.put_nowait(heapq.heappop(self._later)[1])
        ids = self.spool.recover() if recovering else self.spool.queued()
        if recovering:
            log.info("spool recovered: %d message(s) queued", len(ids))
        now = time.time()
        for qid in ids:
            if qid in self._known:
                continue
            try:
                entry = self.spool.entry(qid)
            except OSError as exc:
                log.error("%s unreadable queue entry, left in place: %s", qid, exc)
                continue
            self._known.add(qid)
            if entry.next_attempt <= now:
                self._ready.put_nowait(qid)
            else:
                heapq.heappush(self._later, (entry.next_attempt, qid))
        self._timer_wake.set()

    async def _timer(self) -> None:
        while True:
            self._timer_wake.clear()
            now = time.time()
            while self._later and self._later[0][0] <= now:
                self._ready.put_nowait(heapq.heappop(self._later)[1])
            delay = self._later[0][0] - now if self._later else 60.0
            try:
                async with asyncio.timeout(max(0.05, delay)):
                    await self._timer_wake.wait()
            except TimeoutError:
                pass

    async def _worker(self) -> None:
        while True:
            qid = await self._ready.get()
            try:
                await self._deliver(qid)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s delivery failed unexpectedly; it stays queued", qid)
                self._retry_later(qid, self.config.retry_base)

    def _retry_later(self, qid: str, delay: float) -> None:
        heapq.heappush(self._later, (time.time() + delay, qid))
        self._timer_wake.set()

    async def _deliver(self, qid: str) -> None:
        if not await asyncio.to_thread(self.spool.contains, qid):
            self._known.discard(qid)  # removed by `mailward queue remove`
            log.info("%s no longer queued", qid)
            return
        entry, raw = await asyncio.to_thread(self.spool.load, qid)
        results = await self.route(entry, raw)
        entry.attempts += 1
        for rcpt in entry.recipients:
            result = results.get(rcpt.address)
            if rcpt.status != "pending" or result is None:
                continue
            rcpt.attempts += 1
            rcpt.last_reply = result.reply
            if result.status in ("delivered", "failed"):
                rcpt.status = result.status
            log.info("%s to=<%s> status=%s reply=%s", qid, rcpt.address, result.status,
                     result.reply)
            if self.recorder is not None:
                self.recorder.record_delivery(queue_id=qid, recipient=rcpt.address,
                                              status=result.status, attempt=rcpt.attempts,
                                              reply=result.reply)
            if self.on_delivery is not None:
                self.on_delivery(result.status, time.time() - entry.received_at)
        if entry.pending and time.time() - entry.received_at > self.config.max_age:
            for rcpt in entry.pending:
                rcpt.status = "failed"
                rcpt.last_reply = "4.4.7 gave up: too long in the queue"
        if not entry.pending:
            await self._bounce(entry, raw)
            await asyncio.to_thread(self.spool.remove, qid)
            self._known.discard(qid)
            return
        delay = min(self.config.retry_base * 2 ** (entry.attempts - 1), self.config.retry_max)
        entry.next_attempt = time.time() + delay
        await asyncio.to_thread(self.spool.update, entry)
        self._retry_later(qid, delay)

    async def _bounce(self, entry: SpoolEntry, raw: bytes) -> None:
        """Queue a DSN for the failed recipients, when this message may bounce at all."""
        failed = [r for r in entry.recipients if r.status == "failed"]
        if not failed:
            return
        if not entry.bounce_allowed or not entry.mail_from:
            why = "null sender" if not entry.mail_from else "inbound mail never bounces"
            log.info("%s not bounced (%s)", entry.queue_id, why)
            return
        qid = new_queue_id()
        report = dsn.build(self.hostname, entry.queue_id, entry.mail_from, failed, raw,
                           entry.received_at)
        bounce = SpoolEntry(qid, "", [Recipient(entry.mail_from)], time.time(),
                            direction="outbound", bounce_allowed=False,
                            extra={"dsn_for": entry.queue_id})
        await asyncio.to_thread(self.spool.enqueue, report, bounce)
        self.enqueued(qid)
        log.info("%s bounce %s queued to <%s>", entry.queue_id, qid, entry.mail_from)
        if self.recorder is not None:
            self.recorder.record_event(
                "bounce", {"dsn": qid, "to": entry.mail_from,
                           "failed": [r.address for r in failed]}, queue_id=entry.queue_id,
            )
