"""find_transactions by recipient: a busy mailbox is searched along the time index, a quiet one
by its messages; both give the same answers, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailward.store import Store, search

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def mailboxes(store: Store) -> Store:
    """info@ gets every message, bob@ two of them, carol@ one."""
    for i in range(6):
        recipients = ["info@ourcorp.example"]
        if i in (1, 4):
            recipients.append("bob@ourcorp.example")
        if i == 3:
            recipients.append("carol@ourcorp.example")
        store.record_transaction(
            queue_id=f"Q{i}", mail_from=f"s{i % 2}@sender.example", recipients=recipients,
            disposition="reject" if i % 3 == 0 else "accept", received_at=T0 + timedelta(hours=i),
        )
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"recipient": "INFO@ourcorp.example"}, ["Q5", "Q4", "Q3", "Q2", "Q1", "Q0"]),
        ({"recipient": "info@ourcorp.example", "limit": 2}, ["Q5", "Q4"]),
        ({"recipient": "info@ourcorp.example", "limit": 2, "offset": 3}, ["Q2", "Q1"]),
        ({"recipient": "info@ourcorp.example", "disposition": "reject"}, ["Q3", "Q0"]),
        ({"recipient": "info@ourcorp.example", "sender": "s1@sender.example"}, ["Q5", "Q3", "Q1"]),
        (
            {"recipient": "info@ourcorp.example", "since": T0 + timedelta(hours=2),
             "until": T0 + timedelta(hours=4)},
            ["Q3", "Q2"],
        ),
        ({"recipient": "bob@ourcorp.example"}, ["Q4", "Q1"]),
        ({"recipient": "carol@ourcorp.example"}, ["Q3"]),
        ({"recipient": "nobody@ourcorp.example"}, []),
    ],
)
@pytest.mark.parametrize("busy_from", [3, search.BUSY_RECIPIENT])
def test_busy_and_quiet_mailboxes_give_the_same_answers(
    mailboxes: Store,
    monkeypatch: pytest.MonkeyPatch,
    busy_from: int,
    filters: dict[str, object],
    expected: list[str],
) -> None:
    monkeypatch.setattr(search, "BUSY_RECIPIENT", busy_from)  # 3: info@ is "busy"
    found = mailboxes.find_transactions(**filters)  # type: ignore[arg-type]
    assert [t.queue_id for t in found] == expected


def test_the_busy_form_is_chosen_by_count(
    mailboxes: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "BUSY_RECIPIENT", 3)
    engine = mailboxes._engine
    assert "EXISTS" in str(search._recipient_condition(engine, "info@ourcorp.example"))
    assert " IN " in str(search._recipient_condition(engine, "bob@ourcorp.example"))
