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
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_FIELD_START = re.compile(rb"\r\n(?![ \t])")  # a line break not followed by a folded line
_FIELD_NAMES = re.compile(rb"\r\n([\x21-\x39\x3b-\x7e]+)[ \t]*:")  # on CRLF + block
_BARE_LF = re.compile(rb"\n(?<!\r\n)")  # the literal first: the regex engine scans for it fast
# What email.utils.getaddresses reads as one mailbox with the text as it stands: a phrase of
# atoms (printable ASCII but specials; "." is allowed in a phrase) or one quoted string without
# escapes, then <addr-spec>; or a bare addr-spec. Local part and domain without blanks,
# comments, quotes or brackets.
_ATOM = r"[!#-'*+\-./-9=?A-Z^-~]+"
_ADDR_SPEC = r"[!#-'*+\-./-9=?A-Z^-~]+@[!#-'*+\-./-9=?A-Z^-~]+"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:({_ATOM}(?:[ \t]+{_ATOM})*)|\"([ \t!#-\[\]-~]*)\")?[ \t]*<({_ADDR_SPEC})>"
    rf"|({_ADDR_SPEC}))[ \t]*\Z"
)


class HeaderField:
    """One header field: its name, the raw bytes (name, colon, folded value, no final CRLF)
    and the unfolded value as text. Immutable by convention; equal when name and raw are."""

    __slots__ = ("lname", "name", "raw")

    def __init__(self, name: str, raw: bytes) -> None:
        self.name = name
        self.raw = raw
        self.lname = name.lower()

    @property
    def raw_value(self) -> bytes:
        return self.raw.split(b":", 1)[1]

    @property
    def value(self) -> str:
        return _decode(self.raw_value).replace("\r\n", "").replace("\n", "").strip()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeaderField):
            return NotImplemented
        return self.name == other.name and self.raw == other.raw

    def __hash__(self) -> int:
        return hash((self.name, self.raw))

    def __repr__(self) -> str:
        return f"HeaderField(name={self.name!r}, raw={self.raw!r})"


class Address:
    """A mailbox from an address header: display name and addr-spec. The display name's
    RFC 2047 encoded-words are decoded when it is first asked for."""

    __slots__ = ("_name", "_raw_name", "address")

    def __init__(self, display_name: str, address: str) -> None:
        self._name: str | None = display_name
        self._raw_name = display_name
        self.address = address

    @classmethod
    def encoded(cls, raw_name: str, address: str) -> Address:
        """An address whose display name may still hold encoded-words."""
        made = cls(raw_name, address)
        if "=?" in raw_name:
            made._name = None
        return made

    @property
    def display_name(self) -> str:
        name = self._name
        if name is None:
            name = self._name = decode_words(self._raw_name)
        return name

    @property
    def domain(self) -> str:
        local, sep, domain = self.address.rpartition("@")
        return domain.lower().rstrip(".") if sep and local else ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return self.address == other.address and self.display_name == other.display_name

    def __hash__(self) -> int:
        return hash((self.display_name, self.address))

    def __repr__(self) -> str:
        return f"Address(display_name={self.display_name!r}, address={self.address!r})"


@dataclass(slots=True)
class ParsedHeaders:
    """The parsed view of a message: header fields in order, body, From, and defects."""

    canonical: bytes  # the whole message with CRLF line endings
    fields: list[HeaderField]
    body_offset: int
    defects: list[Finding] = field(default_factory=list)
    from_addresses: list[Address] = field(default_factory=list)
    _by_name: dict[str, list[HeaderField]] | None = field(default=None, repr=False,
                                                          compare=False)

    @property
    def body(self) -> bytes:
        return self.canonical[self.body_offset :]

    def by_name(self) -> dict[str, list[HeaderField]]:
        """The fields by lower-case name, each list in message order (built once)."""
        index = self._by_name
        if index is None:
            index = self._by_name = {}
            for f in self.fields:
                found = index.get(f.lname)
                if found is None:
                    index[f.lname] = [f]
                else:
                    found.append(f)
        return index

    def get_all(self, name: str) -> list[HeaderField]:
        return list(self.by_name().get(name.lower(), ()))

    def first(self, name: str) -> str | None:
        found = self.by_name().get(name.lower())
        return found[0].value if found else None

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
    if _BARE_LF.search(raw) is None:
        return raw, False
    return _LINE_END.sub(b"\r\n", raw), raw.find(b"\r\n") >= 0


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
    malformed = long_lines = eight_bit = 0
    # One chunk per field: a line and the folded (SP/HTAB-led) lines after it. The block has
    # no empty line inside (it ends at the first one), so only the split's last piece is empty.
    chunks = _FIELD_START.split(block)
    if not chunks[-1]:
        chunks.pop()
    names = _FIELD_NAMES.findall(b"\r\n" + block)  # one per chunk starting "Name:", in order
    if len(names) == len(chunks):
        fields = list(map(HeaderField, map(bytes.decode, names), chunks))
    else:
        match_name = _FIELD_NAME.match
        for chunk in chunks:
            m = match_name(chunk)
            if m is None:  # not "Name:", or folded lines before the first field
                malformed += chunk.count(b"\r\n") + 1
            else:
                fields.append(HeaderField(m[1].decode("ascii"), chunk))
    if len(block) > MAX_LINE:
        for chunk in chunks:
            if len(chunk) > MAX_LINE:
                long_lines += sum(len(line) > MAX_LINE for line in chunk.split(b"\r\n"))
    if not block.isascii():
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


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words in a header value; never raises."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        return value


def parse_addresses(values: list[str]) -> list[Address]:
    """Mailboxes from address header values (groups flattened)."""
    if len(values) == 1:
        simple = _simple_mailbox(values[0])
        if simple is not None:
            return [simple]
    out = []
    for name, addr in email.utils.getaddresses(values):
        if not addr and not name:
            continue
        out.append(Address.encoded(name, addr))
    return out


def _simple_mailbox(value: str) -> Address | None:
    """The one mailbox of a plain ``Name <local@domain>``, ``"Name" <local@domain>`` or
    ``local@domain`` value, exactly as `email.utils.getaddresses` reads it; None for anything
    else (comments, groups, lists, escapes, non-ASCII), which takes the general parser."""
    m = _SIMPLE_MAILBOX.match(value)
    if m is None:
        return None
    words, quoted, routed, bare = m.groups()
    if bare is not None:
        return Address("", bare)
    if quoted is not None:
        return Address.encoded(quoted, routed)
    return Address.encoded(" ".join(words.split()) if words else "", routed)


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
