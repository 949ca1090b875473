"""The ARC check: hand-made chains through `mailward check --json`, and its parsing helpers."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
import pytest
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.checks.arc import (
    ArcCheck,
    ChainVerifier,
    KeyCache,
    _split_results_slowly,
    pick_key_record,
    records_pass,
    relaxed_body,
    relaxed_header,
    split_results,
    strip_b,
)
from mailward.checks.base import CheckContext
from mailward.config import Config
from mailward.dns import Lookup, Resolver, Status, ZoneBackend
from mailward.model import Connection, Envelope, Message, Transaction
from mailward.signing import arc_seal, generate_key
from tests.helpers import check_json, symbols

LIST = "lists.example.org"
FWD = "fwd.example"
SEALED_AT = 1_704_103_200
NOW = SEALED_AT + 600.0
AUTH_CHECKS = '[checks]\nenabled = ["spf", "dkim", "arc", "dmarc"]\n'

ORIGINAL = (
    b"From: The Boss <boss@origin.example>\r\n"
    b"To: team@lists.example.org\r\n"
    b"Subject: Quarterly numbers\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <q1@origin.example>\r\n"
    b"\r\n"
    b"Hello team,\r\nthe numbers are attached.\r\n"
)


@dataclass(frozen=True)
class Key:
    private: bytes
    record: str


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    return {
        LIST: Key(*generate_key("rsa-sha256", 1024)),
        FWD: Key(*generate_key("rsa-sha256", 1024)),
        "attacker": Key(*generate_key("rsa-sha256", 1024)),
        "ed": Key(*generate_key("ed25519-sha256")),
    }


def received(authserv: str, results: str, message: bytes) -> bytes:
    """The message as an ADMD hands it on after writing its Authentication-Results."""
    return f"Authentication-Results: {authserv}; {results}\r\n".encode() + message


def sealed(message: bytes, domain: str, key: Key, **kwargs: Any) -> bytes:
    fields = arc_seal(message, domain, "arc", key.private, domain, timestamp=SEALED_AT, **kwargs)
    assert fields, "arc_seal added no set"
    return b"".join(fields) + message


def zones(keys: dict[str, Key], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"arc._domainkey.{LIST}": [{"TXT": keys[LIST].record}],
        f"arc._domainkey.{FWD}": [{"TXT": keys[FWD].record}],
        "_dmarc.origin.example": [{"TXT": "v=DMARC1; p=reject"}],
        "origin.example": [{"TXT": "v=spf1 -all"}],
    }
    data.update(extra)
    return data


def listed(keys: dict[str, Key]) -> bytes:
    """The list verified the original (DMARC pass), tagged its Subject and sealed it."""
    tagged = ORIGINAL.replace(b"Subject: Quarterly", b"Subject: [team] Quarterly")
    return sealed(received(LIST, "dmarc=pass header.from=origin.example", tagged), LIST, keys[LIST])


def run(tmp_path: Path, message: bytes, zone_data: dict[str, Any], trusted: tuple[str, ...] = (),
        now: float = NOW) -> dict[str, Any]:
    config = AUTH_CHECKS + f"[arc]\ntrusted_sealers = {list(trusted)!r}\n".replace("'", '"')
    return check_json(tmp_path, message, zone_data, ip="198.51.100.7", helo=f"mail.{LIST}",
                      mail_from=f"bounces@{LIST}", config=config, now=now)


def arc_entry(report: dict[str, Any]) -> str:
    """The ``arc=...`` part of our Authentication-Results."""
    entries = [e.strip() for e in report["authentication_results"].split(";")]
    (entry,) = [e for e in entries if e.startswith("arc=")]
    return entry


def finding(report: dict[str, Any], symbol: str) -> dict[str, Any]:
    (found,) = [f for f in report["findings"] if f["symbol"] == symbol]
    return found


# --- results through the CLI ----------------------------------------------------------------


def test_sealed_and_forwarded_message_passes(tmp_path: Path, keys: dict[str, Key]) -> None:
    report = run(tmp_path, listed(keys), zones(keys))
    assert arc_entry(report) == "arc=pass header.oldest-pass=1"
    assert finding(report, "ARC_PASS")["detail"] == f"ARC chain (i=1 d={LIST}) verifies"
    assert "ARC_TRUSTED_SEALER" not in symbols(report)


def test_body_changed_after_sealing_fails(tmp_path: Path, keys: dict[str, Key]) -> None:
    message = listed(keys).replace(b"numbers are attached", b"numbers are at evil.example")
    entry = arc_entry(run(tmp_path, message, zones(keys)))
    assert entry.startswith("arc=fail ")
    assert f"message signature i=1 (d={LIST}) does not verify: body hash mismatch" in entry


def test_no_arc_headers_is_none(tmp_path: Path, keys: dict[str, Key]) -> None:
    report = run(tmp_path, ORIGINAL, zones(keys))
    assert arc_entry(report) == "arc=none"
    assert "ARC_NONE" in symbols(report)


def test_key_lookup_timeout_is_temperror(tmp_path: Path, keys: dict[str, Key]) -> None:
    data = zones(keys, **{f"arc._domainkey.{LIST}": ["TIMEOUT"]})
    report = run(tmp_path, listed(keys), data, trusted=(LIST,))
    entry = arc_entry(report)
    assert entry.startswith("arc=temperror ")
    assert "key lookup failed" in entry
    assert "ARC_TRUSTED_SEALER" not in symbols(report)


def test_definite_failure_outranks_a_timed_out_key(tmp_path: Path, keys: dict[str, Key]) -> None:
    hop1 = listed(keys)
    hop2 = sealed(received(FWD, "arc=pass", hop1), FWD, keys[FWD])
    tampered = hop2.replace(b"numbers are attached", b"numbers are gone")
    data = zones(keys, **{f"arc._domainkey.{LIST}": ["TIMEOUT"]})
    assert arc_entry(run(tmp_path, tampered, data)).startswith("arc=fail ")


def test_trusted_sealer_overrides_dmarc_reject(tmp_path: Path, keys: dict[str, Key]) -> None:
    untrusted = run(tmp_path, listed(keys), zones(keys))
    assert untrusted["verdict"]["disposition"] == "reject"
    assert untrusted["verdict"]["forced_by"] == "DMARC_FAIL_REJECT"

    report = run(tmp_path, listed(keys), zones(keys), trusted=(LIST,))
    vouch = finding(report, "ARC_TRUSTED_SEALER")
    assert vouch["detail"] == (
        f"the ARC chain is intact and {LIST}, a trusted forwarder, recorded dmarc=pass when the "
        "message reached it (i=1)"
    )
    assert "DMARC_FAIL_REJECT" in symbols(report)
    assert report["verdict"]["disposition"] != "reject"
    assert any(r.startswith("override: DMARC_FAIL_REJECT") and vouch["detail"] in r
               for r in report["verdict"]["reasons"])


def test_forged_chain_in_a_trusted_name_does_not_override(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    message = received(LIST, "dmarc=pass header.from=origin.example", ORIGINAL)
    forged = sealed(message, LIST, keys["attacker"])  # the list's name, not the list's key
    report = run(tmp_path, forged, zones(keys), trusted=(LIST,))
    assert arc_entry(report).startswith("arc=fail ")
    assert "ARC_TRUSTED_SEALER" not in symbols(report)
    assert report["verdict"]["disposition"] == "reject"


def test_an_aar_rewritten_to_claim_dmarc_pass_breaks_its_seal(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    honest = sealed(received(LIST, "dmarc=fail header.from=origin.example", ORIGINAL), LIST,
                    keys[LIST])
    assert arc_entry(run(tmp_path, honest, zones(keys), trusted=(LIST,))).startswith("arc=pass")
    forged = honest.replace(b"i=1; lists.example.org;\r\n dmarc=fail",
                            b"i=1; lists.example.org;\r\n dmarc=pass")
    assert forged != honest
    report = run(tmp_path, forged, zones(keys), trusted=(LIST,))
    assert arc_entry(report) == (
        f'arc=fail reason="seal i=1 (d={LIST}) does not verify: signature mismatch"'
    )
    assert "ARC_TRUSTED_SEALER" not in symbols(report)
    assert report["verdict"]["disposition"] == "reject"


def test_trust_walks_back_only_through_trusted_sealers(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    hop2 = sealed(received(FWD, "arc=pass; dmarc=fail header.from=origin.example", listed(keys)),
                  FWD, keys[FWD])
    both = run(tmp_path, hop2, zones(keys), trusted=(LIST, FWD))
    assert arc_entry(both) == "arc=pass header.oldest-pass=1"
    assert finding(both, "ARC_TRUSTED_SEALER")["detail"].endswith(f"{LIST}, a trusted forwarder, "
                                                                  "recorded dmarc=pass when the "
                                                                  "message reached it (i=1)")
    newest_untrusted = run(tmp_path, hop2, zones(keys), trusted=(LIST,))
    assert "ARC_TRUSTED_SEALER" not in symbols(newest_untrusted)
    assert newest_untrusted["verdict"]["disposition"] == "reject"
    newest_saw_fail = run(tmp_path, hop2, zones(keys), trusted=(FWD,))
    assert "ARC_TRUSTED_SEALER" not in symbols(newest_saw_fail)


def test_two_hops_with_a_modified_body_report_oldest_pass(
    tmp_path: Path, keys: dict[str, Key]
) -> None:
    hop1 = listed(keys) + b"--\r\nlist footer\r\n"  # the forwarder appends a footer
    hop2 = sealed(received(FWD, "arc=pass", hop1), FWD, keys[FWD])
    report = run(tmp_path, hop2, zones(keys))
    assert arc_entry(report) == "arc=pass header.oldest-pass=2"
    detail = finding(report, "ARC_PASS")["detail"]
    assert detail == f"ARC chain (i=1 d={LIST}, i=2 d={FWD}) verifies"


def test_newest_seal_recording_fail_fails(tmp_path: Path, keys: dict[str, Key]) -> None:
    hop2 = sealed(received(FWD, "arc=fail", listed(keys)), FWD, keys[FWD])
    entry = arc_entry(run(tmp_path, hop2, zones(keys)))
    assert entry == 'arc=fail reason="the newest seal (i=2) records cv=fail"'


def test_ed25519_seals_verify(tmp_path: Path, keys: dict[str, Key]) -> None:
    message = sealed(received(LIST, "dmarc=pass", ORIGINAL), LIST, keys["ed"],
                     algorithm="ed25519-sha256")
    data = zones(keys, **{f"arc._domainkey.{LIST}": [{"TXT": keys["ed"].record}]})
    assert arc_entry(run(tmp_path, message, data)) == "arc=pass header.oldest-pass=1"
    wrong_type = zones(keys)  # an RSA key published for an ed25519-sha256 seal
    assert "does not match the key type" in arc_entry(run(tmp_path, message, wrong_type))


def test_seal_time_is_judged_against_now(tmp_path: Path, keys: dict[str, Key]) -> None:
    day_before = run(tmp_path, listed(keys), zones(keys), now=SEALED_AT - 86_400)
    assert "t= lies in the future" in arc_entry(day_before)


def test_ams_folded_before_its_instance_tag_verifies(tmp_path: Path, keys: dict[str, Key]) -> None:
    message = listed(keys)
    refolded = message.replace(b"ARC-Message-Signature: i=1;", b"ARC-Message-Signature:\r\n\ti=1;")
    assert refolded != message
    with pytest.raises(IndexError):  # dkimpy's own driver cannot locate this AMS
        dkim.arc_verify(refolded, dnsfunc=lambda name, timeout=5: keys[LIST].record.encode())
    assert arc_entry(run(tmp_path, refolded, zones(keys))) == "arc=pass header.oldest-pass=1"


FOLDED = rb"[^\r]*\r\n(?:[ \t][^\r]*\r\n)*"  # the rest of a header field, folds included


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda m: re.sub(rb"ARC-Authentication-Results: i=1;" + FOLDED, b"", m),
         "ARC set i=1 has no ARC-Authentication-Results"),
        (lambda m: re.sub(rb"(ARC-Seal: " + FOLDED + rb")", rb"\1\1", m, count=1),
         "two ARC-Seal header fields claim i=1"),
        (lambda m: m.replace(b"ARC-Authentication-Results: i=1;", b"ARC-Authentication-Results: "),
         "an ARC-Authentication-Results does not start with an i= instance tag"),
        (lambda m: m.replace(b"i=1;", b"i=2;"), "the chain has no ARC set i=1"),
        (lambda m: m.replace(b"i=1;", b"i=51;"), "an ARC-Seal has an invalid instance i=51"),
    ],
    ids=["aar-missing", "seal-twice", "aar-no-instance", "gap", "over-50"],
)
def test_malformed_chains_fail_with_a_reason(
    tmp_path: Path, keys: dict[str, Key], edit: Any, reason: str
) -> None:
    message = edit(listed(keys))
    assert arc_entry(run(tmp_path, message, zones(keys))) == f'arc=fail reason="{reason}"'


# --- the check object -----------------------------------------------------------------------


class CountingBackend(ZoneBackend):
    def __init__(self, zone: dict[str, Any]) -> None:
        super().__init__(zone)
        self.asked: list[str] = []

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        self.asked.append(name)
        return await super().lookup(name, rdtype)


def evaluate(message: bytes, backend: CountingBackend, check: ArcCheck | None = None) -> list[Any]:
    config = Config()
    check = check or ArcCheck(config)
    tx = Transaction(Connection(), Envelope(), Message(message))
    ctx = CheckContext(Resolver(backend), config, {}, NOW)
    return asyncio.run(check.run(tx, ctx))


def test_no_arc_asks_no_dns_and_one_key_is_asked_once(keys: dict[str, Key]) -> None:
    backend = CountingBackend(zones(keys))
    assert [f.symbol for f in evaluate(ORIGINAL, backend)] == ["ARC_NONE"]
    assert backend.asked == []
    two_sets_one_key = sealed(received(LIST, "arc=pass", listed(keys)), LIST, keys[LIST])
    assert [f.symbol for f in evaluate(two_sets_one_key, backend)] == ["ARC_PASS"]
    assert backend.asked == [f"arc._domainkey.{LIST}"]


def test_parsed_keys_are_cached_on_the_check(keys: dict[str, Key]) -> None:
    check = ArcCheck(Config())
    evaluate(listed(keys), CountingBackend(zones(keys)), check)
    cached = check.keys.get(keys[LIST].record.encode())
    evaluate(listed(keys), CountingBackend(zones(keys)), check)
    assert check.keys.get(keys[LIST].record.encode()) is cached


def test_key_cache_is_bounded_and_remembers_broken_records(keys: dict[str, Key]) -> None:
    cache = KeyCache(size=2)
    for key in (LIST, FWD, "attacker"):
        cache.get(keys[key].record.encode())
    assert len(cache._entries) == 2
    for _ in range(2):
        with pytest.raises(dkim.KeyFormatError, match="unusable key record"):
            cache.get(b"v=DKIM1; k=rsa; p=bm90IGEga2V5")


def test_verifier_never_asks_for_a_name_it_was_not_given() -> None:
    verifier = ChainVerifier([], b"", {}, KeyCache(), NOW, 1024)
    with pytest.raises(dkim.KeyFormatError, match="was not fetched"):
        verifier.answer(b"arc._domainkey.elsewhere.example.")
    timed_out = Lookup("s._domainkey.d.example", "TXT", Status.TEMPERROR, error="timed out")
    verifier = ChainVerifier([], b"", {timed_out.name: timed_out}, KeyCache(), NOW, 1024)
    with pytest.raises(dkim.DnsTimeoutError):
        verifier.answer(b"s._domainkey.d.example.")


# --- Authentication-Results payloads --------------------------------------------------------


def test_split_results_respects_quotes_and_comments() -> None:
    value = 'mx.example (a; b); dkim=pass (good; (nested;) key) header.d=x;\r\n\t spf=pass; x="a;b"'
    assert split_results(value) == [
        "mx.example (a; b)",
        "dkim=pass (good; (nested;) key) header.d=x",
        "spf=pass",
        'x="a;b"',
    ]


@pytest.mark.parametrize(
    ("aar", "expected"),
    [
        ("lists.example.org; dmarc=pass header.from=a.example", True),
        ("lists.example.org; spf=pass; DMARC = Pass (p=reject)", True),
        ("lists.example.org; dmarc=fail (p=reject; dmarc=pass)", False),
        ("lists.example.org; dmarc=passing", False),
        ("dmarc=pass; spf=pass", False),  # the first part is the authserv-id
    ],
)
def test_records_pass(aar: str, expected: bool) -> None:
    assert records_pass(aar, "dmarc") is expected


def test_the_key_record_is_the_one_with_a_public_key() -> None:
    assert pick_key_record((b"google-site-verification=x", b"v=DKIM1; p=abc")) == b"v=DKIM1; p=abc"
    assert pick_key_record((b"v=DKIM1; p=",)) == b"v=DKIM1; p="
    assert pick_key_record(()) is None


# --- our fast canonicalization equals dkimpy's ----------------------------------------------


def _texts(*pieces: bytes) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(pieces), max_size=40).map(b"".join)


BODY_PIECES = (b"a", b"Z", b" ", b"  ", b"\t", b"\r\n", b"\r", b"\n", b".")
VALUE_PIECES = (b" ", b"\t", b"\r\n", b"\r\n ", b"\r\n\t", b"\n", b"\r", b"b", b"bh", b"=",
                b";", b"i=1", b"aB3+/", b"==", b"h=from:to", b":")


@given(_texts(*BODY_PIECES))
def test_relaxed_body_equals_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


@given(_texts(b"Subject", b"X-A", b" ", b"\t"), _texts(*VALUE_PIECES))
def test_relaxed_header_equals_dkimpy(name: bytes, value: bytes) -> None:
    field = (name or b"X", value + b"\r\n")
    assert [relaxed_header(field)] == Relaxed.canonicalize_headers([field])


TAG_PIECES = (b"; b=", b" b =", b"\r\n\tb=", b";b=", b"bh=", b"aB3+/", b"==", b" ", b"\t",
              b"\r\n", b"\r\n ", b"\n", b";", b" t=1", b"x", b"b=")


@settings(max_examples=300)
@given(_texts(*TAG_PIECES))
def test_strip_b_equals_dkimpy(value: bytes) -> None:
    assert strip_b(value) == dkim.RE_BTAG.sub(b"\\1", value)


@given(st.lists(st.sampled_from(["a", "dkim=pass", ";", " ", "\t", "\r\n", "\\", ")", "x=y",
                                 "é", "\x0b", "(", '"']), max_size=20).map("".join))
def test_split_results_fast_path_splits_as_the_character_reader(value: str) -> None:
    assert split_results(value) == _split_results_slowly(value)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(st.sampled_from([b"From", b"from ", b"To", b"TO\t", b"Subject", b"X"]),
                       _texts(b"v", b" ", b"\t", b"\r\n ")), max_size=8),
    st.lists(st.sampled_from([b"from", b"to", b"subject", b"x", b"cc"]), max_size=8),
    st.booleans(),
)
def test_message_headers_are_selected_as_dkimpy_selects_canonical_ones(
    fields: list[tuple[bytes, bytes]], include: list[bytes], relaxed: bool
) -> None:
    headers = [(name, b" " + value + b"\r\n") for name, value in fields]
    verifier = ChainVerifier(headers, b"", {}, KeyCache(), NOW, 1024)
    canonical = [relaxed_header(h) for h in headers] if relaxed else headers
    expected = dkim.select_headers(canonical, include)
    assert verifier._message_headers(include, relaxed) == expected
    assert verifier._message_headers(include, relaxed) == expected  # from what it kept
