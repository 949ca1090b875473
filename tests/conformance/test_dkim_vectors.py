"""DKIM conformance: RFC 8463 and RFC 6376 vectors, mail-auth's messages, dkimpy's data, and
messages signed by dkimpy in many canonicalization combinations (our verdict must agree)."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from pathlib import Path
from typing import Any

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailward import dkim_verify as dv
from mailward.checks.base import CheckContext
from mailward.checks.dkim import DkimCheck
from mailward.config import Config, from_dict
from mailward.dns import ZoneResolver
from mailward.message import parse_headers
from mailward.model import Connection, Envelope, Finding, Message, Transaction
from tests.checks.test_dkim import WEAK_PEM
from tests.conftest import CONFORMANCE

VECTORS = CONFORMANCE / "dkim-test-vectors"
RFC8463 = VECTORS / "rfc8463"
RFC6376 = VECTORS / "rfc6376"
DKIMPY = VECTORS / "dkimpy-1.1.8" / "data"
MAIL_AUTH = CONFORMANCE / "mail-auth-rs-resources" / "resources" / "dkim"
MAIL_AUTH_NOW = 1667843664  # the verification time mail-auth's own test uses


def evaluate(
    raw: bytes, zones: dict[str, Any], now: float, config: Config | None = None
) -> list[Finding]:
    config = config or Config()
    tx = Transaction(Connection(), Envelope(), Message(raw))
    ctx = CheckContext(ZoneResolver(zones), config, {}, now)
    return asyncio.run(DkimCheck(config).run(tx, ctx))


def outcomes(findings: list[Finding]) -> list[tuple[str, str, str]]:
    """(selector, result, reason) of each signature, in header order."""
    return [(f.prop("header.s") or "", str(f.result), f.reason) for f in findings
            if f.method_result]


def record(path: Path) -> str:
    return path.read_text().strip()


# --- RFC 8463 Appendix A: both signatures pass, tampered copies fail --------------------------

RFC8463_ZONES = {
    "brisbane._domainkey.football.example.com": [
        {"TXT": record(RFC8463 / "brisbane._domainkey.football.example.com.txt")}
    ],
    "test._domainkey.football.example.com": [
        {"TXT": record(RFC8463 / "test._domainkey.football.example.com.txt")}
    ],
}
RFC8463_NOW = 1527915362 + 60
_BRISBANE, _TEST = RFC8463_ZONES.keys()
SWAPPED = {_BRISBANE: RFC8463_ZONES[_TEST], _TEST: RFC8463_ZONES[_BRISBANE]}


def _both(result: str, reason: str = "") -> list[tuple[str, str, str]]:
    return [("brisbane", result, reason), ("test", result, reason)]


@pytest.mark.conformance("dkim-rfc8463")
@pytest.mark.parametrize(
    ("change", "zones", "expected"),
    [
        pytest.param(None, RFC8463_ZONES, _both("pass"), id="both-signatures-pass"),
        pytest.param((b"hungry", b"thirsty"), RFC8463_ZONES, _both("fail", "body hash mismatch"),
                     id="tampered-body"),
        pytest.param((b"Is dinner ready?", b"Is lunch ready?"), RFC8463_ZONES,
                     _both("fail", "signature verification failed"), id="tampered-subject"),
        pytest.param((b"From: Joe", b"From: boss@football.example.com\r\nFrom: Joe"), RFC8463_ZONES,
                     _both("fail", "signature verification failed"), id="extra-from-on-top"),
        pytest.param((b"Message-ID", b"X-Mailer: relay\r\nMessage-ID"), RFC8463_ZONES,
                     _both("pass"), id="unsigned-header-added"),
        pytest.param((b"Joe.\r\n", b"Joe.\r\n\r\n\r\n"), RFC8463_ZONES, _both("pass"),
                     id="trailing-blank-lines-ignored"),
        pytest.param(None, SWAPPED, _both("permerror", "key type mismatch"), id="keys-swapped"),
    ],
)
def test_rfc8463(change: tuple[bytes, bytes] | None, zones: dict[str, Any],
                 expected: list[tuple[str, str, str]]) -> None:
    raw = (RFC8463 / "rfc8463-appendixA-signed.eml").read_bytes().replace(b"\r\n", b"\n")
    raw = raw.replace(b"\n", b"\r\n")
    if change is not None:
        assert change[0] in raw
        raw = raw.replace(*change)
    assert outcomes(evaluate(raw, zones, RFC8463_NOW)) == expected


# --- RFC 6376: Appendix A.2 (does not verify), empty-body hashes of §3.4.3/§3.4.4 -------------

A2_KEY = {"brisbane._domainkey.example.com": [
    {"TXT": record(RFC6376 / "appendixC-brisbane._domainkey.txt")}
]}


@pytest.mark.conformance("dkim-rfc6376")
@pytest.mark.parametrize(
    ("zones", "expected"),
    [
        pytest.param(A2_KEY, ("brisbane", "fail", "body hash mismatch"), id="appendix-a2-fails"),
        pytest.param({}, ("brisbane", "permerror", "no key for signature"),
                     id="appendix-a2-without-key"),
    ],
)
def test_rfc6376_appendix_a2(zones: dict[str, Any], expected: tuple[str, str, str]) -> None:
    raw = (RFC6376 / "appendixA2-signed.eml").read_bytes()
    assert outcomes(evaluate(raw, zones, 1_700_000_000)) == [expected]


def _empty_body_hashes() -> list[Any]:
    text = (RFC6376 / "rfc6376.txt").read_text()
    params = []
    for section, relaxed in (("3.4.3.", False), ("3.4.4.", True)):
        start = text.index(f"\n{section}  The")
        chunk = text[start : text.index("\n3.4.", start + 10)]
        sha1, sha256 = re.findall(r"\n\s+([A-Za-z0-9+/]{27,43}=)\n", chunk)
        name = "relaxed" if relaxed else "simple"
        params.append(pytest.param(relaxed, "sha1", sha1, id=f"{name}-empty-body-sha1"))
        params.append(pytest.param(relaxed, "sha256", sha256, id=f"{name}-empty-body-sha256"))
    return params


@pytest.mark.conformance("dkim-rfc6376")
@pytest.mark.parametrize(("relaxed", "hash_name", "expected"), _empty_body_hashes())
def test_rfc6376_empty_body_hash(relaxed: bool, hash_name: str, expected: str) -> None:
    view = dv.MessageView([], b"")
    assert base64.b64encode(view.body_hash(relaxed, hash_name, None)).decode() == expected


@pytest.mark.conformance("dkim-rfc6376")
def test_rfc6376_appendix_c_key_record() -> None:
    key = dv.parse_key_record(record(RFC6376 / "appendixC-brisbane._domainkey.txt").encode())
    assert (key.key_type, key.bits, key.email) == ("rsa", 1024, True)


# --- mail-auth (Rust) resources/dkim: TXT records, a blank line, the message -------------------


def _mail_auth_case(path: Path) -> tuple[bytes, dict[str, Any], float]:
    records, _, message = path.read_bytes().partition(b"\n\n")
    zones: dict[str, Any] = {}
    for line in records.decode().splitlines():
        name, _, value = line.partition(" ")
        zones.setdefault(name, []).append({"TXT": value})
    # mail-auth verifies at a fixed time; some signatures were made later than it (t=).
    signatures = parse_headers(message).get_all("DKIM-Signature")
    stamps = [int(t) for f in signatures for t in re.findall(rb"[;\s]t=(\d+)", f.raw)]
    return message, zones, max([MAIL_AUTH_NOW, *stamps])


MAIL_AUTH_FILES = sorted(MAIL_AUTH.glob("*.txt"))


@pytest.mark.conformance("dkim-mail-auth-rs")
@pytest.mark.parametrize("path", MAIL_AUTH_FILES, ids=[p.stem for p in MAIL_AUTH_FILES])
def test_mail_auth_messages_pass(path: Path) -> None:
    # mail-auth's own test requires the last signature to pass; every one of them does.
    message, zones, now = _mail_auth_case(path)
    results = outcomes(evaluate(message, zones, now))
    assert results and all(r[1:] == ("pass", "") for r in results), results


@pytest.mark.conformance("dkim-mail-auth-rs")
@pytest.mark.parametrize("path", MAIL_AUTH_FILES,
                         ids=[p.stem + "-tampered" for p in MAIL_AUTH_FILES])
def test_mail_auth_messages_tampered_fail(path: Path) -> None:
    message, zones, now = _mail_auth_case(path)
    results = outcomes(evaluate(message + b"\nP.S. one more line\n", zones, now))
    assert results and all(r[1:] == ("fail", "body hash mismatch") for r in results), results


# --- dkimpy 1.1.8 data: signed messages with the DNS records of dkimpy's tests -----------------

GMAIL_2012 = (  # 20120113._domainkey.gmail.com, from dkimpy's test_dkim.py
    "k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1Kd87/UeJjenpabgbFwh+eBCsSTrqmwIYYv"
    "ywlbhbqoo2DymndFkbjOVIPIldNs/m40KF+yzMn1skyoxcTUGCQs8g3FgD2Ap3ZB5DekAo5wMmk4wimDO+U8QzI3"
    "SD07y2+07wlNWwIt8svnxgdxGkVbbhzY8i+RQ9DpSVpPbF7ykQxtKXkv/ahW3KjViiAH+ghvvIhkx4xYSIc9oSwV"
    "mAl5OctMEeWUwg8Istjqz8BZeTWbf41fbNhte7Y+YqZOwq1Sd0DbvYAD9NOZK9vlfuac0598HY+vtSBczUiKERHv"
    "1yRbcaQtZFh5wtiRrN04BLUTD21MycBX5jYchHjPY/wIDAQAB"
)
FOOTBALL = {
    "test._domainkey.football.example.com": [{"TXT": record(DKIMPY / "test.txt")}],
    "brisbane._domainkey.football.example.com":
        RFC8463_ZONES["brisbane._domainkey.football.example.com"],
}
CORRUPT_TEST_KEY = {"test._domainkey.football.example.com": [
    {"TXT": record(DKIMPY / "test.txt").replace("MIGfMA0GCSqGSIb3", "MIGfMA0GCSqGSIb4")}
]}


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize(
    ("name", "zones", "now", "expected"),
    [
        pytest.param("rfc6376.signed.msg", FOOTBALL, RFC8463_NOW,
                     [("brisbane", "pass", ""), ("test", "pass", "")], id="rfc6376.signed"),
        pytest.param("rfc6376.signed.rsa.msg", FOOTBALL, RFC8463_NOW, [("test", "pass", "")],
                     id="rfc6376.signed.rsa"),
        pytest.param("rfc6376.signed.rsa.msg", CORRUPT_TEST_KEY, RFC8463_NOW,
                     [("test", "permerror", "key syntax error")], id="catch-bad-key"),
        pytest.param("rfc6376.signed.no_t.msg", FOOTBALL, RFC8463_NOW,
                     [("test", "fail", "signature verification failed")], id="no-t-altered"),
        pytest.param("test2.message",
                     {"20120113._domainkey.gmail.com": [{"TXT": GMAIL_2012}]}, 1_700_000_000,
                     [("20120113", "pass", "")], id="degenerate-folding"),
        pytest.param("test.message.baddomain", {}, 1_600_000_000,
                     [("test", "permerror", "invalid domain")], id="invalid-domain"),
        pytest.param("ed25519test2.msg",
                     {"sed._domainkey.test.ex": [{"TXT": record(DKIMPY / "eximtest.dns")}]},
                     1_700_000_000, [("sed", "pass", "")], id="exim-ed25519"),
    ],
)
def test_dkimpy_signed_messages(name: str, zones: dict[str, Any], now: float,
                                expected: list[tuple[str, str, str]]) -> None:
    assert outcomes(evaluate((DKIMPY / name).read_bytes(), zones, now)) == expected


CANONS = [(b"simple", b"simple"), (b"relaxed", b"relaxed"), (b"relaxed", b"simple"),
          (b"simple", b"relaxed")]
CANON_IDS = [b"/".join(c).decode() for c in CANONS]
KEY_PAIRS = [  # (private key file, TXT record file), as in dkimpy's tests
    ("test.private", "test.txt"),
    ("test.private", "test2.txt"),  # no k=: rsa by default
    ("1024_testkey.key", "1024_testkey_wo_markers.pub.txt"),
    ("1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt"),  # RSAPublicKey, not SPKI
    ("2048_testkey.key", "2048_testkey_wo_markers.pub.txt"),
    ("2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt"),
    ("2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt"),
    ("ed25519test.key", "ed25519test.dns"),
]


def _dkimpy_verdict(raw: bytes, txt: bytes) -> bool:
    return bool(dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: txt))


def _sign_with_data_key(message: bytes, key_file: str, **kwargs: Any) -> bytes:
    algorithm = b"ed25519-sha256" if key_file.startswith("ed25519") else b"rsa-sha256"
    return dkimpy.sign(message, b"test", b"example.com", (DKIMPY / key_file).read_bytes(),
                       signature_algorithm=algorithm, **kwargs)


def _test_zone(txt_file: str) -> dict[str, Any]:
    return {"test._domainkey.example.com": [{"TXT": record(DKIMPY / txt_file)}]}


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize("canon", CANONS, ids=CANON_IDS)
@pytest.mark.parametrize(("key_file", "txt_file"), KEY_PAIRS,
                         ids=[f"{k}+{t}" for k, t in KEY_PAIRS])
def test_dkimpy_data_keys_verify(key_file: str, txt_file: str, canon: tuple[bytes, bytes]) -> None:
    message = (DKIMPY / "test.message").read_bytes()
    raw = _sign_with_data_key(message, key_file, canonicalize=canon) + message
    assert _dkimpy_verdict(raw, record(DKIMPY / txt_file).encode())
    assert outcomes(evaluate(raw, _test_zone(txt_file), time.time())) == [("test", "pass", "")]


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize(
    ("txt_file", "reason"),
    [
        pytest.param("badversion.txt", "key syntax error", id="bad-version"),
        pytest.param("badk.txt", "unknown key type", id="unknown-k"),
        pytest.param("test_tlsrpt.txt", "key not for email", id="tlsrpt-service-only"),
        pytest.param("test_bad.txt", "key syntax error", id="truncated-key"),
    ],
)
def test_dkimpy_unusable_key_records(txt_file: str, reason: str) -> None:
    message = (DKIMPY / "test.message").read_bytes()
    raw = _sign_with_data_key(message, "test.private") + message
    assert not _dkimpy_verdict(raw, record(DKIMPY / txt_file).encode())
    assert outcomes(evaluate(raw, _test_zone(txt_file), time.time())) == [
        ("test", "permerror", reason)
    ]


def _multiple_from(message: bytes, where: str) -> bytes:
    head, _, body = message.partition(b"\n\n")
    extra = b'From: "Resident Evil" <sales@spammer.com>'
    if where == "x-foo":
        return head + b"\nX-Foo: bar\n\n" + body
    if where == "end":
        return head + b"\n" + extra + b"\n\n" + body
    return extra + b"\n" + head + b"\n\n" + body


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize("canon", CANONS, ids=CANON_IDS)
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        pytest.param("altered-body", ("fail", "body hash mismatch"), id="altered-body"),
        pytest.param("l-then-added-text", ("pass", ""), id="l-then-added-text"),
        pytest.param("extra-from-at-end", ("fail", "signature verification failed"),
                     id="extra-from-at-end"),
        pytest.param("extra-from-in-front", ("fail", "signature verification failed"),
                     id="extra-from-in-front"),
        pytest.param("unknown-header-added", ("pass", ""), id="unknown-header-added"),
        pytest.param("w1258-header", ("pass", ""), id="non-utf8-header"),
    ],
)
def test_dkimpy_scenarios(scenario: str, expected: tuple[str, str],
                          canon: tuple[bytes, bytes]) -> None:
    source = "rfc6376.w1258.msg" if scenario == "w1258-header" else "test.message"
    message = (DKIMPY / source).read_bytes()
    signature = _sign_with_data_key(message, "test.private", canonicalize=canon,
                                    length=scenario.startswith("l-"))
    raw = {
        "altered-body": signature + message + b"foo",
        "l-then-added-text": signature + message + b"added more text\n",
        "extra-from-at-end": signature + _multiple_from(message, "end"),
        "extra-from-in-front": signature + _multiple_from(message, "front"),
        "unknown-header-added": signature + _multiple_from(message, "x-foo"),
    }.get(scenario, signature + message)
    assert _dkimpy_verdict(raw, record(DKIMPY / "test.txt").encode()) == (expected[0] == "pass")
    findings = evaluate(raw, _test_zone("test.txt"), time.time())
    assert outcomes(findings) == [("test", *expected)]
    unsigned = "DKIM_LENGTH_UNSIGNED_CONTENT" in {f.symbol for f in findings}
    assert unsigned == (scenario == "l-then-added-text")


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize("canon", CANONS, ids=CANON_IDS)
def test_dkimpy_extra_headers_mbox(canon: tuple[bytes, bytes]) -> None:
    # dkimpy bug 737311: repeated headers above From, all of them signed.
    message = (DKIMPY / "message.mbox").read_bytes()
    signer = dkimpy.DKIM(message)
    signer.should_not_sign.remove(b"received")
    signature = signer.sign(b"test", b"example.com", (DKIMPY / "test.private").read_bytes(),
                            include_headers=signer.all_sign_headers(), canonicalize=canon)
    raw = signature + message
    assert _dkimpy_verdict(raw, record(DKIMPY / "test.txt").encode())
    # The mbox already carries kitterman.com's signature, whose key we do not have.
    assert outcomes(evaluate(raw, _test_zone("test.txt"), time.time())) == [
        ("test", "pass", ""), ("2007-00", "permerror", "no key for signature"),
    ]


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize("header_canon", [b"relaxed", b"simple"])
@pytest.mark.parametrize(("min_bits", "expected"), [(512, ("pass", "")),
                                                     (1024, ("policy", "key too short"))])
def test_dkimpy_refolded_signature_header(header_canon: bytes, min_bits: int,
                                          expected: tuple[str, str]) -> None:
    # dkimpy bugs 587783/939128: FWS added to b= after signing (even a tab) must be ignored.
    message = b"From: mbp@canonical.com\r\nTo: scottk@example.com\r\nSubject: this is my\r\n" \
              b"    test message\r\n"
    header = dkimpy.fold(dkimpy.sign(message, b"example", b"canonical.com", WEAK_PEM,
                                     canonicalize=(header_canon, b"relaxed")))
    pos = header.rindex(b"\r\n ")
    header = header[:pos] + b"\r\n\t" + header[pos + 3:]
    key = serialization.load_pem_private_key(WEAK_PEM, None).public_key()
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    zones = {"example._domainkey.canonical.com": [
        {"TXT": "k=rsa; s=email; p=" + base64.b64encode(spki).decode()}
    ]}
    config = from_dict({"dkim": {"min_rsa_bits": min_bits}})
    assert outcomes(evaluate(header + message, zones, time.time(), config)) == [
        ("example", *expected)
    ]


# --- our verdict agrees with dkimpy's on messages dkimpy signs ---------------------------------

BASE_HEADERS = (
    b"Received: from a.example.com by b.example.com; Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Received: from c.example.com by a.example.com; Mon, 01 Jan 2024 09:59:00 +0000\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: Budget review\r\n"
    b"Date: Mon, 01 Jan 2024 09:58:00 +0000\r\n"
)
BODY = b"Hi Bob,\r\n\r\nthe budget is attached.\r\n\r\nAlice\r\n"
MESSAGES = {
    "plain": BASE_HEADERS + b"\r\n" + BODY,
    "folded-headers": BASE_HEADERS.replace(
        b"Subject: Budget review", b"Subject: Budget\r\n\treview\r\n  for  Q3\r\n\t\tand Q4"
    ) + b"\r\n" + BODY,
    "trailing-blank-lines": BASE_HEADERS + b"\r\n" + BODY + b"\r\n\r\n\r\n",
    "whitespace-oddities": BASE_HEADERS.replace(b"To: bob@example.org", b"To:bob@example.org \t")
    + b"\r\n" + b"  leading\r\n\t\r\ntrailing \t \r\nin  the \t middle\r\n \r\n",
    "empty-body": BASE_HEADERS + b"\r\n",
    "no-final-newline": BASE_HEADERS + b"\r\n" + BODY + b"no newline at the end",
    "lf-line-endings": (BASE_HEADERS + b"\r\n" + BODY).replace(b"\r\n", b"\n"),
}
MUTATIONS = {
    "none": lambda m: m,
    "whitespace-changed": lambda m: m.replace(b"the budget", b"the   budget\t")
    .replace(b"Date: ", b"Date:    "),
    "appended": lambda m: m + b"\r\nUnsigned postscript\r\n",
    "header-refolded": lambda m: m.replace(b"To: bob", b"To:\r\n bob").replace(b"To:bob",
                                                                                b"To:\r\n bob"),
    "blank-lines-added": lambda m: m + b"\r\n\r\n",
}
SIGNED_HEADERS = [b"from", b"to", b"subject", b"date", b"received", b"received", b"received"]


@pytest.fixture(scope="module")
def fresh_keys() -> dict[str, tuple[bytes, str]]:
    """A new RSA-2048 and Ed25519 key: (dkimpy private key, TXT record) by algorithm."""
    rsa_key = rsa.generate_private_key(65537, 2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    raw_pub = ed_key.public_key().public_bytes(serialization.Encoding.Raw,
                                               serialization.PublicFormat.Raw)
    raw_priv = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return {
        "rsa-sha256": (
            rsa_key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()),
            "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode(),
        ),
        "ed25519-sha256": (
            base64.b64encode(raw_priv),
            "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw_pub).decode(),
        ),
    }


def _agreement_cases() -> list[Any]:
    cases = []
    for variant in MESSAGES:
        for canon, canon_id in zip(CANONS, CANON_IDS, strict=True):
            for algorithm in ("rsa-sha256", "ed25519-sha256"):
                for mutation in MUTATIONS:
                    cases.append(pytest.param(variant, canon, algorithm, False, mutation,
                                              id=f"{variant}-{canon_id}-{algorithm}-{mutation}"))
            for mutation in ("none", "appended"):
                cases.append(pytest.param(variant, canon, "rsa-sha256", True, mutation,
                                          id=f"{variant}-{canon_id}-rsa-sha256-l=-{mutation}"))
    return cases


@pytest.mark.conformance("dkim-dkimpy")
@pytest.mark.parametrize(("variant", "canon", "algorithm", "length", "mutation"),
                         _agreement_cases())
def test_agrees_with_dkimpy(
    fresh_keys: dict[str, tuple[bytes, str]], variant: str, canon: tuple[bytes, bytes],
    algorithm: str, length: bool, mutation: str,
) -> None:
    private, txt = fresh_keys[algorithm]
    message = MESSAGES[variant]
    signer = dkimpy.DKIM(message, signature_algorithm=algorithm.encode())
    signer.should_not_sign.discard(b"received")
    signature = signer.sign(b"sel", b"example.com", private, canonicalize=canon, length=length,
                            include_headers=SIGNED_HEADERS)
    raw = MUTATIONS[mutation](signature + message)
    theirs = _dkimpy_verdict(raw, txt.encode())
    zones = {"sel._domainkey.example.com": [{"TXT": txt}]}
    ours = outcomes(evaluate(raw, zones, time.time()))
    assert len(ours) == 1
    assert (ours[0][1] == "pass") == theirs, ours
    if mutation == "none":
        assert theirs, "an unmodified signed message must verify"
