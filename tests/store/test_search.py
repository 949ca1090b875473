"""find_transactions: each filter, combinations, ordering and paging, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailward.model import Finding, Result
from mailward.store import Store, StoredTransaction

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def filled(store: Store) -> Store:
    """Five messages from two connections, spread over four hours."""
    attacker = store.record_connection(peer_ip="203.0.113.66", helo="mail.attacker.test")
    partner = store.record_connection(peer_ip="2001:db8::25", helo="mail.partner.test")
    rows = [
        # queue id, hours after T0, connection, mail from, From, rcpts, subject, disp, symbols
        (
            "A1",
            0,
            attacker,
            "ceo@ourcorp.example",
            "ceo@ourcorp.example",
            ["staff@ourcorp.example"],
            "Change your password now",
            "reject",
            ["DMARC_FAIL_REJECT"],
        ),
        (
            "A2",
            1,
            attacker,
            "it@0urcorp.example",
            "helpdesk@0urcorp.example",
            ["alice@ourcorp.example", "bob@ourcorp.example"],
            "100% urgent: mailbox full",
            "quarantine",
            ["IDENTITY_LOOKALIKE", "CONTENT_CREDENTIALS"],
        ),
        (
            "P1",
            2,
            partner,
            "billing@partner.test",
            "billing@partner.test",
            ["alice@ourcorp.example"],
            "Invoice 1000",
            "accept",
            ["DKIM_PASS"],
        ),
        (
            "P2",
            3,
            partner,
            "",
            "postmaster@partner.test",
            ["bob@ourcorp.example"],
            "Delivery report",
            "accept",
            [],
        ),
        (
            "L1",
            4,
            None,
            "list@lists.partner.test",
            "Carol@Partner.Test",
            ["staff@ourcorp.example"],
            "Weekly URGENT digest",
            "tag",
            ["DMARC_FAIL_NONE"],
        ),
    ]
    for qid, hours, conn, mail_from, from_addr, rcpts, subject, disp, symbols in rows:
        store.record_transaction(
            queue_id=qid,
            connection_id=conn,
            mail_from=mail_from,
            from_address=from_addr,
            recipients=rcpts,
            subject=subject,
            disposition=disp,
            message_id=f"<{qid.lower()}@mail.example>",
            body_sha256=("a" if qid.startswith("A") else "b") * 64,
            findings=[Finding("x", s, Result.FAIL) for s in symbols],
            received_at=T0 + timedelta(hours=hours),
        )
    return store


def ids(found: list[StoredTransaction]) -> list[str]:
    return [t.queue_id for t in found]


def test_everything_newest_first(filled: Store) -> None:
    assert ids(filled.find_transactions()) == ["L1", "P2", "P1", "A2", "A1"]


def test_paging(filled: Store) -> None:
    assert ids(filled.find_transactions(limit=2)) == ["L1", "P2"]
    assert ids(filled.find_transactions(limit=2, offset=2)) == ["P1", "A2"]
    assert ids(filled.find_transactions(limit=2, offset=4)) == ["A1"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"since": T0 + timedelta(hours=2)}, ["L1", "P2", "P1"]),
        ({"until": T0 + timedelta(hours=2)}, ["A2", "A1"]),  # until is exclusive
        ({"since": T0 + timedelta(hours=1), "until": T0 + timedelta(hours=3)}, ["P1", "A2"]),
        ({"sender": "CEO@ourcorp.example"}, ["A1"]),  # envelope sender, any case
        ({"sender": "helpdesk@0urcorp.example"}, ["A2"]),  # From address
        ({"sender": "carol@partner.test"}, ["L1"]),
        ({"recipient": "Alice@OurCorp.example"}, ["P1", "A2"]),
        ({"recipient": "<bob@ourcorp.example>"}, ["P2", "A2"]),
        ({"domain": "partner.test"}, ["L1", "P2", "P1"]),  # envelope or From domain
        ({"domain": "0urcorp.example"}, ["A2"]),
        ({"domain": "@OURCORP.EXAMPLE"}, ["L1", "P2", "P1", "A2", "A1"]),  # recipient domain
        ({"client_ip": "203.0.113.66"}, ["A2", "A1"]),
        ({"client_ip": "2001:DB8:0::25"}, ["P2", "P1"]),  # any IPv6 spelling
        ({"subject": "urgent"}, ["L1", "A2"]),  # case-insensitive substring
        ({"subject": "100%"}, ["A2"]),  # % is literal, not a wildcard
        ({"subject": "1_00"}, []),  # _ too
        ({"disposition": "accept"}, ["P2", "P1"]),
        ({"symbol": "DMARC_FAIL_REJECT"}, ["A1"]),
        ({"symbol": "CONTENT_CREDENTIALS"}, ["A2"]),
        ({"message_id": "<p1@mail.example>"}, ["P1"]),
        ({"message_id": "p1@mail.example"}, ["P1"]),  # with or without angle brackets
        ({"queue_id": "P2"}, ["P2"]),
        ({"queue_id": "nope"}, []),
        ({"client_ip": "203.0.113.66", "recipient": "staff@ourcorp.example"}, ["A1"]),
        ({"domain": "ourcorp.example", "disposition": "tag"}, ["L1"]),
        ({"sender": "ceo@ourcorp.example", "since": T0 + timedelta(minutes=1)}, []),
    ],
)
def test_filters(filled: Store, filters: dict[str, Any], expected: list[str]) -> None:
    assert ids(filled.find_transactions(**filters)) == expected


def test_results_carry_connection_recipients_and_findings(filled: Store) -> None:
    (a2,) = filled.find_transactions(queue_id="A2")
    assert a2.client_ip == "203.0.113.66" and a2.helo == "mail.attacker.test"
    assert a2.instance == "mx1.test"
    assert a2.recipients == ("alice@ourcorp.example", "bob@ourcorp.example")
    assert [f.symbol for f in a2.findings] == ["IDENTITY_LOOKALIKE", "CONTENT_CREDENTIALS"]
    (l1,) = filled.find_transactions(queue_id="L1")
    assert l1.connection_id is None and l1.client_ip is None
    assert l1.from_address == "carol@partner.test"


def test_fingerprint_finds_the_same_body(filled: Store) -> None:
    """The body hash is stored and indexed; same campaign = same fingerprint."""
    fingerprints = {t.queue_id: t.body_sha256 for t in filled.find_transactions()}
    assert fingerprints["A1"] == fingerprints["A2"] == "a" * 64


def test_unknown_filters_and_bad_arguments_are_errors(filled: Store) -> None:
    with pytest.raises(TypeError):
        filled.find_transactions(colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="limit"):
        filled.find_transactions(limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        filled.find_transactions(since=datetime(2026, 1, 1))


def test_many_results_load_their_children_in_chunks(store: Store) -> None:
    with store.writer() as writer:  # batches: much faster than 1203 commits
        for i in range(1203):
            writer.record_transaction(
                queue_id=f"Q{i}",
                mail_from="a@example.com",
                recipients=[f"r{i}@example.com"],
                disposition="accept",
                findings=[Finding("spf", "SPF_PASS", Result.PASS)],
                received_at=T0 + timedelta(seconds=i),
            )
    found = store.find_transactions(limit=1203)
    assert len(found) == 1203
    assert all(t.recipients == (f"r{t.queue_id[1:]}@example.com",) for t in found)
    assert all(len(t.findings) == 1 for t in found)
