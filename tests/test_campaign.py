"""Campaign grouping: link normalization and extraction, and find_campaign on a hand-made
SQLite store (what each message shares with the seed, the window, recipients and statuses)."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailward.campaign import (
    EMPTY_BODY_SHA256,
    MAX_MESSAGE_URLS,
    find_campaign,
    message_urls,
    normalize_url,
    normalized_urls,
)
from mailward.model import Finding, Message, Result
from mailward.store import Store
from mailward.textparts import extract

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PHISH = "https://login.evil.example/reset"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("campaign") / "store.db"
    Store.open(f"sqlite:///{path}", instance="setup").close()
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[Store]:
    shutil.copyfile(template, tmp_path / "store.db")
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}", instance="mx1.test") as opened:
        yield opened


# -- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://login.evil.example/reset?user=alice#top", PHISH),
        ("HTTPS://Login.EVIL.example./reset", PHISH),  # scheme and host case, final dot
        ("https://alice:pw@login.evil.example:443/reset", PHISH),  # user info, default port
        ("https://login.evil.example:8443/reset", "https://login.evil.example:8443/reset"),
        ("http://evil.example/", "http://evil.example"),  # a lone / is the same link
        ("http://evil.example", "http://evil.example"),
        ("//evil.example/x", "http://evil.example/x"),  # scheme-relative
        ("https://evil.example/Path/Case", "https://evil.example/Path/Case"),  # path kept
        ("https://evil.example\\@good.example/", "https://evil.example"),  # as browsers read it
        ("https://[2001:DB8::1]:8080/a", "https://[2001:db8::1]:8080/a"),
        ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),  # IDNA
        ("mailto:alice@example.com", None),
        ("ftp://evil.example/x", None),
        ("https://", None),
        ("https:///path", None),
        ("https://evil example/", None),
        ("https://evil.example:99999/", None),
        ("https://evil.example:8o/", None),
        ("javascript:alert(1)", None),
    ],
)
def test_normalize_url(href: str, expected: str | None) -> None:
    assert normalize_url(href) == expected


def test_normalized_urls_dedupe_skip_site_and_cap() -> None:
    hrefs = [
        PHISH,
        PHISH + "?x=1",
        "https://www.ourcorp.example/about",  # the site's own: in every signature
        "https://ourcorp.example",
        "https://notourcorp.example/x",  # only a suffix, not a subdomain
        "nonsense",
        *[f"https://e{i}.example/" for i in range(MAX_MESSAGE_URLS + 5)],
    ]
    got = normalized_urls(hrefs, ["OurCorp.example."])
    assert got[:3] == [PHISH, "https://notourcorp.example/x", "https://e0.example"]
    assert len(got) == MAX_MESSAGE_URLS


MIME = (
    "From: it@0urcorp.example\r\n"
    "To: staff@ourcorp.example\r\n"
    "Subject: Password expires\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="outer"\r\n'
    "\r\n"
    "--outer\r\n"
    'Content-Type: multipart/alternative; boundary="inner"\r\n'
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Log in at https://login.evil.example/reset?u=alice. Or see (http://plain.example/faq).\r\n"
    "Our intranet: https://intranet.ourcorp.example/help\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    '<p><a href=3D"https://qp.evil.example/very/long/pa=\r\n'
    'th/name">click</a> <a href=3D\'HTTPS://Login.Evil.Example/reset\'>again</a></p>\r\n'
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: text/html\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    + base64.encodebytes(b'<a href="https://b64.evil.example/x?q=1">x</a>').decode().replace(
        "\n", "\r\n"
    )
    + "--outer\r\n"
    "Content-Type: text/plain\r\n"
    'Content-Disposition: attachment; filename="notes.txt"\r\n'
    "\r\n"
    "https://attachment.example/never\r\n"
    "--outer--\r\n"
)


def test_message_urls_decodes_parts_and_skips_attachments() -> None:
    parsed = Message(MIME.encode()).parsed
    got = message_urls(parsed, ["ourcorp.example"])
    assert got == [
        PHISH,
        "http://plain.example/faq",
        "https://qp.evil.example/very/long/path/name",  # across a soft line break
        "https://b64.evil.example/x",
    ]
    # the same links as the content check's full walk finds
    full = normalized_urls((link.href for link in extract(parsed).links), ["ourcorp.example"])
    assert set(got) == set(full)


def test_message_urls_of_messages_without_links() -> None:
    plain = Message(b"Subject: hi\r\n\r\nno links, just http: and ://\r\n")
    assert message_urls(plain.parsed) == []
    assert message_urls(Message(b"").parsed) == []


# -- find_campaign -----------------------------------------------------------------------------


def record(store: Store, qid: str, hours: float, **values: object) -> None:
    defaults: dict[str, object] = {
        "queue_id": qid,
        "mail_from": f"{qid.lower()}@sender.example",
        "from_address": f"{qid.lower()}@sender.example",
        "recipients": [f"{qid.lower()}@ourcorp.example"],
        "disposition": "accept",
        "subject": f"about {qid}",
        "body_sha256": qid.lower().ljust(64, "0"),
        "message_id": f"<{qid.lower()}@sender.example>",
        "received_at": T0 + timedelta(hours=hours),
    }
    defaults.update(values)
    store.record_transaction(**defaults)  # type: ignore[arg-type]


@pytest.fixture
def phishing(store: Store) -> Store:
    """A phishing run: the seed and copies sharing one thing each, plus unrelated mail."""
    record(
        store, "SEED", 0, mail_from="it@0urcorp.example", from_address="it@0urcorp.example",
        subject="Password expires today", body_sha256="f" * 64, urls=[PHISH],
        recipients=["alice@ourcorp.example", "bob@ourcorp.example"], disposition="tag",
        message_id="<run1@0urcorp.example>",
        findings=[Finding("identity", "IDENTITY_LOOKALIKE", Result.POLICY, score=6.0)],
    )
    record(store, "ENV", -5, mail_from="it@0urcorp.example", recipients=["carol@ourcorp.example"],
           disposition="reject")
    record(store, "SUBJ", 2, subject="Password expires today",
           recipients=["dave@ourcorp.example", "alice@ourcorp.example"],
           disposition="quarantine")
    record(store, "BODY", 3, body_sha256="f" * 64, recipients=["erin@ourcorp.example"])
    record(store, "URL", 4, urls=[PHISH, "https://other.example"],
           recipients=["frank@ourcorp.example"])
    record(store, "FAR", 80, body_sha256="f" * 64, recipients=["late@ourcorp.example"])
    record(store, "OTHER", 1, urls=["https://other.example"], recipients=["zoe@ourcorp.example"])
    store.record_delivery(queue_id="SEED", recipient="alice@ourcorp.example", status="delivered")
    store.record_delivery(queue_id="SEED", recipient="bob@ourcorp.example", status="deferred")
    store.record_delivery(queue_id="BODY", recipient="erin@ourcorp.example", status="deferred")
    store.record_delivery(queue_id="BODY", recipient="erin@ourcorp.example", status="failed",
                          attempt=2)
    return store


def test_campaign_by_queue_id(phishing: Store) -> None:
    found = find_campaign(phishing, "SEED")
    assert found is not None
    assert found.seed.queue_id == "SEED"
    assert found.since == T0 - timedelta(hours=72) and found.until == T0 + timedelta(hours=72)
    assert found.searched == {
        "sender": ("it@0urcorp.example",),
        "subject": ("Password expires today",),
        "body": ("f" * 64,),
        "url": (PHISH,),
    }
    assert [(m.transaction.queue_id, m.matched_by) for m in found.messages] == [
        ("URL", ("url",)),
        ("BODY", ("body",)),
        ("SUBJ", ("subject",)),
        ("SEED", ("seed", "sender", "subject", "body", "url")),
        ("ENV", ("sender",)),
    ]
    assert found.messages[0].urls == (PHISH,)  # only the links shared with the seed
    assert not found.truncated
    assert found.count("sender") == 2 and found.count("url") == 2


def test_recipients_and_what_became_of_each_copy(phishing: Store) -> None:
    found = find_campaign(phishing, "SEED")
    assert found is not None
    statuses = {m.transaction.queue_id: dict(m.statuses) for m in found.messages}
    assert statuses["SEED"] == {
        "alice@ourcorp.example": "delivered",
        "bob@ourcorp.example": "deferred",
    }
    assert statuses["ENV"] == {"carol@ourcorp.example": "refused"}
    assert statuses["SUBJ"]["dave@ourcorp.example"] == "quarantined"
    assert statuses["BODY"] == {"erin@ourcorp.example": "failed"}  # the last attempt counts
    assert statuses["URL"] == {"frank@ourcorp.example": "accepted"}  # nothing delivered yet
    recipients = {r.address: (r.reached, r.messages) for r in found.recipients}
    assert list(recipients) == sorted(recipients)
    assert recipients["alice@ourcorp.example"] == (
        True,
        (("SUBJ", "quarantined"), ("SEED", "delivered")),
    )
    assert recipients["carol@ourcorp.example"][0] is False  # refused: never reached her
    assert recipients["dave@ourcorp.example"][0] is False  # in quarantine
    assert recipients["erin@ourcorp.example"][0] is False  # delivery failed
    assert recipients["bob@ourcorp.example"][0] is True  # on its way
    assert "zoe@ourcorp.example" not in recipients and "late@ourcorp.example" not in recipients


@pytest.mark.parametrize(
    ("ident", "window", "by", "expected"),
    [
        ("<run1@0urcorp.example>", timedelta(hours=72), None, {"SEED", "ENV", "SUBJ", "BODY",
                                                              "URL"}),
        ("run1@0urcorp.example", timedelta(hours=72), ["body"], {"SEED", "BODY"}),
        ("SEED", timedelta(hours=100), ["body"], {"SEED", "BODY", "FAR"}),
        ("SEED", timedelta(hours=3), None, {"SEED", "SUBJ"}),  # 3 h before and after
        ("SEED", timedelta(hours=72), ["url", "sender"], {"SEED", "URL", "ENV"}),
    ],
)
def test_seed_by_message_id_window_and_criteria(
    phishing: Store, ident: str, window: timedelta, by: list[str] | None, expected: set[str]
) -> None:
    kwargs: dict[str, object] = {"window": window}
    if by is not None:
        kwargs["by"] = by
    found = find_campaign(phishing, ident, **kwargs)  # type: ignore[arg-type]
    assert found is not None
    assert {m.transaction.queue_id for m in found.messages} == expected


def test_copies_with_the_same_message_id_belong_to_it(store: Store) -> None:
    record(store, "A", 0, message_id="<same@x.example>", subject=None, body_sha256=None,
           mail_from="", from_address=None)
    record(store, "B", 1, message_id="<same@x.example>")
    found = find_campaign(store, "<same@x.example>")
    assert found is not None
    assert found.seed.queue_id == "A"  # the first received
    assert found.searched == {}  # the seed has nothing else to search by
    assert {m.transaction.queue_id: m.matched_by for m in found.messages} == {
        "A": ("seed",),
        "B": ("message-id",),
    }


def test_empty_sender_subject_and_body_join_nothing(store: Store) -> None:
    assert hashlib.sha256(b"").hexdigest() == EMPTY_BODY_SHA256
    for qid, hours in (("BOUNCE1", 0), ("BOUNCE2", 1)):
        record(store, qid, hours, mail_from="", from_address=None, subject="",
               body_sha256=EMPTY_BODY_SHA256)
    found = find_campaign(store, "BOUNCE1")
    assert found is not None
    assert [m.transaction.queue_id for m in found.messages] == ["BOUNCE1"]


def test_truncated_when_a_criterion_hits_the_limit(phishing: Store) -> None:
    found = find_campaign(phishing, "SEED", limit=2)
    assert found is not None and found.truncated
    assert find_campaign(phishing, "SEED", limit=3) is not None


def test_unknown_message_and_bad_arguments(phishing: Store) -> None:
    assert find_campaign(phishing, "NOPE") is None
    assert find_campaign(phishing, "  ") is None
    with pytest.raises(ValueError, match="unknown criteria colour"):
        find_campaign(phishing, "SEED", by=["colour"])
    with pytest.raises(ValueError, match="window"):
        find_campaign(phishing, "SEED", window=timedelta(0))
