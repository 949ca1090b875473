"""Tests of the DKIM verification core (mailward.dkim_verify) and the DKIM check, CLI included."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailward import dkim_verify as dv
from mailward.checks.base import CheckContext
from mailward.checks.dkim import DkimCheck
from mailward.config import Config, from_dict
from mailward.dns import Lookup, Resolver, ZoneResolver
from mailward.message import parse_headers
from mailward.model import Connection, Envelope, Finding, Message, Result, Transaction
from tests.helpers import check_json, symbols

NOW = 1_700_000_000
DKIM_ONLY = '[checks]\nenabled = ["dkim"]\n'
MESSAGE = (
    b"Received: from mail.example.com by mx.ourcorp.example; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: staff@ourcorp.example\r\n"
    b"Subject: Quarterly  report\r\n"
    b"\tfor the board\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <q3@example.com>\r\n"
    b"\r\n"
    b"Hello,\r\n"
    b"\r\n"
    b"please find the  numbers below. \r\n"
    b"\tRevenue: 12\r\n"
    b"\r\n"
    b"\r\n"
)
# dkimpy's 512-bit test key (test_dkim.py), the only way to get a key this weak: cryptography
# refuses to generate one.
WEAK_PEM = b"""-----BEGIN RSA PRIVATE KEY-----
MIIBOwIBAAJBANmBe10IgY+u7h3enWTukkqtUD5PR52Tb/mPfjC0QJTocVBq6Za/
PlzfV+Py92VaCak19F4WrbVTK5Gg5tW220MCAwEAAQJAYFUKsD+uMlcFu1D3YNaR
EGYGXjJ6w32jYGJ/P072M3yWOq2S1dvDthI3nRT8MFjZ1wHDAYHrSpfDNJ3v2fvZ
cQIhAPgRPmVYn+TGd59asiqG1SZqh+p+CRYHW7B8BsicG5t3AiEA4HYNOohlgWan
8tKgqLJgUdPFbaHZO1nDyBgvV8hvWZUCIQDDdCq6hYKuKeYUy8w3j7cgJq3ih922
2qNWwdJCfCWQbwIgTY0cBvQnNe0067WQIpj2pG7pkHZR6qqZ9SE+AjNTHX0CIQCI
Mgq55Y9MCq5wqzy141rnxrJxTwK9ABo3IAFMWEov3g==
-----END RSA PRIVATE KEY-----
"""

SignKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


# --- keys, records and a signer for cases dkimpy refuses to produce ---------------------------


@pytest.fixture(scope="module")
def rsa2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def rsa1024() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def weak_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(WEAK_PEM, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_record(key: SignKey, extra: str = "") -> str:
    """The TXT record publishing the public half of ``key``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return f"v=DKIM1; k=ed25519;{extra} p={b64(raw)}"
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa;{extra} p={b64(der)}"


def dkimpy_key(key: SignKey) -> bytes:
    """The private key in the form dkimpy's sign() takes."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return base64.b64encode(raw)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def sign(
    message: bytes,
    key: SignKey,
    *,
    d: str = "example.com",
    s: str = "sel",
    headers: tuple[str, ...] = ("from", "to", "subject", "date"),
    canon: str = "relaxed/relaxed",
    algo: str | None = None,
    extra: str = "",
    length: int | None = None,
) -> bytes:
    """Prepend a DKIM-Signature with exactly the tags asked for (dkimpy refuses h= without
    From and has no x=). Cross-checked against dkimpy's verify in test_signer_agrees_with_dkimpy.
    """
    if algo is None:
        algo = "ed25519-sha256" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa-sha256"
    hash_name = algo.rpartition("-")[2]
    parsed = parse_headers(message)
    header_canon, body_canon = canon.split("/")
    body = dv.canonical_body(parsed.body, body_canon == "relaxed")
    if length is not None:
        body = body[:length]
    body_hash = b64(hashlib.new(hash_name, body).digest())
    l_tag = f" l={length};" if length is not None else ""
    field = (
        f"DKIM-Signature: v=1; a={algo}; c={canon}; d={d}; s={s};{l_tag}{extra}\r\n"
        f" h={':'.join(headers)}; bh={body_hash}; b="
    ).encode()
    canonicalize = dv.relaxed_header if header_canon == "relaxed" else dv.simple_header
    view = dv.MessageView(parsed.fields, parsed.body)
    selected = view.select(headers, exclude=parse_headers(field + b"\r\n\r\n").fields[0])
    data = b"".join(canonicalize(f.raw) for f in selected) + canonicalize(field)[:-2]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(hashlib.sha256(data).digest())
    else:
        digest = hashes.SHA1() if hash_name == "sha1" else hashes.SHA256()
        signature = key.sign(data, padding.PKCS1v15(), digest)
    value = b64(signature)
    folded = "\r\n ".join(value[i : i + 64] for i in range(0, len(value), 64))
    return field + folded.encode() + b"\r\n" + message


def zone(key: SignKey, name: str = "sel._domainkey.example.com") -> dict[str, Any]:
    """Zone data publishing ``key`` at ``name``."""
    return {name: [{"TXT": key_record(key)}]}


def run_check(
    raw: bytes, zones: dict[str, Any], now: float = NOW, config: Config | None = None,
    check: DkimCheck | None = None, resolver: Resolver | None = None,
) -> list[Finding]:
    config = config or Config()
    check = check or DkimCheck(config)
    resolver = resolver or ZoneResolver(zones)
    tx = Transaction(Connection(), Envelope(), Message(raw))
    ctx = CheckContext(resolver, config, {}, now)
    return asyncio.run(check.run(tx, ctx))


def methods(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.method_result]


def only_result(findings: list[Finding]) -> Finding:
    (result,) = methods(findings)
    return result


def dkim_config(**values: Any) -> Config:
    return from_dict({"dkim": values})


# --- tag lists -------------------------------------------------------------------------------


def test_tag_list_strips_folding_whitespace_and_keeps_inner_whitespace() -> None:
    tags = dv.parse_tag_list(b" v=1;\r\n\ta = rsa-sha256 ; n=two  words ;z=;")
    assert tags == {"v": b"1", "a": b"rsa-sha256", "n": b"two  words", "z": b""}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"v=1; v=1", "duplicate tag"),
        (b"v=1; ; a=rsa-sha256", "tag syntax error"),
        (b"v=1; 1a=x", "tag syntax error"),
        (b"v=1; novalue", "tag syntax error"),
        (b"", "tag syntax error"),
    ],
)
def test_tag_list_errors_are_permerrors(text: bytes, reason: str) -> None:
    with pytest.raises(dv.Problem) as exc:
        dv.parse_tag_list(text)
    assert (exc.value.result, exc.value.reason) == (Result.PERMERROR, reason)


# --- canonicalization (RFC 6376 §3.4.5 examples) ---------------------------------------------

RFC_HEADERS = [b"A: X", b"B : Y\t\r\n\tZ  "]
RFC_BODY = b" C \r\nD \t E\r\n\r\n\r\n"


def test_rfc6376_relaxed_header_example() -> None:
    assert [dv.relaxed_header(h) for h in RFC_HEADERS] == [b"a:X\r\n", b"b:Y Z\r\n"]


def test_rfc6376_simple_header_example_is_unchanged() -> None:
    assert [dv.simple_header(h) for h in RFC_HEADERS] == [h + b"\r\n" for h in RFC_HEADERS]


def test_rfc6376_relaxed_body_example() -> None:
    assert dv.canonical_body(RFC_BODY, relaxed=True) == b" C\r\nD E\r\n"


def test_rfc6376_simple_body_example() -> None:
    assert dv.canonical_body(RFC_BODY, relaxed=False) == b" C \r\nD \t E\r\n"


@pytest.mark.parametrize(
    ("body", "simple", "relaxed"),
    [
        (b"", b"\r\n", b""),
        (b"\r\n\r\n", b"\r\n", b""),
        (b" \r\n\t\r\n", b" \r\n\t\r\n", b""),
        (b"abc", b"abc\r\n", b"abc\r\n"),
        (b"abc  ", b"abc  \r\n", b"abc \r\n"),
        (b"a\r\n\r\nb \t \r\n\r\n", b"a\r\n\r\nb \t \r\n", b"a\r\n\r\nb\r\n"),
        (b"x\ry \r\n", b"x\ry \r\n", b"x\ry\r\n"),
    ],
)
def test_body_canonicalization_edges(body: bytes, simple: bytes, relaxed: bytes) -> None:
    assert dv.canonical_body(body, relaxed=False) == simple
    assert dv.canonical_body(body, relaxed=True) == relaxed


@pytest.mark.parametrize(
    ("raw", "stripped"),
    [
        (b"DKIM-Signature: b=abc;h=From", b"DKIM-Signature: b=;h=From"),
        (b"DKIM-Signature: bh=B64b=;h=From;b=abc", b"DKIM-Signature: bh=B64b=;h=From;b="),
        (b"DKIM-Signature: h=From; b = ab\r\n cd\r\n ; v=1", b"DKIM-Signature: h=From; b =; v=1"),
        (b"DKIM-Signature: v=1;\r\n\tb\r\n =abc;v=1", b"DKIM-Signature: v=1;\r\n\tb\r\n =;v=1"),
    ],
)
def test_signature_value_is_removed_with_its_whitespace(raw: bytes, stripped: bytes) -> None:
    assert dv.strip_signature_value(raw) == stripped


def test_headers_are_selected_bottom_up_and_missing_instances_are_null() -> None:
    parsed = parse_headers(
        b"X: 1\r\nY: a\r\nX: 2\r\nDKIM-Signature: me\r\nDKIM-Signature: other\r\n\r\n"
    )
    me = parsed.fields[3]
    view = dv.MessageView(parsed.fields, parsed.body)
    picked = view.select(("x", "y", "x", "x", "dkim-signature", "dkim-signature"), exclude=me)
    assert [f.raw for f in picked] == [b"X: 2", b"Y: a", b"X: 1", b"DKIM-Signature: other"]


# --- the fast paths read exactly as the plain code ------------------------------------------

_TAG_BYTES = st.sampled_from([b"a", b"b", b"h", b"v", b"x1", b"_", b"1", b"=", b";", b" ", b"\t",
                              b"\r\n", b"\r", b"-", b"\xff", b"bh", b"\x0b", b"a=1;",
                              b" b = x;"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_TAG_BYTES, max_size=24).map(b"".join))
def test_tag_list_fast_path_reads_as_the_spec_by_spec_parser(data: bytes) -> None:
    try:
        expected: Any = dv._parse_tag_list_slowly(data)
    except dv.Problem as exc:
        expected = (exc.result, exc.reason, exc.detail)
    try:
        found: Any = dv.parse_tag_list(data)
    except dv.Problem as exc:
        found = (exc.result, exc.reason, exc.detail)
    assert found == expected


def _relaxed_header_plainly(raw: bytes) -> bytes:
    """RFC 6376 §3.4.2 step by step: unfold, WSP runs to one SP, strip, lower-case name."""
    name, _, value = raw.partition(b":")
    value = value.replace(b"\r\n", b"").replace(b"\t", b" ")
    while b"  " in value:
        value = value.replace(b"  ", b" ")
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" \t") + b"\r\n"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"X", b"y", b":", b" ", b"\t", b"\r\n", b"\r", b"\n", b"\x0b",
                                 b"\x0c", b"\r\n "]), max_size=20).map(b"".join))
def test_relaxed_header_equals_the_rfc_steps(raw: bytes) -> None:
    assert dv.relaxed_header(raw) == _relaxed_header_plainly(raw)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"a", b" ", b"\t", b"\r\n", b"\r", b"  "]), max_size=16)
       .map(b"".join), st.integers(0, 4), st.booleans())
def test_body_canonicalization_in_place_equals_the_copying_one(
    body: bytes, start: int, relaxed: bool
) -> None:
    data = b"H: v\r\n"[:start] + body
    assert bytes(dv.canonical_body_at(data, start, relaxed)) == dv.canonical_body(body, relaxed)


@pytest.mark.parametrize(
    "value",
    [b"from:to", b"From : To:\r\n\tSubject", b"from", b"from::to", b"fr om:to", b"from:",
     b"from:\xff", b" from"],
)
def test_signed_header_list_fast_path_agrees(value: bytes) -> None:
    def plainly() -> Any:
        names = [n.lower() for n in dv._split_list(value)]
        if not names or any(not dv._FIELD_NAME.match(n) for n in names):
            return "bad h= list"
        return tuple(names)

    try:
        found: Any = dv._signed_headers(value)
    except dv.Problem as exc:
        found = exc.reason
    assert found == plainly()


# --- signature tags (RFC 6376 §6.1.1) ---------------------------------------------------------

GOOD_TAGS = {
    "v": b"1", "a": b"rsa-sha256", "d": b"example.com", "s": b"sel", "h": b"from:to",
    "bh": b"AAAA", "b": b"AAAA",
}


def test_valid_signature_tags_parse() -> None:
    sig = dv.parse_signature({**GOOD_TAGS, "i": b"user=40x@Mail.Example.com", "l": b"10"}, NOW)
    assert (sig.domain, sig.selector, sig.key_name) == ("example.com", "sel",
                                                        "sel._domainkey.example.com")
    assert (sig.header_canon, sig.body_canon, sig.length) == ("simple", "simple", 10)
    assert sig.identity == "user@x@Mail.Example.com"
    assert sig.identity_domain == "mail.example.com"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": None}, "missing required tag"),
        ({"bh": None}, "missing required tag"),
        ({"v": b"2"}, "incompatible version"),
        ({"a": b"rsa-md5"}, "unsupported algorithm"),
        ({"c": b"relaxed/fancy"}, "unsupported canonicalization"),
        ({"c": b"simple/simple/simple"}, "unsupported canonicalization"),
        ({"d": b"legitimate.com(.attacker.com"}, "invalid domain"),
        ({"d": b"com"}, "invalid domain"),
        ({"s": b"a b"}, "invalid selector"),
        ({"i": b"joe@example.net"}, "identity not in domain"),
        ({"i": b"joe@badexample.com"}, "identity not in domain"),
        ({"i": b"nobody"}, "invalid identity"),
        ({"h": b"from::to"}, "bad h= list"),
        ({"q": b"http/well-known"}, "unsupported query method"),
        ({"l": b"-5"}, "bad l= value"),
        ({"t": b"soon"}, "bad timestamp"),
        ({"t": str(NOW + 3600).encode()}, "signature in the future"),
        ({"t": b"9" * 13}, "signature in the future"),
        ({"x": str(NOW - 1).encode()}, "signature expired"),
        ({"t": str(NOW - 10).encode(), "x": str(NOW - 10).encode()}, "x= not after t="),
        ({"bh": b"not base64!"}, "bad base64"),
        ({"b": b"QUJ"}, "bad base64"),
        ({"b": b""}, "empty signature"),
    ],
)
def test_invalid_signature_tags_are_permerrors(
    change: dict[str, bytes | None], reason: str
) -> None:
    tags = {k: v for k, v in {**GOOD_TAGS, **change}.items() if v is not None}
    with pytest.raises(dv.Problem) as exc:
        dv.parse_signature(tags, NOW)
    assert (exc.value.result, exc.value.reason) == (Result.PERMERROR, reason)


def test_clock_skew_and_far_expiry_are_tolerated() -> None:
    sig = dv.parse_signature({**GOOD_TAGS, "t": str(NOW + 60).encode(), "x": b"9" * 20}, NOW)
    assert sig.timestamp == NOW + 60 and sig.expiration is None


# --- key records (RFC 6376 §3.6.1) ------------------------------------------------------------


def test_rsa_key_record_in_both_der_forms(rsa1024: rsa.RSAPrivateKey) -> None:
    pkcs1 = rsa1024.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    for record in (key_record(rsa1024), f"p={b64(pkcs1)}"):
        key = dv.parse_key_record(record.encode())
        assert (key.key_type, key.bits, key.email, key.hashes) == ("rsa", 1024, True, None)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"k=rsa; v=DKIM1; p=AAAA", "key syntax error"),
        (b"v=DKIM2; p=AAAA", "key syntax error"),
        (b"v=spf1 -all", "key syntax error"),
        (b"v=DKIM1; k=rsa", "key syntax error"),
        (b"v=DKIM1; k=ed25519-sha256; p=AAAA", "unknown key type"),
        (b"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiG", "key syntax error"),
        (b"v=DKIM1; k=ed25519; p=AAAA", "key syntax error"),
        (b"v=DKIM1; p=!!!", "bad base64"),
    ],
)
def test_unusable_key_records_are_permerrors(record: bytes, reason: str) -> None:
    with pytest.raises(dv.Problem) as exc:
        dv.parse_key_record(record)
    assert (exc.value.result, exc.value.reason) == (Result.PERMERROR, reason)


def test_key_flags_services_and_revocation() -> None:
    key = dv.parse_key_record(b"v=DKIM1; h=sha1 : SHA256; s=tlsrpt:email; t=y:s; p=")
    assert key.key is None and key.hashes == {"sha1", "sha256"}
    assert key.email and key.testing and key.strict_domain


def test_key_cache_parses_each_record_once_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch, rsa1024: rsa.RSAPrivateKey
) -> None:
    calls: list[bytes] = []
    real = dv.parse_key_record

    def counting(record: bytes) -> dv.PublicKey:
        calls.append(record)
        return real(record)

    monkeypatch.setattr(dv, "parse_key_record", counting)
    cache = dv.KeyCache(max_entries=2)
    record = key_record(rsa1024).encode()
    assert cache.get(record) is cache.get(record)
    for bad in (b"p=!!", b"p=!!", b"v=spf1"):
        with pytest.raises(dv.Problem):
            cache.get(bad)
    assert calls == [record, b"p=!!", b"v=spf1"] and len(cache) == 2
    for _ in range(50):  # a cached Problem is raised again and again without growing
        with pytest.raises(dv.Problem) as exc:
            cache.get(b"v=spf1")
    depth, tb = 0, exc.value.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    assert depth < 5


# --- the check, directly (fast) ---------------------------------------------------------------


def test_rsa_and_ed25519_pass_with_properties(
    rsa2048: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    raw = sign(sign(MESSAGE, rsa2048, extra=" i=alice@mail.example.com;"), ed_key, s="ed",
               d="example.net")
    zones = zone(rsa2048) | zone(ed_key, "ed._domainkey.example.net")
    ed, rs = methods(run_check(raw, zones))
    assert (ed.symbol, rs.symbol) == ("DKIM_PASS", "DKIM_PASS")
    assert [k for k, _ in rs.properties] == ["header.d", "header.i", "header.s", "header.a",
                                             "header.b"]
    assert rs.prop("header.i") == "alice@mail.example.com" and rs.prop("header.a") == "rsa-sha256"
    assert ed.prop("header.i") is None and ed.prop("header.d") == "example.net"
    header_b = ed.prop("header.b") or ""
    assert len(header_b) == 8 and b"b=" + header_b.encode() in raw


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda m: m.replace(b"numbers", b"NUMBERS"), "body hash mismatch"),
        (lambda m: m + b"P.S. wire the money\r\n", "body hash mismatch"),
        (lambda m: m.replace(b"Quarterly", b"Urgent"), "signature verification failed"),
        (lambda m: m.replace(b"To: staff", b"From: ceo@example.com\r\nTo: staff"),
         "signature verification failed"),
    ],
)
def test_tampering_fails(rsa2048: rsa.RSAPrivateKey, tamper: Any, reason: str) -> None:
    raw = tamper(sign(MESSAGE, rsa2048, headers=("from", "from", "to", "subject")))
    result = only_result(run_check(raw, zone(rsa2048)))
    assert (result.symbol, result.reason) == ("DKIM_FAIL", reason)
    assert "altered" in result.advice


def test_relaxed_survives_whitespace_and_refolding_simple_does_not(
    rsa2048: rsa.RSAPrivateKey,
) -> None:
    def mangle(m: bytes) -> bytes:
        return m.replace(b"Subject: Quarterly  report\r\n\tfor", b"SUBJECT:Quarterly report for")\
            .replace(b"numbers below.", b"numbers   below.\t")
    relaxed = mangle(sign(MESSAGE, rsa2048, canon="relaxed/relaxed"))
    simple = mangle(sign(MESSAGE, rsa2048, canon="simple/simple"))
    assert only_result(run_check(relaxed, zone(rsa2048))).result is Result.PASS
    assert only_result(run_check(simple, zone(rsa2048))).reason == "body hash mismatch"


def test_unsigned_header_may_be_added(rsa2048: rsa.RSAPrivateKey) -> None:
    raw = b"X-Added: later\r\n" + sign(MESSAGE, rsa2048)
    assert only_result(run_check(raw, zone(rsa2048))).result is Result.PASS


def test_rsa_sha1_verifies_but_is_policy(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024, algo="rsa-sha1")
    result = only_result(run_check(raw, zone(rsa1024)))
    assert (result.symbol, result.reason) == ("DKIM_POLICY", "rsa-sha1 not accepted")
    broken = only_result(run_check(raw.replace(b"Quarterly", b"Monthly"), zone(rsa1024)))
    assert broken.symbol == "DKIM_FAIL"


def test_weak_key_is_policy_unless_configured(weak_key: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, weak_key)
    findings = run_check(raw, zone(weak_key))
    assert only_result(findings).reason == "key too short"
    assert {f.symbol for f in findings} == {"DKIM_POLICY", "DKIM_WEAK_KEY"}
    relaxed = run_check(raw, zone(weak_key), config=dkim_config(min_rsa_bits=512))
    assert [f.symbol for f in relaxed] == ["DKIM_PASS"]


def test_weak_key_that_fails_is_fail(weak_key: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, weak_key).replace(b"numbers", b"figures")
    findings = run_check(raw, zone(weak_key))
    assert {f.symbol for f in findings} == {"DKIM_FAIL", "DKIM_WEAK_KEY"}


@pytest.mark.parametrize(
    ("extra", "sign_kwargs", "reason", "result"),
    [
        (" h=sha1;", {}, "hash not allowed by key", Result.PERMERROR),
        (" s=tlsrpt;", {}, "key not for email", Result.PERMERROR),
        (" t=s;", {"extra": " i=@mail.example.com;"}, "identity subdomain not allowed",
         Result.PERMERROR),
        (" t=s;", {"extra": " i=bob@example.com;"}, "", Result.PASS),
        (" h=sha256:sha512; s=email:*; t=y;", {}, "", Result.PASS),
    ],
)
def test_key_record_restrictions(
    rsa1024: rsa.RSAPrivateKey, extra: str, sign_kwargs: dict[str, Any], reason: str,
    result: Result,
) -> None:
    raw = sign(MESSAGE, rsa1024, **sign_kwargs)
    zones = {"sel._domainkey.example.com": [{"TXT": key_record(rsa1024, extra)}]}
    found = only_result(run_check(raw, zones))
    assert (found.result, found.reason) == (result, reason)
    assert ("testing" in found.detail) == ("t=y" in extra)


def test_key_type_mismatch(rsa1024: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024)
    found = only_result(run_check(raw, zone(ed_key)))
    assert (found.result, found.reason) == (Result.PERMERROR, "key type mismatch")


def test_revoked_key_fails(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024)
    found = only_result(run_check(raw, {"sel._domainkey.example.com": [{"TXT": "v=DKIM1; p="}]}))
    assert (found.result, found.reason) == (Result.FAIL, "key revoked")


def test_first_usable_record_of_several_is_used(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024)
    zones = {"sel._domainkey.example.com": [{"TXT": "v=spf1 -all"}, {"TXT": key_record(rsa1024)}]}
    assert only_result(run_check(raw, zones)).result is Result.PASS


def test_nodata_is_no_key(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024)
    zones = {"sel._domainkey.example.com": [{"A": "192.0.2.1"}]}
    found = only_result(run_check(raw, zones))
    assert (found.result, found.reason) == (Result.PERMERROR, "no key for signature")


def test_length_longer_than_body_fails(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024, length=40)
    cut = raw[: raw.index(b"please")] + b"\r\n"
    found = only_result(run_check(cut, zone(rsa1024)))
    assert (found.result, found.reason) == (Result.FAIL, "body truncated")


def test_from_not_signed_can_be_allowed_by_config(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa1024, headers=("to", "subject"))
    config = dkim_config(require_from_signed=False)
    assert [f.symbol for f in run_check(raw, zone(rsa1024), config=config)] == [
        "DKIM_PASS", "DKIM_FROM_NOT_SIGNED",
    ]


def test_unparseable_signature_is_reported_without_lookup(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = b"DKIM-Signature: v=1; d=example.com; d=example.org\r\n" + MESSAGE
    found = only_result(run_check(raw, {}))
    assert (found.result, found.reason, found.properties) == (Result.PERMERROR, "duplicate tag",
                                                              ())


def test_too_many_signatures(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = MESSAGE
    for i in range(4):
        raw = sign(raw, rsa1024, s=f"s{i}")
    zones = {f"s{i}._domainkey.example.com": [{"TXT": key_record(rsa1024)}] for i in range(4)}
    findings = run_check(raw, zones, config=dkim_config(max_signatures=3))
    assert [f.prop("header.s") for f in methods(findings)] == ["s3", "s2", "s1"]
    assert "DKIM_TOO_MANY_SIGNATURES" in {f.symbol for f in findings}


class _SlowBackend:
    """Answers after a delay and records how many lookups were in flight at once."""

    def __init__(self, zones: dict[str, Any]) -> None:
        self.inner = ZoneResolver(zones).backend
        self.active = self.peak = 0
        self.asked: list[str] = []

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        self.asked.append(name)
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.02)
        self.active -= 1
        return await self.inner.lookup(name, rdtype)


def test_key_lookups_run_concurrently_once_per_name(rsa1024: rsa.RSAPrivateKey) -> None:
    raw = sign(sign(sign(MESSAGE, rsa1024, s="a"), rsa1024, s="b"), rsa1024, s="a")
    zones = {f"{s}._domainkey.example.com": [{"TXT": key_record(rsa1024)}] for s in "ab"}
    backend = _SlowBackend(zones)
    findings = run_check(raw, zones, resolver=Resolver(backend))
    assert [f.symbol for f in findings] == ["DKIM_PASS"] * 3
    assert backend.peak == 2 and sorted(backend.asked) == ["a._domainkey.example.com",
                                                           "b._domainkey.example.com"]


def test_resolver_exception_is_temperror(rsa1024: rsa.RSAPrivateKey) -> None:
    class Broken(Resolver):
        async def query(self, name: str, rdtype: str) -> Lookup:
            raise RuntimeError("socket closed")

    raw = sign(MESSAGE, rsa1024)
    found = only_result(run_check(raw, {}, resolver=Broken(ZoneResolver({}).backend)))
    assert (found.result, found.reason) == (Result.TEMPERROR, "key unavailable")


def test_check_caches_keys_across_messages(rsa1024: rsa.RSAPrivateKey) -> None:
    check = DkimCheck(Config())
    resolver = ZoneResolver(zone(rsa1024))
    for body in (b"one\r\n", b"two\r\n"):
        raw = sign(MESSAGE + body, rsa1024)
        assert only_result(run_check(raw, {}, check=check, resolver=resolver)).symbol == "DKIM_PASS"
    assert len(check.keys) == 1


def test_never_raises_on_garbage() -> None:
    raws = [
        b"DKIM-Signature:\r\n\r\n",
        b"DKIM-Signature: \xff\xfe=\x00;;\r\nFrom: a@b.c\r\n\r\n",
        b"DKIM-Signature: v=1; a=rsa-sha256; d=x.y; s=s; h=from; bh=; b=AA==\r\n",
        b"dkim-signature: v=1; a=ed25519-sha256; d=x.y; s=s; h=from; bh=AA==; b=AA==; t=1\r\n\r\n",
    ]
    zones = {"s._domainkey.x.y": [{"TXT": "v=DKIM1; k=ed25519; p=" + b64(bytes(32))}]}
    for raw in raws:
        results = methods(run_check(raw, zones))
        assert results and all(f.result is not Result.PASS for f in results)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda parts: "; ".join(parts).encode(),
    st.lists(st.sampled_from(["v=DKIM1", "v=DKIM2", "k=rsa", "k=ed25519", "k=", "p=", "p=AAAA",
                              "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ", "h=sha256", "s=*",
                              "t=y:s", "x", "=", ";", "p=" + b64(bytes(32))]), max_size=6),
))
def test_key_record_parser_never_raises_anything_but_problem(data: bytes) -> None:
    try:
        key = dv.parse_key_record(data)
    except dv.Problem as exc:
        assert exc.result is Result.PERMERROR and exc.reason
    else:
        assert key.key_type in ("rsa", "ed25519")


_TAG_PARTS = st.sampled_from([
    "v=1", "v=2", "a=rsa-sha256", "a=ed25519-sha256", "a=rsa-sha1", "a=x", "c=relaxed",
    "c=simple/relaxed", "c=odd", "d=example.com", "d=ex\xe4mple.com", "d=", "s=sel", "s=",
    "h=from:to", "h=to", "h=", "h=from::", "bh=AAAA", "bh=!!", "b=AAAA", "b=", "b=A A\r\n A=",
    "i=@example.com", "i=x@y.org", "l=0", "l=99999999999999999999", "t=1", "x=2", "x=1",
    "t=99999999999999999999999", "q=dns/txt", "q=other", "z=a|b", "=", "", ";", "\r\n ",
])


@settings(max_examples=150, deadline=None)
@given(st.lists(_TAG_PARTS, max_size=12), st.binary(max_size=40))
def test_check_never_raises_on_arbitrary_signatures(parts: list[str], noise: bytes) -> None:
    value = ";".join(parts).encode("latin-1") + noise.replace(b"\r", b"").replace(b"\n", b"")
    raw = b"DKIM-Signature: " + value + b"\r\n" + MESSAGE
    zones = {"sel._domainkey.example.com": [{"TXT": "v=DKIM1; k=ed25519; p=" + b64(bytes(32))}]}
    results = methods(run_check(raw, zones))
    assert len(results) == 1 and results[0].result is not Result.PASS
    for _, prop in results[0].properties:
        assert prop.isprintable() and prop.isascii() and " " not in prop


# --- the signer used above agrees with dkimpy, and our verifier agrees with dkimpy ------------


@pytest.mark.parametrize("canon", ["simple/simple", "relaxed/relaxed", "relaxed/simple",
                                   "simple/relaxed"])
def test_signer_agrees_with_dkimpy(rsa2048: rsa.RSAPrivateKey, canon: str) -> None:
    raw = sign(MESSAGE, rsa2048, canon=canon, headers=("from", "subject", "x-missing"))
    record = key_record(rsa2048).encode()
    def dnsfunc(name: bytes, timeout: float = 5) -> bytes:
        return record

    assert dkimpy.verify(raw, dnsfunc=dnsfunc)
    assert not dkimpy.verify(raw.replace(b"numbers", b"digits"), dnsfunc=dnsfunc)


_WORD = st.text(alphabet="abcXYZ019.,!<>@=-", min_size=1, max_size=8)
_SEP = st.sampled_from([" ", " ", " ", "  ", "\t", " \t ", "\r\n ", "\r\n\t", " \r\n  "])
_LINE_SEP = st.sampled_from([" ", " ", "  ", "\t", " \t"])


@st.composite
def _header(draw: st.DrawFn, name: str) -> str:
    words = draw(st.lists(_WORD, min_size=1, max_size=6))
    value = words[0] + "".join(draw(_SEP) + w for w in words[1:])
    return f"{name}:{draw(st.sampled_from([' ', '', '  ', chr(9)]))}{value}{draw(_TRAIL)}"


_TRAIL = st.sampled_from(["", "", " ", "\t", "  "])


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    names = ["From", draw(st.sampled_from(["To", "TO", "to"])), "Subject"]
    names += draw(st.lists(st.sampled_from(["Received", "X-Tag", "Subject", "Cc"]), max_size=3))
    names = draw(st.permutations(names))
    headers = [draw(_header(n)) for n in names]
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        words = draw(st.lists(_WORD, max_size=5))
        lines.append(draw(_TRAIL) + "".join(draw(_LINE_SEP) + w for w in words) + draw(_TRAIL))
    body = "\r\n".join(lines) + draw(st.sampled_from(["", "\r\n", "\r\n\r\n", "\r\n \r\n\r\n"]))
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def _mutate(raw: bytes, how: str) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    if how == "append":
        return raw + b"appended line\r\n"
    if how == "blank-lines":
        return raw + b"\r\n\r\n"
    if how == "body-spaces":
        return head + b"\r\n\r\n" + body.replace(b" ", b"  \t").replace(b"\r\n", b" \r\n")
    if how == "refold":
        return head.replace(b"Subject: ", b"Subject:\r\n   ") + b"\r\n\r\n" + body
    if how == "new-header":
        return b"X-Forwarded: yes\r\n" + raw
    if how == "edit-subject":
        return raw.replace(b"Subject:", b"Subject: RE:", 1)
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    message=_message(),
    header_canon=st.sampled_from([b"simple", b"relaxed"]),
    body_canon=st.sampled_from([b"simple", b"relaxed"]),
    length=st.booleans(),
    use_ed=st.booleans(),
    mutation=st.sampled_from(["none", "append", "blank-lines", "body-spaces", "refold",
                              "new-header", "edit-subject"]),
)
def test_verifier_agrees_with_dkimpy(
    rsa2048: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, message: bytes,
    header_canon: bytes, body_canon: bytes, length: bool, use_ed: bool, mutation: str,
) -> None:
    key: SignKey = ed_key if use_ed else rsa2048
    algorithm = b"ed25519-sha256" if use_ed else b"rsa-sha256"
    signature = dkimpy.sign(
        message, b"sel", b"example.com", dkimpy_key(key), canonicalize=(header_canon, body_canon),
        length=length, signature_algorithm=algorithm,
        include_headers=[b"from", b"to", b"subject", b"cc", b"x-tag"],
    )
    raw = _mutate(signature + message, mutation)
    record = key_record(key).encode()
    expected = dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: record)
    found = only_result(run_check(raw, zone(key), now=time.time()))
    assert (found.result is Result.PASS) == expected, (found.reason, raw)


# --- a warm verifier ------------------------------------------------------------------------


def test_warm_verify_of_30kb_rsa2048_relaxed_message_passes_every_time(
    rsa2048: rsa.RSAPrivateKey,
) -> None:
    text = b"".join(b"line %d of the report: the quick brown fox  jumps over the dog\r\n" % i
                    for i in range(260))
    attachment = base64.encodebytes(bytes(range(256)) * 45).replace(b"\n", b"\r\n")
    raw = sign(MESSAGE.replace(b"\r\n\r\n\r\n", b"\r\n") + text + b"\r\n" + attachment, rsa2048)
    assert 28_000 < len(raw) < 34_000
    parsed = parse_headers(raw)
    field = parsed.fields[0]
    cache = dv.KeyCache()
    record = key_record(rsa2048).encode()

    def once() -> Result:
        sig = dv.parse_signature(dv.parse_tag_list(field.raw_value), NOW)
        key = cache.get(record)
        dv.check_key(sig, key)
        view = dv.MessageView(parsed.fields, parsed.body)
        return dv.verify(sig, key, view, field, 1024).result

    # the key comes from the cache after the first time; the outcome never changes
    assert [once() for _ in range(3)] == [Result.PASS] * 3
    assert len(cache) == 1


# --- the CLI path ------------------------------------------------------------------------------


def _cli(tmp_path: Any, raw: bytes, zones: dict[str, Any], config: str = "", now: float = NOW,
         ) -> dict[str, Any]:
    return check_json(tmp_path, raw, zones, config=DKIM_ONLY + config, now=now)


def _dkim_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == "dkim"]


def test_cli_pass(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    report = _cli(tmp_path, sign(MESSAGE, rsa2048), zone(rsa2048))
    assert [f["symbol"] for f in _dkim_findings(report)] == ["DKIM_PASS"]
    assert "dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256" in \
        report["authentication_results"]


def test_cli_tampered_body_fails(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa2048).replace(b"Revenue: 12", b"Revenue: 99")
    report = _cli(tmp_path, raw, zone(rsa2048))
    assert "dkim=fail reason=\"body hash mismatch\" header.d=example.com" in \
        report["authentication_results"]
    (finding,) = _dkim_findings(report)
    assert finding["symbol"] == "DKIM_FAIL" and finding["advice"]


def test_cli_no_signature_is_none(tmp_path: Any) -> None:
    report = _cli(tmp_path, MESSAGE, {})
    assert [f["symbol"] for f in _dkim_findings(report)] == ["DKIM_NONE"]
    assert "dkim=none" in report["authentication_results"]
    assert "DKIM_FAIL" not in symbols(report)


def test_cli_weak_512_bit_key(tmp_path: Any, weak_key: rsa.RSAPrivateKey) -> None:
    report = _cli(tmp_path, sign(MESSAGE, weak_key), zone(weak_key))
    assert {f["symbol"] for f in _dkim_findings(report)} == {"DKIM_POLICY", "DKIM_WEAK_KEY"}
    assert "dkim=policy reason=\"key too short\"" in report["authentication_results"]


def test_cli_from_not_signed(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa2048, headers=("to", "subject", "date"))
    report = _cli(tmp_path, raw, zone(rsa2048))
    assert {f["symbol"] for f in _dkim_findings(report)} == {"DKIM_PERMERROR",
                                                           "DKIM_FROM_NOT_SIGNED"}
    assert "dkim=permerror reason=\"From not signed\"" in report["authentication_results"]


def test_cli_length_with_appended_content(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    signed = sign(MESSAGE, rsa2048, length=len(dv.canonical_body(MESSAGE.split(b"\r\n\r\n", 1)[1],
                                                                  relaxed=True)))
    raw = signed + b"Click http://evil.example/ to keep your account\r\n"
    report = _cli(tmp_path, raw, zone(rsa2048))
    assert [f["symbol"] for f in _dkim_findings(report)] == ["DKIM_PASS",
                                                           "DKIM_LENGTH_UNSIGNED_CONTENT"]
    assert "dkim=pass" in report["authentication_results"]


def test_cli_expired_signature(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    raw = sign(MESSAGE, rsa2048, extra=f" t={NOW - 7200}; x={NOW - 3600};")
    report = _cli(tmp_path, raw, zone(rsa2048))
    assert "dkim=permerror reason=\"signature expired\"" in report["authentication_results"]
    earlier = _cli(tmp_path, raw, zone(rsa2048), now=NOW - 5000)
    assert "dkim=pass" in earlier["authentication_results"]


def test_cli_missing_key_record(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    report = _cli(tmp_path, sign(MESSAGE, rsa2048), {"example.com": [{"A": "192.0.2.7"}]})
    assert "dkim=permerror reason=\"no key for signature\"" in report["authentication_results"]


def test_cli_key_lookup_timeout(tmp_path: Any, rsa2048: rsa.RSAPrivateKey) -> None:
    report = _cli(tmp_path, sign(MESSAGE, rsa2048), {"sel._domainkey.example.com": ["TIMEOUT"]})
    assert "dkim=temperror reason=\"key unavailable\"" in report["authentication_results"]
    assert [f["symbol"] for f in _dkim_findings(report)] == ["DKIM_TEMPERROR"]


def test_cli_two_signatures_both_reported(
    tmp_path: Any, rsa2048: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    first = dkimpy.sign(MESSAGE, b"rsa1", b"example.com", dkimpy_key(rsa2048))
    second = dkimpy.sign(first + MESSAGE, b"ed1", b"lists.example.org", dkimpy_key(ed_key),
                         signature_algorithm=b"ed25519-sha256")
    zones = zone(rsa2048, "rsa1._domainkey.example.com") | zone(
        ed_key, "ed1._domainkey.lists.example.org")
    report = _cli(tmp_path, second + first + MESSAGE, zones, now=time.time())
    results = report["authentication_results"]
    assert "dkim=pass header.d=lists.example.org header.i=@lists.example.org header.s=ed1" \
        in results
    assert "dkim=pass header.d=example.com header.i=@example.com header.s=rsa1" in results
