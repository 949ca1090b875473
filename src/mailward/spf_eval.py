"""RFC 7208 SPF: record parser (terms, CIDR, macros) and an async check_host() on our Resolver.

No Findings here: `check_host` returns an `SpfOutcome` (result word, deciding term, explanation,
the problem in plain words). Parsed records are kept in a `RecordCache` owned by the caller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from mailward.dns import Lookup, Resolver, Status, valid_name
from mailward.model import Result

MAX_MX_NAMES = 10  # RFC 7208 4.6.4: more MX names is a permerror
MAX_PTR_NAMES = 10  # RFC 7208 4.6.4: PTR names beyond the first 10 are ignored
MAX_DEPTH = 64  # include/redirect nesting; the lookup limit normally stops far earlier

DOMAIN_LETTERS = frozenset("slodipvh")
EXP_LETTERS = DOMAIN_LETTERS | frozenset("crt")  # RFC 7208 7.2: c, r, t only in exp text
MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
QUALIFIERS = {
    "+": Result.PASS, "-": Result.FAIL, "~": Result.SOFTFAIL, "?": Result.NEUTRAL,
}

_VERSION = re.compile(rb"v=spf1(?: |\Z)", re.IGNORECASE)
_MODIFIER = re.compile(r"([a-z][a-z0-9_.\-]*)=(.*)\Z", re.IGNORECASE | re.DOTALL)
_MECH_NAME = re.compile(r"[a-z][a-z0-9]*", re.IGNORECASE)
_MACRO_BODY = re.compile(r"([a-z])([0-9]*)(r?)([.\-+,/_=]*)\Z", re.IGNORECASE)
_DOMAIN_END = re.compile(
    r"\.(?:[0-9a-z]*[a-z][0-9a-z]*|[0-9a-z]+-[0-9a-z\-]*[0-9a-z])\.?\Z", re.IGNORECASE
)
_DUAL_CIDR = re.compile(r"(?:/([0-9]+))?(?://([0-9]+))?\Z")
_CIDR_DIGITS = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")
_IP4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
                  r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\Z")
_IP6_CHARS = re.compile(r"[0-9a-f:.]+\Z", re.IGNORECASE)
_ESCAPES = {"%": "%", "_": " ", "-": "%20"}  # RFC 7208 7.1: %%, %_ and %-


class SpfPermError(Exception):
    """check_host() ends in permerror: a broken record or a processing limit."""


class SpfSyntaxError(SpfPermError):
    """A record, term or macro string that does not follow the RFC 7208 grammar."""


class SpfTempError(Exception):
    """check_host() ends in temperror: DNS could not be asked."""


# --- parsed forms ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Macro:
    """One ``%{...}`` expansion: letter, URL-escaping, right-hand parts, reversal, delimiters."""

    letter: str
    escape: bool
    keep: int
    reverse: bool
    delimiters: str


@dataclass(frozen=True, slots=True)
class MacroString:
    """A parsed macro-string: literal text and `Macro`s. ``constant`` is set when no macros;
    ``name``, for a domain-spec without macros, is the name to query if it is a checkable one
    (worked out once here rather than for every message)."""

    text: str
    parts: tuple[str | Macro, ...]
    constant: str | None
    needs_p: bool
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Term:
    """One directive. ``network``/``prefix`` for ip4/ip6; ``target`` for DNS mechanisms."""

    text: str
    qualifier: Result
    kind: str
    target: MacroString | None = None
    cidr4: int = 32
    cidr6: int = 128
    network: int = 0
    prefix: int = 0


@dataclass(frozen=True, slots=True)
class SpfRecord:
    """A parsed ``v=spf1`` record: directives in order, and the two known modifiers."""

    text: str
    terms: tuple[Term, ...]
    redirect: MacroString | None
    exp: MacroString | None


def parse_macro_string(text: str, letters: frozenset[str], allow_space: bool = False
                       ) -> tuple[MacroString, str]:
    """Parse an RFC 7208 macro-string; returns it and the raw text after the last expansion."""
    parts: list[str | Macro] = []
    buf: list[str] = []
    tail_start = 0
    needs_p = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt and nxt in "%_-":
                buf.append(_ESCAPES[nxt])
                i += 2
            elif nxt == "{":
                close = text.find("}", i + 2)
                body = text[i + 2:close] if close > 0 else ""
                m = _MACRO_BODY.match(body)
                if close < 0 or m is None:
                    raise SpfSyntaxError(f"bad macro in {text!r}")
                letter = m[1].lower()
                if letter not in letters:
                    where = "in this place" if letter in EXP_LETTERS else "at all"
                    raise SpfSyntaxError(f"macro %{{{m[1]}}} is not allowed {where} in {text!r}")
                if m[2] and int(m[2]) == 0:
                    raise SpfSyntaxError(f"macro %{{{body}}} keeps zero parts in {text!r}")
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(Macro(letter, m[1].isupper(), int(m[2] or 0), bool(m[3]),
                                   m[4] or "."))
                needs_p = needs_p or letter == "p"
                i = close + 1
            else:
                raise SpfSyntaxError(f"'%' must be followed by {{, %, _ or - in {text!r}")
            tail_start = i
            continue
        if "!" <= ch <= "~" or (allow_space and ch == " "):
            buf.append(ch)
            i += 1
            continue
        raise SpfSyntaxError(f"character {ch!r} is not allowed in {text!r}")
    if buf:
        parts.append("".join(buf))
    constant = None
    if not any(isinstance(p, Macro) for p in parts):
        constant = "".join(p for p in parts if isinstance(p, str))
    return MacroString(text, tuple(parts), constant, needs_p), text[tail_start:]


def parse_domain_spec(text: str) -> MacroString:
    """domain-spec = macro-string domain-end (a ``.toplabel`` or a macro at the end)."""
    if not text:
        raise SpfSyntaxError("empty domain-spec")
    spec, tail = parse_macro_string(text, DOMAIN_LETTERS)
    if tail and not _DOMAIN_END.search(tail):
        raise SpfSyntaxError(f"{text!r} does not end in a valid top-level label")
    if spec.constant is None:
        return spec
    return replace(spec, name=checkable_domain(_as_domain(spec.constant)))


def parse_explanation(text: str) -> MacroString:
    """explanation-string = *( macro-string / SP ), every macro letter allowed."""
    return parse_macro_string(text, EXP_LETTERS, allow_space=True)[0]


def _cidr(digits: str | None, maximum: int, term: str) -> int:
    if digits is None:
        return maximum
    if not _CIDR_DIGITS.match(digits) or int(digits) > maximum:
        raise SpfSyntaxError(f"bad CIDR length /{digits} in {term!r}")
    return int(digits)


def _parse_term(text: str) -> Term:
    qualifier = QUALIFIERS.get(text[0])
    body = text[1:] if qualifier is not None else text
    m = _MECH_NAME.match(body)
    kind = m[0].lower() if m else ""
    if kind not in MECHANISMS:
        raise SpfSyntaxError(f"unknown mechanism {text!r}")
    rest = body[m.end():] if m else ""
    term = Term(text, qualifier or Result.PASS, kind)
    if kind == "all":
        if rest:
            raise SpfSyntaxError(f"'all' takes no argument: {text!r}")
        return term
    if kind in ("include", "exists"):
        if not rest.startswith(":"):
            raise SpfSyntaxError(f"{kind} needs ':domain': {text!r}")
        return Term(text, term.qualifier, kind, parse_domain_spec(rest[1:]))
    if kind in ("ip4", "ip6"):
        return _parse_ip_term(text, term.qualifier, kind, rest)
    cidr4, cidr6 = 32, 128
    if kind in ("a", "mx"):
        cm = _DUAL_CIDR.search(rest)
        assert cm is not None  # the pattern also matches the empty end
        cidr4, cidr6 = _cidr(cm[1], 32, text), _cidr(cm[2], 128, text)
        rest = rest[:cm.start()]
    if not rest:
        return Term(text, term.qualifier, kind, None, cidr4, cidr6)
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"bad {kind} mechanism {text!r}")
    return Term(text, term.qualifier, kind, parse_domain_spec(rest[1:]), cidr4, cidr6)


def _parse_ip_term(text: str, qualifier: Result, kind: str, rest: str) -> Term:
    if not rest.startswith(":"):
        raise SpfSyntaxError(f"{kind} needs an address: {text!r}")
    address, slash, digits = rest[1:].partition("/")
    if kind == "ip4":
        if not _IP4.match(address):
            raise SpfSyntaxError(f"bad IPv4 address in {text!r}")
        prefix = _cidr(digits if slash else None, 32, text)
        return Term(text, qualifier, kind, network=int(ipaddress.IPv4Address(address)),
                    prefix=prefix)
    try:
        if not _IP6_CHARS.match(address):
            raise ValueError(address)
        network = int(ipaddress.IPv6Address(address))
    except ValueError:
        raise SpfSyntaxError(f"bad IPv6 address in {text!r}") from None
    return Term(text, qualifier, kind, network=network,
                prefix=_cidr(digits if slash else None, 128, text))


def parse_record(text: str) -> SpfRecord:
    """Parse a whole record (syntax errors anywhere are errors, RFC 7208 4.6)."""
    pieces = [p for p in text.split(" ") if p]
    if not pieces or pieces[0].lower() != "v=spf1":
        raise SpfSyntaxError("not a v=spf1 record")
    terms: list[Term] = []
    redirect = exp = None
    for piece in pieces[1:]:
        mod = _MODIFIER.match(piece)
        if mod is None:
            terms.append(_parse_term(piece))
            continue
        name, value = mod[1].lower(), mod[2]
        if name in ("redirect", "exp"):
            if (redirect if name == "redirect" else exp) is not None:
                raise SpfSyntaxError(f"{name}= appears more than once")
            spec = parse_domain_spec(value)
            if name == "redirect":
                redirect = spec
            else:
                exp = spec
        else:  # unknown modifiers are ignored, but must be valid macro-strings
            parse_macro_string(value, EXP_LETTERS)
    return SpfRecord(text, tuple(terms), redirect, exp)


def select_record(records: tuple[bytes, ...]) -> bytes | None:
    """The one TXT record starting ``v=spf1`` (RFC 7208 4.5); several are a permerror."""
    found = [r for r in records if _VERSION.match(r)]
    if len(found) > 1:
        raise SpfPermError(f"{len(found)} SPF records published (only one is allowed)")
    return found[0] if found else None


_UNSEEN: Any = object()  # not in the RRset memo yet


class RecordCache:
    """Parsed records and explanation strings by their text, bounded (LRU); also the integer
    value of address texts seen in A/AAAA answers, and the SPF record of each TXT RRset."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes | str, SpfRecord | MacroString | SpfSyntaxError] = (
            OrderedDict())
        self._addresses: dict[str, tuple[int, int] | None] = {}
        self._rrsets: dict[tuple[bytes, ...], SpfRecord | SpfPermError | None] = {}

    def select(self, records: tuple[bytes, ...]) -> SpfRecord | None:
        """The parsed SPF record of a TXT RRset, None when it has none (RFC 7208 4.5); raises
        SpfPermError for several SPF records or a broken one. Remembered per RRset."""
        try:
            entry = self._rrsets.get(records, _UNSEEN)
        except TypeError:  # an RRset that is no tuple of bytes: read it, do not keep it
            entry = self._read(records)
        if entry is _UNSEEN:
            entry = self._read(records)
            if len(self._rrsets) >= self.max_entries:
                self._rrsets.clear()
            self._rrsets[records] = entry
        if isinstance(entry, SpfPermError):
            raise entry.with_traceback(None)  # a kept instance must not collect tracebacks
        return entry

    def _read(self, records: tuple[bytes, ...]) -> SpfRecord | SpfPermError | None:
        try:
            text = select_record(records)
            return None if text is None else self.record(text)
        except SpfPermError as exc:
            return exc

    def address(self, text: str) -> tuple[int, int] | None:
        """(IP version, integer) of an address text from DNS; None if it is not one."""
        try:
            return self._addresses[text]
        except KeyError:
            pass
        try:
            addr = ipaddress.ip_address(text)
            value: tuple[int, int] | None = (addr.version, int(addr))
        except ValueError:
            value = None
        if len(self._addresses) >= self.max_entries:
            self._addresses.clear()
        self._addresses[text] = value
        return value

    def _get(self, key: bytes | str) -> SpfRecord | MacroString | SpfSyntaxError:
        entry = self._entries.get(key)
        if entry is None:
            try:
                if isinstance(key, bytes):
                    if not key.isascii():
                        raise SpfSyntaxError("the SPF record contains non-ASCII characters")
                    entry = parse_record(key.decode("ascii"))
                else:
                    entry = parse_explanation(key)
            except SpfSyntaxError as exc:
                entry = exc
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def record(self, text: bytes) -> SpfRecord:
        entry = self._get(text)
        if isinstance(entry, SpfSyntaxError):
            raise entry.with_traceback(None)  # a kept instance must not collect tracebacks
        assert isinstance(entry, SpfRecord)
        return entry

    def explanation(self, text: str) -> MacroString | None:
        entry = self._get(text)
        return entry if isinstance(entry, MacroString) else None

    def __len__(self) -> int:
        return len(self._entries)


# --- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """RFC 7208 4.6.4 processing limits (configurable: ``spf.lookup_limit``, ...)."""

    lookups: int = 10
    void_lookups: int = 2


@dataclass(frozen=True, slots=True)
class SpfOutcome:
    """The result of one check_host() and what decided it."""

    result: Result
    domain: str
    sender: str
    term: str = ""  # the directive that matched at the top level ("" = none did)
    term_domain: str = ""  # whose record holds it (differs after redirect=)
    explanation: str | None = None  # exp= text, for a fail only
    problem: str = ""  # why none / permerror / temperror
    lookups: int = 0
    void_lookups: int = 0


@dataclass(frozen=True, slots=True)
class _Answer:
    result: Result
    term: Term | None
    domain: str
    record: SpfRecord


def client_address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's address; an IPv4-mapped IPv6 address counts as IPv4 (RFC 7208 5)."""
    quad = _IP4.match(ip)
    if quad is not None:  # the common case, without ipaddress's slower parser
        a, b, c, d = map(int, ip.split("."))
        return ipaddress.IPv4Address(a << 24 | b << 16 | c << 8 | d)
    addr = ipaddress.ip_address(ip.strip())
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def identity(mail_from: str, helo: str) -> tuple[str, str]:
    """(sender, domain) for check_host: MAIL FROM, or postmaster@HELO for the null sender."""
    address = mail_from.strip().strip("<>").strip()
    if not address:
        return f"postmaster@{helo}", helo
    local, at, domain = address.rpartition("@")
    if not at:
        return f"postmaster@{address}", address
    return f"{local or 'postmaster'}@{domain}", domain


def checkable_domain(domain: str) -> str | None:
    """RFC 7208 4.3: the domain as queried, or None when malformed / not multi-label."""
    name = domain.strip().rstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if name.startswith("[") or "." not in name or not valid_name(name):
        return None
    return name


def _as_domain(name: str) -> str:
    """A macro-expanded target name: no trailing dot, left labels cut to 253 octets."""
    name = name[:-1] if name.endswith(".") else name
    while len(name) > 253 and "." in name:
        name = name.split(".", 1)[1]
    return name


async def check_host(
    resolver: Resolver, records: RecordCache,
    ip: str | ipaddress.IPv4Address | ipaddress.IPv6Address, domain: str, sender: str, *,
    helo: str = "", limits: Limits | None = None, receiver: str = "unknown", now: float = 0.0,
    on_wait: Callable[[], object] | None = None,
) -> SpfOutcome:
    """RFC 7208 check_host(<ip>, <domain>, <sender>). Never raises for bad input or DNS.

    ``on_wait`` is called once, the first time the evaluation has to wait for an answer that
    is not in the DNS cache (a caller can start other work concurrently only when it pays).
    """
    try:
        addr = client_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return SpfOutcome(Result.NONE, domain, sender, problem=f"{ip!r} is not an IP address")
    run = _Evaluation(resolver, records, addr, sender, helo, limits or Limits(), receiver, now)
    run.on_wait = on_wait
    return await run.top(domain)


class _Evaluation:
    """State of one check_host() including its includes and redirects.

    Answers in the resolver's cache are taken synchronously (``resolver.cached``) before
    anything is awaited: a warm evaluation creates as few coroutines as it can.
    """

    __slots__ = ("_validated", "addr", "bits", "helo", "ip", "limits", "local", "lookups",
                 "now", "on_wait", "rdtype", "receiver", "records", "resolver", "sender",
                 "sender_domain", "v6", "version", "voids")

    def __init__(self, resolver: Resolver, records: RecordCache,
                 addr: ipaddress.IPv4Address | ipaddress.IPv6Address, sender: str, helo: str,
                 limits: Limits, receiver: str, now: float) -> None:
        self.resolver = resolver
        self.records = records
        self.limits = limits
        self.addr = addr
        self.version = addr.version
        self.v6 = self.version == 6
        self.bits = 128 if self.v6 else 32
        self.ip = int(addr)
        self.rdtype = "AAAA" if self.v6 else "A"
        local, _, self.sender_domain = sender.rpartition("@")
        self.local = local or "postmaster"
        self.sender = f"{self.local}@{self.sender_domain}"
        self.helo = helo
        self.receiver = receiver
        self.now = now
        self.lookups = 0
        self.voids = 0
        self._validated: list[str] | None = None
        self.on_wait: Callable[[], object] | None = None

    def _waiting(self) -> None:
        if self.on_wait is not None:
            on_wait, self.on_wait = self.on_wait, None
            on_wait()

    async def _query(self, name: str, rdtype: str) -> Lookup:
        hit = self.resolver.cached(name, rdtype)
        if hit is not None:
            return hit
        self._waiting()
        return await self.resolver.query(name, rdtype)

    @property
    def reverse_name(self) -> str:
        """The PTR query name of the client (in-addr.arpa / ip6.arpa)."""
        return self.addr.reverse_pointer

    def _macro_value(self, letter: str) -> str:
        """RFC 7208 7.3 values of s, l, o, i, v, h, c, r, t (d and p depend on the place)."""
        if letter == "s":
            return self.sender
        if letter == "l":
            return self.local
        if letter == "o":
            return self.sender_domain
        if letter == "i":  # IPv6: dot-separated nibbles (upper case, as the test suite has it)
            return ".".join(f"{self.ip:032X}") if self.v6 else str(self.addr)
        if letter == "v":
            return "ip6" if self.v6 else "in-addr"
        if letter == "h":
            return self.helo
        if letter == "c":
            return str(self.addr)
        if letter == "r":
            return self.receiver
        return str(int(self.now))  # t

    def _outcome(self, result: Result, domain: str, *, term: str = "", term_domain: str = "",
                 explanation: str | None = None, problem: str = "") -> SpfOutcome:
        return SpfOutcome(result, domain, self.sender, term, term_domain, explanation, problem,
                          self.lookups, self.voids)

    async def top(self, domain: str) -> SpfOutcome:
        name = checkable_domain(domain)
        if name is None:
            return self._outcome(Result.NONE, domain,
                                 problem=f"{domain!r} is not a domain name SPF can check")
        try:
            record = await self._record(name, top=True)
            if isinstance(record, str):
                return self._outcome(Result.NONE, name, problem=record)
            answer = await self._evaluate(record, name, 0)
        except SpfTempError as exc:
            return self._outcome(Result.TEMPERROR, name, problem=str(exc))
        except SpfPermError as exc:
            return self._outcome(Result.PERMERROR, name, problem=str(exc))
        explanation = None
        if answer.result is Result.FAIL and answer.term and answer.record.exp is not None:
            explanation = await self._explain(answer.record.exp, answer.domain)
        return self._outcome(answer.result, name, term=answer.term.text if answer.term else "",
                             term_domain=answer.domain, explanation=explanation)

    # --- records and terms

    async def _record(self, domain: str, top: bool = False, checked: bool = False
                      ) -> SpfRecord | str:
        """The parsed SPF record of a domain, or why there is none (RFC 7208 4.3-4.5).

        ``checked``: the name is known to be checkable. ``top``: the domain of check_host()
        itself (checked, and a void answer there is no term's void lookup).
        """
        if not (top or checked) and checkable_domain(domain) is None:
            return f"{domain!r} is not a valid domain name"
        lookup = self.resolver.cached(domain, "TXT") or await self._query(domain, "TXT")
        self._check(lookup, count_void=not top)
        if not lookup.ok:
            return f"{domain} does not exist"
        try:
            record = self.records.select(lookup.records)
        except SpfPermError as exc:
            if top:
                raise
            raise SpfPermError(f"in the SPF record of {domain}: {exc}") from None
        if record is None:
            return f"{domain} publishes no SPF record"
        return record

    def _check(self, lookup: Lookup, count_void: bool = True) -> None:
        if lookup.status is Status.TEMPERROR:
            why = lookup.error or "no answer"
            raise SpfTempError(f"DNS lookup of {lookup.name} {lookup.rdtype} failed: {why}")
        if count_void and lookup.void:
            self.voids += 1
            if self.voids > self.limits.void_lookups:
                raise SpfPermError(f"more than {self.limits.void_lookups} DNS lookups found "
                                   "nothing (void lookup limit, RFC 7208 4.6.4)")

    def _count_lookup(self) -> None:
        self.lookups += 1
        if self.lookups > self.limits.lookups:
            raise SpfPermError(f"more than {self.limits.lookups} DNS-querying terms "
                               "(lookup limit, RFC 7208 4.6.4)")

    async def _evaluate(self, record: SpfRecord, domain: str, depth: int) -> _Answer:
        if depth > MAX_DEPTH:
            raise SpfPermError("include/redirect nesting too deep")
        for term in record.terms:
            kind = term.kind
            if kind == "ip4" or kind == "ip6":  # no DNS: decided here, without a coroutine
                matched = self.v6 == (kind == "ip6") and self._in(term.network, term.prefix)
            else:
                matched = kind == "all" or await self._matches(term, domain, depth)
            if matched:
                return _Answer(term.qualifier, term, domain, record)
        if record.redirect is None:
            return _Answer(Result.NEUTRAL, None, domain, record)
        self._count_lookup()
        target = await self._target(record.redirect, domain)
        sub = await self._record(target, checked=record.redirect.name is not None)
        if isinstance(sub, str):
            raise SpfPermError(f"redirect={target}: {sub}")
        return await self._evaluate(sub, target, depth + 1)

    async def _matches(self, term: Term, domain: str, depth: int) -> bool:
        """Whether a DNS-querying mechanism (include, a, mx, ptr, exists) matches."""
        kind = term.kind
        self._count_lookup()
        spec = term.target
        if spec is None:
            target, checked = domain, True  # the current domain was checked when entered
        elif spec.name is not None:
            target, checked = spec.name, True
        else:
            target, checked = await self._target(spec, domain), False
        if kind == "include":
            sub = await self._record(target, checked=checked)
            if isinstance(sub, str):
                raise SpfPermError(f"include:{target}: {sub}")
            return (await self._evaluate(sub, target, depth + 1)).result is Result.PASS
        if not checked and not valid_name(target):
            return False  # an unqueryable target name does not match (RFC 7208 4.8)
        if kind == "a":
            rdtype = self.rdtype
            lookup = self.resolver.cached(target, rdtype) or await self._query(target, rdtype)
            self._check(lookup)
            return self._any_in(lookup.records, term)
        if kind == "mx":
            return await self._mx(target, term)
        if kind == "exists":
            lookup = self.resolver.cached(target, "A") or await self._query(target, "A")
            self._check(lookup)
            return bool(lookup.records)
        return await self._ptr(target)

    def _in(self, network: int, prefix: int) -> bool:
        shift = self.bits - prefix
        return (self.ip ^ network) >> shift == 0

    def _any_in(self, addresses: tuple[str, ...], term: Term) -> bool:
        prefix = term.cidr6 if self.v6 else term.cidr4
        address = self.records.address
        for text in addresses:
            value = address(text)
            if value is not None and value[0] == self.version and self._in(value[1], prefix):
                return True
        return False

    async def _mx(self, target: str, term: Term) -> bool:
        lookup = self.resolver.cached(target, "MX") or await self._query(target, "MX")
        self._check(lookup)
        if len(lookup.records) > MAX_MX_NAMES:
            raise SpfPermError(f"mx:{target} has {len(lookup.records)} MX records "
                               f"(more than {MAX_MX_NAMES}, RFC 7208 4.6.4)")
        hosts = list(dict.fromkeys(h for _, h in sorted(lookup.records) if h and h != "."))
        for answer in await self._lookup_all([h for h in hosts if valid_name(h)], self.rdtype):
            if answer.status is Status.TEMPERROR:
                self._check(answer)
            if self._any_in(answer.records, term):
                return True
        return False

    async def _ptr(self, target: str) -> bool:
        target = target.lower()
        names = await self._ptr_names(count_void=True)
        suffix = "." + target
        candidates = [n for n in names if n == target or n.endswith(suffix)]
        return bool(await self._validate(candidates))

    async def _ptr_names(self, count_void: bool) -> list[str]:
        lookup = await self._query(self.reverse_name, "PTR")
        if lookup.status is Status.TEMPERROR:
            return []  # RFC 7208 5.5: a DNS error on the PTR lookup is no match
        self._check(lookup, count_void)
        return [n for n in lookup.records[:MAX_PTR_NAMES] if valid_name(n)]

    async def _validate(self, names: list[str]) -> list[str]:
        """Names whose A/AAAA records include the client (errors skip the name)."""
        answers = await self._lookup_all(names, self.rdtype)
        return [n for n, a in zip(names, answers, strict=True)
                if a.ok and any(self.records.address(r) == (self.version, self.ip)
                                for r in a.records)]

    async def _lookup_all(self, names: list[str], rdtype: str) -> list[Lookup]:
        """Answers for several names, in order; the uncached ones are asked concurrently."""
        answers = [self.resolver.cached(n, rdtype) for n in names]
        missing = [i for i, a in enumerate(answers) if a is None]
        if missing:
            self._waiting()
        if len(missing) == 1:
            answers[missing[0]] = await self.resolver.query(names[missing[0]], rdtype)
        elif missing:
            fetched = await asyncio.gather(
                *(self.resolver.query(names[i], rdtype) for i in missing))
            for i, answer in zip(missing, fetched, strict=True):
                answers[i] = answer
        return [a for a in answers if a is not None]

    # --- macros and explanations

    async def _p_macro(self, domain: str) -> str:
        """RFC 7208 7.3 ``p``: a validated name of the client, preferring <domain>'s own."""
        if self._validated is None:
            self._validated = await self._validate(await self._ptr_names(count_void=False))
        names = self._validated
        domain = domain.lower().rstrip(".")
        if domain in names:
            return domain
        return next((n for n in names if n.endswith("." + domain)),
                    names[0] if names else "unknown")

    async def _expand(self, spec: MacroString, domain: str) -> str:
        p = await self._p_macro(domain) if spec.needs_p else "unknown"
        out: list[str] = []
        for part in spec.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.letter == "d":
                value = domain
            elif part.letter == "p":
                value = p
            else:
                value = self._macro_value(part.letter)
            if part.reverse or part.keep or part.delimiters != ".":
                pieces = re.split("[" + re.escape(part.delimiters) + "]", value)
                if part.reverse:
                    pieces.reverse()
                value = ".".join(pieces[-part.keep:] if part.keep else pieces)
            out.append(quote(value, safe="~") if part.escape else value)
        return "".join(out)

    async def _target(self, spec: MacroString, domain: str) -> str:
        if spec.name is not None:
            return spec.name
        if spec.constant is not None:
            return _as_domain(spec.constant)
        return _as_domain(await self._expand(spec, domain))

    async def _explain(self, exp: MacroString, domain: str) -> str | None:
        """The exp= text, or None when it cannot be had (RFC 7208 6.2: then ignore exp=)."""
        name = await self._target(exp, domain)
        if not valid_name(name):
            return None
        lookup = await self._query(name, "TXT")
        if not lookup.ok or len(lookup.records) != 1 or not lookup.records[0].isascii():
            return None
        spec = self.records.explanation(lookup.records[0].decode("ascii"))
        return None if spec is None else await self._expand(spec, domain)
