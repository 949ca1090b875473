"""ARC (RFC 8617): validate the Authenticated Received Chain and say which trusted sealer vouches.

The chain rules (RFC 8617 5.2) are applied here. Each signature is checked with dkimpy's pieces
(tag parsing and validation, key records, header canonicalization and selection) on our parsed
headers and the key records fetched concurrently beforehand, so nothing does DNS on its own.
dkimpy's chain driver (`dkim.ARC.verify` / `arc_verify`) is not used: it answers None for a chain
whose newest seal says cv=fail, raises IndexError when an AMS folds before its i= tag, accepts only
rsa-sha256 (not RFC 8463 Ed25519), hashes seals by header position instead of instance order and
drops the reasons; its pure-Python RSA and regex body canonicalization cost milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dkim
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy, InvalidCanonicalizationPolicyError
from dkim.util import InvalidTagValueList, parse_tag_value

from mailward.checks.base import Check, CheckContext
from mailward.config import Config
from mailward.dns import Lookup, Resolver, Status, normalize
from mailward.message import HeaderField
from mailward.model import Finding, Result, Transaction

SEAL = "arc-seal"
AMS = "arc-message-signature"
AAR = "arc-authentication-results"
ARC_FIELDS = frozenset({SEAL, AMS, AAR})
NAMES = {SEAL: "ARC-Seal", AMS: "ARC-Message-Signature", AAR: "ARC-Authentication-Results"}
MAX_SETS = 50  # RFC 8617 4.2.1
ALGORITHMS = frozenset({b"rsa-sha256", b"ed25519-sha256"})  # RFC 8617 via RFC 6376/8301/8463
AMS_TAGS = [b"i", b"a", b"b", b"bh", b"d", b"h", b"s"]
SEAL_TAGS = [b"i", b"a", b"b", b"cv", b"d", b"s"]
FUTURE_SLOP = 36_000  # seconds a t= may lie ahead of now (dkimpy's allowance for skewed clocks)
KEY_CACHE_SIZE = 512

DkimpyField = tuple[bytes, bytes]  # (name, value with its leading blank and final CRLF)

_WSP = re.compile(rb"[ \t]+")
_SPACE_RUNS = re.compile(rb" {2,}")
_BLANKS = re.compile(rb"\s+")
_BTAG = re.compile(rb"([;\s]b\s*=)(?:[\sA-Za-z0-9+/=]*[A-Za-z0-9+/=])?(?:\r?\n\Z)?")
_FOLD = re.compile(rb"\r?\n")
_AAR_INSTANCE = re.compile(rb"\s*i\s*=\s*([0-9]+)\s*;")
_DIGITS = re.compile(rb"[0-9]+")
_H_SPLIT = re.compile(rb"\s*:\s*")
_LABEL = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_COMMENT = re.compile(r"\([^()]*\)")
_METHOD_RESULT = re.compile(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_-]+)")
_BYTES_REPR = re.compile(r"b'([^']*)'")
_LONG_PAREN = re.compile(r" \([^()]{40,}\)")


class ChainError(Exception):
    """The ARC header fields do not form a valid chain (RFC 8617 4.1, 5.2 steps 1-3)."""


@dataclass(slots=True)
class ArcSet:
    """One ARC set: its instance, the three header fields and the parsed tag lists."""

    instance: int
    seal: dict[bytes, bytes] | None = None
    ams: dict[bytes, bytes] | None = None
    aar: str | None = None  # the AAR payload after "i=N;"
    seal_field: DkimpyField = (b"", b"")
    ams_field: DkimpyField = (b"", b"")
    aar_field: DkimpyField = (b"", b"")

    @property
    def sealer(self) -> str:
        return _text((self.seal or {}).get(b"d", b"")).lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class SigOutcome:
    """What became of one signature (an AMS or a seal)."""

    status: Result  # PASS, FAIL or TEMPERROR
    why: str = ""


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The chain validation status with what decided it."""

    result: Result
    reason: str = ""
    oldest_pass: int | None = None


def relaxed_value(raw: bytes) -> bytes:
    """A header value unfolded with runs of blanks made one space and stripped (RFC 6376
    relaxed), as dkimpy does it but with no regex pass when there is nothing to change."""
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    # bytes.find, not "in" (which raises and clears a TypeError before it searches)
    if raw.find(b"\n") >= 0:
        raw = _FOLD.sub(b"", raw)
    if raw.find(b"\t") >= 0 or raw.find(b"  ") >= 0:
        raw = _WSP.sub(b" ", raw)
    return raw.strip()


def relaxed_header(field: DkimpyField) -> DkimpyField:
    """RFC 6376 3.4.2 relaxed header canonicalization of one field, as dkimpy's Relaxed."""
    return field[0].lower().rstrip(), relaxed_value(field[1]) + b"\r\n"


def strip_b(value: bytes) -> bytes:
    """A signature field value with its b= value removed: dkimpy's RE_BTAG, whose FWS groups
    are ``\\s*``, written so the regex engine does not try them at every character."""
    return _BTAG.sub(rb"\1", value)


def dkimpy_field(f: HeaderField) -> DkimpyField:
    """A header field as dkimpy holds it."""
    name, value = f.raw.split(b":", 1)
    return name, value + b"\r\n"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _clean(exc: BaseException | str) -> str:
    """dkimpy's message without bytes reprs and long dumps in parentheses."""
    return _LONG_PAREN.sub("", _BYTES_REPR.sub(r"\1", str(exc)))[:200]


def _instance(value: bytes | None) -> int | None:
    if value is None or not _DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_SETS else None


def parse_chain(fields: Iterable[HeaderField]) -> list[ArcSet]:
    """The ARC sets i=1..N in order; raises ChainError when the structure is invalid."""
    sets: dict[int, ArcSet] = {}
    for f in fields:
        lname = f.lname
        if lname not in ARC_FIELDS:
            continue
        name = NAMES[lname]
        value = relaxed_value(f.raw_value)
        payload: dict[bytes, bytes] | str
        if lname == AAR:
            m = _AAR_INSTANCE.match(value)
            if m is None:
                raise ChainError(f"an {name} does not start with an i= instance tag")
            raw_i, payload = m.group(1), _text(value[m.end() :])
        else:
            try:
                tags: dict[bytes, bytes] = parse_tag_value(value)
            except InvalidTagValueList:
                raise ChainError(f"an {name} is not a valid tag=value list") from None
            payload, raw_i = tags, tags.get(b"i")
            if raw_i is None:
                raise ChainError(f"an {name} has no i= instance tag")
        instance = _instance(raw_i)
        if instance is None:
            raise ChainError(f"an {name} has an invalid instance i={_text(raw_i)[:20]}")
        arc_set = sets.setdefault(instance, ArcSet(instance))
        slot = {SEAL: "seal", AMS: "ams", AAR: "aar"}[lname]
        if getattr(arc_set, slot) is not None:
            raise ChainError(f"two {name} header fields claim i={instance}")
        setattr(arc_set, slot, payload)
        setattr(arc_set, f"{slot}_field", dkimpy_field(f))
    chain = []
    for instance in range(1, max(sets, default=0) + 1):
        if instance not in sets:
            raise ChainError(f"the chain has no ARC set i={instance}")
        arc_set = sets[instance]
        for present, lname in ((arc_set.seal, SEAL), (arc_set.ams, AMS), (arc_set.aar, AAR)):
            if present is None:
                raise ChainError(f"ARC set i={instance} has no {NAMES[lname]}")
        chain.append(arc_set)
    return chain


def check_cv(chain: list[ArcSet]) -> str | None:
    """Why the seals' cv= values make the chain fail (RFC 8617 5.2 steps 2-3), or None."""
    newest = chain[-1]
    if (newest.seal or {}).get(b"cv", b"").lower() == b"fail":
        return f"the newest seal (i={newest.instance}) records cv=fail"
    for arc_set in chain:
        cv = (arc_set.seal or {}).get(b"cv", b"").lower()
        wanted = b"none" if arc_set.instance == 1 else b"pass"
        if cv != wanted:
            shown = _text(cv)[:20] or "nothing"
            return f"seal i={arc_set.instance} records cv={shown}, expected {_text(wanted)}"
    return None


def key_name(tags: Mapping[bytes, bytes] | None) -> str | None:
    """``<s>._domainkey.<d>`` for a signature's tags, or None when s= or d= is no DNS name."""
    tags = tags or {}
    selector, domain = tags.get(b"s", b""), tags.get(b"d", b"").rstrip(b".")
    labels = selector.split(b".") + domain.split(b".")
    if not selector or not domain or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    name = f"{_text(selector)}._domainkey.{_text(domain)}".lower()
    return name if len(name) <= 253 else None


def split_results(value: str) -> list[str]:
    """Split an Authentication-Results payload at the semicolons that separate its parts
    (not those in quoted strings or comments); parts whitespace-normalized, empty ones dropped."""
    if '"' not in value and "(" not in value:  # no quotes or comments: every ";" separates
        return [p for p in (" ".join(part.split()) for part in value.split(";")) if p]
    return _split_results_slowly(value)


def _split_results_slowly(value: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    depth = 0
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif depth:
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth = 1
        elif ch == ";":
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return [p for p in (" ".join(part.split()) for part in parts) if p]


def method_result(part: str) -> tuple[str, str] | None:
    """``(method, result)`` of one resinfo like ``dmarc=pass (p=reject) header.from=x``."""
    m = _METHOD_RESULT.match(_COMMENT.sub(" ", part))
    return (m.group(1).lower(), m.group(2).lower()) if m else None


def records_pass(aar: str, method: str) -> bool:
    """Whether an ARC-Authentication-Results payload (after i=) records ``method=pass``."""
    return any(method_result(part) == (method, "pass") for part in split_results(aar)[1:])


def validate_tags(sig: Mapping[bytes, bytes], mandatory: list[bytes], now: float) -> None:
    """dkimpy's ARC tag checks, with Ed25519 allowed and t=/x= judged against ``now`` (dkimpy
    would use the wall clock); raises dkim.ValidationError."""
    probe = {k: v for k, v in sig.items() if k not in (b"t", b"x")}
    if probe.get(b"a") in ALGORITHMS:
        probe[b"a"] = b"rsa-sha256"  # dkimpy's ARC list lacks ed25519-sha256
    dkim.validate_signature_fields(probe, mandatory, True)
    times = {}
    for tag in (b"t", b"x"):
        value = sig.get(tag)
        if value is not None and not _DIGITS.fullmatch(value):
            name = tag.decode()
            raise dkim.ValidationError(f"{name}= is not a decimal integer ({_text(value)[:20]})")
        times[tag] = None if value is None else int(value)
    signed, expires = times[b"t"], times[b"x"]
    if signed is not None and signed > now + FUTURE_SLOP:
        raise dkim.ValidationError("t= lies in the future")
    if expires is not None and (expires + FUTURE_SLOP < now or (signed or 0) > expires):
        raise dkim.ValidationError("x= has passed or precedes t=")


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalization: dkimpy's result without its regex
    substitution at every blank of ordinary text (ms per 10 KB)."""
    if body.find(b"\t") >= 0:
        body = body.replace(b"\t", b" ")
    if body.find(b"  ") >= 0:
        body = _SPACE_RUNS.sub(b" ", body)
    if body.find(b" \r\n") >= 0:
        body = body.replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    body = body + b"\r\n" if end == len(body) else body[: end + 2]
    return b"" if body == b"\r\n" else body


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A parsed key record: its type, size and a verifier of (signature, digest)."""

    kind: bytes  # b"rsa" or b"ed25519", as in k=
    bits: int
    verifier: Any
    tls_only: bool = False  # s=tlsrpt: not for mail (RFC 8460)

    def verify(self, signature: bytes, digest: bytes) -> bool:
        try:
            if self.kind == b"rsa":
                self.verifier.verify(signature, digest, padding.PKCS1v15(),
                                     Prehashed(hashes.SHA256()))
            else:
                self.verifier.verify(digest, signature)
        except (InvalidSignature, nacl.exceptions.CryptoError, ValueError, TypeError):
            return False  # a mismatch, or a signature of the wrong size for the key
        return True


def parse_key(record: bytes) -> PublicKey:
    """A key record read by dkimpy (RFC 6376 3.6.1); RSA keys handed to OpenSSL for speed."""
    pk, bits, kind, tls_only = dkim.evaluate_pk(b"key", record)
    if kind == b"rsa":
        numbers = rsa.RSAPublicNumbers(pk["publicExponent"], pk["modulus"])
        return PublicKey(kind, bits, numbers.public_key(), tls_only)
    return PublicKey(kind, bits, pk, tls_only)


class KeyCache:
    """Parsed key records keyed by the record text, bounded; broken records too."""

    def __init__(self, size: int = KEY_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[bytes, PublicKey | str] = OrderedDict()

    def get(self, record: bytes) -> PublicKey:
        """The parsed key; raises dkim.KeyFormatError when the record is unusable."""
        entry = self._entries.get(record)
        if entry is None:
            try:
                entry = parse_key(record)
            except (dkim.DKIMException, ValueError, TypeError, IndexError, KeyError) as exc:
                entry = f"unusable key record ({_clean(exc)[:60]})"
            self._entries[record] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(record)
        if isinstance(entry, str):
            raise dkim.KeyFormatError(entry)
        return entry


def pick_key_record(records: Sequence[Any]) -> bytes | None:
    """The key record among a name's TXT records: the first with p=, else the first."""
    for record in records:
        if record.find(b"p=") >= 0:
            return bytes(record)
    return bytes(records[0]) if records else None


class ChainVerifier:
    """Verifies the AMSs and seals of one message from the key records fetched beforehand.

    dkimpy validates the tags, reads the key records and selects the header fields; the
    canonical forms (equal to dkimpy's, property-tested) and body hashes are made once per
    message; RSA is verified by OpenSSL (dkimpy's pure-Python RSA takes 0.5 ms a signature).
    """

    def __init__(
        self, headers: list[DkimpyField], body: bytes, fetched: Mapping[str, Lookup],
        keys: KeyCache, now: float, minkey: int,
    ) -> None:
        self.headers, self.body = headers, body
        self.fetched, self.keys, self.now, self.minkey = fetched, keys, now, minkey
        self._body_hashes: dict[tuple[bytes, bytes | None], bytes] = {}
        self._names: dict[bool, list[bytes]] = {}  # header names as selection compares them
        self._relaxed: dict[int, DkimpyField] = {}  # relaxed forms by header index

    def answer(self, name: bytes, timeout: float = 5) -> bytes | None:
        """The dnsfunc: a name we did not fetch is an error, never a query."""
        key = normalize(_text(name))
        lookup = self.fetched.get(key)
        if lookup is None:
            raise dkim.KeyFormatError(f"key record {key} was not fetched")
        if lookup.status is Status.TEMPERROR:
            raise dkim.DnsTimeoutError(f"{key}: {lookup.error or 'DNS did not answer'}")
        return pick_key_record(lookup.records) if lookup.ok else None

    def verify_ams(self, arc_set: ArcSet) -> SigOutcome:
        sig = dict(arc_set.ams or {})
        try:
            validate_tags(sig, AMS_TAGS, self.now)
        except dkim.DKIMException as exc:
            return SigOutcome(Result.FAIL, _clean(exc))
        include = [h.lower() for h in _H_SPLIT.split(sig[b"h"])]
        if b"arc-seal" in include:
            return SigOutcome(Result.FAIL, "h= covers ARC-Seal")
        if b"from" in include:  # as dkimpy: a second From field breaks the signature
            include.append(b"from")
        sig.setdefault(b"c", b"relaxed/relaxed")  # as dkimpy does for ARC
        return self._signature(sig, include, arc_set.ams_field, None)

    def verify_seal(self, chain: Sequence[ArcSet], arc_set: ArcSet) -> SigOutcome:
        sig = dict(arc_set.seal or {})
        try:
            validate_tags(sig, SEAL_TAGS, self.now)
        except dkim.DKIMException as exc:
            return SigOutcome(Result.FAIL, _clean(exc))
        if b"h" in sig:
            return SigOutcome(Result.FAIL, "h= is not allowed in an ARC-Seal")
        sig[b"c"] = b"relaxed/relaxed"  # RFC 8617 5.1.1
        covered: list[DkimpyField] = []
        for earlier in chain[: arc_set.instance]:  # sets 1..i in order (RFC 8617 5.1.1)
            covered += [earlier.aar_field, earlier.ams_field]
            if earlier is not arc_set:
                covered.append(earlier.seal_field)
        include = [name.lower() for name, _ in covered]
        covered.reverse()  # dkimpy picks repeated names from the bottom up
        return self._signature(sig, include, arc_set.seal_field, covered)

    def _signature(self, sig: dict[bytes, bytes], include: list[bytes],
                   sig_header: DkimpyField, headers: list[DkimpyField] | None) -> SigOutcome:
        """One signature over ``headers`` (None: the message's) and, with bh=, the body."""
        key, problem = self._key(sig)
        if key is None:
            return problem
        try:
            policy = CanonicalizationPolicy.from_c_value(sig[b"c"])
        except InvalidCanonicalizationPolicyError as exc:
            return SigOutcome(Result.FAIL, f"invalid c= value: {_clean(exc)}")
        try:
            if b"bh" in sig:
                wanted = base64.b64decode(_BLANKS.sub(b"", sig[b"bh"]))
                if self._body_hash(policy, sig.get(b"l")) != wanted:
                    return SigOutcome(Result.FAIL, "body hash mismatch")
            signature = base64.b64decode(_BLANKS.sub(b"", sig[b"b"]))
        except (binascii.Error, ValueError):
            return SigOutcome(Result.FAIL, "b= or bh= is not base64")
        relaxed = policy.header_algorithm.name == b"relaxed"
        if headers is None:
            selected = self._message_headers(include, relaxed)
        else:
            canonical = [relaxed_header(f) for f in headers] if relaxed else headers
            selected = dkim.select_headers(canonical, include)
        if not key.verify(signature, hash_selected(selected, sig_header, relaxed)):
            return SigOutcome(Result.FAIL, "signature mismatch")
        return SigOutcome(Result.PASS)

    def _key(self, sig: Mapping[bytes, bytes]) -> tuple[PublicKey | None, SigOutcome]:
        name = key_name(sig)
        if name is None:
            return None, SigOutcome(Result.FAIL, "s= and d= do not form a DNS name")
        try:
            record = self.answer(name.encode() + b".")
        except dkim.DnsTimeoutError as exc:
            return None, SigOutcome(Result.TEMPERROR, f"key lookup failed: {_clean(exc)}")
        except dkim.DKIMException as exc:
            return None, SigOutcome(Result.FAIL, _clean(exc))
        if not record:
            return None, SigOutcome(Result.FAIL, f"no key record at {name}")
        try:
            key = self.keys.get(record)
        except dkim.DKIMException as exc:
            return None, SigOutcome(Result.FAIL, f"key {name}: {_clean(exc)}")
        if not sig[b"a"].startswith(key.kind + b"-"):
            why = f"a={_text(sig[b'a'])} does not match the key type"
        elif key.kind == b"rsa" and key.bits < self.minkey:
            why = f"public key too small: {key.bits} bits"
        elif key.tls_only:
            why = f"key {name} is for TLS reports only (s=tlsrpt)"
        else:
            return key, SigOutcome(Result.PASS)
        return None, SigOutcome(Result.FAIL, why)

    def _body_hash(self, policy: CanonicalizationPolicy, length: bytes | None) -> bytes:
        cache_key = (policy.body_algorithm.name, length)
        digest = self._body_hashes.get(cache_key)
        if digest is None:
            if policy.body_algorithm.name == b"relaxed":
                body = relaxed_body(self.body)
            else:
                body = policy.canonicalize_body(self.body)
            if length is not None:
                body = body[: int(length)]
            digest = self._body_hashes[cache_key] = hashlib.sha256(body).digest()
        return digest

    def _message_headers(self, include: list[bytes], relaxed: bool) -> list[DkimpyField]:
        """``dkim.select_headers`` over the message's canonical header fields, canonicalizing
        only the fields it selects (each once per message)."""
        names = self._names.get(relaxed)
        if names is None:  # the names the canonical fields would have, lower-cased
            names = self._names[relaxed] = [
                name.lower().rstrip() if relaxed else name.lower() for name, _ in self.headers
            ]
        selected = []
        last: dict[bytes, int] = {}
        for h in include:  # dkim.select_headers, on the names
            i = last.get(h, len(names))
            while i > 0:
                i -= 1
                if names[i] == h:
                    selected.append(self._canonical_header(i, relaxed))
                    break
            last[h] = i
        return selected

    def _canonical_header(self, index: int, relaxed: bool) -> DkimpyField:
        if not relaxed:
            return self.headers[index]
        found = self._relaxed.get(index)
        if found is None:
            found = self._relaxed[index] = relaxed_header(self.headers[index])
        return found


def header_hash(canonical: list[DkimpyField], include: list[bytes], sig_header: DkimpyField,
                relaxed: bool) -> bytes:
    """SHA-256 over the selected canonical header fields and the signature field without its
    b= value and final CRLF (RFC 6376 3.7; dkimpy's hash_headers)."""
    return hash_selected(dkim.select_headers(canonical, include), sig_header, relaxed)


def hash_selected(selected: list[DkimpyField], sig_header: DkimpyField, relaxed: bool) -> bytes:
    """`header_hash` of header fields already selected (and canonicalized)."""
    hasher = hashlib.sha256()
    for name, value in selected:
        hasher.update(name + b":" + value)
    name, value = sig_header[0], strip_b(sig_header[1])
    if relaxed:
        name, value = relaxed_header((name, value))
    hasher.update(name + b":" + value.rstrip())
    return hasher.digest()


def verify_chain(chain: list[ArcSet], verifier: ChainVerifier) -> ChainResult:
    """RFC 8617 5.2 steps 4-7 over a structurally valid chain: the newest AMS, every seal
    newest first, then (on pass) the older AMSs for oldest-pass."""
    newest = chain[-1]

    def why(kind: str, arc_set: ArcSet, outcome: SigOutcome) -> str:
        tags = (arc_set.seal if kind == "seal" else arc_set.ams) or {}
        domain = _text(tags.get(b"d", b"?"))
        return f"{kind} i={arc_set.instance} (d={domain}) does not verify: {outcome.why}"

    temporary = None
    ams = verifier.verify_ams(newest)
    if ams.status is Result.FAIL:
        return ChainResult(Result.FAIL, why("message signature", newest, ams))
    if ams.status is Result.TEMPERROR:
        temporary = why("message signature", newest, ams)
    for arc_set in reversed(chain):
        seal = verifier.verify_seal(chain, arc_set)
        if seal.status is Result.FAIL:
            return ChainResult(Result.FAIL, why("seal", arc_set, seal))
        if seal.status is Result.TEMPERROR and temporary is None:
            temporary = why("seal", arc_set, seal)
    if temporary is not None:
        return ChainResult(Result.TEMPERROR, temporary)
    oldest: int | None = newest.instance  # lowest i down to which every AMS verifies
    for arc_set in reversed(chain[:-1]):
        status = verifier.verify_ams(arc_set).status
        if status is Result.TEMPERROR:
            oldest = None
        if status is not Result.PASS:
            break
        oldest = arc_set.instance
    return ChainResult(Result.PASS, oldest_pass=oldest)


async def fetch_keys(resolver: Resolver, names: list[str]) -> dict[str, Lookup]:
    """The key records at ``names``: cached answers directly, the others queried concurrently."""
    found: dict[str, Lookup] = {}
    missing = []
    for name in names:
        hit = resolver.cached(name, "TXT")
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit
    if missing:
        answers = await asyncio.gather(*(resolver.query(n, "TXT") for n in missing))
        found.update(zip(missing, answers, strict=True))
    return found


class ArcCheck(Check):
    """RFC 8617 chain validation; a trusted sealer that saw DMARC pass is reported."""

    name = "arc"
    symbols = frozenset({"ARC_PASS", "ARC_FAIL", "ARC_NONE", "ARC_TEMPERROR", "ARC_TRUSTED_SEALER"})
    depends = ()

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.keys = KeyCache()

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        parsed = tx.message.parsed
        arc_fields = [f for f in parsed.fields if f.lname in ARC_FIELDS]
        if not arc_fields:
            return [self._result(Result.NONE, "the message carries no ARC header fields")]
        try:
            chain = parse_chain(arc_fields)
        except ChainError as exc:
            return [self._result(Result.FAIL, "the ARC header fields are malformed", str(exc))]
        sealers = ", ".join(f"i={s.instance} d={s.sealer or '?'}" for s in chain)
        problem = check_cv(chain)
        if problem is not None:
            return [self._result(Result.FAIL, f"ARC chain ({sealers}) is broken", problem)]
        names = sorted({n for s in chain for n in (key_name(s.seal), key_name(s.ams)) if n})
        verifier = ChainVerifier(
            [dkimpy_field(f) for f in parsed.fields], parsed.body,
            await fetch_keys(ctx.resolver, names), self.keys, ctx.now,
            ctx.config.dkim.min_rsa_bits,
        )
        outcome = verify_chain(chain, verifier)
        if outcome.result is Result.TEMPERROR:
            detail = f"ARC chain ({sealers}) could not be checked: a key lookup failed"
            return [self._result(Result.TEMPERROR, detail, outcome.reason)]
        if outcome.result is not Result.PASS:
            detail = f"ARC chain ({sealers}) does not verify"
            return [self._result(Result.FAIL, detail, outcome.reason)]
        props = () if outcome.oldest_pass is None else (
            ("header.oldest-pass", str(outcome.oldest_pass)),
        )
        findings = [self._result(Result.PASS, f"ARC chain ({sealers}) verifies", props=props)]
        vouched = self._trusted_sealer(chain, ctx.config.arc.trusted_sealers)
        if vouched is not None:
            findings.append(vouched)
        return findings

    def _result(self, result: Result, detail: str, reason: str = "",
                props: tuple[tuple[str, str], ...] = ()) -> Finding:
        return self.finding(f"ARC_{result.upper()}", result, detail, method_result=True,
                            properties=props, reason=reason)

    def _trusted_sealer(self, chain: list[ArcSet], trusted_sealers: list[str]) -> Finding | None:
        """Walk back from the newest set while the sealers are trusted; the first whose AAR
        recorded dmarc=pass vouches for the message."""
        trusted = {d.lower().rstrip(".") for d in trusted_sealers}
        for arc_set in reversed(chain):
            if arc_set.sealer not in trusted:
                return None
            if records_pass(arc_set.aar or "", "dmarc"):
                detail = (
                    f"the ARC chain is intact and {arc_set.sealer}, a trusted forwarder, "
                    f"recorded dmarc=pass when the message reached it (i={arc_set.instance})"
                )
                return self.finding("ARC_TRUSTED_SEALER", Result.PASS, detail)
        return None
