"""purge: old log rows go (with their findings and recipients), recent ones and users stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from mailward.model import Finding, Result
from mailward.store import Store
from mailward.store.engine import make_engine
from mailward.store.models import Base
from tests.store.conftest import fast_hashing

NOW = datetime(2026, 9, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=10)


def counts(store: Store) -> dict[str, int]:
    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def log_everything(store: Store, at: datetime, tag: str, connection_id: str | None) -> None:
    store.record_transaction(
        queue_id=f"Q-{tag}",
        connection_id=connection_id,
        mail_from="a@example.com",
        recipients=["b@example.com", "c@example.com"],
        disposition="accept",
        findings=[Finding("spf", "SPF_PASS", Result.PASS)],
        received_at=at,
    )
    store.record_delivery(queue_id=f"Q-{tag}", recipient="b@example.com", status="sent", at=at)
    store.record_auth(ip="192.0.2.1", user="alice", mechanism="PLAIN", success=True, at=at)
    store.record_event("hub.note", {"tag": tag}, at=at)
    store.record_alert(kind="note", detail=tag, at=at)
    store.record_report(reporter="alice@example.com", comment=tag, at=at)
    store.record_quarantine(queue_id=f"Q-{tag}", raw_path=f"/q/{tag}", at=at)


def test_purge_deletes_old_rows_only(store: Store) -> None:
    store.add_user("alice", "pw", addresses=["alice@example.com"])
    old_conn = store.record_connection(peer_ip="192.0.2.1", opened_at=OLD)
    kept_conn = store.record_connection(peer_ip="192.0.2.2", opened_at=OLD)  # long connection
    log_everything(store, OLD, "old", old_conn)
    log_everything(store, RECENT, "recent", kept_conn)  # still uses the old connection
    store.record_connection(peer_ip="192.0.2.3", opened_at=OLD)  # no transaction at all

    result = store.purge(30, now=NOW)

    assert result.deleted == {
        "transactions": 1,
        "deliveries": 1,
        "auth_events": 1,
        "events": 1,
        "alerts": 1,
        "user_reports": 1,
        "quarantine": 1,
        "connections": 2,
    }
    assert result.total == 9
    assert result.raw_paths == ["/q/old"]
    after = counts(store)
    assert after["findings"] == 1 and after["recipients"] == 2  # the recent message's
    assert after["users"] == 1 and after["user_addresses"] == 1  # never purged
    assert [t.queue_id for t in store.find_transactions()] == ["Q-recent"]
    assert store.connection(kept_conn) is not None and store.connection(old_conn) is None
    assert store.purge(30, now=NOW).total == 0


def test_purge_works_in_batches(store: Store) -> None:
    with store.writer() as writer:
        for i in range(25):
            writer.record_transaction(
                queue_id=f"Q{i}",
                mail_from="a@example.com",
                recipients=["b@example.com"],
                disposition="accept",
                findings=[Finding("spf", "SPF_PASS", Result.PASS)],
                received_at=OLD + timedelta(seconds=i),
            )
            writer.record_event("e", {"i": i}, at=OLD)
    result = store.purge(30, now=NOW, batch_size=4)
    assert result.deleted["transactions"] == 25 and result.deleted["events"] == 25
    assert counts(store)["findings"] == 0 and counts(store)["recipients"] == 0


def test_default_is_the_configured_retention(store_url: str) -> None:
    with Store.open(store_url, retention_days=5, hashing=fast_hashing()) as store:
        store.record_event("e", {}, at=NOW - timedelta(days=6))
        store.record_event("e", {}, at=NOW - timedelta(days=4))
        assert store.purge(now=NOW).deleted["events"] == 1
        assert len(store.events()) == 1


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="negative"):
        store.purge(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.purge(1, now=datetime(2026, 1, 1))
