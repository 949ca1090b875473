"""Header parsing that survives anything and records what was wrong as findings."""

from __future__ import annotations

import email.header
import email.utils
import re
from dataclasses import dataclass, field

from mailward.model import Finding, Result

CHECK = "message"
MAX_LINE = 998  # RFC 5322 2.1.1, without CRLF
MAX_HEADER_BLOCK = 256 * 1024
MAX_HEADER_FIELDS = 1000

SYMBOLS = frozenset(
    {
        "MSG_MIXED_LINE_ENDINGS",
        "MSG_HEADER_8BIT",
        "MSG_HEADER_MALFORMED",
        "MSG_NO_BODY_SEPARATOR",
        "MSG_LINE_TOO_LONG",
        "MSG_HEADER_TOO_LARGE",
        "MSG_TOO_MANY_HEADERS",
        "MSG_NO_FROM",
        "MSG_MULTIPLE_FROM",
        "MSG_FROM_UNPARSEABLE",
    }
)

_LINE_END = re.compile(rb"\r?\n")
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: its name, the raw bytes (name, colon, folded value, no final CRLF)
    and the unfolded value as text."""

    name: str
    raw: bytes

    @property
    def lname(self) -> str:
        return self.name.lower()

    @property
    def raw_value(self) -> bytes:
        return self.raw.split(b":", 1)[1]

    @property
    def value(self) -> str:
        return _decode(self.raw_value).replace("\r\n", "").replace("\n", "").strip()


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox from an address header: display name and addr-spec."""

    display_name: str
    address: str

    @property
    def domain(self) -> str:
        local, sep, domain = self.address.rpartition("@")
        return domain.lower().rstrip(".") if sep and local else ""


@dataclass(slots=True)
class ParsedHeaders:
    """The parsed view of a message: header fields in order, body, From, and defects."""

    canonical: bytes  # the whole message with CRLF line endings
    fields: list[HeaderField]
    body_offset: int
    defects: list[Finding] = field(default_factory=list)
    from_addresses: list[Address] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return self.canonical[self.body_offset :]

    def get_all(self, name: str) -> list[HeaderField]:
        lname = name.lower()
        return [f for f in self.fields if f.lname == lname]

    def first(self, name: str) -> str | None:
        lname = name.lower()
        for f in self.fields:
            if f.lname == lname:
                return f.value
        return None

    @property
    def from_domain(self) -> str | None:
        """The RFC5322.From domain when there is exactly one From address, else None."""
        if len(self.from_addresses) != 1:
            return None
        return self.from_addresses[0].domain or None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _defect(symbol: str, detail: str) -> Finding:
    return Finding(CHECK, symbol, Result.POLICY, detail=detail)


def to_crlf(raw: bytes) -> tuple[bytes, bool]:
    """Return the message with CRLF line endings and whether endings were mixed."""
    lf = raw.count(b"\n")
    crlf = raw.count(b"\r\n")
    if lf == crlf:
        return raw, False
    return _LINE_END.sub(b"\r\n", raw), crlf > 0


def parse_headers(raw: bytes) -> ParsedHeaders:
    """Split a message into header fields and body; never raises."""
    canonical, mixed = to_crlf(raw)
    defects: list[Finding] = []
    if mixed:
        defects.append(
            _defect("MSG_MIXED_LINE_ENDINGS", "the message mixes CRLF and bare LF line endings")
        )
    end = canonical.find(b"\r\n\r\n")
    if canonical.startswith(b"\r\n"):
        header_block, body_offset = b"", 2
    elif end < 0:
        header_block, body_offset = canonical, len(canonical)
        if canonical:
            defects.append(
                _defect("MSG_NO_BODY_SEPARATOR", "no empty line separates headers from body")
            )
    else:
        header_block, body_offset = canonical[: end + 2], end + 4
    if len(header_block) > MAX_HEADER_BLOCK:
        defects.append(
            _defect(
                "MSG_HEADER_TOO_LARGE",
                f"the header block is {len(header_block)} bytes (limit {MAX_HEADER_BLOCK})",
            )
        )
    fields, field_defects = _split_fields(header_block)
    defects.extend(field_defects)
    if len(fields) > MAX_HEADER_FIELDS:
        defects.append(
            _defect(
                "MSG_TOO_MANY_HEADERS", f"{len(fields)} header fields (limit {MAX_HEADER_FIELDS})"
            )
        )
    parsed = ParsedHeaders(canonical, fields, body_offset, defects)
    parsed.from_addresses = _from_addresses(parsed, defects)
    return parsed


def _split_fields(block: bytes) -> tuple[list[HeaderField], list[Finding]]:
    fields: list[HeaderField] = []
    defects: list[Finding] = []
    current: list[bytes] = []
    malformed = long_lines = eight_bit = 0
    for line in block.split(b"\r\n"):
        if not line:
            continue
        if len(line) > MAX_LINE:
            long_lines += 1
        if line[:1] in (b" ", b"\t"):
            if current:
                current.append(line)
            else:
                malformed += 1
            continue
        if current:
            fields.append(_make_field(current))
            current = []
        if _FIELD_NAME.match(line):
            current = [line]
        else:
            malformed += 1
    if current:
        fields.append(_make_field(current))
    for f in fields:
        if not f.raw.isascii():
            try:
                f.raw.decode("utf-8")
            except UnicodeDecodeError:
                eight_bit += 1
    if malformed:
        defects.append(
            _defect("MSG_HEADER_MALFORMED", f"{malformed} header line(s) are not 'Name: value'")
        )
    if long_lines:
        defects.append(
            _defect("MSG_LINE_TOO_LONG", f"{long_lines} header line(s) exceed {MAX_LINE} octets")
        )
    if eight_bit:
        defects.append(
            _defect("MSG_HEADER_8BIT", f"{eight_bit} header field(s) carry raw 8-bit data")
        )
    return fields, defects


def _make_field(lines: list[bytes]) -> HeaderField:
    raw = b"\r\n".join(lines)
    name = raw.split(b":", 1)[0].rstrip(b" \t").decode("ascii", "replace")
    return HeaderField(name, raw)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words in a header value; never raises."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


def parse_addresses(values: list[str]) -> list[Address]:
    """Mailboxes from address header values (groups flattened)."""
    out = []
    for name, addr in email.utils.getaddresses(values):
        if not addr and not name:
            continue
        out.append(Address(decode_words(name), addr))
    return out


def _from_addresses(parsed: ParsedHeaders, defects: list[Finding]) -> list[Address]:
    from_fields = parsed.get_all("From")
    if not from_fields:
        defects.append(_defect("MSG_NO_FROM", "the message has no From header"))
        return []
    if len(from_fields) > 1:
        defects.append(
            _defect("MSG_MULTIPLE_FROM", f"the message has {len(from_fields)} From headers")
        )
    addresses = parse_addresses([f.value for f in from_fields])
    if not addresses or any("@" not in a.address for a in addresses):
        defects.append(
            _defect(
                "MSG_FROM_UNPARSEABLE",
                f"no usable address in From: {from_fields[0].value[:200]!r}",
            )
        )
        return [a for a in addresses if "@" in a.address]
    if len(addresses) > 1 and len(from_fields) == 1:
        defects.append(
            _defect("MSG_MULTIPLE_FROM", f"the From header names {len(addresses)} addresses")
        )
    return addresses
