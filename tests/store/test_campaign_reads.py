"""Campaign reads on both backends: stored links, related_transaction_ids per criterion and
window, transactions_by_ids, transaction_urls, deliveries_of; links purged with their message;
a database at revision 0001 upgraded with its rows intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, select

from mailward.model import Finding, Result
from mailward.store import Store, migrate
from mailward.store.engine import make_engine
from mailward.store.models import UrlRow
from mailward.store.recorder import MAX_URLS
from tests.store.conftest import fast_hashing

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PHISH = "https://login.evil.example/reset"


def record(store: Store, qid: str, hours: float, **values: object) -> str:
    defaults: dict[str, object] = {
        "queue_id": qid,
        "mail_from": f"{qid.lower()}@sender.example",
        "recipients": [f"to-{qid.lower()}@ourcorp.example"],
        "disposition": "accept",
        "subject": f"subject of {qid}",
        "body_sha256": qid.lower().ljust(64, "0"),
        "received_at": T0 + timedelta(hours=hours),
    }
    defaults.update(values)
    return store.record_transaction(**defaults)  # type: ignore[arg-type]


@pytest.fixture
def filled(store: Store) -> dict[str, str]:
    """Row ids by queue id: S is the seed; the others share one thing each with it (or not)."""
    return {
        "S": record(
            store, "S", 0, mail_from="it@0urcorp.example", from_address="it@0urcorp.example",
            subject="Password expires today", body_sha256="f" * 64, urls=[PHISH],
        ),
        "ENV": record(store, "ENV", 1, mail_from="IT@0urcorp.example"),  # envelope, any case
        "HDR": record(store, "HDR", -2, from_address="it@0urcorp.example"),  # From address
        "SUBJ": record(store, "SUBJ", 3, subject="Password expires today"),
        "BODY": record(store, "BODY", 4, body_sha256="f" * 64),
        "URL": record(store, "URL", 5, urls=["https://other.example/", PHISH]),
        "TWO": record(
            store, "TWO", 6, subject="Password expires today", urls=[PHISH, PHISH]
        ),
        "LATE": record(store, "LATE", 100, body_sha256="f" * 64),  # outside a 72 h window
        "NONE": record(store, "NONE", 2, urls=["https://harmless.example/"]),
    }


def related(store: Store, **values: object) -> dict[str, set[str]]:
    window: dict[str, object] = {
        "since": T0 - timedelta(hours=72),
        "until": T0 + timedelta(hours=72),
    }
    window.update(values)
    return store.related_transaction_ids(**window)  # type: ignore[arg-type]


def test_each_criterion_finds_its_messages(store: Store, filled: dict[str, str]) -> None:
    by_id = {v: k for k, v in filled.items()}
    found = related(
        store,
        senders=["it@0urcorp.example"],
        subjects=["Password expires today"],
        body_sha256s=["f" * 64],
        urls=[PHISH],
    )
    assert {by_id[i]: sorted(c) for i, c in found.items()} == {
        "S": ["body", "sender", "subject", "url"],
        "ENV": ["sender"],
        "HDR": ["sender"],
        "SUBJ": ["subject"],
        "BODY": ["body"],
        "URL": ["url"],
        "TWO": ["subject", "url"],
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"senders": ["<IT@0urcorp.example>"]}, {"S", "ENV", "HDR"}),
        ({"subjects": ["password expires today"]}, set()),  # the same text, not a search
        ({"body_sha256s": ["f" * 64]}, {"S", "BODY"}),
        ({"urls": [PHISH]}, {"S", "URL", "TWO"}),
        ({"urls": ["https://harmless.example/"]}, {"NONE"}),
        ({}, set()),  # nothing to look for: nothing found
        ({"senders": [""], "subjects": ["  "], "body_sha256s": [""]}, set()),  # empty values
        ({"body_sha256s": ["f" * 64], "until": T0 + timedelta(hours=200)}, {"S", "BODY", "LATE"}),
        ({"body_sha256s": ["f" * 64], "since": T0 + timedelta(hours=1)}, {"BODY"}),
    ],
)
def test_single_criteria_and_window(
    store: Store, filled: dict[str, str], values: dict[str, object], expected: set[str]
) -> None:
    by_id = {v: k for k, v in filled.items()}
    assert {by_id[i] for i in related(store, **values)} == expected


def test_limit_keeps_the_newest_per_criterion(store: Store, filled: dict[str, str]) -> None:
    by_id = {v: k for k, v in filled.items()}
    found = related(store, urls=[PHISH], limit=2)
    assert {by_id[i] for i in found} == {"TWO", "URL"}
    with pytest.raises(ValueError, match="limit"):
        related(store, urls=[PHISH], limit=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        related(store, urls=[PHISH], since=datetime(2026, 1, 1))


def test_transactions_by_ids_newest_first_with_children(
    store: Store, filled: dict[str, str]
) -> None:
    conn = store.record_connection(peer_ip="203.0.113.9", helo="bad.example")
    tid = record(
        store, "C1", 7, connection_id=conn, recipients=["a@x.example", "b@x.example"],
        findings=[Finding("dmarc", "DMARC_FAIL_REJECT", Result.FAIL, score=18.0)],
    )
    got = store.transactions_by_ids([filled["HDR"], tid, filled["S"], "0" * 32, tid])
    assert [t.queue_id for t in got] == ["C1", "S", "HDR"]
    assert got[0].client_ip == "203.0.113.9" and got[0].helo == "bad.example"
    assert got[0].recipients == ("a@x.example", "b@x.example")
    assert [f.symbol for f in got[0].findings] == ["DMARC_FAIL_REJECT"]
    assert store.transactions_by_ids([]) == []


def test_links_are_stored_once_each_in_order_and_capped(store: Store) -> None:
    many = [f"https://evil.example/{i}" for i in range(MAX_URLS + 20)]
    tid = record(store, "M", 0, urls=["https://b.example/x", " https://a.example ", "",
                                      "https://b.example/x", *many])
    urls = store.transaction_urls([tid, "0" * 32])[tid]
    assert urls[:3] == ["https://b.example/x", "https://a.example", "https://evil.example/0"]
    assert len(urls) == MAX_URLS
    assert store.transaction_urls([]) == {}


def test_a_long_link_is_clipped_and_still_matches(store: Store) -> None:
    long_link = "https://evil.example/" + "p" * 2000
    tid = record(store, "L", 0, urls=[long_link])
    (stored,) = store.transaction_urls([tid])[tid]
    assert len(stored) == 500
    assert set(related(store, urls=[stored])) == {tid}


def test_deliveries_of_several_messages(store: Store) -> None:
    store.record_delivery(queue_id="Q1", recipient="a@x.example", status="deferred", at=T0)
    store.record_delivery(queue_id="Q2", recipient="b@x.example", status="delivered", at=T0)
    store.record_delivery(
        queue_id="Q1", recipient="a@x.example", status="delivered", attempt=2,
        at=T0 + timedelta(minutes=1),
    )
    got = store.deliveries_of(["Q1", "Q2", "Q3"])
    assert [(d.recipient, d.status) for d in got["Q1"]] == [
        ("a@x.example", "deferred"),
        ("a@x.example", "delivered"),
    ]
    assert [d.status for d in got["Q2"]] == ["delivered"] and "Q3" not in got


def _url_rows(store: Store) -> int:
    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).select_from(UrlRow.__table__)
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_purge_takes_the_links_along(store: Store) -> None:
    record(store, "OLD", -24 * 200, urls=[PHISH])
    record(store, "NEW", 0, urls=[PHISH, "https://x.example"])
    assert _url_rows(store) == 3
    store.purge(30, now=T0)
    assert _url_rows(store) == 2


def test_upgrade_from_0001_keeps_the_rows(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        migrate.upgrade(engine, "0001")
        assert migrate.current_revision(engine) == "0001"
    finally:
        engine.dispose()
    with Store.open(store_url, instance="mx1.test", hashing=fast_hashing()) as old:
        # (Store.open upgraded it: write at head, then go back and forth once more)
        record(old, "BEFORE", 0)
    engine = make_engine(store_url)
    try:
        cfg = migrate.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert migrate.current_revision(engine) == "0001"
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
    with Store.open(store_url, instance="mx1.test", hashing=fast_hashing()) as store:
        assert [t.queue_id for t in store.find_transactions()] == ["BEFORE"]
        tid = record(store, "AFTER", 1, urls=[PHISH])
        assert store.transaction_urls([tid]) == {tid: [PHISH]}
