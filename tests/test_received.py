"""Received parsing: real-format samples of every common MTA, our own header, and garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.actions import received_header
from mailward.message import parse_headers
from mailward.model import Connection
from mailward.received import Tls, normalize_ip, parse_received, tls_version

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "received"

TLS13 = {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"}
TLS12_MS = {"version": "TLSv1.2", "cipher": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}

# file -> the fields it must parse to (every field not named must be empty/false)
EXPECTED: dict[str, dict[str, Any]] = {
    "postfix-tls.txt": {
        "helo": "mail.partner.test", "rdns": "mail.partner.test", "ip": "192.0.2.25",
        "by": "mx1.ourcorp.example", "protocol": "ESMTPS", "tls": TLS13,
        "id": "4XQ2k81lDBz2yjS", "for": "staff@ourcorp.example", "software": "Postfix",
        "time": "2021-06-15T03:48:38+00:00",
    },
    "postfix-unknown-rdns-ipv6.txt": {
        "helo": "helo.example.net", "ip": "2001:db8:4864:20::b2d", "by": "mail.example.org",
        "protocol": "ESMTP", "id": "49KGgz0yCmzDr5J", "for": "list@example.org",
        "software": "Postfix", "time": "2020-05-09T18:58:54+00:00",
    },
    "postfix-submission.txt": {
        "helo": "laptop.example.com", "rdns": "dsl-198-51-100-7.example.net",
        "ip": "198.51.100.7", "by": "submit.example.co.uk", "protocol": "ESMTPSA",
        "tls": TLS13, "id": "EE4D5660732A", "authenticated": True, "auth_user": "kholk11",
        "software": "Postfix", "time": "2023-11-29T13:28:32+00:00",
    },
    "postfix-local-pickup.txt": {
        "by": "noisy.example.net", "id": "B6F493005AF", "software": "Postfix, from userid 1000",
        "time": "2024-07-05T08:10:52+00:00",
    },
    "postfix-ipv4-mapped.txt": {
        "helo": "mail.relay.example", "rdns": "mail.relay.example", "ip": "192.0.2.44",
        "by": "mx.example.org", "protocol": "ESMTP", "id": "8F1E2C0015",
        "for": "someone@example.org", "software": "Postfix", "time": "2026-03-02T08:00:00+00:00",
    },
    "exim-tls-old-style.txt": {
        "helo": "eggs.example.org", "rdns": "eggs.example.org", "ip": "2001:db8:142:3::10",
        "by": "lists.example.org", "protocol": "esmtps",
        "tls": {"version": "TLSv1.2", "cipher": "ECDHE_RSA_AES_256_GCM_SHA384"},
        "id": "1tvahu-0004jP-Ex", "for": "devel@lists.example.org",
        "envelope_from": "alex@example.net", "software": "Exim 4.90_1",
        "time": "2025-03-21T11:38:37+00:00",
    },
    "exim-helo-port.txt": {
        "helo": "lists1p.example.org", "rdns": "localhost", "ip": "::1", "port": 33458,
        "by": "lists.example.org", "protocol": "esmtp", "id": "1hylsG-0001rL-6q",
        "for": "subscriber@example.net", "envelope_from": "devel-bounces@example.org",
        "software": "Exim 4.90_1", "time": "2019-08-16T23:43:12+00:00",
    },
    "exim-tls-new-style.txt": {
        "helo": "aibo.example.com", "rdns": "mailtransmit03.example.com", "ip": "10.9.9.163",
        "by": "mailtransmit05.example.com", "protocol": "esmtps",
        "tls": {"version": "TLSv1.2", "cipher": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
        "id": "1p7eL5-00E3iI-5p", "envelope_from": "mhal@example.com", "software": "Exim 4.93",
        "time": "2022-12-20T15:15:31+00:00",
    },
    "exim-no-rdns-authenticated.txt": {
        "helo": "pc17.example.net", "ip": "198.51.100.23", "by": "smtp.example.org",
        "protocol": "esmtpsa", "tls": TLS13, "id": "1sPe1t-0000000AJ0T-0vz7",
        "authenticated": True, "software": "Exim 4.97.1 #2 (Red Hat Linux)",
        "time": "2024-07-05T08:10:53+00:00",
    },
    "sendmail-tls.txt": {
        "helo": "relay.example.edu", "rdns": "relay.example.edu", "ip": "192.0.2.47",
        "by": "gate.example.edu", "protocol": "ESMTPS", "tls": TLS13, "id": "691AISAt018455",
        "software": "Sendmail 8.17.1/8.17.1", "time": "2026-10-01T10:18:28+00:00",
    },
    "sendmail-may-be-forged.txt": {
        "helo": "helo.example.com", "rdns": "host-198-51-100-9.isp.example",
        "ip": "198.51.100.9", "by": "mail.example.edu", "protocol": "ESMTP",
        "id": "2B3C4D5E6F7G8H", "for": "prof@example.edu",
        "software": "Sendmail 8.15.2/8.15.2/Debian-22", "time": "2022-01-03T14:15:02+00:00",
    },
    "outlook-internal.txt": {
        "helo": "AM0PR10MB2963.EURPRD10.PROD.OUTLOOK.COM", "ip": "2603:10a6:208:157::14",
        "by": "AM6PR10MB2279.EURPRD10.PROD.OUTLOOK.COM", "by_ip": "2603:10a6:20b:4d::22",
        "protocol": "Microsoft SMTP Server", "tls": TLS12_MS, "id": "15.20.5038.16",
        "software": "Microsoft SMTP Server", "time": "2022-03-10T13:06:09+00:00",
    },
    "outlook-frontend-transport.txt": {
        "helo": "MN1PEPF0000ECDB.namprd02.prod.outlook.com", "ip": "2a01:111:f403:f902::2",
        "by": "BL6PEPF0001640F.outlook.office365.com", "by_ip": "2603:1036:903:4::a",
        "via": "Frontend Transport", "protocol": "Microsoft SMTP Server", "tls": TLS12_MS,
        "id": "15.20.7292.34", "software": "Microsoft SMTP Server",
        "time": "2024-02-24T06:39:55+00:00",
    },
    "outlook-mapi.txt": {
        "helo": "AM0PR10MB2963.EURPRD10.PROD.OUTLOOK.COM", "ip": "fe80::d5ba:3ed1:1acd:b5b7",
        "by": "AM0PR10MB2963.EURPRD10.PROD.OUTLOOK.COM", "by_ip": "fe80::d5ba:3ed1:1acd:b5b7",
        "protocol": "mapi", "id": "15.20.5038.027", "time": "2022-03-10T13:06:08+00:00",
    },
    "exchange-onprem.txt": {
        "helo": "[127.0.0.1]", "ip": "192.0.2.71", "by": "exch01.example.com",
        "by_ip": "192.0.2.45", "protocol": "Microsoft SMTP Server", "tls": TLS12_MS,
        "id": "15.2.1544.11", "software": "Microsoft SMTP Server",
        "time": "2025-02-13T13:20:21+00:00",
    },
    "gmail-mx.txt": {
        "helo": "mail-sor-f41.google.com", "rdns": "mail-sor-f41.google.com",
        "ip": "209.85.220.41", "by": "mx.google.com", "protocol": "SMTPS",
        "tls": {"version": None, "cipher": None},
        "id": "a640c23a62f3a-a99e5f3a1b2sor1234567866b.7.2024.10.14.05.23.45",
        "for": "recipient@example.com", "time": "2024-10-14T12:23:45+00:00",
    },
    "gmail-internal.txt": {
        "by": "2002:a05:6520:2a4c:b0:2a1:33c4:8e6f", "by_ip": "2002:a05:6520:2a4c:b0:2a1:33c4:8e6f",
        "protocol": "SMTP", "id": "x12csp1836417lkt", "time": "2024-10-14T12:23:46+00:00",
    },
    "gmail-submission.txt": {
        "helo": "[192.168.1.172]", "rdns": "dsl-198-51-100-77.example.net",
        "ip": "198.51.100.77", "by": "smtp.gmail.com", "protocol": "ESMTPSA",
        "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256"},
        "id": "i26-20020a023b5a000000b0032b3a781781sm1301267jaf.69.2022.06.16.13.37.10",
        "authenticated": True, "time": "2022-06-16T20:37:10+00:00",
    },
    "qmail-invoked-from-network.txt": {
        "software": "qmail", "time": "2008-03-30T14:36:13+00:00",
    },
    "qmail-invoked-by-uid.txt": {"software": "qmail", "time": "2020-04-15T21:51:20+00:00"},
    "qmail-unknown-helo.txt": {
        "helo": "mail.example.com", "ip": "203.0.113.9", "by": "mx.example.net",
        "protocol": "SMTP", "time": "2006-05-24T13:23:17+00:00",
    },
    "qmail-authenticated.txt": {
        "helo": "laptop", "rdns": "pd9e12345.dip0.example.net", "ip": "198.51.100.41",
        "by": "mail.example.org", "protocol": "ESMTPA", "authenticated": True,
        "time": "2021-01-22T10:47:59+00:00",
    },
    "ironport-helo.txt": {
        "helo": "8745164cafc7", "rdns": "lkp-server02.example.com", "ip": "10.239.97.151",
        "by": "fmsmga006.example.com", "protocol": "ESMTP", "time": "2022-08-14T00:01:34+00:00",
    },
    "zmailer-ehlo.txt": {
        "helo": "peff.example.net", "rdns": "66-23-211-5.clients.example.net",
        "ip": "198.51.100.5", "port": 33517, "by": "vger.example.org", "protocol": "ESMTP",
        "id": "S932740AbWEXNXT", "time": "2006-05-24T13:23:19+00:00",
    },
    "messagelabs-encrypted.txt": {
        "helo": "lenovo.example.com", "ip": "192.0.2.5",
        "by": "server-8.tower-406.messagelabs.example", "protocol": "SMTP",
        "tls": {"version": None, "cipher": "ECDHE-RSA-AES256-GCM-SHA384"},
        "time": "2020-04-15T21:51:22+00:00",
    },
    "tls-encrypted-authenticated.txt": {
        "by": "mail.example.de", "protocol": "ESMTPSA",
        "tls": {"version": None, "cipher": "TLS_AES_256_GCM_SHA384"}, "authenticated": True,
        "time": "2021-01-22T10:47:59+00:00",
    },
    "mailward-inbound.txt": {
        "helo": "mail.attacker.test", "ip": "203.0.113.66", "by": "mx.ourcorp.example",
        "protocol": "ESMTPS", "tls": TLS13, "id": "01JNF0Y8Z1QK3M4N5P6R7S8T9V",
        "for": "staff@ourcorp.example", "software": "mailward",
        "time": "2026-03-01T12:00:00+00:00",
    },
    "mailward-submission.txt": {
        "helo": "[192.168.0.10]", "ip": "2001:db8:77::15", "by": "mx.ourcorp.example",
        "protocol": "ESMTPSA", "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256"},
        "id": "01JNF1A2B3C4D5E6F7G8H9J0KM", "authenticated": True, "auth_user": "alice",
        "software": "mailward", "time": "2026-03-01T12:10:00+00:00",
    },
}
EMPTY: dict[str, Any] = {
    "helo": None, "rdns": None, "ip": None, "port": None, "by": None, "by_ip": None,
    "via": None, "protocol": None, "tls": None, "id": None, "for": None, "envelope_from": None,
    "authenticated": False, "auth_user": None, "software": None, "time": None,
    "unparsed": False, "problems": [],
}


def field_value(path: Path) -> str:
    """The Received field of a sample as the message parser hands it over."""
    fields = parse_headers(path.read_bytes() + b"\n").fields
    assert [f.lname for f in fields] == ["received"]
    return fields[0].value


def test_every_sample_has_expectations() -> None:
    samples = {p.name for p in FIXTURES.glob("*.txt")} - {"garbage.txt"}
    assert samples == set(EXPECTED)
    assert len(samples) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    hop = parse_received(field_value(FIXTURES / name))
    got = hop.as_dict()
    assert got.pop("raw") == " ".join(field_value(FIXTURES / name).split())
    assert got == {**EMPTY, **EXPECTED[name]}
    assert hop.timestamp is not None and hop.timestamp.tzinfo is not None


def test_garbage_sample_is_flagged_not_raised() -> None:
    hop = parse_received(field_value(FIXTURES / "garbage.txt"))
    assert hop.unparsed
    assert hop.timestamp is None and hop.by is None and hop.ip is None
    assert any("no ';'" in p for p in hop.problems)
    assert any("never closed" in p for p in hop.problems)


def test_our_own_header_round_trips() -> None:
    """What actions.received_header writes today is read back field by field."""
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    conn = Connection(ip="::ffff:203.0.113.66", helo="mail.attacker.test",
                      tls_version="TLSv1.3", tls_cipher="TLS_AES_256_GCM_SHA384",
                      auth_user="bob")
    raw = received_header(conn, "mx.ourcorp.example", "Q42", "staff@ourcorp.example",
                          when.timestamp())
    hop = parse_received(parse_headers(raw + b"\r\n").fields[0].value)
    assert (hop.helo, hop.rdns, hop.ip) == ("mail.attacker.test", None, "203.0.113.66")
    assert (hop.by, hop.software, hop.protocol, hop.id) == (
        "mx.ourcorp.example", "mailward", "ESMTPSA", "Q42")
    assert hop.tls == Tls("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert (hop.authenticated, hop.auth_user) == (True, "bob")
    assert hop.recipient == "staff@ourcorp.example"
    assert hop.timestamp == when and not hop.unparsed
    bare = received_header(Connection(), "mx.ourcorp.example", "Q43", None, when.timestamp())
    hop = parse_received(parse_headers(bare + b"\r\n").fields[0].value)
    assert (hop.helo, hop.rdns, hop.ip, hop.tls, hop.unparsed) == (None, None, None, None, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("[192.0.2.1]", "192.0.2.1"),
        ("[IPv6:2001:DB8::1]", "2001:db8::1"),
        ("ipv6:2001:db8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:192.0.2.44", "192.0.2.44"),
        ("[IPv6:::ffff:c000:22c]", "192.0.2.44"),
        ("fe80::1%eth0", "fe80::1"),
        ("mail.example.com", None),
        ("999.1.1.1", None),
        ("", None),
    ],
)
def test_normalize_ip(text: str, expected: str | None) -> None:
    assert normalize_ip(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("TLS1_2", "TLSv1.2"), ("TLS1.3", "TLSv1.3"), ("TLSv1.3", "TLSv1.3"), ("TLSv1", "TLSv1"),
     ("SSLv3", "SSLv3"), ("tls1_3", "TLSv1.3"), ("weird", "weird")],
)
def test_tls_version_normalized(text: str, expected: str) -> None:
    assert tls_version(text) == expected


def test_dates_are_timezone_aware() -> None:
    unknown_zone = parse_received("from a (a [192.0.2.1]) by b; 30 Mar 2008 14:36:13 -0000")
    assert unknown_zone.timestamp == datetime(2008, 3, 30, 14, 36, 13, tzinfo=UTC)
    offset = parse_received("by b with SMTP; Thu,  3 Jun 2021 22:05:52 +0800 (CST)")
    assert offset.timestamp is not None
    assert offset.timestamp.utcoffset() == timedelta(hours=8)
    assert offset.timestamp == datetime(2021, 6, 3, 14, 5, 52, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("from a.example (a.example [192.0.2.1]) by b.example with ESMTP id 1", "no ';'"),
        ("from a.example by b.example with ESMTP; not a date", "unreadable date"),
        ("some words from a.example by b.example; 1 Jan 2024 00:00:00 +0000", "text before"),
        ("from a.example) by b.example; 1 Jan 2024 00:00:00 +0000", "')'"),
        ("from a by b by c; 1 Jan 2024 00:00:00 +0000", "second 'by'"),
        ("; 1 Jan 2024 00:00:00 +0000", "no from/by"),
    ],
)
def test_broken_fields_keep_what_was_readable(value: str, problem: str) -> None:
    hop = parse_received(value)
    assert hop.unparsed
    assert any(problem in p for p in hop.problems), hop.problems


def test_partial_read_keeps_the_facts() -> None:
    hop = parse_received("from a.example (a.example [192.0.2.1]) by b.example with ESMTP id 1")
    assert (hop.helo, hop.ip, hop.by, hop.id) == ("a.example", "192.0.2.1", "b.example", "1")


def test_huge_field_is_cut() -> None:
    value = "from a (a [192.0.2.1]) by b with SMTP id " + "x" * 10_000 + "; 1 Jan 2024 00:00 +0000"
    hop = parse_received(value)
    assert hop.unparsed and hop.ip == "192.0.2.1"
    assert any("longer than" in p for p in hop.problems)


def test_keyword_as_helo_is_a_value_not_a_clause() -> None:
    hop = parse_received("from by (by [192.0.2.9]) by mx.example with SMTP; 1 Jan 2024 00:00 +0000")
    assert (hop.helo, hop.ip, hop.by, hop.unparsed) == ("by", "192.0.2.9", "mx.example", False)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_never_raises(text: str) -> None:
    hop = parse_received(text)
    assert hop.raw == " ".join(text.split())
    if hop.ip is not None:
        assert normalize_ip(hop.ip) == hop.ip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(
    ["from", "by", "with", "id", "for", "via", "(", ")", ";", "[", "]", "<", ">", '"', "\\",
     "helo=", "HELO", "[IPv6:::1]", "192.0.2.1", "ESMTPSA", "(using TLSv1.3", "Exim", "x"]
), max_size=40))
def test_never_raises_on_hostile_tokens(tokens: list[str]) -> None:
    parse_received(" ".join(tokens))
