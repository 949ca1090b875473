"""The reads the hub makes about senders: whether the site has dealt with an address before
(first contact) and the accounts' submissions (the alert detector's normal rates), on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailward.store import Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def inbound(store: Store, n: int, sender: str, disposition: str, hours_ago: float) -> None:
    store.record_transaction(
        queue_id=f"IN{n}", mail_from=sender, recipients=["staff@ourcorp.example"],
        disposition=disposition, from_address=sender,
        received_at=NOW - timedelta(hours=hours_ago),
    )


def submitted(store: Store, n: int, user: str | None, rcpt: str, hours_ago: float,
              disposition: str = "submitted") -> None:
    when = NOW - timedelta(hours=hours_ago)
    connection = store.record_connection(peer_ip="192.0.2.9", auth_user=user, opened_at=when)
    store.record_transaction(
        queue_id=f"OUT{n}", mail_from=f"{user or 'x'}@ourcorp.example", recipients=[rcpt],
        disposition=disposition, from_address=f"{user or 'x'}@ourcorp.example",
        connection_id=connection, received_at=when,
    )


@pytest.mark.parametrize(
    ("disposition", "hours_ago", "known"),
    [("accept", 100, True), ("tag", 100, True), ("accept", 1, False),
     ("quarantine", 100, False), ("reject", 100, False)],
)
def test_known_correspondent_by_delivered_mail(
    store: Store, disposition: str, hours_ago: float, known: bool
) -> None:
    inbound(store, 1, "Jane@Freemail.test", disposition, hours_ago)
    before = NOW - timedelta(hours=72)
    assert store.known_correspondent("jane@freemail.test", delivered_before=before) is known
    assert store.known_correspondent("other@freemail.test", delivered_before=before) is False


def test_known_correspondent_by_mail_our_users_sent(store: Store) -> None:
    submitted(store, 1, "alice", "Partner@Freemail.test", hours_ago=0.1)
    before = NOW - timedelta(hours=72)
    assert store.known_correspondent("partner@freemail.test", delivered_before=before)
    # mail that merely came in to that address from outside does not count
    inbound(store, 2, "x@elsewhere.test", "accept", 500)
    assert not store.known_correspondent("staff@ourcorp.example", delivered_before=before)
    with pytest.raises(ValueError):
        store.known_correspondent("a@b.test", delivered_before=datetime(2026, 1, 1))


def test_submission_history(store: Store) -> None:
    assert store.submission_history(NOW - timedelta(days=7)) == (None, [])
    inbound(store, 1, "x@elsewhere.test", "accept", 24 * 10)  # the log begins here
    submitted(store, 1, "alice", "a@remote.test", hours_ago=24 * 8)  # older than asked
    submitted(store, 2, "alice", "b@remote.test", hours_ago=3)
    submitted(store, 3, "bob", "c@remote.test", hours_ago=2)
    submitted(store, 4, "alice", "d@remote.test", hours_ago=1)
    submitted(store, 5, None, "e@remote.test", hours_ago=1)  # no account
    submitted(store, 6, "carol", "f@remote.test", hours_ago=1, disposition="accept")
    begins, rows = store.submission_history(NOW - timedelta(days=7))
    assert begins == NOW - timedelta(hours=240)
    assert rows == [("alice", NOW - timedelta(hours=3)), ("bob", NOW - timedelta(hours=2)),
                    ("alice", NOW - timedelta(hours=1))]
    _, newest = store.submission_history(NOW - timedelta(days=7), limit=2)
    assert newest == rows[1:]
