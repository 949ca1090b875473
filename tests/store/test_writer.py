"""EventWriter: asyncio code writes without waiting for the database; one thread commits in
batches; flush/close drain; bad rows and outages lose nothing else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from mailward.model import Finding, Result
from mailward.store import EventWriter, Store
from mailward.store.engine import WRITE_OPTION, make_engine
from mailward.store.jobs import WriteJob
from mailward.store.models import EventRow

FAST_RETRY = (0.01, 0.01, 0.01)


def event_count(store: Store) -> int:
    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())
    finally:
        engine.dispose()


@contextmanager
def database_busy(store: Store) -> Iterator[None]:
    """Another client holds the write lock (SQLite) / a write-blocking table lock (PostgreSQL)
    while the block runs; reads still work."""
    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            if store.backend == "sqlite":
                conn.execution_options(**{WRITE_OPTION: True})
                conn.begin()  # BEGIN IMMEDIATE: takes the write lock now
            else:
                conn.begin()
                conn.execute(text("LOCK TABLE events, transactions IN EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def test_async_code_writes_in_batches(store: Store) -> None:
    async def hub() -> int:
        writer = store.writer()
        for i in range(300):
            conn_id = writer.record_connection(peer_ip=f"192.0.2.{i % 250}")
            writer.record_transaction(
                queue_id=f"Q{i}",
                connection_id=conn_id,  # known at once, although nothing is written yet
                mail_from="a@example.com",
                recipients=["b@example.com"],
                disposition="accept",
                findings=[Finding("spf", "SPF_PASS", Result.PASS)],
            )
            if i % 50 == 0:
                await asyncio.sleep(0)
        await asyncio.to_thread(writer.flush)
        found = await asyncio.to_thread(store.find_transactions, limit=1000)
        await asyncio.to_thread(writer.close)
        assert writer.failed == 0 and writer.dropped == 0
        assert writer.batches < 100  # 600 jobs, far fewer commits
        assert all(t.client_ip and t.findings and t.recipients for t in found)
        return len(found)

    assert asyncio.run(hub()) == 300


def test_the_event_loop_never_waits_for_a_busy_database(store: Store) -> None:
    writer = store.writer()
    with database_busy(store):

        async def hub() -> tuple[float, float]:
            gaps: list[float] = []

            async def ticker() -> None:
                last = time.perf_counter()
                for _ in range(20):
                    await asyncio.sleep(0.01)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            ticking = asyncio.create_task(ticker())
            start = time.perf_counter()
            for i in range(200):
                writer.record_event("smtp.reply", {"i": i})
                if i % 20 == 0:
                    await asyncio.sleep(0)
            spent = time.perf_counter() - start
            await ticking
            return spent, max(gaps)

        spent, worst_gap = asyncio.run(hub())
        assert spent < 0.1, spent  # 200 writes queued, no database wait
        assert worst_gap < 0.1, worst_gap  # the loop kept running
        time.sleep(0.1)
        assert event_count(store) == 0  # the writer thread is the one waiting
    writer.flush(timeout=30)
    assert event_count(store) == 200
    writer.close()


def test_a_bad_job_loses_only_itself(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    with store.writer() as writer:
        for queue_id in ("Q1", "Q1", "Q2"):
            writer.record_transaction(
                queue_id=queue_id, mail_from="", recipients=["r@example.com"], disposition="tag"
            )
        writer.record_event("after", {})
        writer.flush()
        assert writer.failed == 1
    assert sorted(t.queue_id for t in store.find_transactions()) == ["Q1", "Q2"]
    assert [e.kind for e in store.events()] == ["after"]
    assert "could not write transaction 'Q1'" in caplog.text


def test_an_outage_is_retried(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    real_apply = store.apply
    failures = [2]

    def flaky(jobs: list[WriteJob]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))
        real_apply(jobs)

    monkeypatch.setattr(store, "apply", flaky)
    with EventWriter(store, retry_delays=FAST_RETRY) as writer:
        for i in range(10):
            writer.record_event("e", {"i": i})
        writer.flush()
        assert writer.failed == 0
    assert failures == [0] and event_count(store) == 10


def test_a_lasting_outage_loses_the_batch_but_not_the_writer(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_apply = store.apply

    def down(jobs: list[WriteJob]) -> None:
        raise OperationalError("INSERT", {}, ConnectionError("connection refused"))

    with EventWriter(store, retry_delays=FAST_RETRY) as writer:
        monkeypatch.setattr(store, "apply", down)
        writer.record_event("lost", {})
        writer.flush()
        assert writer.failed == 1
        monkeypatch.setattr(store, "apply", real_apply)
        writer.record_event("kept", {})
        writer.flush()
        assert writer.failed == 1
    assert [e.kind for e in store.events()] == ["kept"]
    assert "connection refused" in caplog.text


def test_close_drains_the_queue_and_then_refuses(store: Store) -> None:
    writer = store.writer()
    for i in range(50):
        writer.record_event("e", {"i": i})
    writer.close()
    assert event_count(store) == 50
    with pytest.raises(RuntimeError, match="closed"):
        writer.record_event("late", {})
    writer.flush()  # nothing left: returns
    writer.close()  # again: nothing happens


def test_a_full_queue_drops_and_counts(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    writer = EventWriter(store, max_pending=5, batch_size=1)
    with database_busy(store):
        for i in range(30):
            writer.record_event("e", {"i": i})
        assert writer.dropped >= 30 - 5 - 2  # the thread holds at most one batch and waits
    writer.close(timeout=30)
    assert event_count(store) + writer.dropped == 30
    assert "queue full" in caplog.text


def test_writer_methods_are_the_stores() -> None:
    """One write API: the writer queues exactly what the store writes."""
    for name in dir(Store):
        if name.startswith(("record_", "update_", "close_connection")):
            assert getattr(EventWriter, name) is getattr(Store, name)
