"""DKIM verification core (RFC 6376, 8301, 8463): tag lists, canonicalization, keys, signatures.

Pure and synchronous: no DNS, no configuration, no globals that change. The DKIM check feeds it
the header fields, the body and the key records it looked up. Everything that can go wrong is a
`Problem` carrying an RFC 8601 result word, a short reason and a sentence in plain words.

Result words (RFC 8601 §2.7.1 vocabulary, RFC 6376 §6.1 steps):

- ``permerror``: the signature or its key record cannot be evaluated (RFC 6376 §6.1.1 and
  §6.1.2 PERMFAIL): tag-list syntax, missing required tag, v≠1, unknown a=/c=/q=, bad base64,
  invalid d= or s=, i= not under d=, x= not after t=, signature expired (x= before now),
  timestamp t= more than `CLOCK_SKEW` seconds in the future, h= without From (decided by the
  check, configurable), no key record, key syntax error (including v= other than DKIM1 or not
  first), unknown or mismatched key type (k= vs a=), key h= not listing the hash, key s= not
  ``email`` or ``*``, key t=s with an i= domain that is a subdomain of d=. RFC 8601 would also
  allow ``neutral`` for syntax errors; we use ``permerror`` for every "cannot evaluate" case so
  that a signature never looks better than it is.
- ``fail``: the signature was evaluated against a usable key and did not verify: body hash
  mismatch, header signature mismatch, body shorter than l=, and a revoked key (empty p=):
  RFC 6376 §6.1.2 step 7 says a revoked key "MUST [be treated] as a failed signature check".
- ``policy``: the signature verifies cryptographically but RFC 8301 forbids accepting it:
  an RSA key shorter than the configured minimum (1024) or the rsa-sha1 algorithm.
- ``temperror`` is decided by the check (the key lookup could not be done).

Edge cases: h= names are matched case-insensitively and selected bottom-up, each name taking
the next instance upwards; instances that do not exist (over-signing) are the null string. The
signature being verified is never selected through h= (it did not exist when it was made). For a
relaxed body without a final CRLF, trailing whitespace of the last line is kept (as dkimpy and
the RFC's order of steps do). Several TXT records at a key name: the first that parses is used.
Keys with t=y (testing) are verified normally; the flag is exposed for the report.
RSA signatures are checked by OpenSSL (cryptography), Ed25519 ones by libsodium (PyNaCl, as
dkimpy does): it is twice as fast as OpenSSL's Ed25519 here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from mailward.message import HeaderField
from mailward.model import Result

CLOCK_SKEW = 300  # seconds a signature's t= may lie in the future (clock drift)
MAX_TIME_DIGITS = 12  # RFC 6376 §3.5: longer t=/x= values may be treated as infinite
REQUIRED_TAGS = ("v", "a", "b", "bh", "d", "h", "s")
ALGORITHMS = {  # a= value -> (key type, hash name)
    "rsa-sha256": ("rsa", "sha256"),
    "rsa-sha1": ("rsa", "sha1"),
    "ed25519-sha256": ("ed25519", "sha256"),
}
CANONICALIZATIONS = ("simple", "relaxed")
_ALGORITHM_NAMES = {name.encode(): name for name in ALGORITHMS}
_CANONICAL_PAIRS = {  # the c= values as written, in lower case
    **{f"{h}/{b}".encode(): (h, b) for h in CANONICALIZATIONS for b in CANONICALIZATIONS},
    **{h.encode(): (h, "simple") for h in CANONICALIZATIONS},
}

_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*\Z")
# A well-formed tag-list (RFC 6376 §3.2): tag-spec *(";" tag-spec) [";"], and its (name, value)s.
_TAG_SPEC = rb"[ \t\r\n]*[A-Za-z][A-Za-z0-9_]*[ \t\r\n]*=[^;]*"
_TAG_LIST = re.compile(_TAG_SPEC + rb"(?:;" + _TAG_SPEC + rb")*(?:;[ \t\r\n]*)?")
_TAG_PAIR = re.compile(rb"[ \t\r\n]*([A-Za-z][A-Za-z0-9_]*)[ \t\r\n]*=([^;]*)")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")
_H_LIST = re.compile(rb"[\x21-\x39\x3b-\x7e]+(?:[ \t\r\n]*:[ \t\r\n]*[\x21-\x39\x3b-\x7e]+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+\Z")
_SELECTOR = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\Z")
_SPACE_RUN = re.compile(rb"  [ ]*")
_SPACE_CRLF = re.compile(rb" \r\n")
_RELAXED_WORK = re.compile(rb" (?: |\r\n)")  # what relaxed body canonicalization changes
_NOT_WSP_SPACE = re.compile(rb"[\r\n\x0b\x0c]")  # what bytes.split() takes for white space too
_QP_OCTET = re.compile(rb"=([0-9A-Fa-f]{2})")
_WHITESPACE = b" \t\r\n"
_HASHES = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}  # stateless descriptors
_HASHLIB = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
_PKCS1 = padding.PKCS1v15()


class Problem(Exception):
    """Why a signature does not pass: an RFC 8601 result, a short reason, plain words."""

    def __init__(self, result: Result, reason: str, detail: str) -> None:
        super().__init__(f"{result}: {reason}")
        self.result = result
        self.reason = reason
        self.detail = detail


def _syntax(reason: str, detail: str) -> Problem:
    return Problem(Result.PERMERROR, reason, detail)


# --- tag=value lists (RFC 6376 §3.2) ---------------------------------------------------------


def parse_tag_list(data: bytes) -> dict[str, bytes]:
    """Tags by name, values with surrounding whitespace removed; raises Problem (permerror)."""
    if _TAG_LIST.fullmatch(data) is not None:
        pairs = _TAG_PAIR.findall(data)
        tags = {name.decode("ascii"): value.strip(_WHITESPACE) for name, value in pairs}
        if len(tags) == len(pairs):
            return tags
    return _parse_tag_list_slowly(data)  # finds and names the problem


def _parse_tag_list_slowly(data: bytes) -> dict[str, bytes]:
    tags: dict[str, bytes] = {}
    specs = data.split(b";")
    if len(specs) > 1 and not specs[-1].strip(_WHITESPACE):
        specs.pop()  # a trailing ";" is allowed
    for spec in specs:
        name, eq, value = spec.partition(b"=")
        name = name.strip(_WHITESPACE)
        if not eq or not _TAG_NAME.match(name):
            shown = spec.strip(_WHITESPACE)[:40].decode("ascii", "replace")
            raise _syntax("tag syntax error", f"the tag list has a malformed entry {shown!r}")
        key = name.decode("ascii")
        if key in tags:
            raise _syntax("duplicate tag", f"the tag {key}= appears more than once")
        tags[key] = value.strip(_WHITESPACE)
    return tags


def _text(value: bytes) -> str:
    """Tag text for messages: non-ASCII bytes become U+FFFD, control characters "?"."""
    text = value.decode("ascii", "replace")
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text


def _base64(value: bytes, what: str) -> bytes:
    compact = value.translate(None, _WHITESPACE)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _syntax("bad base64", f"the {what} is not valid base64") from None


def _time(value: bytes, tag: str) -> int | None:
    """A t=/x= value; None means 'infinitely far' (more than 12 digits)."""
    if not value.isdigit():
        raise _syntax("bad timestamp", f"{tag}= is not a decimal number")
    if len(value) > MAX_TIME_DIGITS:
        return None
    return int(value)


def _split_list(value: bytes) -> list[str]:
    return [_text(item.strip(_WHITESPACE)) for item in value.split(b":")]


# --- the DKIM-Signature header field (RFC 6376 §3.5, §6.1.1) ---------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """A DKIM-Signature whose tags passed validation."""

    algorithm: str
    key_type: str
    hash_name: str
    header_canon: str
    body_canon: str
    domain: str
    selector: str
    identity: str | None
    headers: tuple[str, ...]
    body_hash: bytes
    signature: bytes
    length: int | None
    timestamp: int | None
    expiration: int | None

    @property
    def key_name(self) -> str:
        """Where the key record lives (RFC 6376 §3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def identity_domain(self) -> str:
        return (self.identity or "@" + self.domain).rpartition("@")[2].lower()


def parse_signature(tags: dict[str, bytes], now: float) -> Signature:
    """Validate a DKIM-Signature tag list (RFC 6376 §6.1.1); raises Problem (permerror)."""
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if missing:
        raise _syntax(
            "missing required tag",
            "the signature lacks the required tag(s) " + ", ".join(f"{t}=" for t in missing),
        )
    if tags["v"] != b"1":
        raise _syntax("incompatible version", f"v={_text(tags['v'])} is not DKIM version 1")
    algorithm = _ALGORITHM_NAMES.get(tags["a"].lower()) or _text(tags["a"]).lower()
    if algorithm not in ALGORITHMS:
        raise _syntax("unsupported algorithm", f"a={algorithm} is not a known signing algorithm")
    key_type, hash_name = ALGORITHMS[algorithm]
    c = tags.get("c")
    pair = _CANONICAL_PAIRS.get(c.lower()) if c is not None else ("simple", "simple")
    header_canon, body_canon = pair or _canonicalization(c)
    domain = _text(tags["d"]).lower()
    if not _DOMAIN.match(domain):
        raise _syntax("invalid domain", f"d={domain!r} is not a valid domain name")
    selector = _text(tags["s"]).lower()
    if not _SELECTOR.match(selector):
        raise _syntax("invalid selector", f"s={selector!r} is not a valid selector")
    identity = _identity(tags.get("i"), domain)
    headers = _signed_headers(tags["h"])
    _check_query_methods(tags.get("q"))
    length = _length(tags.get("l"))
    timestamp = _time(tags["t"], "t") if "t" in tags else None
    expiration = _time(tags["x"], "x") if "x" in tags else None
    _check_times(tags, timestamp, expiration, now)
    body_hash = _base64(tags["bh"], "body hash (bh=)")
    signature = _base64(tags["b"], "signature (b=)")
    if not signature:
        raise _syntax("empty signature", "the signature value b= is empty")
    return Signature(
        algorithm, key_type, hash_name, header_canon, body_canon, domain, selector, identity,
        headers, body_hash, signature, length, timestamp, expiration,
    )


def _canonicalization(value: bytes | None) -> tuple[str, str]:
    if value is None:
        return "simple", "simple"
    parts = _text(value).lower().split("/")
    if len(parts) == 1:
        parts.append("simple")
    if len(parts) != 2 or any(p not in CANONICALIZATIONS for p in parts):
        raise _syntax(
            "unsupported canonicalization", f"c={_text(value)} is not a known canonicalization"
        )
    return parts[0], parts[1]


def _identity(value: bytes | None, domain: str) -> str | None:
    if value is None:
        return None
    if value.find(b"=") >= 0:  # dkim-quoted-printable (RFC 6376 §2.11)
        value = _QP_OCTET.sub(lambda m: bytes([int(m.group(1), 16)]), value)
    identity = _text(value.translate(None, _WHITESPACE))
    _, at, host = identity.rpartition("@")
    host = host.lower()
    if not at or not _DOMAIN.match(host):
        raise _syntax("invalid identity", f"i={identity!r} is not an address or @domain")
    if host != domain and not host.endswith("." + domain):
        raise _syntax(
            "identity not in domain",
            f"the identity i={identity} is not in the signing domain {domain} or below it",
        )
    return identity


def _signed_headers(value: bytes) -> tuple[str, ...]:
    if _H_LIST.fullmatch(value) is not None:  # the usual case, in one pass
        return tuple(value.translate(None, _WHITESPACE).lower().decode("ascii").split(":"))
    names = [n.lower() for n in _split_list(value)]
    if not names or any(not _FIELD_NAME.match(n) for n in names):
        raise _syntax("bad h= list", "the list of signed header fields h= is malformed")
    return tuple(names)


def _check_query_methods(value: bytes | None) -> None:
    if value is None:
        return
    methods = [m.lower() for m in _split_list(value)]
    if "dns/txt" not in methods:
        raise _syntax(
            "unsupported query method", f"q={_text(value)} names no known key query method"
        )


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 76:
        raise _syntax("bad l= value", "the body length l= is not a decimal number")
    return int(value)


def _check_times(
    tags: dict[str, bytes], timestamp: int | None, expiration: int | None, now: float
) -> None:
    if "t" in tags and (timestamp is None or timestamp > now + CLOCK_SKEW):
        raise _syntax(
            "signature in the future",
            f"the signature claims to be made at t={_text(tags['t'])}, later than now",
        )
    if expiration is None:
        return
    if timestamp is not None and expiration <= timestamp:
        raise _syntax("x= not after t=", "the signature expires (x=) before it was made (t=)")
    if expiration < now:
        raise _syntax("signature expired", f"the signature expired at x={expiration}")


# --- key records (RFC 6376 §3.6.1, RFC 8463) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A parsed key record. ``key`` is None when the key was revoked (empty p=)."""

    key_type: str
    key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey | None
    bits: int
    hashes: frozenset[str] | None  # key h=; None = any
    email: bool  # s= allows the email service
    strict_domain: bool  # t=s
    testing: bool  # t=y
    ed25519_verifier: VerifyKey | None = None  # libsodium's (PyNaCl's), as dkimpy uses


def parse_key_record(record: bytes) -> PublicKey:
    """Parse one TXT key record; raises Problem (permerror) when it is unusable."""
    try:
        tags = parse_tag_list(record)
    except Problem as exc:
        raise _syntax("key syntax error", f"the key record is malformed: {exc.detail}") from None
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"] != b"DKIM1"):
        raise _syntax("key syntax error", "the key record's v= is not DKIM1 or not first")
    if "p" not in tags:
        raise _syntax("key syntax error", "the key record has no public key (p=)")
    key_type = _text(tags.get("k", b"rsa")).lower()
    if key_type not in ("rsa", "ed25519"):
        raise _syntax("unknown key type", f"the key record's type k={key_type} is not known")
    hashes_allowed = frozenset(h.lower() for h in _split_list(tags["h"])) if "h" in tags else None
    services = {s.lower() for s in _split_list(tags["s"])} if "s" in tags else {"*"}
    flags = set(_split_list(tags["t"])) if "t" in tags else set()
    data = tags["p"].translate(None, _WHITESPACE)
    key, bits = _load_key(key_type, data) if data else (None, 0)
    verifier = None
    if isinstance(key, ed25519.Ed25519PublicKey):
        verifier = VerifyKey(key.public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw))
    return PublicKey(
        key_type, key, bits, hashes_allowed, bool(services & {"email", "*"}), "s" in flags,
        "y" in flags, verifier,
    )


def _load_key(
    key_type: str, data: bytes
) -> tuple[rsa.RSAPublicKey | ed25519.Ed25519PublicKey, int]:
    raw = _base64(data, "public key (p=)")
    try:
        if key_type == "ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(raw), 256
        key = serialization.load_der_public_key(raw)  # SubjectPublicKeyInfo or RSAPublicKey
    except (ValueError, UnsupportedAlgorithm):
        raise _syntax("key syntax error", f"the {key_type} public key data is invalid") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise _syntax("key syntax error", "the public key data is not an RSA key")
    return key, key.key_size


class KeyCache:
    """Parsed key records (or why they are unusable), keyed by the record bytes; bounded LRU."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, PublicKey | Problem] = OrderedDict()

    def get(self, record: bytes) -> PublicKey:
        entry = self._entries.get(record)
        if entry is None:
            try:
                entry = parse_key_record(record)
            except Problem as exc:
                entry = exc
            self._entries[record] = entry
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(record)
        if isinstance(entry, Problem):
            raise entry.with_traceback(None)  # a cached instance must not collect tracebacks
        return entry

    def select(self, records: Iterable[bytes]) -> PublicKey:
        """The first usable record of an RRset; raises the first record's Problem if none is."""
        first: Problem | None = None
        for record in records:
            try:
                return self.get(record)
            except Problem as exc:
                first = first or exc
        if first is None:
            raise Problem(Result.PERMERROR, "no key for signature", "no key record was found")
        raise first

    def __len__(self) -> int:
        return len(self._entries)


def check_key(sig: Signature, key: PublicKey) -> None:
    """Whether this key may verify this signature (RFC 6376 §6.1.2); raises Problem."""
    if key.key_type != sig.key_type:
        raise _syntax(
            "key type mismatch", f"the key is {key.key_type} but the signature uses {sig.algorithm}"
        )
    if key.hashes is not None and sig.hash_name not in key.hashes:
        raise _syntax(
            "hash not allowed by key",
            f"the key record allows only {', '.join(sorted(key.hashes))}, not {sig.hash_name}",
        )
    if not key.email:
        raise _syntax("key not for email", "the key record's service type s= excludes email")
    if key.strict_domain and sig.identity_domain != sig.domain:
        raise _syntax(
            "identity subdomain not allowed",
            f"the key forbids subdomain identities (t=s) but i= is in {sig.identity_domain}",
        )
    if key.key is None:
        raise Problem(Result.FAIL, "key revoked", "the signing domain has revoked this key")


# --- canonicalization (RFC 6376 §3.4) --------------------------------------------------------


def _compress_whitespace(data: bytes) -> bytes:
    """Every run of SP/HTAB as one SP.

    The pattern starts with a two-space literal, which the regex engine scans for at C speed;
    a character-class pattern or bytes.replace loops are 2-10x slower on 30 KB bodies.
    """
    if data.find(b"\t") >= 0:  # (bytes.find: "in" raises and clears a TypeError first)
        data = data.replace(b"\t", b" ")
    return _SPACE_RUN.sub(b" ", data)


def simple_header(raw: bytes) -> bytes:
    return raw + b"\r\n"


def relaxed_header(raw: bytes) -> bytes:
    name, _, value = raw.partition(b":")
    if _NOT_WSP_SPACE.search(value) is not None:
        value = value.replace(b"\r\n", b"")  # unfold
        if _NOT_WSP_SPACE.search(value) is not None:
            value = _compress_whitespace(value).strip(b" \t")
            return name.rstrip(b" \t").lower() + b":" + value + b"\r\n"
    # only SP and HTAB are white space now: bytes.split compresses and strips at once
    return name.rstrip(b" \t").lower() + b":" + b" ".join(value.split()) + b"\r\n"


def canonical_body(body: bytes, relaxed: bool) -> bytes:
    """The body under simple or relaxed canonicalization (RFC 6376 §3.4.3, §3.4.4)."""
    if relaxed:
        body = _SPACE_CRLF.sub(b"\r\n", _compress_whitespace(body))
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    if end == 0:
        return b"" if relaxed else b"\r\n"
    if end == len(body):
        return body + b"\r\n"
    return body[: end + 2]


def canonical_body_at(data: bytes, start: int, relaxed: bool) -> bytes | memoryview:
    """``canonical_body(data[start:], relaxed)``, as a view into ``data`` (no copy of the body)
    when canonicalization only drops empty lines at the end, as it usually does."""
    if relaxed and (data.find(b"\t", start) >= 0 or _RELAXED_WORK.search(data, start)):
        return canonical_body(data[start:], True)
    end = len(data)
    while end > start and data.endswith(b"\r\n", start, end):
        end -= 2
    if end == start:
        return b"" if relaxed else b"\r\n"
    if end == len(data):
        return data[start:] + b"\r\n"
    return memoryview(data)[start : end + 2]


def strip_signature_value(raw: bytes) -> bytes:
    """The DKIM-Signature field with the b= value (and whitespace around it) removed."""
    name, colon, value = raw.partition(b":")
    specs = value.split(b";")
    for i, spec in enumerate(specs):
        tag, eq, _ = spec.partition(b"=")
        if eq and tag.strip(_WHITESPACE) == b"b":
            specs[i] = spec[: len(tag) + 1]
    return name + colon + b";".join(specs)


# --- verification (RFC 6376 §6.1.3) ----------------------------------------------------------


class MessageView:
    """One message as the verifier needs it: header fields by name, the body, and what is
    derived from them once per message for all its signatures (canonical bodies and their
    hashes).

    ``body`` holds the body from offset ``start`` (the parsed message's canonical bytes and
    body offset avoid copying the body); ``by_name`` is the fields by lower-case name in message
    order, when the caller has it already.
    """

    __slots__ = ("_by_name", "_canonical", "_data", "_hashes", "_start", "fields")

    def __init__(
        self, fields: Sequence[HeaderField], body: bytes, *, start: int = 0,
        by_name: Mapping[str, Sequence[HeaderField]] | None = None,
    ) -> None:
        self.fields = fields
        self._data = body
        self._start = start
        self._by_name = by_name
        self._canonical: dict[bool, bytes | memoryview] = {}
        self._hashes: dict[tuple[bool, str, int | None], bytes] = {}

    @property
    def body(self) -> bytes:
        return self._data[self._start :] if self._start else self._data

    def canonical_body(self, relaxed: bool) -> bytes | memoryview:
        body = self._canonical.get(relaxed)
        if body is None:
            body = self._canonical[relaxed] = canonical_body_at(self._data, self._start, relaxed)
        return body

    def body_hash(self, relaxed: bool, hash_name: str, length: int | None) -> bytes:
        key = (relaxed, hash_name, length)
        digest = self._hashes.get(key)
        if digest is None:
            body = self.canonical_body(relaxed)
            if length is not None:
                body = body[:length]
            digest = self._hashes[key] = _HASHLIB[hash_name](body).digest()
        return digest

    def select(self, names: Sequence[str], exclude: HeaderField) -> list[HeaderField]:
        """Fields named in h=, each name taking its next instance from the bottom up."""
        by_name = self._by_name
        if by_name is None:
            index: dict[str, list[HeaderField]] = {}
            for f in self.fields:
                index.setdefault(f.name.lower(), []).append(f)
            by_name = self._by_name = index
        taken: dict[str, int] = {}
        selected = []
        for name in names:
            instances = by_name.get(name)
            if not instances:
                continue
            if name == "dkim-signature":
                instances = [f for f in instances if f is not exclude]
            n = taken.get(name, 0)
            if n < len(instances):
                selected.append(instances[-1 - n])
            taken[name] = n + 1
        return selected


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of verifying one signature with its key."""

    result: Result
    reason: str
    detail: str
    key_bits: int = 0
    unsigned_octets: int = 0  # canonical body octets after l= (not covered by the signature)


def verify(
    sig: Signature, key: PublicKey, view: MessageView, sig_field: HeaderField, min_rsa_bits: int
) -> Verification:
    """Verify one signature against the message with a usable key (check_key passed)."""
    relaxed_body = sig.body_canon == "relaxed"
    body_len = len(view.canonical_body(relaxed_body))
    bits = key.bits
    if sig.length is not None and sig.length > body_len:
        return Verification(
            Result.FAIL, "body truncated",
            f"the body is shorter ({body_len} octets) than the signed length l={sig.length}",
            bits,
        )
    unsigned = body_len - sig.length if sig.length is not None else 0
    if view.body_hash(relaxed_body, sig.hash_name, sig.length) != sig.body_hash:
        return Verification(
            Result.FAIL, "body hash mismatch",
            "the message body was changed after it was signed (body hash mismatch)", bits,
            unsigned,
        )
    selected = view.select(sig.headers, sig_field)
    own = strip_signature_value(sig_field.raw)
    if sig.header_canon == "relaxed":
        parts = [relaxed_header(f.raw) for f in selected]
        parts.append(relaxed_header(own)[:-2])
        data = b"".join(parts)
    else:
        data = b"\r\n".join([*(f.raw for f in selected), own])
    try:
        if key.ed25519_verifier is not None:
            key.ed25519_verifier.verify(hashlib.sha256(data).digest(), sig.signature)
        elif isinstance(key.key, rsa.RSAPublicKey):
            key.key.verify(sig.signature, data, _PKCS1, _HASHES[sig.hash_name])
        else:  # pragma: no cover - check_key rejects revoked keys first
            raise InvalidSignature
    except (InvalidSignature, CryptoError, ValueError, TypeError):
        return Verification(
            Result.FAIL, "signature verification failed",
            "the signed header fields were changed after signing, or the signature is forged",
            bits, unsigned,
        )
    if key.key_type == "rsa" and bits < min_rsa_bits:
        return Verification(
            Result.POLICY, "key too short",
            f"the signature verifies, but its {bits}-bit RSA key is shorter than the "
            f"{min_rsa_bits} bits required (RFC 8301)", bits, unsigned,
        )
    if sig.hash_name == "sha1":
        return Verification(
            Result.POLICY, "rsa-sha1 not accepted",
            "the signature verifies, but rsa-sha1 is no longer accepted (RFC 8301)", bits,
            unsigned,
        )
    return Verification(
        Result.PASS, "", "the signed header fields and the body are unchanged since signing",
        bits, unsigned,
    )
