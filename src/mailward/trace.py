"""Origin tracing: a message's Received chain read newest to oldest, the hosts the site trusts,
the first outside host (the origin), inconsistencies, and the authentication recorded at entry.

Only headers written by the site's own hosts can be believed; everything below the point where
the message entered the site was written by the sender's side and may be invented. ARC custody
and Authentication-Results are parsed, never verified (``mailward check`` verifies).
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mailward.authresults import authserv_id_of
from mailward.message import ParsedHeaders, decode_words, parse_headers
from mailward.received import Hop, Tls, iso_utc, normalize_ip, parse_received

if TYPE_CHECKING:
    from mailward.config import Config

SKEW = timedelta(minutes=10)  # clocks of different hosts may disagree this much
MAX_HOPS = 50
ARC_MAX_INSTANCE = 50  # RFC 8617 4.2.1
FORWARD_PREFIX = re.compile(r"^\s*(?:fwd?|wg|tr|rv|enc|doorst)\s*:", re.I)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Addresses that never route on the internet (documentation ranges deliberately not included).
NON_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "::/128", "::1/128", "fc00::/7", "fe80::/10",
    )
)

INSIDE, ENTRY, OUTSIDE, DOWNSTREAM = "inside", "entry", "outside", "downstream"
WARNING, NOTICE = "warning", "notice"


def is_non_public(ip: str | None) -> bool:
    """Private, loopback, link-local, shared (CGNAT) or unspecified address."""
    if not ip:
        return False
    addr = ipaddress.ip_address(ip)
    return any(addr.version == net.version and addr in net for net in NON_PUBLIC)


# -- whom the site trusts -----------------------------------------------------------------------


def _host(name: str | None) -> str:
    return (name or "").strip().rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """The site's own hosts: this hub's name plus ``trace.trusted_relays`` (IPs, networks,
    names, ``.domain`` for every name under it); ``site.domains`` for "is that name ours"."""

    hostname: str
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    domains: tuple[str, ...] = ()

    @classmethod
    def build(cls, hostname: str, relays: list[str], domains: list[str]) -> TrustPolicy:
        names = {_host(hostname)} - {""}
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for entry in relays:
            text = entry.strip()
            if "/" in text or normalize_ip(text):
                try:
                    networks.append(ipaddress.ip_network(normalize_ip(text) or text, strict=False))
                except ValueError:
                    continue
            elif text.startswith(("*.", ".")):
                suffixes.append("." + _host(text.lstrip("*.")))
            elif text:
                names.add(_host(text))
        return cls(
            _host(hostname), frozenset(names), tuple(suffixes), tuple(networks),
            tuple(_host(d) for d in domains if _host(d)),
        )

    @classmethod
    def from_config(cls, config: Config) -> TrustPolicy:
        return cls.build(config.hostname, config.trace.trusted_relays, config.site.domains)

    def trusts_name(self, name: str | None) -> bool:
        host = _host(name)
        return bool(host) and (host in self.names or host.endswith(self.suffixes))

    def trusts_ip(self, ip: str | None) -> bool:
        if not ip:
            return False
        addr = ipaddress.ip_address(ip)
        return any(addr.version == net.version and addr in net for net in self.networks)

    def is_ours(self, name: str | None) -> bool:
        """A name of one of the site's hosts, or any name under the site's domains."""
        host = _host(name)
        if not host or normalize_ip(host.strip("[]")):
            return False
        return self.trusts_name(host) or any(
            host == d or host.endswith("." + d) for d in self.domains
        )

    def wrote(self, hop: Hop) -> bool:
        """The hop was written by one of our hosts (judged by its ``by`` name or address)."""
        return self.trusts_name(hop.by) or self.trusts_ip(hop.by_ip)

    def trusts_client(self, hop: Hop) -> bool:
        """The client of the hop is one of our hosts: its address, or the reverse DNS name the
        (trusted) writer looked up. Never the HELO name, which the client chooses."""
        return self.trusts_ip(hop.ip) or self.trusts_name(hop.rdns)


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TracedHop:
    """A parsed hop, numbered from 1 (newest), with its zone: ``downstream`` (added inside the
    site after entry), ``inside`` (between trusted hosts), ``entry`` (a trusted host receiving
    from outside: the origin) or ``outside`` (written by other servers, unverifiable)."""

    number: int
    hop: Hop
    zone: str
    position: int  # index of the field among all header fields

    @property
    def trusted(self) -> bool:
        return self.zone == INSIDE

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "trusted": self.trusted, "zone": self.zone,
                **self.hop.as_dict()}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the message came from: the client of the entry hop, as the receiving host saw it.

    ``verified`` is False when no hop was written by a trusted host (the topmost claim is shown);
    ``internal`` when the whole chain is inside the site (the message was made there)."""

    hop: int
    ip: str | None
    helo: str | None
    rdns: str | None
    time: datetime | None
    received_by: str | None
    verified: bool
    internal: bool
    authenticated: bool = False
    auth_user: str | None = None
    tls: Tls | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "hop": self.hop, "ip": self.ip, "helo": self.helo, "rdns": self.rdns,
            "time": iso_utc(self.time), "received_by": self.received_by,
            "verified": self.verified, "internal": self.internal,
            "authenticated": self.authenticated, "auth_user": self.auth_user,
            "tls": self.tls.as_dict() if self.tls else None,
        }


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something in the chain that does not add up. ``warning``: likely forgery; ``notice``:
    odd but common in legitimate mail."""

    kind: str
    severity: str
    detail: str
    hop: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "hop": self.hop,
                "detail": self.detail}


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One ``method=result`` of an Authentication-Results field with its reason, properties
    (``smtp.mailfrom``, ``header.d``, ...) and comment."""

    method: str
    result: str
    reason: str = ""
    properties: tuple[tuple[str, str], ...] = ()
    comment: str = ""

    def prop(self, name: str) -> str | None:
        return next((v for k, v in self.properties if k == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "result": self.result, "reason": self.reason,
                "properties": dict(self.properties), "comment": self.comment}


@dataclass(frozen=True, slots=True)
class AuthResults:
    """An Authentication-Results field with our authserv-id; ``at_entry`` marks the one our
    host wrote when the message entered (directly above its Received field)."""

    authserv_id: str
    results: tuple[MethodResult, ...]
    raw: str
    position: int
    at_entry: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"authserv_id": self.authserv_id, "at_entry": self.at_entry,
                "results": [r.as_dict() for r in self.results], "raw": self.raw}


@dataclass(frozen=True, slots=True)
class ArcInstance:
    """One ARC set as written (not verified): the sealer (ARC-Seal d=), its chain validation
    claim cv=, the signer of the message signature and what the sealer recorded."""

    instance: int
    sealer: str | None = None
    selector: str | None = None
    cv: str | None = None
    time: datetime | None = None
    signer: str | None = None
    authserv_id: str | None = None
    results: tuple[MethodResult, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance, "sealer": self.sealer, "selector": self.selector,
            "cv": self.cv, "time": iso_utc(self.time), "signer": self.signer,
            "authserv_id": self.authserv_id, "results": [r.as_dict() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class ArcCustody:
    """ARC chain of custody: ``none`` (no ARC headers), ``complete`` (every set present, cv
    values as RFC 8617 requires), ``failed`` (a sealer declared the chain broken) or ``broken``
    (sets missing, duplicated or misnumbered). Structure only; signatures are not verified."""

    chain: str = "none"
    instances: tuple[ArcInstance, ...] = ()
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"chain": self.chain, "instances": [i.as_dict() for i in self.instances],
                "problems": list(self.problems)}


@dataclass(frozen=True, slots=True)
class Forwarded:
    """The file was a message forwarded as an attachment; these are the outer message's facts."""

    sender: str | None
    subject: str | None
    date: str | None
    how: str  # "attachment" (message/rfc822 or .eml) or "headers" (text/rfc822-headers)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.sender, "subject": self.subject, "date": self.date, "how": self.how}


@dataclass(slots=True)
class Trace:
    """Everything ``mailward trace`` knows about one message from its headers."""

    hops: list[TracedHop]
    origin: Origin | None
    anomalies: list[Anomaly] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    authentication_results: list[AuthResults] = field(default_factory=list)
    arc: ArcCustody = field(default_factory=ArcCustody)
    message: dict[str, str | None] = field(default_factory=dict)
    forwarded: Forwarded | None = None

    @property
    def message_id(self) -> str | None:
        return self.message.get("message_id")

    def queue_ids(self) -> list[str]:
        """Ids that hops written by the site's own hosts gave the message (our queue ids)."""
        if self.origin is None or not self.origin.verified:
            return []
        ids: list[str] = []
        for h in self.hops:
            if h.zone in (INSIDE, ENTRY) and h.hop.id and h.hop.id not in ids:
                ids.append(h.hop.id)
        return ids[:10]

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": dict(self.message),
            "forwarded": self.forwarded.as_dict() if self.forwarded else None,
            "origin": self.origin.as_dict() if self.origin else None,
            "hops": [h.as_dict() for h in self.hops],
            "anomalies": [a.as_dict() for a in self.anomalies],
            "notes": list(self.notes),
            "authentication_results": [a.as_dict() for a in self.authentication_results],
            "arc": self.arc.as_dict(),
        }


# -- the trace ----------------------------------------------------------------------------------


def trace_message(
    raw: bytes, config: Config, *, skew: timedelta = SKEW, unwrap: bool = True
) -> Trace:
    """Trace a message file; a message forwarded as an attachment is unwrapped first (unless
    ``unwrap`` is False: then the file's own headers are traced)."""
    parsed = parse_headers(raw)
    forwarded = None
    unwrapped = unwrap_forward(parsed) if unwrap else None
    if unwrapped is not None:
        inner, forwarded = unwrapped
        parsed = parse_headers(inner)
    trace = analyse(parsed, TrustPolicy.from_config(config), config.authserv_id, skew=skew)
    trace.forwarded = forwarded
    if forwarded is None and not trace.hops and FORWARD_PREFIX.match(
        parsed.first("Subject") or ""
    ):
        trace.notes.append(
            "This looks like a message forwarded inline: the original's headers are not in it. "
            "Ask the user to forward it as an attachment."
        )
    return trace


def analyse(
    parsed: ParsedHeaders, policy: TrustPolicy, authserv_id: str, *, skew: timedelta = SKEW
) -> Trace:
    """The trace of already parsed headers under a trust policy."""
    fields = [(pos, f) for pos, f in enumerate(parsed.fields) if f.lname == "received"]
    hops = [parse_received(f.value) for _, f in fields]
    zones, origin_at, verified = _zones(hops, policy)
    traced = [
        TracedHop(i + 1, hop, zones[i], fields[i][0]) for i, hop in enumerate(hops)
    ]
    origin = _origin(traced, origin_at, verified, policy)
    trace = Trace(traced, origin, message=_message_facts(parsed))
    trace.anomalies = _anomalies(traced, origin, policy, skew)
    trace.notes = _notes(traced, origin, policy)
    entry_position = traced[origin_at].position if origin_at is not None and verified else None
    trace.authentication_results = _our_results(parsed, authserv_id, entry_position, trace)
    trace.arc = arc_custody(parsed)
    return trace


def _zones(hops: list[Hop], policy: TrustPolicy) -> tuple[list[str], int | None, bool]:
    """Each hop's zone, the index of the origin hop and whether the origin is verified."""
    zones = [OUTSIDE] * len(hops)
    start = next((i for i, h in enumerate(hops) if policy.wrote(h)), None)
    if start is None:
        at = next((i for i, h in enumerate(hops) if h.has_client), None)
        if at is not None:
            zones[at] = ENTRY
        return zones, at, False
    for i in range(start):
        zones[i] = DOWNSTREAM
    for i in range(start, len(hops)):
        hop = hops[i]
        if not hop.has_client or policy.trusts_client(hop):
            zones[i] = INSIDE  # a local hand-off or a trusted client: its writer is ours
            continue
        zones[i] = ENTRY
        return zones, i, True
    return zones, len(hops) - 1, True  # made inside the site


def _origin(
    traced: list[TracedHop], at: int | None, verified: bool, policy: TrustPolicy
) -> Origin | None:
    if at is None:
        return None
    th = traced[at]
    hop = th.hop
    return Origin(
        th.number, hop.ip, hop.helo, hop.rdns, hop.timestamp, hop.by, verified,
        internal=th.zone == INSIDE, authenticated=hop.authenticated, auth_user=hop.auth_user,
        tls=hop.tls,
    )


def _message_facts(parsed: ParsedHeaders) -> dict[str, str | None]:
    def get(name: str) -> str | None:
        value = parsed.first(name)
        return decode_words(value) if value is not None else None

    return {"message_id": get("Message-ID"), "subject": get("Subject"), "from": get("From"),
            "date": get("Date")}


def plain_time(when: datetime | None) -> str:
    """A time for people: ``2026-03-01 12:00:05 UTC``."""
    if when is None:
        return "an unknown time"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def _anomalies(
    traced: list[TracedHop], origin: Origin | None, policy: TrustPolicy, skew: timedelta
) -> list[Anomaly]:
    out: list[Anomaly] = []
    if len(traced) > MAX_HOPS:
        out.append(Anomaly(
            "too_many_hops", WARNING,
            f"the message has {len(traced)} Received headers (more than {MAX_HOPS}): a mail loop, "
            "or headers added to bury the real origin",
        ))
    for th in traced:
        if th.hop.unparsed:
            severity = NOTICE if th.zone == OUTSIDE else WARNING
            out.append(Anomaly(
                "unparsed_hop", severity,
                f"hop {th.number} could not be fully read: {'; '.join(th.hop.problems)}",
                th.number,
            ))
    out.extend(_time_anomalies(traced, skew))
    if origin is None:
        return out
    if not origin.internal and not origin.authenticated:
        claims = (("called itself", origin.helo), ("has the reverse DNS name", origin.rdns))
        for label, name in claims:
            if policy.is_ours(name) and not policy.trusts_ip(origin.ip):
                out.append(Anomaly(
                    "claims_our_host", WARNING,
                    f"the sending host {label} {name}, one of your own host names, but it "
                    f"connected from {origin.ip or 'an unknown address'}, which is not one of "
                    "your hosts",
                    origin.hop,
                ))
    for th in traced[origin.hop :]:  # below the entry (none when made inside the site)
        hop = th.hop
        if policy.is_ours(hop.by):
            out.append(Anomaly(
                "claims_our_host", WARNING,
                f"hop {th.number} claims it was received by {hop.by}, one of your hosts, but it "
                "lies below the point where your hosts received the message: the sender wrote it",
                th.number,
            ))
        for name in (hop.helo, hop.rdns):
            if policy.is_ours(name) and not policy.trusts_ip(hop.ip):
                out.append(Anomaly(
                    "claims_our_host", WARNING,
                    f"hop {th.number} claims the message came from {name}, one of your hosts, "
                    f"at {hop.ip or 'no address'}, which is not one of your hosts",
                    th.number,
                ))
                break
        if is_non_public(hop.ip):
            ours = policy.trusts_ip(hop.ip)
            out.append(Anomaly(
                "private_address", WARNING if ours else NOTICE,
                f"hop {th.number} names the private address {hop.ip} below the point where the "
                "message entered your site"
                + (", inside one of your own networks: that header was injected by the sender"
                   if ours else
                   ": the sender's internal network, or a header injected to look internal"),
                th.number,
            ))
    return out


def _time_anomalies(traced: list[TracedHop], skew: timedelta) -> list[Anomaly]:
    out: list[Anomaly] = []
    newer: TracedHop | None = None
    for th in traced:
        when = th.hop.timestamp
        if when is None:
            continue
        if newer is not None and newer.hop.timestamp is not None:
            ahead = when - newer.hop.timestamp
            if ahead > skew:
                out.append(Anomaly(
                    "time_backwards", WARNING,
                    f"hop {th.number} is dated {plain_time(when)}, {_minutes(ahead)} after the "
                    f"later hop {newer.number} ({plain_time(newer.hop.timestamp)}): time runs "
                    "backwards, "
                    "so a clock is wrong or the header was made up",
                    th.number,
                ))
        newer = th
    return out


def _notes(traced: list[TracedHop], origin: Origin | None, policy: TrustPolicy) -> list[str]:
    notes: list[str] = []
    if not traced:
        notes.append("The message has no Received headers: it did not pass through a mail "
                     "server, or they were removed.")
        return notes
    if origin is None or not origin.verified:
        notes.append(
            f"None of the {len(traced)} Received headers was written by one of your hosts "
            f"(this hub, {policy.hostname or 'unnamed'}, or those in trace.trusted_relays): "
            "the path cannot be verified, and every header may have been written by the sender."
        )
    downstream = [th for th in traced if th.zone == DOWNSTREAM]
    if downstream:
        writers = sorted({th.hop.by for th in downstream if th.hop.by})
        notes.append(
            f"{len(downstream)} header(s) on top were added after your hub received the message "
            f"(delivery inside your site) by hosts not in trace.trusted_relays: "
            f"{', '.join(writers) or 'unnamed'}."
        )
    if origin is not None and origin.verified and not origin.internal and is_non_public(origin.ip):
        notes.append(
            f"The host that handed the message to {origin.received_by} has a private address "
            f"({origin.ip}): probably one of your internal relays, missing from "
            "trace.trusted_relays."
        )
    return notes


# -- Authentication-Results and ARC -------------------------------------------------------------

_PAIR = re.compile(r'([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;"]+)')


def _split_top(text: str, sep: str = ";") -> list[str]:
    """Split at ``sep`` outside quoted strings and comments."""
    parts: list[str] = []
    depth = 0
    quoted = escaped = False
    start = 0
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _comments(text: str) -> tuple[str, str]:
    """The text without comments, and the comments' text."""
    bare: list[str] = []
    notes: list[str] = []
    depth = 0
    quoted = False
    for ch in text:
        if quoted or depth == 0:
            if ch == '"':
                quoted = not quoted
            if not quoted and ch == "(":
                depth = 1
                notes.append("")
                continue
            bare.append(ch)
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                continue
        notes[-1] += ch
    return "".join(bare), " ".join(n.strip() for n in notes if n.strip())


def parse_method_results(pieces: list[str]) -> tuple[MethodResult, ...]:
    """``method=result reason=... ptype.prop=value`` pieces of RFC 8601 resinfo."""
    out: list[MethodResult] = []
    for piece in pieces:
        bare, comment = _comments(piece)
        pairs = [(k, v[1:-1] if v.startswith('"') else v) for k, v in _PAIR.findall(bare)]
        if not pairs:
            continue
        method, result = pairs[0]
        reason = next((v for k, v in pairs[1:] if k.lower() == "reason"), "")
        props = tuple((k.lower(), v) for k, v in pairs[1:] if k.lower() != "reason")
        out.append(MethodResult(method.split("/")[0].lower(), result.lower(), reason, props,
                                comment))
    return tuple(out)


def _our_results(
    parsed: ParsedHeaders, authserv_id: str, entry_position: int | None, trace: Trace
) -> list[AuthResults]:
    ours = authserv_id.lower()
    found: list[AuthResults] = []
    for pos, f in enumerate(parsed.fields):
        if f.lname != "authentication-results":
            continue
        value = f.value
        if authserv_id_of(value) != ours:
            continue
        results = parse_method_results(_split_top(value)[1:])
        found.append(AuthResults(authserv_id_of(value), results, value, pos))
    if entry_position is None:
        return found
    above = [a for a in found if a.position < entry_position]
    entry_ar = max(above, key=lambda a: a.position) if above else None
    out: list[AuthResults] = []
    for a in found:
        if a.position > entry_position:
            trace.anomalies.append(Anomaly(
                "forged_authentication_results", WARNING,
                f"an Authentication-Results header claiming your authserv-id ({authserv_id}) "
                "sits below the point where the message entered your site: the sender wrote it",
            ))
        out.append(AuthResults(a.authserv_id, a.results, a.raw, a.position, a is entry_ar))
    return out


def _tags(value: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), "".join(val.split()))
    return tags


def _instance(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) <= 3 else None


def arc_custody(parsed: ParsedHeaders) -> ArcCustody:
    """Parse the ARC sets (RFC 8617) and judge their structure; nothing is verified."""
    seals: dict[int, list[dict[str, str]]] = {}
    signatures: dict[int, list[dict[str, str]]] = {}
    records: dict[int, list[tuple[str, tuple[MethodResult, ...]]]] = {}
    problems: list[str] = []
    for f in parsed.fields:
        if f.lname not in ("arc-seal", "arc-message-signature", "arc-authentication-results"):
            continue
        value = f.value
        if f.lname == "arc-authentication-results":
            pieces = _split_top(value)
            number = _instance(_tags(pieces[0]).get("i"))
            if number is None or len(pieces) < 2:
                problems.append("an ARC-Authentication-Results header without a valid i=")
                continue
            aar_id = authserv_id_of(pieces[1])
            records.setdefault(number, []).append(
                (aar_id, parse_method_results(pieces[2:]))
            )
            continue
        tags = _tags(value)
        number = _instance(tags.get("i"))
        if number is None:
            problems.append(f"an {f.name} header without a valid i=")
            continue
        (seals if f.lname == "arc-seal" else signatures).setdefault(number, []).append(tags)
    numbers = sorted(set(seals) | set(signatures) | set(records))
    if not numbers and not problems:
        return ArcCustody()
    instances: list[ArcInstance] = []
    failed = False
    for n in numbers:
        seal = seals.get(n, [{}])[0]
        sig = signatures.get(n, [{}])[0]
        aar = records.get(n, [(None, ())])[0]
        for label, group in (("ARC-Seal", seals), ("ARC-Message-Signature", signatures),
                             ("ARC-Authentication-Results", records)):
            count = len(group.get(n, []))
            if count != 1:
                problems.append(f"instance {n} has {count} {label} headers (1 expected)")
        cv = seal.get("cv", "").lower() or None
        expected = "none" if n == 1 else "pass"
        if cv == "fail":
            failed = True
        elif n in seals and cv != expected:
            problems.append(f"instance {n} says cv={cv} (RFC 8617 expects cv={expected})")
        stamp = seal.get("t", "")
        when = None
        if stamp.isdigit() and len(stamp) <= 11:
            when = datetime.fromtimestamp(int(stamp), tz=UTC)
        instances.append(ArcInstance(
            n, seal.get("d"), seal.get("s"), cv, when, sig.get("d"), aar[0], aar[1]
        ))
    if numbers and (numbers != list(range(1, numbers[-1] + 1)) or numbers[-1] > ARC_MAX_INSTANCE):
        problems.append(f"the instances are {numbers}, not 1 to {numbers[-1]} without gaps")
    chain = "failed" if failed else "broken" if problems else "complete"
    return ArcCustody(chain, tuple(instances), tuple(problems))


# -- forwarded messages -------------------------------------------------------------------------


def unwrap_forward(parsed: ParsedHeaders) -> tuple[bytes, Forwarded] | None:
    """The original attached to a forwarding message (message/rfc822, a .eml attachment, or
    text/rfc822-headers), with the outer message's facts; None if there is none."""
    if "multipart/" not in (parsed.first("Content-Type") or "").lower():
        return None
    outer = email.message_from_bytes(parsed.canonical, policy=email.policy.compat32)
    for part in outer.walk():
        if part is outer or (
            part.is_multipart() and part.get_content_type() != "message/rfc822"
        ):
            continue
        found = _attached(part)
        if found is None:
            continue
        data, how = found
        facts = Forwarded(
            decode_words(parsed.first("From") or "") or None,
            decode_words(parsed.first("Subject") or "") or None,
            parsed.first("Date"),
            how,
        )
        return data, facts
    return None


def _attached(part: email.message.Message) -> tuple[bytes, str] | None:
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
            policy = email.policy.compat32.clone(max_line_length=0, linesep="\r\n")
            return payload[0].as_bytes(policy=policy), "attachment"
        return None
    if ctype == "text/rfc822-headers":
        data = part.get_payload(decode=True)
        return (data.rstrip(b"\r\n") + b"\r\n\r\n", "headers") if isinstance(data, bytes) else None
    name = (part.get_filename() or "").lower()
    if name.endswith(".eml") and ctype in ("application/octet-stream", "message/rfc822"):
        data = part.get_payload(decode=True)
        return (data, "attachment") if isinstance(data, bytes) and data else None
    return None
