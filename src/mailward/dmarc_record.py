"""DMARC policy records (RFC 9989 §4.7, §4.8) and the DNS Tree Walk that finds them (§4.10).

Section numbers are those of RFC 9989 (= draft-ietf-dmarc-dmarcbis-41, whose text it publishes).
Parsing is pure and cached by the caller keyed by the record text; the tree walk only talks to
the shared `Resolver`.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mailward.dns import Lookup, Resolver, Status


class Policy(enum.StrEnum):
    """A Domain Owner Assessment Policy (RFC 9989 §4.7 dmarc-request)."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"

    def testing(self) -> Policy:
        """The policy one level below, applied when ``t=y`` (RFC 9989 §4.7, tag "t")."""
        return _ONE_BELOW[self]


_ONE_BELOW = {Policy.REJECT: Policy.QUARANTINE, Policy.QUARANTINE: Policy.NONE,
              Policy.NONE: Policy.NONE}
_POLICY_WORDS = {p.value: p for p in Policy}

# RFC 9989 §4.8: dmarc-version = "v" equals %s"DMARC1" (the value is case-sensitive), followed by
# a dmarc-sep or the end of the record. Surrounding white space is tolerated.
_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
# dmarc-tag = 1*ALPHA equals 1*dmarc-value (';' splits tags). Values are checked per tag, so that
# "p=" or "p=réject" is an invalid p tag rather than no p tag at all.
_TAG = re.compile(r"([A-Za-z]+)[ \t]*=[ \t]*(.*)", re.DOTALL)
# RFC 3986 URI, loosely: scheme ":" something; obs-dmarc-report-size ("!10m") is dropped.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s,!]+")
_REPORT_SIZE = re.compile(r"![0-9]+[kmgtKMGT]?$")
_HISTORIC = frozenset({"pct", "rf", "ri"})  # RFC 9989 §9.3 / App. C.5.2: removed tags


@dataclass(frozen=True, slots=True)
class DmarcRecord:
    """One parsed DMARC Policy Record.

    ``p``/``sp``/``np`` are None when absent or invalid; ``problems`` then says what is
    wrong with them (RFC 9989 §4.10.1), and ``notes`` lists the syntax errors that were
    discarded in favour of defaults (§4.8) and legacy RFC 7489 tags that were mapped or ignored.
    """

    text: str
    p: Policy | None = None
    sp: Policy | None = None
    np: Policy | None = None
    adkim: str = "r"
    aspf: str = "r"
    psd: str = "u"
    testing: bool = False
    rua: tuple[str, ...] = ()
    p_absent: bool = True
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def policy_problem(self) -> str:
        return "; ".join(self.problems)

    @property
    def lacks_only_p(self) -> bool:
        """No p= tag, and nothing else wrong with sp=/np= (a record that only asks for
        reports or only sets sp/np)."""
        return self.p_absent and len(self.problems) == 1

    @property
    def usable(self) -> bool:
        """RFC 9989 §4.10.1: a record whose p/sp/np are not all valid is only used (as if it
        said ``p=none``) when it has at least one syntactically valid ``rua`` URI."""
        return not self.problems or bool(self.rua)

    @property
    def substitutes_none(self) -> bool:
        """Whether the record is acted on as if it contained ``p=none`` (§4.10.1)."""
        return bool(self.problems) and bool(self.rua)

    def published(self, role: str) -> tuple[Policy, str]:
        """The published policy and the tag it came from, for the Author Domain's ``role``:
        ``author`` (record at the Author Domain: p), ``subdomain`` (an existing subdomain of the
        record's domain: sp, else p) or ``nonexistent`` (np, else sp, else p) — §4.10.1 and the
        "np"/"sp" tag definitions in §4.7."""
        if self.substitutes_none or self.p is None:
            return Policy.NONE, "p"
        if role == "nonexistent" and self.np is not None:
            return self.np, "np"
        if role != "author" and self.sp is not None:
            return self.sp, "sp"
        return self.p, "p"

    def applied(self, policy: Policy) -> Policy:
        """The policy to apply after ``t=`` (RFC 9989 §4.7: t=y applies one level below)."""
        return policy.testing() if self.testing else policy


def parse_record(raw: bytes) -> DmarcRecord | None:
    """Parse one TXT record; None when it is not a DMARC record (does not start with
    ``v=DMARC1``: RFC 9989 §4.7 tag "v", §4.10 step 2). Never raises."""
    text = raw.decode("utf-8", "replace").strip(" \t")
    head = _VERSION.match(text)
    if head is None:
        return None
    values: dict[str, str] = {}
    notes: list[str] = []
    conflicts: list[str] = []
    for part in text[head.end() :].split(";"):
        part = part.strip(" \t")
        if not part:
            continue
        m = _TAG.fullmatch(part)
        if m is None:
            notes.append(f"ignored {part[:40]!r}: not a tag=value pair (RFC 9989 §4.8)")
            continue
        name, value = m.group(1).lower(), m.group(2).rstrip(" \t")
        if name in values:
            if values[name] != value and name in ("p", "sp", "np"):
                conflicts.append(name)
            notes.append(f"ignored repeated {name}={value}")
            continue
        values[name] = value
    return _build(text, values, notes, conflicts)


def _build(
    text: str, values: dict[str, str], notes: list[str], conflicts: list[str]
) -> DmarcRecord:
    problems: list[str] = []
    policies: dict[str, Policy | None] = {}
    for tag in ("p", "sp", "np"):
        raw = values.get(tag)
        policy = _POLICY_WORDS.get(raw.lower()) if raw is not None else None
        if tag in conflicts:
            problems.append(f"{tag}= is given twice with different values")
            policy = None
        elif raw is not None and policy is None:
            problems.append(f"{tag}={raw} is not none, quarantine or reject")
        policies[tag] = policy
    if "p" not in values:
        problems.insert(0, "the record has no p= tag")
    adkim = _choice(values, "adkim", "rs", "r", notes)
    aspf = _choice(values, "aspf", "rs", "r", notes)
    psd = _choice(values, "psd", "ynu", "u", notes)
    t = _choice(values, "t", "yn", "", notes)
    testing = t == "y"
    if "pct" in values:
        testing = _legacy_pct(values["pct"], t, testing, notes)
    for tag in sorted(_HISTORIC.intersection(values) - {"pct"}):
        notes.append(f"ignored {tag}= (RFC 7489 tag, removed by RFC 9989 App. C.5.2)")
    rua = _uris(values.get("rua", ""))
    return DmarcRecord(
        text=text,
        p=policies["p"],
        sp=policies["sp"],
        np=policies["np"],
        adkim=adkim,
        aspf=aspf,
        psd=psd,
        testing=testing,
        rua=rua,
        p_absent="p" not in values,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _choice(values: dict[str, str], tag: str, allowed: str, default: str, notes: list[str]) -> str:
    raw = values.get(tag)
    if raw is None:
        return default
    value = raw.lower()
    if len(value) == 1 and value in allowed:
        return value
    notes.append(f"ignored {tag}={raw}: not one of {'/'.join(allowed)} (RFC 9989 §4.8)")
    return default


def _legacy_pct(raw: str, t: str, testing: bool, notes: list[str]) -> bool:
    """RFC 9989 App. A.6: the "t" tag replaces RFC 7489's "pct"; t=y and t=n are "analogous ...
    to the pct tag values 0 and 100". So without an explicit t=, pct=0 means t=y and pct=100
    means t=n. Any other value has no meaning any more: "pct" is a removed, historic tag
    (App. C.5.2, §9.3) and unknown tags MUST be ignored (§4.7), so the policy applies in full —
    there is no sampling in RFC 9989."""
    if t:
        notes.append(f"ignored pct={raw}: the record also has t={t} (RFC 9989 App. A.6)")
        return testing
    if raw.strip() == "0":
        notes.append("pct=0 taken as t=y, testing (RFC 9989 App. A.6)")
        return True
    if raw.strip() != "100":
        notes.append(
            f"ignored pct={raw}: RFC 9989 has no sampling; the policy applies in full "
            "(App. A.6, C.5.2)"
        )
    return testing


def _uris(raw: str) -> tuple[str, ...]:
    out = []
    for item in raw.split(","):
        uri = _REPORT_SIZE.sub("", item.strip(" \t"))
        if _URI.fullmatch(uri):
            out.append(uri)
    return tuple(out)


# --- the DNS Tree Walk ----------------------------------------------------------------------


def walk_names(domain: str, max_labels: int = 8) -> list[str]:
    """The names a DNS Tree Walk queries, in order (RFC 9989 §4.10 steps 1-7).

    The domain itself first; then, if it has ``max_labels`` (8) or more labels, its right-most
    ``max_labels - 1`` (7) labels, else its parent; then one label less each time, down to the
    single top-level label. So at most ``max_labels`` names are queried, e.g. for
    ``a.b.c.d.e.f.g.h.i.j.mail.example.com``: itself, ``g.h.i.j.mail.example.com``, ...,
    ``com``.
    """
    labels = domain.split(".")
    first = min(len(labels) - 1, max(1, max_labels) - 1)
    return [domain] + [".".join(labels[-k:]) for k in range(first, 0, -1)]


@dataclass(slots=True)
class Walk:
    """One DNS Tree Walk from ``domain`` up: the valid DMARC records found, longest name first.

    ``temperror`` names the query that could not be answered; the walk stops there, and what
    lies above it is unknown. A walk is advanced lazily: policy discovery often needs only the
    first name.
    """

    domain: str
    names: list[str]
    records: list[tuple[str, DmarcRecord]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    temperror: str = ""
    position: int = 0
    finished: bool = False
    tasks: dict[int, asyncio.Future[Lookup]] = field(default_factory=dict)

    @property
    def own_record(self) -> DmarcRecord | None:
        """The record published at the walk's own domain (needs the first step done)."""
        if self.records and self.records[0][0] == self.domain:
            return self.records[0][1]
        return None

    def organizational_domain(self) -> str | None:
        """RFC 9989 §4.10.2, over the records from the longest name to the shortest: a record
        with psd=n is the Organizational Domain; a psd=y record other than the starting one
        makes the name one label below it the Organizational Domain; otherwise the record with
        the fewest labels; with no record at all, the starting domain. None when a DNS
        temperror leaves it undetermined. Needs a finished walk."""
        assert self.finished
        if self.temperror:
            return None
        for name, record in self.records:
            if record.psd == "n":
                return name
            if record.psd == "y" and name != self.domain:
                below = name.count(".") + 2
                return ".".join(self.domain.split(".")[-below:])
        return self.records[-1][0] if self.records else self.domain

    def policy_domain(self) -> tuple[str, DmarcRecord, str] | None:
        """RFC 9989 §4.10.1: the record of the Author Domain, else of its Organizational
        Domain, else of its Public Suffix Domain, as ``(name, record, role)`` with role
        ``author``, ``organizational`` or ``public suffix``; None when the walk found no
        record. Needs a finished walk without temperror when there is no own record."""
        own = self.own_record
        if own is not None:
            return self.domain, own, "author"
        assert self.finished and not self.temperror
        if not self.records:
            return None
        org = self.organizational_domain()
        for name, record in self.records:
            if name == org:
                return name, record, "organizational"
        for name, record in self.records:
            if record.psd == "y":
                return name, record, "public suffix"
        raise AssertionError("an Organizational Domain without a record implies psd=y")


class TreeWalker:
    """The DNS Tree Walks of one message, sharing the resolver's cache.

    With a warm cache everything is answered synchronously. On the first cache miss of a walk
    the queries for all its remaining names are issued at once (speculatively, RFC 9989 §4.10
    allows any query order as long as the result is the sequential one); answers are still
    consumed in walk order, and nothing beyond the point where the walk stops is used.
    """

    def __init__(
        self,
        resolver: Resolver,
        max_labels: int,
        parse: Callable[[bytes], DmarcRecord | None],
        spawn: Callable[[Coroutine[Any, Any, Lookup]], asyncio.Future[Lookup]],
    ) -> None:
        self.resolver = resolver
        self.max_labels = max_labels
        self.parse = parse
        self.spawn = spawn
        self.walks: dict[str, Walk] = {}

    def walk(self, domain: str) -> Walk:
        walk = self.walks.get(domain)
        if walk is None:
            walk = self.walks[domain] = Walk(domain, walk_names(domain, self.max_labels))
        return walk

    def prime(self, domain: str) -> None:
        """Issue the uncached queries of a walk now, so that several walks run concurrently."""
        walk = self.walk(domain)
        if walk.finished:
            return
        for i in range(walk.position, len(walk.names)):
            qname = "_dmarc." + walk.names[i]
            if i not in walk.tasks and self.resolver.cached(qname, "TXT") is None:
                walk.tasks[i] = self.spawn(self.resolver.query(qname, "TXT"))

    async def first(self, domain: str) -> Walk:
        """Advance a walk past its own domain's query (policy discovery, first step)."""
        walk = self.walk(domain)
        await self._advance(walk, 1)
        return walk

    async def full(self, domain: str) -> Walk:
        walk = self.walk(domain)
        await self._advance(walk, len(walk.names))
        return walk

    async def _advance(self, walk: Walk, until: int) -> None:
        while not walk.finished and walk.position < until:
            i = walk.position
            qname = "_dmarc." + walk.names[i]
            task = walk.tasks.get(i)
            lookup = self.resolver.cached(qname, "TXT") if task is None else None
            if lookup is None:
                if task is None:
                    self.prime(walk.domain)
                    task = walk.tasks[i]
                # shield: if this check is cancelled, the shared query itself must go on
                lookup = await asyncio.shield(task)
            self._take(walk, lookup)

    def _take(self, walk: Walk, lookup: Lookup) -> None:
        name = walk.names[walk.position]
        walk.position += 1
        walk.finished = walk.position >= len(walk.names)
        if lookup.status is Status.TEMPERROR:
            walk.temperror = f"_dmarc.{name}: {lookup.error or 'no answer'}"
            walk.finished = True
            return
        if not lookup.ok:
            return
        found = [r for r in map(self._parse_txt, lookup.records) if r is not None]
        if len(found) > 1:
            # §4.10 step 2: several DMARC records at one name are all discarded
            walk.notes.append(f"_dmarc.{name} has {len(found)} DMARC records: all ignored")
            return
        if found:
            walk.records.append((name, found[0]))
            if found[0].psd in ("y", "n"):  # §4.10 steps 2 and 6: stop
                walk.finished = True

    def _parse_txt(self, txt: object) -> DmarcRecord | None:
        return self.parse(txt) if isinstance(txt, bytes) else None
