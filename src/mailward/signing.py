"""DKIM signing and ARC sealing of mail the site sends or forwards (pure CPU, no DNS).

The field lists, folding (`dkim.fold`), header selection and canonical forms follow dkimpy
(`dkim.sign` / `dkim.arc_sign`, whose output the tests verify with dkimpy and the ARC suite pins
byte for byte); three things differ on purpose: a timestamp can be given (dkimpy's `sign` always
uses the clock), the ARC-Authentication-Results keeps the comments of the results it copies
(dkimpy's `arc_sign` drops them, so the seal signs other text than was recorded), and the
signature is made by OpenSSL (`cryptography`, 0.6 ms) instead of dkimpy's Python RSA (8 ms).
A key can be given as PEM bytes each time or loaded once with `load_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dkim
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError
from dkim.util import InvalidTagValueList, parse_tag_value

from mailward.checks.arc import (
    ARC_FIELDS,
    MAX_SETS,
    SEAL,
    ChainError,
    DkimpyField,
    dkimpy_field,
    header_hash,
    key_name,
    method_result,
    parse_chain,
    relaxed_body,
    relaxed_header,
    relaxed_value,
    split_results,
    strip_b,
)
from mailward.message import HeaderField, ParsedHeaders, parse_headers

ALGORITHMS = ("rsa-sha256", "ed25519-sha256")
MIN_RSA_BITS = 1024  # RFC 8301
CHAIN_STATUSES = ("none", "pass", "fail")
ARC_FORBIDDEN = (*ARC_FIELDS, "authentication-results")  # never in an AMS h= (RFC 8617 4.1.2)
_PLACEHOLDER = b"0" * 60  # dkimpy's b= stand-in: it folds onto a line of its own


class SigningError(ValueError):
    """The message, key or parameters cannot be signed; the text says why."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key loaded once and reused for every message it signs."""

    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def sign(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 digest (RFC 6376 3.3; RFC 8463 signs the digest too),
        checked with the public key before it leaves: a damaged key must neither sign wrongly
        nor leak itself through a faulty RSA-CRT signature."""
        try:
            if isinstance(self.key, rsa.RSAPrivateKey):
                signature = self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
                self.key.public_key().verify(signature, digest, padding.PKCS1v15(),
                                             Prehashed(hashes.SHA256()))
            else:
                signature = self.key.sign(digest)
                self.key.public_key().verify(signature, digest)
        except InvalidSignature:
            raise SigningError("a signature made with this key does not verify: the key is "
                               "damaged") from None
        return signature


def load_key(private_key: bytes, algorithm: str = "rsa-sha256") -> SigningKey:
    """Read a private key: RSA as PEM (PKCS#1 or PKCS#8); Ed25519 as PEM or as the base64 of
    its 32-octet seed (dkimpy's form). RSA keys shorter than 1024 bits are refused (RFC 8301).

    OpenSSL's RSA check (primality, ~50 ms) is replaced by arithmetic checks that the key's
    parts fit together (µs); every signature is verified before use (`SigningKey.sign`).
    """
    if isinstance(private_key, str):
        private_key = private_key.encode()
    _algorithm(algorithm)
    if b"-----BEGIN" in private_key:
        try:
            key = serialization.load_pem_private_key(
                private_key.strip() + b"\n", password=None, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningError(f"cannot read the PEM private key: {exc}") from None
    elif algorithm == "ed25519-sha256":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(_ed25519_seed(private_key))
    else:
        raise SigningError("an RSA private key must be PEM (PKCS#1 or PKCS#8)")
    if algorithm == "rsa-sha256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningError("the key is not an RSA key, as rsa-sha256 needs")
        if key.key_size < MIN_RSA_BITS:
            raise SigningError(f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} "
                               "are needed (RFC 8301)")
        if not _rsa_parts_fit(key.private_numbers()):
            raise SigningError("the RSA key's numbers do not fit together: the key is damaged")
        return SigningKey(algorithm, key)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SigningError("the key is not an Ed25519 key, as ed25519-sha256 needs")
    return SigningKey(algorithm, key)


def _rsa_parts_fit(k: rsa.RSAPrivateNumbers) -> bool:
    """n = pq, d inverts e modulo p-1 and q-1, and the CRT values match (RFC 8017 3.2)."""
    n, e = k.public_numbers.n, k.public_numbers.e
    p, q, d = k.p, k.q, k.d
    if min(p, q) < 3 or p * q != n or not 1 < e < n:
        return False
    return (
        (d * e) % (p - 1) == 1 and (d * e) % (q - 1) == 1
        and k.dmp1 == d % (p - 1) and k.dmq1 == d % (q - 1) and (k.iqmp * q) % p == 1
    )


def generate_key(algorithm: str = "rsa-sha256", bits: int = 2048) -> tuple[bytes, str]:
    """A new key pair: (private key as dkimpy reads it, DNS TXT record ``v=DKIM1; k=..; p=..``).

    RSA: a PKCS#1 PEM. Ed25519: the base64 of the 32-octet seed (RFC 8463).
    """
    _algorithm(algorithm)
    if algorithm == "rsa-sha256":
        if bits < MIN_RSA_BITS:
            raise SigningError(f"RSA keys need at least {MIN_RSA_BITS} bits (RFC 8301), not {bits}")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return private, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    ed_key = ed25519.Ed25519PrivateKey.generate()
    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    record = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw_public).decode()}"
    return base64.b64encode(seed), record


def dkim_sign(
    message: bytes,
    domain: str,
    selector: str,
    private_key_pem: bytes | SigningKey,
    algorithm: str = "rsa-sha256",
    headers: Sequence[str] | None = None,
    timestamp: float | None = None,
    canonicalization: str = "relaxed/relaxed",
) -> bytes:
    """The ``DKIM-Signature: ...`` header field (ending in CRLF) to prepend to ``message``.

    ``headers`` are the field names to sign (default: dkimpy's RFC 6376 list of those present,
    From twice so no second From can be added).
    """
    key = _signing_key(private_key_pem, algorithm)
    try:
        canon = CanonicalizationPolicy.from_c_value(canonicalization.encode())
    except (InvalidCanonicalizationPolicyError, UnicodeEncodeError):
        raise SigningError(f"unknown canonicalization {canonicalization!r}") from None
    d, s = _names(domain, selector)
    parsed = _parsed(message)
    fields = [dkimpy_field(f) for f in parsed.fields]
    include = _include(fields, headers, forbidden=())
    tags = [
        (b"v", b"1"),
        (b"a", key.algorithm.encode()),
        (b"c", canon.to_c_value()),
        (b"d", d),
        (b"i", b"@" + d),
        (b"q", b"dns/txt"),
        (b"s", s),
        (b"t", _stamp(timestamp)),
        (b"h", b" : ".join(include)),
        (b"bh", _body_hash(parsed.body, canon.body_algorithm.name == b"relaxed")),
        (b"b", _PLACEHOLDER),
    ]
    relaxed = canon.header_algorithm.name == b"relaxed"
    value = _signature_field(b"DKIM-Signature", tags, include, fields, relaxed, key, False)
    return b"DKIM-Signature: " + value


def arc_seal(
    message: bytes,
    domain: str,
    selector: str,
    private_key_pem: bytes | SigningKey,
    authserv_id: str,
    timestamp: float | None = None,
    headers: Sequence[str] | None = None,
    chain_validation: str | None = None,
    algorithm: str = "rsa-sha256",
    standardize: bool = False,
) -> list[bytes]:
    """The next ARC set for ``message``: [ARC-Seal, ARC-Message-Signature,
    ARC-Authentication-Results], each ending in CRLF, to prepend in that order.

    The AAR records the results of every Authentication-Results field of ``authserv_id`` in
    order, comments kept. ``chain_validation`` is the chain status found on arrival; by default
    the arc= result in those fields (none when absent). Returns [] when the newest seal already
    says cv=fail (RFC 8617 5.1: no set is added to a failed chain). ``standardize`` writes the
    ARC test suite's fixed tag format (sorted, unfolded, lower case) for byte-exact comparison.
    """
    key = _signing_key(private_key_pem, algorithm)
    d, s = _names(domain, selector)
    parsed = _parsed(message)
    existing = [f for f in parsed.fields if f.lname in ARC_FIELDS]
    if _newest_seal_cv(existing) == b"fail":
        return []
    try:
        chain = parse_chain(existing)
    except ChainError:
        chain = None
    highest = len(chain) if chain is not None else _highest_instance(existing)
    results = _our_results(parsed, authserv_id)
    status = chain_validation or _recorded_arc_status(results)
    _check_chain_status(status, highest, chain is not None, authserv_id)

    instance = str(highest + 1).encode()
    aar = _aar_value(highest + 1, authserv_id, results)
    aar_field: DkimpyField = (b"ARC-Authentication-Results", b" " + aar)
    fields = [aar_field, *(dkimpy_field(f) for f in parsed.fields)]
    include = _include(fields, headers, forbidden=ARC_FORBIDDEN)
    stamp, alg = _stamp(timestamp), key.algorithm.encode()
    ams_tags = [
        (b"i", instance),
        (b"a", alg),
        (b"c", b"relaxed/relaxed"),
        (b"d", d),
        (b"s", s),
        (b"t", stamp),
        (b"h", b" : ".join(include)),
        (b"bh", _body_hash(parsed.body, relaxed=True)),
        (b"b", _PLACEHOLDER),
    ]
    ams = _signature_field(b"ARC-Message-Signature", ams_tags, include, fields, True, key,
                           standardize)
    covered: list[DkimpyField] = []
    if status != "fail":  # a failed chain: the seal covers only the new set (RFC 8617 5.1.1)
        for earlier in chain or ():
            covered += [earlier.aar_field, earlier.ams_field, earlier.seal_field]
    covered += [aar_field, (b"ARC-Message-Signature", b" " + ams)]
    seal_tags = [
        (b"i", instance),
        (b"cv", status.encode()),
        (b"a", alg),
        (b"d", d),
        (b"s", s),
        (b"t", stamp),
        (b"b", _PLACEHOLDER),
    ]
    include = [name.lower() for name, _ in covered]
    seal = _signature_field(b"ARC-Seal", seal_tags, include, covered[::-1], True, key,
                            standardize)  # reversed: header selection runs bottom up
    return [
        b"ARC-Seal: " + seal,
        b"ARC-Message-Signature: " + ams,
        b"ARC-Authentication-Results: " + aar,
    ]


# --- helpers --------------------------------------------------------------------------------


def _algorithm(algorithm: str) -> bytes:
    if algorithm not in ALGORITHMS:
        raise SigningError(f"unknown algorithm {algorithm!r} (use one of {', '.join(ALGORITHMS)})")
    return algorithm.encode()


def _signing_key(key: bytes | SigningKey, algorithm: str) -> SigningKey:
    _algorithm(algorithm)
    if not isinstance(key, SigningKey):
        return load_key(key, algorithm)
    if key.algorithm != algorithm:
        raise SigningError(f"the key is for {key.algorithm}, not {algorithm}")
    return key


def _ed25519_seed(key: bytes) -> bytes:
    try:
        seed = base64.b64decode(b"".join(key.split()), validate=True)
    except binascii.Error:
        raise SigningError("an Ed25519 key is PEM or the base64 of its 32-octet seed") from None
    if len(seed) != 32:
        raise SigningError(f"an Ed25519 seed has 32 octets, this one {len(seed)}")
    return seed


def _names(domain: str, selector: str) -> tuple[bytes, bytes]:
    try:
        d, s = domain.strip().rstrip(".").encode("idna"), selector.strip().encode("idna")
    except UnicodeError:
        d = s = b""
    if key_name({b"d": d, b"s": s}) is None:
        raise SigningError(f"selector {selector!r} and domain {domain!r} do not form a DNS name")
    return d.lower(), s


def _parsed(message: bytes) -> ParsedHeaders:
    parsed = parse_headers(message)
    if not parsed.get_all("From"):
        raise SigningError("the message has no From header field to sign")
    return parsed


def _include(fields: list[DkimpyField], headers: Sequence[str] | None,
             forbidden: Sequence[str]) -> list[bytes]:
    """The names for h=: as given, or dkimpy's default (RFC 6376 5.4.1 fields present, From
    once more so none can be added)."""
    if headers is None:
        wanted = set(dkim.DKIM.SHOULD) | set(dkim.DKIM.FROZEN)
        present = [name.lower().rstrip() for name, _ in fields]
        include = [name for name in present if name in wanted]
        include += [name for name in include if name in dkim.DKIM.FROZEN]
        include = [name for name in include if name.decode() not in forbidden]
    else:
        include = [h.strip().lower().encode() for h in headers if h.strip()]
    if b"from" not in include:
        raise SigningError("the From header field must be signed")
    refused = sorted({h.decode() for h in include} & set(forbidden))
    if refused:
        raise SigningError(f"{', '.join(refused)} must not be signed here")
    return include


def _stamp(timestamp: float | None) -> bytes:
    return str(int(time.time() if timestamp is None else timestamp)).encode()


def _body_hash(body: bytes, relaxed: bool) -> bytes:
    canonical = relaxed_body(body) if relaxed else dkim.canonicalization.Simple.canonicalize_body(
        body
    )
    return base64.b64encode(hashlib.sha256(canonical).digest())


def _signature_field(name: bytes, tags: list[tuple[bytes, bytes]], include: list[bytes],
                     fields: list[DkimpyField], relaxed: bool, key: SigningKey,
                     standardize: bool) -> bytes:
    """The value of a DKIM-Signature, AMS or ARC-Seal field (after "Name:", ending in CRLF),
    laid out as dkimpy's ``gen_header`` does, signed over ``fields`` selected by ``include``."""
    if standardize:  # dkimpy's: tags sorted, values lower case (bh= kept) without blanks
        tags = sorted(
            ((k, (v if k == b"bh" else v.lower()).replace(b" ", b"")) for k, v in tags),
            key=lambda tag: tag[0],
        )
    value = b"; ".join(k + b"=" + v for k, v in tags)
    if not standardize:
        value = dkim.fold(value, namelen=len(name))
    canonical = [relaxed_header(f) for f in fields] if relaxed else fields
    digest = header_hash(canonical, include, (name, b" " + strip_b(value)), relaxed)
    try:
        signature = base64.b64encode(key.sign(digest))
    except (ValueError, TypeError) as exc:
        raise SigningError(f"cannot sign {name.decode()}: {exc}") from None
    tags = [(k, signature if k == b"b" else v) for k, v in tags]
    value = b"; ".join(k + b"=" + v for k, v in tags) + b"\r\n"
    return value if standardize else dkim.fold(value, namelen=len(name))


def _check_chain_status(status: str, highest: int, well_formed: bool, authserv_id: str) -> None:
    if status not in CHAIN_STATUSES:
        raise SigningError(f"chain validation status {status!r} is not none, pass or fail")
    if highest >= MAX_SETS:
        raise SigningError(f"the message already has {highest} ARC sets (limit {MAX_SETS})")
    if highest == 0 and status != "none":
        raise SigningError(f"the message has no ARC set, so the chain status is none, not {status}")
    if highest > 0 and status == "none":
        raise SigningError(
            f"the message has ARC sets up to i={highest} but no arc= result from {authserv_id}: "
            "validate the chain before sealing"
        )
    if status == "pass" and not well_formed:
        raise SigningError("the existing ARC sets are malformed, so the chain cannot be pass")


def _highest_instance(fields: Sequence[HeaderField]) -> int:
    """The highest i= among ARC fields of a malformed chain (dkimpy's loose reading)."""
    found = [dkim.ARC.INSTANCE_RE.search(relaxed_value(f.raw_value)) for f in fields]
    return max((int(m.group(1)) for m in found if m), default=0)


def _newest_seal_cv(fields: Sequence[HeaderField]) -> bytes | None:
    """The cv= of the ARC-Seal with the highest i= that parses, even in a malformed chain."""
    newest: tuple[int, bytes] | None = None
    for f in fields:
        if f.lname != SEAL:
            continue
        try:
            tags = parse_tag_value(relaxed_value(f.raw_value))
        except InvalidTagValueList:
            continue
        instance = tags.get(b"i", b"")
        if instance.isdigit() and (newest is None or int(instance) > newest[0]):
            newest = (int(instance), tags.get(b"cv", b"").lower())
    return newest[1] if newest else None


def _our_results(parsed: ParsedHeaders, authserv_id: str) -> list[str]:
    """The results (resinfo, comments kept) of every Authentication-Results field of
    ``authserv_id``, in message order."""
    wanted = authserv_id.strip().lower()
    results: list[str] = []
    found = False
    for f in parsed.get_all("Authentication-Results"):
        parts = split_results(f.value)
        head = parts[0].split() if parts else []
        if not head or head[0].lower() != wanted:
            continue
        found = True
        results += [p for p in parts[1:] if method_result(p) is not None]
    if not found:
        raise SigningError(f"the message has no Authentication-Results of {authserv_id} to seal")
    return results


def _recorded_arc_status(results: list[str]) -> str:
    arc = [r for r in (method_result(p) for p in results) if r and r[0] == "arc"]
    if not arc:
        return "none"
    return arc[0][1] if len(arc) == 1 else "fail"


def _aar_value(instance: int, authserv_id: str, results: list[str]) -> bytes:
    text = f"i={instance}; {authserv_id}" + "".join(f";\r\n {r}" for r in results)
    return text.encode("utf-8") + b"\r\n"  # UTF-8 is allowed as in RFC 8601 (RFC 8617 4.1.1)
