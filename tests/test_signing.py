"""DKIM signing and ARC sealing: checked against dkimpy's verifier and through the CLI."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailward.signing import SigningError, SigningKey, arc_seal, dkim_sign, generate_key, load_key
from tests.helpers import check_json, symbols

MESSAGE = (
    b"From: Alice <alice@ourcorp.example>\r\n"
    b"To: bob@partner.example\r\n"
    b"Subject: Minutes\r\n"
    b"Date: Tue, 02 Jan 2024 09:00:00 +0000\r\n"
    b"Message-ID: <m1@ourcorp.example>\r\n"
    b"\r\n"
    b"The minutes are below.\r\n"
)
AUTH_CHECKS = '[checks]\nenabled = ["spf", "dkim", "arc", "dmarc"]\n'
T = 1_704_186_000


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, str]:
    return generate_key("rsa-sha256", 1024)


@pytest.fixture(scope="module")
def ed_key() -> tuple[bytes, str]:
    return generate_key("ed25519-sha256")


def dns_of(record: str) -> Any:
    return lambda name, timeout=5: record.encode()


def tags(field: bytes) -> dict[str, str]:
    value = "".join(field.decode().split(":", 1)[1].split())
    return dict(part.split("=", 1) for part in value.split(";") if part)


# --- keys -----------------------------------------------------------------------------------


def test_generated_rsa_key_and_record_match() -> None:
    private, record = generate_key("rsa-sha256", 2048)
    assert private.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert re.fullmatch(r"v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]+", record)
    key = serialization.load_pem_private_key(private, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert record.endswith(base64.b64encode(public).decode())


def test_generated_ed25519_key_and_record_match(ed_key: tuple[bytes, str]) -> None:
    private, record = ed_key
    seed = base64.b64decode(private)
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert record == f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"


@pytest.mark.parametrize(("algorithm", "bits"), [("rsa-sha256", 512), ("rsa-sha1", 2048)])
def test_generate_key_refuses_weak_or_unknown(algorithm: str, bits: int) -> None:
    with pytest.raises(SigningError):
        generate_key(algorithm, bits)


# --- DKIM -----------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_dkim_signature_verifies_with_dkimpy(
    algorithm: str, rsa_key: tuple[bytes, str], ed_key: tuple[bytes, str]
) -> None:
    private, record = rsa_key if algorithm == "rsa-sha256" else ed_key
    field = dkim_sign(MESSAGE, "ourcorp.example", "mw1", private, algorithm=algorithm,
                      headers=["From", "To", "Subject", "Date"], timestamp=T)
    assert field.startswith(b"DKIM-Signature: ") and field.endswith(b"\r\n")
    found = tags(field)
    assert (found["a"], found["d"], found["s"], found["t"]) == (
        algorithm, "ourcorp.example", "mw1", str(T))
    assert found["h"] == "from:to:subject:date"
    assert dkim.verify(field + MESSAGE, dnsfunc=dns_of(record))
    assert not dkim.verify(field + MESSAGE.replace(b"Minutes", b"Invoice"), dnsfunc=dns_of(record))


def test_dkim_default_headers_and_canonicalization(rsa_key: tuple[bytes, str]) -> None:
    field = dkim_sign(MESSAGE, "ourcorp.example", "mw1", rsa_key[0], canonicalization="simple")
    found = tags(field)
    assert found["c"] == "simple/simple"
    assert found["h"].split(":").count("from") == 2  # From is sealed against additions
    assert dkim.verify(field + MESSAGE, dnsfunc=dns_of(rsa_key[1]))


def test_dkim_signed_message_passes_our_pipeline(
    tmp_path: Path, rsa_key: tuple[bytes, str]
) -> None:
    field = dkim_sign(MESSAGE, "ourcorp.example", "mw1", rsa_key[0], timestamp=T)
    zones = {"mw1._domainkey.ourcorp.example": [{"TXT": rsa_key[1]}]}
    report = check_json(tmp_path, field + MESSAGE, zones, mail_from="alice@ourcorp.example",
                        config=AUTH_CHECKS, now=T + 60)
    assert "dkim=pass" in report["authentication_results"]
    assert "DKIM_PASS" in symbols(report)


def test_private_keys_in_other_encodings_are_accepted(rsa_key: tuple[bytes, str]) -> None:
    key = serialization.load_pem_private_key(rsa_key[0], password=None)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    for variant in (pkcs8, rsa_key[0].replace(b"\n", b"\r\n")):
        field = dkim_sign(MESSAGE, "ourcorp.example", "mw1", variant)
        assert dkim.verify(field + MESSAGE, dnsfunc=dns_of(rsa_key[1]))
    ed = ed25519.Ed25519PrivateKey.generate()
    ed_pem = ed.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    public = ed.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
    field = dkim_sign(MESSAGE, "ourcorp.example", "ed", ed_pem, algorithm="ed25519-sha256")
    record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"
    assert dkim.verify(field + MESSAGE, dnsfunc=dns_of(record))


@pytest.mark.parametrize(
    ("kwargs", "message", "error"),
    [
        ({"private_key_pem": b"not a key"}, MESSAGE, "must be PEM"),
        ({"private_key_pem": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
         MESSAGE, "cannot read the PEM private key"),
        ({"algorithm": "rsa-sha1"}, MESSAGE, "unknown algorithm"),
        ({"headers": ["To", "Subject"]}, MESSAGE, "From header field must be signed"),
        ({"selector": "bad selector"}, MESSAGE, "do not form a DNS name"),
        ({"canonicalization": "loose"}, MESSAGE, "unknown canonicalization"),
        ({}, MESSAGE.replace(b"From: Alice <alice@ourcorp.example>\r\n", b""), "no From"),
        ({"algorithm": "ed25519-sha256", "private_key_pem": b"c2hvcnQ="}, MESSAGE, "32 octets"),
    ],
    ids=["bad-key", "bad-pem", "sha1", "from-unsigned", "selector", "canon", "no-from",
         "short-seed"],
)
def test_dkim_sign_errors_are_signing_errors(
    rsa_key: tuple[bytes, str], kwargs: dict[str, Any], message: bytes, error: str
) -> None:
    arguments: dict[str, Any] = {"domain": "ourcorp.example", "selector": "mw1",
                                 "private_key_pem": rsa_key[0], **kwargs}
    with pytest.raises(SigningError, match=error):
        dkim_sign(message, **arguments)


# openssl genrsa 512: too small to generate with cryptography, needed to see it refused
RSA_512 = b"""-----BEGIN RSA PRIVATE KEY-----
MIIBOQIBAAJBAJ3gvPgEkfcebB4H8fmm5Ozi5+vkjWannalFtSGFrTuPiO2it+eD
DcQ2dnBgBHMsK/OpJn1Alx7yUkQgJXC2HwECAwEAAQJAc5VRQ5K0+mJ/bQ0MDmYt
O3BzsrPFAd69AmxSS5R+Wxd38MR+OgAKSb93ff0/7tEwQZZhWTn01v6AaeMC/hOx
cQIhANAYg08q2CKrSIiN8bza3F4yJVTuZqDLutZYwxhBJsPbAiEAwjjJ3/ZzRxKl
OyK1qL6ShkQYC8gdxtrZn8WykKtfjVMCICqku1Pf3cbM/uIs5FrlJr+O2yOabyGI
XlNKgUBZKY59AiA7SGI2Pl+JfiN5HWsdiq3m1boRPo/4Nqzem9WZWvXbiQIgapRG
CO7UqM8ubLl0G8heKB+JfDKOv7NMMMPWHwSoNUg=
-----END RSA PRIVATE KEY-----
"""


def test_a_loaded_key_is_reused_and_must_match_the_algorithm(
    rsa_key: tuple[bytes, str], ed_key: tuple[bytes, str]
) -> None:
    key = load_key(rsa_key[0])
    assert isinstance(key, SigningKey) and key.algorithm == "rsa-sha256"
    for subject in (b"One", b"Two"):
        message = MESSAGE.replace(b"Minutes", subject)
        field = dkim_sign(message, "ourcorp.example", "mw1", key, timestamp=T)
        assert dkim.verify(field + message, dnsfunc=dns_of(rsa_key[1]))
    ed = load_key(ed_key[0], "ed25519-sha256")
    assert dkim.verify(dkim_sign(MESSAGE, "ourcorp.example", "ed", ed, algorithm="ed25519-sha256")
                       + MESSAGE, dnsfunc=dns_of(ed_key[1]))
    with pytest.raises(SigningError, match="the key is for ed25519-sha256, not rsa-sha256"):
        dkim_sign(MESSAGE, "ourcorp.example", "ed", ed)
    with pytest.raises(SigningError, match="not an Ed25519 key"):
        load_key(rsa_key[0], "ed25519-sha256")


def _pem(numbers: rsa.RSAPrivateNumbers) -> bytes:
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def test_a_damaged_rsa_key_never_signs(rsa_key: tuple[bytes, str]) -> None:
    good = serialization.load_pem_private_key(rsa_key[0], password=None)
    assert isinstance(good, rsa.RSAPrivateKey)
    n = good.private_numbers()
    flipped = rsa.RSAPrivateNumbers(n.p, n.q, n.d ^ 2, n.dmp1, n.dmq1, n.iqmp, n.public_numbers)
    with pytest.raises(SigningError, match="do not fit together"):
        dkim_sign(MESSAGE, "ourcorp.example", "mw1", _pem(flipped))
    # Consistent numbers around a composite "prime" pass the arithmetic checks; only
    # verifying the signature before it leaves shows the key is unusable.
    small = serialization.load_pem_private_key(RSA_512, password=None)
    assert isinstance(small, rsa.RSAPrivateKey)
    p = small.private_numbers().p * small.private_numbers().q  # 512 bits, not prime
    q, e = n.p, 65537
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    d = pow(e, -1, lam)
    composite = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                      rsa.RSAPublicNumbers(e, p * q))
    # (depending on the random key the product may also fall below 1024 bits: refused too)
    with pytest.raises(SigningError, match=r"does not verify: the key is damaged|at least 1024"):
        dkim_sign(MESSAGE, "ourcorp.example", "mw1", _pem(composite))


def test_small_rsa_keys_are_refused() -> None:
    with pytest.raises(SigningError, match="512 bits"):
        dkim_sign(MESSAGE, "ourcorp.example", "mw1", RSA_512)
    with pytest.raises(SigningError, match="512 bits"):
        arc_seal(with_results("mx.ourcorp.example; spf=pass"), "ourcorp.example", "arc",
                 RSA_512, "mx.ourcorp.example")


# --- ARC ------------------------------------------------------------------------------------

OURS = "mx.ourcorp.example"


def with_results(*lines: str) -> bytes:
    return b"".join(f"Authentication-Results: {line}\r\n".encode() for line in lines) + MESSAGE


def test_aar_consolidates_our_results_in_order_with_comments(rsa_key: tuple[bytes, str]) -> None:
    message = with_results(
        f"{OURS}; spf=pass (sender permitted; ok) smtp.mailfrom=ourcorp.example",
        "other.example; dkim=fail",
        f"{OURS.upper()}; dkim=pass (2048-bit key) header.d=ourcorp.example;\r\n"
        f"\tdmarc=pass header.from=ourcorp.example",
    )
    seal, ams, aar = arc_seal(message, "ourcorp.example", "arc", rsa_key[0], OURS, timestamp=T)
    assert seal.startswith(b"ARC-Seal: ") and ams.startswith(b"ARC-Message-Signature: ")
    assert aar == (
        f"ARC-Authentication-Results: i=1; {OURS};\r\n"
        " spf=pass (sender permitted; ok) smtp.mailfrom=ourcorp.example;\r\n"
        " dkim=pass (2048-bit key) header.d=ourcorp.example;\r\n"
        " dmarc=pass header.from=ourcorp.example\r\n"
    ).encode()
    assert (tags(seal)["cv"], tags(seal)["i"], tags(seal)["t"]) == ("none", "1", str(T))
    assert dkim.arc_verify(seal + ams + aar + message, dnsfunc=dns_of(rsa_key[1]))[0] == b"pass"


def test_second_hop_takes_the_chain_status_from_our_results(rsa_key: tuple[bytes, str]) -> None:
    first = arc_seal(with_results(f"{OURS}; dmarc=pass"), "ourcorp.example", "arc", rsa_key[0],
                     OURS, timestamp=T)
    hop1 = b"".join(first) + with_results(f"{OURS}; dmarc=pass")
    second = arc_seal(b"Authentication-Results: fwd.example; arc=pass\r\n" + hop1, "fwd.example",
                      "arc", rsa_key[0], "fwd.example", timestamp=T + 5)
    assert (tags(second[0])["i"], tags(second[0])["cv"]) == ("2", "pass")
    hop2 = b"".join(second) + b"Authentication-Results: fwd.example; arc=pass\r\n" + hop1
    assert dkim.arc_verify(hop2, dnsfunc=dns_of(rsa_key[1]))[0] == b"pass"


def test_two_arc_results_from_us_make_the_chain_fail(rsa_key: tuple[bytes, str]) -> None:
    message = with_results(f"{OURS}; dmarc=pass")
    hop1 = b"".join(arc_seal(message, "ourcorp.example", "arc", rsa_key[0], OURS)) + message
    doubled = b"Authentication-Results: fwd.example; arc=pass\r\n" * 2 + hop1
    sealed = arc_seal(doubled, "fwd.example", "arc", rsa_key[0], "fwd.example")
    assert tags(sealed[0])["cv"] == "fail"


def test_no_set_is_added_to_a_failed_chain(rsa_key: tuple[bytes, str]) -> None:
    message = with_results(f"{OURS}; dmarc=pass")
    hop1 = b"".join(arc_seal(message, "ourcorp.example", "arc", rsa_key[0], OURS)) + message
    at_fwd = b"Authentication-Results: fwd.example; arc=fail\r\n" + hop1
    failed = arc_seal(at_fwd, "fwd.example", "arc", rsa_key[0], "fwd.example")
    assert (tags(failed[0])["i"], tags(failed[0])["cv"]) == ("2", "fail")
    at_next = b"Authentication-Results: next.example; arc=fail\r\n" + b"".join(failed) + at_fwd
    assert arc_seal(at_next, "next.example", "arc", rsa_key[0], "next.example") == []
    set_1_stripped = b"".join(failed) + with_results("next.example; arc=fail")
    assert arc_seal(set_1_stripped, "next.example", "arc", rsa_key[0], "next.example") == []


@pytest.mark.parametrize(
    ("message", "kwargs", "error"),
    [
        (MESSAGE, {}, "no Authentication-Results of mx.ourcorp.example"),
        (with_results(f"{OURS}; arc=pass"), {}, "no ARC set"),
        (with_results(f"{OURS}; spf=pass"), {"chain_validation": "maybe"}, "not none, pass"),
        (with_results(f"{OURS}; spf=pass"), {"headers": ["from", "arc-seal"]},
         "arc-seal must not be signed"),
        (with_results(f"{OURS}; spf=pass"), {"headers": ["subject"]}, "From header field"),
    ],
    ids=["no-results", "pass-without-chain", "bad-status", "signs-arc-seal", "from-unsigned"],
)
def test_arc_seal_errors_are_signing_errors(
    rsa_key: tuple[bytes, str], message: bytes, kwargs: dict[str, Any], error: str
) -> None:
    with pytest.raises(SigningError, match=error):
        arc_seal(message, "ourcorp.example", "arc", rsa_key[0], OURS, **kwargs)


def test_existing_chain_without_a_verdict_is_refused(rsa_key: tuple[bytes, str]) -> None:
    message = with_results(f"{OURS}; dmarc=pass")
    hop1 = b"".join(arc_seal(message, "ourcorp.example", "arc", rsa_key[0], OURS)) + message
    with pytest.raises(SigningError, match="validate the chain before sealing"):
        arc_seal(b"Authentication-Results: fwd.example; spf=pass\r\n" + hop1, "fwd.example",
                 "arc", rsa_key[0], "fwd.example")


def test_fifty_sets_is_the_limit(rsa_key: tuple[bytes, str]) -> None:
    fake = b"".join(
        f"ARC-Seal: i={i}; a=rsa-sha256; cv=pass; d=x.example; s=s; b=AAAA\r\n".encode()
        for i in range(50, 0, -1)
    )
    with pytest.raises(SigningError, match="already has 50 ARC sets"):
        arc_seal(fake + with_results(f"{OURS}; arc=pass"), "ourcorp.example", "arc",
                 rsa_key[0], OURS)
