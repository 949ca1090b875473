"""Column sizes and the cleaning of untrusted text before it is written to the store.

Values come from the network (HELO names, subjects, addresses): they are clipped to the column
size, NUL becomes U+FFFD (PostgreSQL text cannot hold NUL) and unencodable surrogates are
replaced, so a hostile message can never make a log write fail. Indexed columns hold at most
640 characters, which stays under PostgreSQL's btree entry limit (2704 bytes) in UTF-8.
"""

from __future__ import annotations

import ipaddress

SHORT = 32  # tls versions, result words, dispositions, mechanisms
NAME = 128  # symbols, kinds, user names, cipher names
HOST = 255  # DNS names, instance names
ADDRESS = 320  # mail addresses (RFC 5321 paths are at most 256; attackers send more)
IP = 45  # textual IPv6 with embedded IPv4
QUEUE_ID = 64
MESSAGE_ID = 500
SUBJECT = 500
HASH = 255  # argon2 PHC strings are about 100 characters
TEXT = 10_000  # free text: details, replies, comments, raw From/Reply-To headers


def clean(value: str, limit: int = TEXT) -> str:
    """``value`` clipped to ``limit`` characters and made storable on every backend."""
    if len(value) > limit:
        value = value[:limit]
    if value.isascii():
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def number(value: float) -> float:
    """A score as stored: NaN (which SQLite would store as NULL) becomes 0.0."""
    value = float(value)
    return 0.0 if value != value else value


def clean_opt(value: str | None, limit: int = TEXT) -> str | None:
    """``clean`` for optional values; None stays None."""
    return None if value is None else clean(value, limit)


def address(value: str | None) -> str | None:
    """A mail address as stored for searching: trimmed, without <>, lower case, clipped."""
    if value is None:
        return None
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return clean(value.lower(), ADDRESS)


def domain_of(addr: str | None) -> str | None:
    """The domain of a stored address (after the last @), or None when there is none."""
    if not addr or "@" not in addr:
        return None
    return addr.rpartition("@")[2][:HOST] or None


def ip(value: str | None) -> str | None:
    """An IP address in canonical text form (so IPv6 spellings match); other text as is."""
    if value is None:
        return None
    value = value.strip()
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return clean(value, IP)


def message_id(value: str | None) -> str | None:
    """A Message-ID as stored: trimmed and clipped, angle brackets kept as sent."""
    return None if value is None else clean(value.strip(), MESSAGE_ID)
