"""Decoded text of every text part of a message (HTML converted), its links and login forms.

One pass over the MIME tree with bounded depth, part count and text size; transfer encodings
(base64, quoted-printable) and charsets decoded; broken input gives less text, never an error.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from mailward.htmltext import convert
from mailward.message import ParsedHeaders, decode_words

MAX_DEPTH = 8
MAX_PARTS = 64
MAX_LINKS = 200  # per message (and per HTML part, in mailward.htmltext)
MAX_HTML_CHARS = 256 * 1024
_WANTED = ("content-type", "content-transfer-encoding", "content-disposition")
_PARAM = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_HOST = re.compile(r"(?:https?:)?//(?:[^/?#@\s]*@)?(\[[^\]]*\]|[^/?#:\s\\]+)", re.IGNORECASE)
_HTML_NAME = re.compile(r"\.(?:x?html?|shtml|svg)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Link:
    """A link: its target, the text a reader sees ('' for a bare URL), the target's host."""

    href: str
    text: str
    host: str


@dataclass(frozen=True, slots=True)
class Form:
    """An HTML form that asks for a password: where it is and where it posts to."""

    where: str
    action: str


@dataclass(slots=True)
class TextView:
    """What a reader sees of a message: the text of every text part, links and login forms."""

    text: str = ""
    links: list[Link] = field(default_factory=list)
    login_forms: list[Form] = field(default_factory=list)
    parts: int = 0
    truncated: bool = False


def host_of(url: str) -> str:
    """The lower-case host of an http(s) or scheme-relative URL ('' when it has none)."""
    match = _HOST.match(url.strip())
    if match is None:
        return ""
    return match.group(1).lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class Part:
    """A leaf MIME part: its type and parameters, file name, whether a mail program shows it
    as an attachment, and its body as sent (`text` decodes it)."""

    ctype: str
    params: dict[str, str]
    filename: str
    attachment: bool
    encoding: str
    body: bytes

    @property
    def html(self) -> bool:
        return self.ctype == "text/html" or bool(_HTML_NAME.search(self.filename))

    @property
    def inline_text(self) -> bool:
        """Text a reader sees in the message itself (plain or HTML, not an attachment)."""
        return not self.attachment and (self.html or self.ctype in ("text/plain", ""))

    def text(self) -> str:
        """The body with its transfer encoding and charset decoded (never raises)."""
        return _decode(self.body, self.encoding, self.params.get("charset"))


class MimeParts:
    """The leaf parts of a message, depth first, into multiparts and attached messages;
    bounded: ``count`` nodes visited (at most MAX_PARTS, MAX_DEPTH levels), ``truncated`` when
    the bounds cut the walk short."""

    def __init__(self, parsed: ParsedHeaders) -> None:
        self.parsed = parsed
        self.count = 0
        self.truncated = False

    def __iter__(self) -> Iterator[Part]:
        headers: dict[str, str] = {}
        for f in self.parsed.fields:
            if f.lname in _WANTED and f.lname not in headers:
                headers[f.lname] = f.value
        return self._walk(headers, self.parsed.body, 0)

    def _walk(self, headers: dict[str, str], body: bytes, depth: int) -> Iterator[Part]:
        if self.count >= MAX_PARTS or depth > MAX_DEPTH:
            self.truncated = True
            return
        self.count += 1
        ctype, params = _content_type(headers.get("content-type", ""))
        if ctype.startswith("multipart/"):
            for sub_headers, sub_body in _split_multipart(body, params.get("boundary", "")):
                yield from self._walk(sub_headers, sub_body, depth + 1)
            return
        if ctype == "message/rfc822":
            sub_headers, sub_body = _split_part(body)
            yield from self._walk(sub_headers, sub_body, depth + 1)
            return
        raw_disposition = headers.get("content-disposition")
        disposition, dparams = _content_type(raw_disposition) if raw_disposition else ("", {})
        raw_name = dparams.get("filename") or params.get("name")
        filename = _filename(raw_name) if raw_name else ""
        attachment = disposition == "attachment" or (bool(filename) and disposition != "inline")
        yield Part(ctype, params, filename, attachment,
                   headers.get("content-transfer-encoding", ""), body)


def extract(parsed: ParsedHeaders, limit: int = 100_000) -> TextView:
    """Walk the message once and collect its text (up to ``limit`` characters)."""
    walker = _Walker(limit)
    parts = MimeParts(parsed)
    for part in parts:
        walker.part(part)
    view = walker.view
    view.parts = parts.count
    view.truncated = view.truncated or parts.truncated
    view.text = "\n".join(walker.chunks)
    return view


class _Walker:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.chunks: list[str] = []
        self.view = TextView()

    def part(self, part: Part) -> None:
        if not part.html and not part.inline_text:
            return
        text = part.text()
        if part.html:
            self._html(text[:MAX_HTML_CHARS], part.filename or "the message", part.attachment)
        else:
            self._add_text(text)
            self._bare_urls(text)

    def _html(self, text: str, where: str, attachment: bool) -> None:
        if attachment and "password" not in text.lower():
            return  # an attachment only matters here for a password field
        converted = convert(text)
        if not converted.complete:
            self.view.truncated = True
        if converted.password_field and converted.form_actions:
            self.view.login_forms.append(Form(where, converted.form_actions[0]))
        elif converted.password_field:
            self.view.login_forms.append(Form(where, ""))
        if attachment:
            return
        self._add_text(converted.text)
        for href, label in converted.links:
            self._link(href, label)

    def _add_text(self, text: str) -> None:
        room = self.limit - self.size
        if room <= 0:
            self.view.truncated = True
            return
        if len(text) > room:
            text = text[:room]
            self.view.truncated = True
        self.size += len(text)
        self.chunks.append(text)

    def _bare_urls(self, text: str) -> None:
        if "://" not in text:
            return
        for match in _URL.finditer(text):
            if not self._link(match.group(0).rstrip(".,;:!?"), ""):
                return

    def _link(self, href: str, text: str) -> bool:
        if len(self.view.links) >= MAX_LINKS:
            return False
        href = href.strip()
        if href.lower().startswith(("http://", "https://", "//")):
            self.view.links.append(Link(href, " ".join(text.split()), host_of(href)))
        return True


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    main = value.split(";", 1)[0].strip().lower()
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        key = key.lower()
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params.setdefault(key.split("*", 1)[0], raw)
    return main, params


def _filename(raw: str) -> str:
    if "''" in raw:  # RFC 2231: charset'language'percent-encoded
        from urllib.parse import unquote

        raw = unquote(raw.split("''", 1)[1])
    return decode_words(raw).strip()


def _split_part(raw: bytes) -> tuple[dict[str, str], bytes]:
    """A part's header fields we need (first of each) and its body."""
    if raw.startswith(b"\r\n"):
        return {}, raw[2:]
    end = raw.find(b"\r\n\r\n")
    block, body = (raw, b"") if end < 0 else (raw[:end], raw[end + 4 :])
    headers: dict[str, str] = {}
    name = ""
    for line in block.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if name in headers:
                headers[name] += " " + line.strip().decode("latin-1")
            continue
        key, sep, value = line.partition(b":")
        name = key.strip().lower().decode("latin-1") if sep else ""
        if name in _WANTED and name not in headers:
            headers[name] = value.strip().decode("latin-1")
        else:
            name = ""
    return headers, body


def _split_multipart(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    if not boundary or len(boundary) > 200:
        return []
    delimiter = b"\r\n--" + boundary.encode("latin-1", "replace")
    pieces = (b"\r\n" + body).split(delimiter)
    parts = []
    for piece in pieces[1 : MAX_PARTS + 1]:
        if piece.startswith(b"--"):
            break
        newline = piece.find(b"\r\n")
        if newline < 0:
            continue
        parts.append(_split_part(piece[newline + 2 :]))
    return parts


def _decode(body: bytes, encoding: str, charset: str | None) -> str:
    encoding = encoding.strip().lower()
    if encoding == "base64":
        try:
            body = binascii.a2b_base64(body)
        except binascii.Error:
            body = _lenient_base64(body)
    elif encoding == "quoted-printable":
        body = binascii.a2b_qp(body)
    return _to_text(body, charset)


def _lenient_base64(body: bytes) -> bytes:
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
    data = data[: len(data) - len(data) % 4]
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        return b""


def _to_text(body: bytes, charset: str | None) -> str:
    if body.isascii():
        return body.decode("ascii")
    name = (charset or "utf-8").strip().strip('"').lower()
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = "utf-8"
    if codec in ("ascii", "us-ascii"):
        codec = "utf-8"
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace")
