"""One Received header field (RFC 5321 4.4) of the common MTAs parsed into a `Hop`; never raises.

Postfix, Exim, Sendmail, Exchange / Outlook.com, Gmail, qmail, IronPort, zmailer and mailward's
own format write the same clauses (``from``, ``by``, ``via``, ``with``, ``id``, ``for``, then ``;``
and the date) but put the client's HELO name, reverse DNS, address and TLS details into comments
in different ways; this module reads all of them.
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_PARSED = 4096  # characters of one field read; longer ones are cut and flagged
KEYWORDS = frozenset({"from", "by", "via", "with", "id", "for"})

_IPISH = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_TLS_HINT = re.compile(r"tls|ssl|encrypted|transport security|cipher")
_SPECIAL = re.compile(r'[()";\\]')
_BRACKET_IP = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+(?:%[\w.]+)?)\](?::(\d{1,5}))?", re.I)
_NAME_BEFORE_IP = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.\-]*)\s+\[")
_HELO_EQ = re.compile(r"(?:^|[\s\"(])helo=([^\s)\"\]]+)", re.I)
_HELO_WORD = re.compile(r"(?:^|\")\s*(?:HELO|EHLO)\s+([^\s\")]+)", re.I)
_USING = re.compile(r"\busing\s+((?:TLS|SSL)v?[\d._]*)(?:\s+with\s+cipher\s+([\w\-]+))?", re.I)
_VERSION = re.compile(r"\bversion=((?:TLS|SSL)v?[\d._]+)", re.I)
_CIPHER = re.compile(r"\bcipher=([\w\-]+)", re.I)
_BARE_TLS = re.compile(r"^\s*((?:TLS|SSL)v?[\d._]+)(?::([\w\-]+))?(?::\d+)?\s*$", re.I)
_ENCRYPTED = re.compile(r"^\s*([\w\-]+)\s+encrypted\b", re.I)
_TLS_VERSION = re.compile(r"(TLS|SSL)v?(\d+)(?:[._](\d+))?", re.I)
_AUTH_USER = re.compile(r"\bauthenticated(?:\s+sender:|\s+as)\s*([^\s)]+)", re.I)
_AUTH_WORD = re.compile(r"(?:^|[\s,])authenticated\b", re.I)
_ENVELOPE_FROM = re.compile(r"\benvelope-from\s*<([^>]*)>|\benvelope-from\s+([^\s)]+)", re.I)
_PROTO_TLS = re.compile(r"^(?:UTF8)?(?:E?SMTP|LMTP)S(?:A)?$", re.I)
_PROTO_AUTH = re.compile(r"^(?:UTF8)?(?:E?SMTP|LMTP)S?A$", re.I)
_SENDMAIL = re.compile(r"^\d+\.\d+(?:\.\d+)?/\d+\.\d+")
_QMAIL = re.compile(r"^\s*qmail\s+\d+\s+invoked\b", re.I)


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS on a hop: the version (normalized to ``TLSv1.2`` form) and cipher, when stated."""

    version: str | None = None
    cipher: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"version": self.version, "cipher": self.cipher}


@dataclass(frozen=True, slots=True)
class Hop:
    """What one Received field says: who connected (HELO, reverse DNS, IP) to which host, how
    and when. ``unparsed`` is set, with ``problems`` saying why, when part of it was unreadable."""

    raw: str
    helo: str | None = None
    rdns: str | None = None
    ip: str | None = None
    port: int | None = None
    by: str | None = None
    by_ip: str | None = None
    via: str | None = None
    protocol: str | None = None
    tls: Tls | None = None
    id: str | None = None
    recipient: str | None = None
    envelope_from: str | None = None
    authenticated: bool = False
    auth_user: str | None = None
    software: str | None = None
    timestamp: datetime | None = None
    unparsed: bool = False
    problems: tuple[str, ...] = ()

    @property
    def has_client(self) -> bool:
        """Whether the hop names the host that handed the message over."""
        return bool(self.ip or self.helo or self.rdns)

    def as_dict(self) -> dict[str, Any]:
        return {
            "helo": self.helo,
            "rdns": self.rdns,
            "ip": self.ip,
            "port": self.port,
            "by": self.by,
            "by_ip": self.by_ip,
            "via": self.via,
            "protocol": self.protocol,
            "tls": self.tls.as_dict() if self.tls else None,
            "id": self.id,
            "for": self.recipient,
            "envelope_from": self.envelope_from,
            "authenticated": self.authenticated,
            "auth_user": self.auth_user,
            "software": self.software,
            "time": iso_utc(self.timestamp),
            "unparsed": self.unparsed,
            "problems": list(self.problems),
            "raw": self.raw,
        }


def iso_utc(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when else None


@dataclass(slots=True)
class _Clause:
    words: list[str]
    comments: list[str]


def normalize_ip(text: str) -> str | None:
    """An address as written in a Received field (``[1.2.3.4]``, ``IPv6:...``, zone ids,
    IPv4-mapped IPv6) in canonical form, or None if it is not an address."""
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1]
    if t[:5].lower() == "ipv6:":
        t = t[5:]
    t = t.split("%", 1)[0]
    if not _IPISH.fullmatch(t):  # cheap test first: most words are names
        return None
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def tls_version(text: str) -> str:
    """``TLS1_2``, ``TLS1.2``, ``TLSv1.2`` -> ``TLSv1.2``; ``SSLv3`` stays."""
    m = _TLS_VERSION.fullmatch(text.strip())
    if not m:
        return text
    kind, major, minor = m.group(1).upper(), m.group(2), m.group(3)
    return f"{kind}v{major}" + (f".{minor}" if minor else "")


def _name(word: str | None) -> str | None:
    if not word:
        return None
    name = word.strip().rstrip(".")
    if not name or name.lower() == "unknown":
        return None
    return name


def _lex(text: str) -> tuple[list[tuple[str, str]], int, list[str]]:
    """Top-level words and comments in order, the offset of the date (after the last top-level
    ``;``, -1 if none) and problems found. Only the special characters are visited one by one."""
    items: list[tuple[str, str]] = []
    problems: list[str] = []
    depth = start = pos = cut = 0
    date_at = skip = -1
    quoted = False
    for m in _SPECIAL.finditer(text):
        i = m.start()
        if i == skip:
            continue
        ch = text[i]
        if ch == "\\":
            skip = i + 1
        elif quoted:
            if ch == '"':
                quoted = False
                if depth == 0:
                    items.append(("w", text[start : i + 1]))
                    pos = i + 1
        elif ch == '"':
            quoted = True
            if depth == 0:
                items.extend(("w", w) for w in text[pos:i].split())
                start = i
        elif depth:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    items.append(("c", text[start:i]))
                    pos = i + 1
        else:
            items.extend(("w", w) for w in text[pos:i].split())
            pos = i + 1
            if ch == "(":
                depth, start = 1, i + 1
            elif ch == ")":
                problems.append("a ')' without '('")
            else:  # ';': what follows the last one is the date
                cut, date_at = len(items), i + 1
    if depth or quoted:
        items.append(("c" if depth else "w", text[start:]))
        problems.append("a '(' is never closed" if depth else "a '\"' is never closed")
    else:
        items.extend(("w", w) for w in text[pos:].split())
    return (items[:cut] if date_at >= 0 else items), date_at, problems


def parse_date(text: str) -> datetime | None:
    """An RFC 5322 date (comments and odd spacing allowed) as an aware datetime, or None."""
    t = " ".join(text.split())
    if not t:
        return None
    try:
        when = email.utils.parsedate_to_datetime(t)
    except (ValueError, TypeError, IndexError, OverflowError):
        try:
            when = datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322 3.3)
        when = when.replace(tzinfo=UTC)
    return when


def parse_received(value: str) -> Hop:
    """Parse the value of one Received field (unfolded, without the field name)."""
    raw = " ".join(value.split())
    text = raw
    problems: list[str] = []
    if len(text) > MAX_PARSED:
        text = text[:MAX_PARSED]
        problems.append(f"longer than {MAX_PARSED} characters; the rest was not read")
    try:
        return _parse(raw, text, problems)
    except Exception as exc:  # a parser bug must not hide the rest of the chain
        return Hop(raw, unparsed=True, problems=(f"unreadable ({type(exc).__name__})",))


def _parse(raw: str, text: str, problems: list[str]) -> Hop:
    items, date_at, lex_problems = _lex(text)
    problems.extend(lex_problems)
    timestamp = parse_date(text[date_at:]) if date_at >= 0 else None
    if date_at < 0:
        problems.append("no ';' before a date")
    elif timestamp is None:
        problems.append(f"unreadable date {text[date_at:].strip()[:60]!r}")

    clauses: dict[str, _Clause] = {}
    leading = _Clause([], [])
    current = leading
    expect_value = False
    for kind, val in items:
        if kind == "c":
            current.comments.append(val)
            continue
        low = val.lower()
        if not expect_value and low in KEYWORDS:
            if low in clauses:
                problems.append(f"a second {low!r} clause")
                current = _Clause([], [])
            else:
                current = clauses[low] = _Clause([], [])
            expect_value = True
            continue
        current.words.append(val)
        expect_value = False
    if leading.words:
        problems.append(f"text before the first clause: {' '.join(leading.words)[:60]!r}")
    all_comments = [c for cl in (leading, *clauses.values()) for c in cl.comments]
    lowered = " ".join(all_comments).lower()  # gates the regular expressions below
    qmail = any(_QMAIL.match(c) for c in leading.comments)
    if not clauses and not qmail:
        problems.append("no from/by clause")

    fields: dict[str, Any] = {}
    if "from" in clauses:
        fields.update(_client(clauses["from"], exim="exim" in lowered))
    by = clauses.get("by")
    if by is not None:
        fields["by"] = _name(by.words[0]) if by.words else None
        by_ip = normalize_ip(fields["by"]) if fields["by"] else None  # Gmail: by 2002:a05:...
        for c in by.comments:
            by_ip = by_ip or _comment_ip(c)
        fields["by_ip"] = by_ip
    with_ = clauses.get("with")
    protocol, cipher = _protocol(with_.words) if with_ else (None, None)
    tls = _tls(all_comments if _TLS_HINT.search(lowered) else [], protocol, cipher)
    auth_user = None
    authenticated = bool(protocol and _PROTO_AUTH.match(protocol))
    envelope_from = None
    for c in all_comments if "authenticated" in lowered or "envelope-from" in lowered else ():
        m = _AUTH_USER.search(c)
        if m:
            auth_user = auth_user or m.group(1)
            authenticated = True
        elif _AUTH_WORD.search(c):
            authenticated = True
        m = _ENVELOPE_FROM.search(c)
        if m and envelope_from is None:
            envelope_from = m.group(1) if m.group(1) is not None else m.group(2)
    ident = clauses.get("id")
    recipient = clauses.get("for")
    via = clauses.get("via")
    return Hop(
        raw,
        protocol=protocol,
        tls=tls,
        id=ident.words[0] if ident and ident.words else None,
        recipient=_address(recipient.words) if recipient else None,
        via=(" ".join(via.words) or None) if via else None,
        envelope_from=envelope_from,
        authenticated=authenticated,
        auth_user=auth_user,
        software=_software(leading, clauses, protocol),
        timestamp=timestamp,
        unparsed=bool(problems),
        problems=tuple(problems),
        **fields,
    )


def _comment_ip(comment: str) -> str | None:
    m = _BRACKET_IP.search(comment)
    if m:
        return normalize_ip(m.group(1))
    bare = comment.strip().rsplit("@", 1)[-1]  # qmail writes (user@ip)
    return normalize_ip(bare)


def _client(clause: _Clause, *, exim: bool) -> dict[str, Any]:
    """helo, rdns, ip and port from ``from WORD (comments)`` in the writer's dialect."""
    word = clause.words[0] if clause.words else None
    ip = port = rdns = helo_marker = None
    for c in clause.comments:
        m = _BRACKET_IP.search(c)
        if m and ip is None:
            ip = normalize_ip(m.group(1))
            port = int(m.group(2)) if m.group(2) else None
            named = _NAME_BEFORE_IP.match(c)
            if named and ip:
                rdns = _name(named.group(1))
        elif ip is None:
            ip = _comment_ip(c)
        h = _HELO_EQ.search(c) or _HELO_WORD.search(c)
        if h and helo_marker is None:
            helo_marker = h.group(1)
    literal = normalize_ip(word) if word else None
    if helo_marker is not None:
        # Exim, qmail, IronPort, zmailer: the word is the verified reverse DNS name
        helo = helo_marker
        if literal is None:
            rdns = rdns or _name(word)
    elif exim and literal is None:
        # Exim omits helo= when the HELO name equals the reverse DNS name
        helo = word
        rdns = rdns or _name(word)
    else:
        # Postfix, Sendmail, Exchange, Gmail, mailward: the word is the HELO name
        helo = word
    if ip is None and literal is not None:
        ip = literal
    if port is not None and not 0 < port < 65536:
        port = None
    return {"helo": _name(helo), "rdns": rdns, "ip": ip, "port": port}


def _protocol(words: list[str]) -> tuple[str | None, str | None]:
    """The ``with`` value and a cipher named inside it (Exim ``tls C``, ``C encrypted SMTP``,
    IronPort ``ESMTP/TLS/C``)."""
    if not words:
        return None, None
    cipher = None
    lowered = [w.lower() for w in words]
    if "tls" in lowered[1:]:
        at = lowered.index("tls", 1)
        cipher = words[at + 1] if at + 1 < len(words) else None
        words = words[:at]
    elif "encrypted" in lowered[1:]:
        at = lowered.index("encrypted", 1)
        cipher = words[at - 1]
        words = words[at + 1 :] or ["SMTP"]
    elif "/TLS/" in words[0].upper():
        proto, _, cipher = words[0].partition("/")
        cipher = cipher[4:] or None
        words = [proto, *words[1:]]
    return " ".join(words), cipher


def _tls(comments: list[str], protocol: str | None, cipher: str | None) -> Tls | None:
    version = None
    seen = cipher is not None
    for c in comments:
        m = _USING.search(c)
        if m:
            version = version or m.group(1)
            cipher = cipher or m.group(2)
            seen = True
            continue
        m = _VERSION.search(c)
        if m:
            version = version or m.group(1)
            cm = _CIPHER.search(c)
            cipher = cipher or (cm.group(1) if cm else None)
            seen = True
            continue
        m = _BARE_TLS.match(c) or None
        if m:
            version = version or m.group(1)
            cipher = cipher or m.group(2)
            seen = True
            continue
        m = _ENCRYPTED.match(c)
        if m:
            cipher = cipher or m.group(1)
            seen = True
        elif "transport security" in c.lower():
            seen = True
    if not seen and protocol and _PROTO_TLS.match(protocol):
        seen = True
    if not seen:
        return None
    return Tls(tls_version(version) if version else None, cipher)


def _address(words: list[str]) -> str | None:
    if not words:
        return None
    first = words[0].rstrip(",")
    return first.strip("<>") or None


def _software(leading: _Clause, clauses: dict[str, _Clause], protocol: str | None) -> str | None:
    if any(_QMAIL.match(c) for c in leading.comments):
        return "qmail"
    if protocol and protocol.lower().startswith("microsoft"):
        return protocol
    by = clauses.get("by")
    for c in by.comments if by else ():
        text = c.strip()
        if text and _comment_ip(text) is None:
            return ("Sendmail " + text if _SENDMAIL.match(text) else text)[:80]
    with_ = clauses.get("with")
    for c in with_.comments if with_ else ():
        if c.lower().startswith("exim"):
            return c.strip()[:80]
    return None
