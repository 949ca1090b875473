"""Store writes and reads back: connections, transactions, deliveries, auth, alerts, reports,
quarantine; hostile text never breaks a write; timestamps come back as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailward.model import Finding, Result
from mailward.store import Store, StoreError
from mailward.store.jobs import WriteJob
from tests.store.conftest import fast_hashing

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def record_sample(store: Store, queue_id: str = "Q1", **overrides: object) -> str:
    values: dict[str, object] = {
        "queue_id": queue_id,
        "mail_from": "CEO@OurCorp.Example",
        "recipients": ["Staff@ourcorp.example", "<boss@ourcorp.example>"],
        "disposition": "reject",
        "score": 21.0,
        "forced_by": "DMARC_FAIL_REJECT",
        "findings": [
            Finding("spf", "SPF_FAIL", Result.FAIL, detail="not permitted", score=3.0),
            Finding("dmarc", "DMARC_FAIL_REJECT", Result.FAIL, detail="p=reject", score=18.0),
        ],
        "message_id": "<abc@attacker.test>",
        "header_from": '"The CEO" <ceo@ourcorp.example>',
        "from_address": "ceo@ourcorp.example",
        "reply_to": "ceo.private@attacker.test",
        "subject": "Urgent: change your password",
        "size": 2048,
        "body_sha256": "ab" * 32,
        "received_at": T0,
    }
    values.update(overrides)
    return store.record_transaction(**values)  # type: ignore[arg-type]


def test_transaction_with_findings_and_recipients(store: Store) -> None:
    conn_id = store.record_connection(
        peer_ip="203.0.113.66", rdns="mail.attacker.test", opened_at=T0
    )
    tx_id = record_sample(store, connection_id=conn_id)
    got = store.transaction("Q1")
    assert got is not None
    assert got.id == tx_id and len(tx_id) == 32
    assert got.received_at == T0 and got.received_at.tzinfo is UTC
    assert got.mail_from == "ceo@ourcorp.example"  # addresses are stored lower-cased
    assert got.recipients == ("staff@ourcorp.example", "boss@ourcorp.example")
    assert got.header_from == '"The CEO" <ceo@ourcorp.example>'
    assert got.from_address == "ceo@ourcorp.example"
    assert got.reply_to == "ceo.private@attacker.test"
    assert got.subject == "Urgent: change your password"
    assert (got.size, got.body_sha256, got.message_id) == (2048, "ab" * 32, "<abc@attacker.test>")
    assert (got.disposition, got.score, got.forced_by) == ("reject", 21.0, "DMARC_FAIL_REJECT")
    assert [(f.check, f.symbol, f.result, f.score, f.detail) for f in got.findings] == [
        ("spf", "SPF_FAIL", "fail", 3.0, "not permitted"),
        ("dmarc", "DMARC_FAIL_REJECT", "fail", 18.0, "p=reject"),
    ]
    assert (got.connection_id, got.client_ip, got.rdns, got.instance) == (
        conn_id,
        "203.0.113.66",
        "mail.attacker.test",
        "mx1.test",
    )


def test_transaction_without_connection_or_headers(store: Store) -> None:
    store.record_transaction(queue_id="Q2", mail_from="", recipients=[], disposition="accept")
    got = store.transaction("Q2")
    assert got is not None
    assert got.mail_from == "" and got.recipients == () and got.findings == ()
    assert got.connection_id is None and got.client_ip is None
    assert abs(got.received_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_duplicate_queue_id_is_refused_and_nothing_of_it_is_written(store: Store) -> None:
    record_sample(store, "Q1")
    with pytest.raises(StoreError, match="transaction 'Q1'"):
        record_sample(store, "Q1", findings=[Finding("x", "X_ONLY_IN_DUPLICATE", Result.NONE)])
    assert len(store.find_transactions()) == 1
    assert store.find_transactions(symbol="X_ONLY_IN_DUPLICATE") == []


def test_connection_lifecycle(store: Store) -> None:
    conn_id = store.record_connection(peer_ip="2001:DB8:0:0::1", opened_at=T0)
    store.update_connection(conn_id)  # nothing given: nothing changes
    store.update_connection(conn_id, helo="mail.example.net", tls_version="TLSv1.3")
    store.update_connection(conn_id, tls_cipher="TLS_AES_256_GCM_SHA384", auth_user="alice")
    store.close_connection(conn_id, closed_at=T0 + timedelta(seconds=5))
    got = store.connection(conn_id)
    assert got is not None
    assert got.peer_ip == "2001:db8::1"  # canonical form, so every spelling matches
    assert (got.helo, got.tls_version, got.tls_cipher, got.auth_user) == (
        "mail.example.net",
        "TLSv1.3",
        "TLS_AES_256_GCM_SHA384",
        "alice",
    )
    assert got.instance == "mx1.test"
    assert got.opened_at == T0 and got.closed_at == T0 + timedelta(seconds=5)
    assert store.connection("0" * 32) is None


def test_timestamps_in_other_zones_are_stored_as_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    record_sample(store, received_at=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two))
    got = store.transaction("Q1")
    assert got is not None and got.received_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert got.received_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused_at_the_call(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record_sample(store, received_at=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_delivery(
            queue_id="Q", recipient="a@b", status="delivered", at=datetime(2026, 1, 1)
        )


def test_hostile_text_is_stored_cleaned_and_clipped(store: Store) -> None:
    nasty = "Re: \x00 caf\udce9 " + "x" * 20_000
    record_sample(
        store,
        subject=nasty,
        header_from=nasty,
        message_id="<" + "m" * 2000 + ">",
        mail_from="a" * 1000 + "@example.com",
        recipients=["\x00evil@example.com"],
        findings=[Finding("content", "S" * 500, Result.FAIL, detail=nasty)],
    )
    got = store.transaction("Q1")
    assert got is not None
    assert got.subject is not None and len(got.subject) == 500
    assert got.subject.startswith("Re: \ufffd caf? x")
    assert got.header_from is not None and len(got.header_from) == 10_000
    assert got.message_id is not None and len(got.message_id) == 500
    assert len(got.mail_from) == 320
    assert got.recipients == ("\ufffdevil@example.com",)
    assert len(got.findings[0].symbol) == 128
    # the clipped subject is still found by the searches that use it
    assert [t.queue_id for t in store.find_transactions(subject="caf? xxx")] == ["Q1"]


def test_a_nan_score_does_not_break_the_write(store: Store) -> None:
    record_sample(store, score=float("nan"), findings=[Finding("x", "X", Result.NONE, score=1.5)])
    got = store.transaction("Q1")
    assert got is not None and got.score == 0.0 and got.findings[0].score == 1.5


def test_unicode_survives(store: Store) -> None:
    record_sample(store, subject="Überweisung – 至急", header_from="Jürgen <j@bücher.example>")
    got = store.transaction("Q1")
    assert got is not None
    assert got.subject == "Überweisung – 至急"
    assert got.header_from == "Jürgen <j@bücher.example>"


def test_deliveries_in_order(store: Store) -> None:
    store.record_delivery(
        queue_id="Q1",
        recipient="Bob@Example.com",
        status="deferred",
        reply="451 4.7.1 later",
        at=T0,
    )
    store.record_delivery(
        queue_id="Q1",
        recipient="bob@example.com",
        status="delivered",
        attempt=2,
        reply="250 2.0.0 ok",
        at=T0 + timedelta(minutes=5),
    )
    store.record_delivery(queue_id="Q9", recipient="x@example.com", status="bounced", at=T0)
    got = store.deliveries("Q1")
    assert [(d.recipient, d.attempt, d.status, d.reply) for d in got] == [
        ("bob@example.com", 1, "deferred", "451 4.7.1 later"),
        ("bob@example.com", 2, "delivered", "250 2.0.0 ok"),
    ]
    assert got[1].at == T0 + timedelta(minutes=5)


def test_auth_events(store: Store) -> None:
    store.record_auth(
        ip="198.51.100.7",
        user="alice",
        mechanism="PLAIN",
        success=False,
        reason="bad password",
        at=T0,
    )
    store.record_auth(
        ip="198.51.100.7",
        user="alice",
        mechanism="PLAIN",
        success=True,
        at=T0 + timedelta(seconds=1),
    )
    store.record_auth(ip="192.0.2.1", user="bob", mechanism="LOGIN", success=False, at=T0)
    failures = store.auth_events(user="alice", success=False)
    assert [(a.ip, a.user, a.mechanism, a.success, a.reason) for a in failures] == [
        ("198.51.100.7", "alice", "PLAIN", False, "bad password")
    ]
    assert [a.success for a in store.auth_events(ip="198.51.100.7")] == [True, False]
    assert len(store.auth_events(since=T0 + timedelta(milliseconds=1))) == 1


def test_alerts(store: Store) -> None:
    store.record_alert(
        kind="forged-from-own-account",
        detail="alice sent as ceo",
        user="alice",
        ip="192.0.2.9",
        at=T0,
    )
    store.record_alert(kind="auth-brute-force", detail="50 failures", ip="198.51.100.7", at=T0)
    assert [a.kind for a in store.alerts(user="alice")] == ["forged-from-own-account"]
    assert [a.detail for a in store.alerts(ip="198.51.100.7")] == ["50 failures"]
    assert len(store.alerts()) == 2 and store.alerts(kind="none") == []


def test_events_and_their_payload(store: Store) -> None:
    payload = {"reply": "250 ok", "n": 3, "nested": {"list": [1, 2.5, None, True]}}
    store.record_event("smtp.reply", payload, queue_id="Q1", at=T0)
    store.record_event("hub.start", {"version": "0.1"}, at=T0 + timedelta(seconds=1))
    got = store.events(queue_id="Q1")
    assert len(got) == 1 and got[0].kind == "smtp.reply" and got[0].payload == payload
    assert [e.kind for e in store.events()] == ["hub.start", "smtp.reply"]
    assert [e.kind for e in store.events(kind="hub.start")] == ["hub.start"]


def test_reports_keep_the_raw_message_by_default(store: Store) -> None:
    store.record_report(
        reporter="Alice@ourcorp.example",
        queue_id="Q1",
        message_id="<abc@x>",
        comment="looks fake",
        raw=b"From: x\r\n\r\nhi\r\n",
    )
    (report,) = store.reports(queue_id="Q1")
    assert (report.reporter, report.message_id, report.comment) == (
        "alice@ourcorp.example",
        "<abc@x>",
        "looks fake",
    )
    assert report.raw == b"From: x\r\n\r\nhi\r\n"


def test_quarantine_release_and_delete(store: Store) -> None:
    store.record_quarantine(queue_id="Q1", reason="DMARC p=quarantine", raw=b"raw1", at=T0)
    store.record_quarantine(queue_id="Q2", raw_path="/var/spool/q/Q2", at=T0)
    entry = store.quarantine_entry("Q1")
    assert entry is not None and entry.raw == b"raw1" and entry.reason == "DMARC p=quarantine"
    assert entry.released_at is None and entry.deleted_at is None

    assert store.release_quarantine("Q1", at=T0 + timedelta(hours=1)) is True
    assert store.release_quarantine("Q1") is False  # once only
    assert store.delete_quarantine("Q1") is False  # released messages stay as they are
    released = store.quarantine_entry("Q1")
    assert released is not None and released.released_at == T0 + timedelta(hours=1)

    assert store.delete_quarantine("Q2") is True
    deleted = store.quarantine_entry("Q2")
    assert deleted is not None and deleted.deleted_at is not None and deleted.raw is None
    assert store.release_quarantine("Q3") is False and store.quarantine_entry("Q3") is None


@pytest.mark.parametrize(
    ("keep_raw", "quarantine_kept", "report_kept"),
    [
        ("none", False, False),
        ("quarantine", True, False),
        ("quarantine-and-reported", True, True),
    ],
)
def test_keep_raw_decides_which_raw_messages_are_stored(
    store_url: str, keep_raw: str, quarantine_kept: bool, report_kept: bool
) -> None:
    with Store.open(store_url, keep_raw=keep_raw, hashing=fast_hashing()) as store:
        assert store.keeps_raw("quarantine") is quarantine_kept
        assert store.keeps_raw("report") is report_kept
        store.record_quarantine(queue_id="Q1", raw=b"raw", raw_path="/q/Q1")
        store.record_report(reporter="a@b.example", queue_id="Q1", raw=b"raw", raw_path="/r/1")
        entry = store.quarantine_entry("Q1")
        (report,) = store.reports()
    assert entry is not None
    assert (entry.raw, entry.raw_path) == ((b"raw", "/q/Q1") if quarantine_kept else (None, None))
    assert (report.raw, report.raw_path) == ((b"raw", "/r/1") if report_kept else (None, None))


def test_keep_raw_is_checked(store_url: str) -> None:
    with pytest.raises(ValueError, match="keep_raw"):
        Store.open(store_url, keep_raw="everything")


def test_default_url_is_sqlite_under_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "var"
    with Store.open("", data_dir=data) as store:
        assert store.backend == "sqlite"
        assert store.url.endswith("/var/mailward.db")
    assert (data / "mailward.db").is_file()


def test_sqlite_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="SQLite file"):
        Store.open("sqlite://")


def test_url_hides_the_password(store: Store) -> None:
    assert "***" not in store.url  # no password in these test URLs
    assert store.backend in ("sqlite", "postgresql")


def test_one_transaction_is_one_commit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipients and findings are written with their transaction or not at all."""
    real_apply = store.apply

    def break_last_finding(jobs: list[WriteJob]) -> None:
        (job,) = jobs
        table, row = job.inserts[-1]
        assert table.name == "findings"
        job.inserts[-1] = (table, {**row, "detail": None})  # NOT NULL: the database refuses
        real_apply(jobs)

    monkeypatch.setattr(store, "apply", break_last_finding)
    with pytest.raises(StoreError):
        record_sample(store, "Q1")
    monkeypatch.undo()
    assert store.transaction("Q1") is None
    assert store.find_transactions(recipient="staff@ourcorp.example") == []
    record_sample(store, "Q1")
    assert store.transaction("Q1") is not None
