"""Byte-exact MIME surgery for warning banners (used by ``banner.py``).

Finds the parts a reader sees (the alternatives of the main body), puts a banner at their top in
their own charset and transfer encoding, and edits the Subject and X-Mailward-Warning fields;
every other byte (boundaries, preambles, attachments) stays as it was. Signed, encrypted and
malformed messages, and messages without a text part, are wrapped instead of edited.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from mailward.message import decode_words, to_crlf

log = logging.getLogger(__name__)

MAX_DEPTH = 12
MAX_PARTS = 500
TEXT_WIDTH = 76
CRLF = b"\r\n"
WARNING_FIELD = "X-Mailward-Warning"

# Containers whose content must not change: their signature or encryption covers it.
SIGNED_TYPES = frozenset(
    {
        "multipart/signed",
        "multipart/encrypted",
        "application/pkcs7-mime",
        "application/x-pkcs7-mime",
        "application/pgp-encrypted",
    }
)
_INLINE_PGP = (b"-----BEGIN PGP SIGNED MESSAGE-----", b"-----BEGIN PGP MESSAGE-----")
_PARAM = re.compile(rb';\s*([A-Za-z0-9_.*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_CHARSET_PARAM = re.compile(rb'(;\s*charset\s*=\s*)("(?:[^"\\]|\\.)*"|[^;\s]*)', re.IGNORECASE)
_BARE_CR = re.compile(rb"\r(?!\n)")
_FIELD_NAME = re.compile(rb"^([\x21-\x39\x3b-\x7e]+):")  # no blank before the colon, as for email
_REPLY_MARKERS = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|fw|fwd|wg|tr|rv|enc|antw|rif|ref|r)\s*(?:\[\d+\])?\s*:\s*)*",
    re.IGNORECASE,
)
# Tokens of the start of an HTML document, enough to find where the visible body begins:
# comments, raw-text elements (their content is not markup), declarations, and tags with
# quoted attributes (a '<body>' inside a comment, a style sheet or an attribute is not a tag).
_HTML_TOKEN = re.compile(
    rb"<!--.*?(?:-->|\Z)"
    rb"|<(?P<raw>script|style|title|textarea|xmp|template|noscript)\b.*?(?:</(?P=raw)\s*>|\Z)"
    rb"|<(?P<tag>/?[a-z][a-z0-9:-]*|![a-z]*|\?[a-z]*)(?:[^>\"']|\"[^\"]*\"|'[^']*')*>?",
    re.IGNORECASE | re.DOTALL,
)
_HEAD_TAGS = frozenset(
    {b"html", b"head", b"/head", b"meta", b"link", b"base", b"!doctype", b"?xml", b"!",
     b"/html", b"/body", b"/title", b"/style", b"/script"}
)


class Unsafe(Exception):
    """The message cannot be edited safely (signed, encrypted, malformed): wrap it instead."""


@dataclass(frozen=True, slots=True)
class Banner:
    """One banner in its two forms: plain text (LF line endings, ends with a blank line) and
    an HTML fragment (already escaped)."""

    text: str
    html: str


@dataclass(slots=True)
class Entity:
    """One MIME entity located in the message bytes: header block [start, body_start),
    body [body_start, end)."""

    start: int
    body_start: int
    end: int
    fields: list[bytes]
    ctype: str = "text/plain"
    params: dict[str, str] = field(default_factory=dict)
    cte: str = ""
    attachment: bool = False
    content_id: str = ""
    separated: bool = True  # an empty line ends the header block (else the part is all header)
    children: list[Entity] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Edit:
    """Bytes [start, end) of the message are replaced by ``data``."""

    start: int
    end: int
    data: bytes


# --- the entry point ------------------------------------------------------------------------


def mark(
    raw: bytes, inline: Banner, wrapped: Banner, header_value: str, subject_prefix: str,
    wrap_dkim_signed: bool = False,
) -> bytes:
    """The message with banners in its reader-visible text parts (or wrapped), the subject
    prefixed once and an X-Mailward-Warning field. Never raises for any input."""
    lf_only = b"\r\n" not in raw and b"\n" in raw
    data = raw.replace(b"\n", b"\r\n") if lf_only else to_crlf(raw)[0]
    try:
        out = _edit(data, inline, header_value, subject_prefix, wrap_dkim_signed)
    except Unsafe as exc:
        log.debug("banner: wrapping the message: %s", exc)
        out = None
    except Exception:  # a defect here must not block a message: wrapping keeps it intact
        log.exception("banner: editing failed, wrapping the message")
        out = None
    if out is None:
        try:
            out = _wrap(data, inline, wrapped, header_value, subject_prefix)
        except Exception:
            log.exception("banner: wrapping failed, the message goes unmarked")
            return raw
    return out.replace(b"\r\n", b"\n") if lf_only else out


def _edit(
    data: bytes, banner: Banner, header_value: str, subject_prefix: str, wrap_dkim: bool
) -> bytes | None:
    """The edited message, or None when it has no text part a reader sees (wrap it)."""
    if data.count(b"\r") != data.count(CRLF):
        raise Unsafe("bare CR (a line break to some parsers, not to others)")
    top = parse_entity(data, 0, len(data), "text/plain", depth=0, counter=[0])
    if top.start == top.body_start and not data.startswith(CRLF):
        raise Unsafe("no header block")
    if wrap_dkim and any(_dkim_covers_body(f) for f in top.fields):
        raise Unsafe("DKIM-signed")
    readers: list[Entity] = []
    reader_parts(top, readers, 0)
    if not readers:
        return None
    edits: list[Edit] = []
    top_changes: dict[str, str] = {}
    for part in readers:
        body, changes = edit_leaf(data[part.body_start : part.end], part, banner)
        if part is top:
            edits.append(Edit(part.body_start, part.end, body))
            top_changes = changes
        elif changes or not part.separated:
            fields = change_fields(part.fields, changes)
            edits.append(Edit(part.start, part.end, join_fields(fields) + CRLF + body))
        else:
            edits.append(Edit(part.body_start, part.end, body))
    fields = header_fields(top.fields, header_value, subject_prefix)
    fields = change_fields(fields, top_changes)
    edits.append(Edit(0, top.body_start, join_fields(fields) + CRLF))
    out = bytearray(data)
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        out[e.start : e.end] = e.data
    return bytes(out)


# --- parsing --------------------------------------------------------------------------------


def split_fields(block: bytes) -> list[bytes]:
    """Header fields of a header block, each with its continuation lines, no final CRLF.
    A line that is no field and no continuation is kept as its own entry."""
    fields: list[bytes] = []
    for line in block.split(CRLF):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += CRLF + line
        else:
            fields.append(line)
    return fields


def join_fields(fields: list[bytes]) -> bytes:
    return b"".join(f + CRLF for f in fields)


def field_name(raw: bytes) -> bytes:
    match = _FIELD_NAME.match(raw)
    return match.group(1).lower() if match else b""


def field_value(raw: bytes) -> bytes:
    return raw.split(b":", 1)[1].replace(CRLF, b"").strip() if b":" in raw else b""


def parse_params(value: bytes) -> tuple[str, dict[str, str]]:
    """(lower-case type, parameters) of a Content-Type or Content-Disposition value."""
    main = value.split(b";", 1)[0].strip().lower().decode("latin-1")
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        params.setdefault(key.lower().decode("latin-1"), raw.decode("latin-1"))
    return main, params


def parse_entity(
    data: bytes, start: int, end: int, default_type: str, depth: int, counter: list[int]
) -> Entity:
    """The MIME entity in data[start:end], with its children; raises Unsafe when it is
    malformed or too deep or large to handle."""
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_PARTS:
        raise Unsafe("too deep or too many parts")
    separated = True
    if data.startswith(CRLF, start) or start == end:
        body_start = min(start + 2, end)
        fields: list[bytes] = []
    else:
        sep = data.find(b"\r\n\r\n", start, end)
        if sep < 0:
            # a header block without a body: fine if it ends the entity, else malformed
            block_end = end
            fields = split_fields(data[start:block_end])
            if any(not _FIELD_NAME.match(f) for f in fields):
                raise Unsafe("no header/body separator")
            body_start = end
            separated = False
        else:
            fields = split_fields(data[start : sep + 2])
            body_start = sep + 4
    mbox_line = start == 0 and bool(fields) and fields[0].startswith(b"From ")
    content: dict[bytes, bytes] = {}
    for f in fields[1 if mbox_line else 0 :]:
        match = _FIELD_NAME.match(f)
        if match is None:
            raise Unsafe("a header line that is no field (a parser would end the header there)")
        if f[:8].lower() == b"content-":
            name = match.group(1).lower()
            if name not in content:
                content[name] = field_value(f)
    entity = Entity(start, body_start, end, fields, default_type, separated=separated)
    if b"content-type" in content:
        ctype, params = parse_params(content[b"content-type"])
        if "/" not in ctype:
            raise Unsafe("unusable Content-Type")
        entity.ctype, entity.params = ctype, params
    entity.cte = content.get(b"content-transfer-encoding", b"").strip().lower().decode("latin-1")
    disposition, dparams = parse_params(content.get(b"content-disposition", b""))
    named = bool(dparams.get("filename") or entity.params.get("name"))
    entity.attachment = disposition == "attachment" or (named and disposition != "inline")
    entity.content_id = content.get(b"content-id", b"").strip().decode("latin-1")
    if entity.ctype.startswith("multipart/"):
        if entity.cte not in ("", "7bit", "8bit", "binary"):
            raise Unsafe("multipart with a transfer encoding")
        child_type = "message/rfc822" if entity.ctype == "multipart/digest" else "text/plain"
        for cstart, cend in split_multipart(data, body_start, end, entity.params.get("boundary")):
            entity.children.append(
                parse_entity(data, cstart, cend, child_type, depth + 1, counter)
            )
    return entity


def split_multipart(
    data: bytes, start: int, end: int, boundary: str | None
) -> list[tuple[int, int]]:
    """(start, end) of each body part of a multipart body in data[start:end] (RFC 2046 5.1.1:
    the CRLF before a delimiter belongs to the delimiter); Unsafe when malformed."""
    if not boundary or len(boundary) > 200 or boundary != boundary.rstrip():
        raise Unsafe("multipart without a usable boundary")
    dash = b"--" + boundary.encode("latin-1")
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while True:
        if pos == start and data.startswith(dash, start, end):
            at = start
            line_start = start
        else:
            found = data.find(CRLF + dash, pos, end)
            if found < 0:
                raise Unsafe("multipart without its close delimiter")
            at, line_start = found + 2, found
        after = at + len(dash)
        line_end = data.find(CRLF, after, end)
        rest = data[after : end if line_end < 0 else line_end]
        closing = rest.startswith(b"--")
        if rest[2 if closing else 0 :].strip(b" \t"):
            pos = after  # "--boundaryX": a longer boundary, not ours
            continue
        if closing:
            if part_start is None:
                raise Unsafe("multipart without any body part")
            spans.append((part_start, line_start))
            return spans
        if line_end < 0:
            raise Unsafe("multipart without its close delimiter")
        if part_start is not None:
            spans.append((part_start, line_start))
        part_start = line_end + 2
        pos = line_end


def reader_parts(entity: Entity, out: list[Entity], depth: int) -> None:
    """Collect the text/plain and text/html parts a reader sees as the message: the
    alternatives of the main body; not attachments, not later parts, not attached messages."""
    ctype = entity.ctype
    if ctype in SIGNED_TYPES:
        raise Unsafe(f"signed or encrypted ({ctype})")
    if ctype == "multipart/alternative":
        for child in entity.children:
            reader_parts(child, out, depth + 1)
    elif ctype == "multipart/related":
        if entity.children:
            wanted = entity.params.get("start", "")
            root = next((c for c in entity.children if wanted and c.content_id == wanted),
                        entity.children[0])
            reader_parts(root, out, depth + 1)
    elif ctype.startswith("multipart/"):
        if entity.children:
            reader_parts(entity.children[0], out, depth + 1)
    elif ctype in ("text/plain", "text/html") and not entity.attachment:
        out.append(entity)


def _dkim_covers_body(raw: bytes) -> bool:
    if field_name(raw) != b"dkim-signature":
        return False
    tags = re.sub(rb"\s", b"", field_value(raw))
    return re.search(rb"(?:^|;)l=0+(?:;|$)", tags) is None


# --- editing one text part ------------------------------------------------------------------


def edit_leaf(body: bytes, part: Entity, banner: Banner) -> tuple[bytes, dict[str, str]]:
    """The part's body with the banner on top, in its charset and transfer encoding, and the
    header changes that needs ({"charset": ..., "cte": ...}, usually none)."""
    cte = part.cte or "7bit"
    if cte == "base64":
        try:
            decoded = binascii.a2b_base64(body)
        except binascii.Error as exc:
            raise Unsafe("broken base64") from exc
    elif cte == "quoted-printable":
        decoded = binascii.a2b_qp(body)
    elif cte in ("7bit", "8bit", "binary"):
        decoded = body
    else:
        raise Unsafe(f"unknown transfer encoding {cte}")
    if any(marker in decoded for marker in _INLINE_PGP):
        raise Unsafe("inline PGP")
    charset = part.params.get("charset", "").strip() or "us-ascii"
    try:
        codec = codecs.lookup(charset).name
    except (LookupError, ValueError):
        codec = ""  # an unknown label ("DEFAULT_CHARSET"): ASCII-compatible, as readers assume
    if codec and "<body>\r\n".encode(codec, "replace") != b"<body>\r\n":
        raise Unsafe(f"charset {charset} is not ASCII-compatible")
    eol = "\r\n" if b"\r\n" in decoded or b"\n" not in decoded else "\n"
    changes: dict[str, str] = {}
    if part.ctype == "text/html":
        at = html_insertion_point(decoded)
        errors_codec = "ascii" if cte == "7bit" or not codec else codec
        inserted = ("\n" + banner.html.strip() + "\n").replace("\n", eol)
        piece = inserted.encode(errors_codec, "xmlcharrefreplace")
        new = decoded[:at] + piece + decoded[at:]
    else:
        text = banner.text.replace("\n", eol)
        bom = codecs.BOM_UTF8 if codec == "utf-8" and decoded.startswith(codecs.BOM_UTF8) else b""
        rest = decoded[len(bom) :]
        if not codec:
            if not text.isascii():
                raise Unsafe(f"unknown charset {charset} for a non-ASCII banner")
            codec = "ascii"
        try:
            new = bom + text.encode(codec) + rest
        except UnicodeEncodeError:
            try:  # the banner needs more than the part's charset: move the part to UTF-8
                new = bom + (text + rest.decode(codec)).encode("utf-8")
                if codec != "utf-8":
                    changes["charset"] = "utf-8"
            except UnicodeDecodeError:  # the part is not what it says: keep its bytes
                new = bom + text.encode(codec, "replace") + rest
    if cte == "base64":
        encoded = base64.encodebytes(new).replace(b"\n", CRLF)
        if not body.endswith(b"\n"):
            encoded = encoded[:-2]
        return encoded, changes
    if cte == "quoted-printable" or (cte == "7bit" and not new.isascii()):
        if cte == "7bit":
            changes["cte"] = "quoted-printable"
        return qp_encode(new), changes
    return new, changes


def qp_encode(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 6.7) with CRLF hard line breaks."""
    lines = data.split(b"\r\n")
    return CRLF.join(binascii.b2a_qp(line, istext=False).replace(b"=\n", b"=\r\n")
                     for line in lines)


def html_insertion_point(html: bytes) -> int:
    """Where the visible body of an HTML document begins: after <body ...>, else before the
    first content (text or a body tag), else after </head>, <html> or the doctype."""
    after_head = 0
    last = 0
    for match in _HTML_TOKEN.finditer(html):
        if html[last : match.start()].strip():
            return last  # text before any <body>: the body is implicit and begins here
        last = match.end()
        if match.group("raw"):
            continue
        tag = (match.group("tag") or b"!").lower()
        if tag == b"body":
            return match.end()
        if tag in _HEAD_TAGS:
            if tag in (b"/head", b"html", b"!doctype", b"?xml", b"head"):
                after_head = max(after_head, match.end())
            continue
        if not tag.startswith((b"!", b"?", b"/")):
            return match.start()  # a body element before any <body>: the body begins here
    if html[last:].strip():
        return last
    return after_head


# --- header fields --------------------------------------------------------------------------


def change_fields(fields: list[bytes], changes: dict[str, str]) -> list[bytes]:
    """Fields with Content-Type's charset and Content-Transfer-Encoding set as in changes."""
    if not changes:
        return fields
    out = list(fields)
    if "charset" in changes:
        value = changes["charset"].encode()
        for i, f in enumerate(out):
            if field_name(f) == b"content-type":
                if _CHARSET_PARAM.search(f):
                    out[i] = _CHARSET_PARAM.sub(lambda m: m.group(1) + value, f, count=1)
                else:
                    out[i] = f + b"; charset=" + value
                break
        else:
            out.append(b"Content-Type: text/plain; charset=" + value)
    if "cte" in changes:
        cte = b"Content-Transfer-Encoding: " + changes["cte"].encode()
        out = [f for f in out if field_name(f) != b"content-transfer-encoding"]
        out.append(cte)
    return out


def header_fields(fields: list[bytes], header_value: str, subject_prefix: str) -> list[bytes]:
    """The top-level fields with forged X-Mailward-Warning fields removed, ours first, and
    the subject prefixed once."""
    ours = WARNING_FIELD.lower().encode() + b":"
    out = [encode_field(WARNING_FIELD, header_value)]
    if fields and fields[0].startswith(b"From "):
        out.insert(0, fields[0])  # an mbox "From " envelope line stays first
        fields = fields[1:]
    subject = -1
    for f in fields:
        start = f[:19].lower()
        if start.startswith(ours):
            continue  # forged: only the hub writes this field
        if subject < 0 and start.startswith(b"subject:"):
            subject = len(out)
        out.append(f)
    if subject_prefix:
        if subject >= 0:
            out[subject] = prefixed_subject(out[subject], subject_prefix)
        else:
            out.append(b"Subject: " + _prefix_words(subject_prefix, False))
    return out


def prefixed_subject(raw: bytes, prefix: str) -> bytes:
    """The Subject field with ``prefix`` in front, unless it is already there (after any
    Re:/Fwd: markers of a reply), RFC 2047 encoded-words taken into account."""
    name, _, value = raw.partition(b":")
    text = value.replace(CRLF, b"").decode("utf-8", "replace")
    try:
        decoded = decode_words(text.strip())
    except Exception:  # an encoded-word naming a charset the email package rejects
        decoded = text.strip()
    shown = _REPLY_MARKERS.sub("", decoded)
    if shown.casefold().startswith(prefix.casefold()):
        return raw
    rest = value.lstrip(b" \t")
    if not rest.strip():
        return name + b": " + _prefix_words(prefix, False)
    return name + b": " + _prefix_words(prefix, rest.startswith(b"=?")) + b" " + rest


def _prefix_words(prefix: str, encoded_next: bool) -> bytes:
    """The prefix as header text: as it is when ASCII, else one RFC 2047 encoded-word (with
    the separating space inside when an encoded-word follows, as white space between two
    encoded-words is not shown)."""
    if prefix.isascii() and "=?" not in prefix:
        return prefix.encode("ascii")
    text = prefix + (" " if encoded_next else "")
    return b"=?utf-8?q?" + _q_encode(text.encode("utf-8")) + b"?="


def _q_encode(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte == 0x20:
            out += b"_"
        elif chr(byte).isalnum() and byte < 128:
            out.append(byte)
        else:
            out += b"=%02X" % byte
    return bytes(out)


def encode_field(name: str, value: str) -> bytes:
    """``Name: value`` folded at spaces (RFC 5322 2.2.3); runs of non-ASCII words become
    RFC 2047 encoded-words (the spaces between them inside, as the white space between two
    encoded-words is not shown)."""
    words: list[str] = []
    run: list[str] = []
    for word in value.replace("=?", "= ?").split():
        if word.isascii():
            if run:
                words += _encoded_words(" ".join(run))
                run = []
            words.append(word)
        else:
            run.append(word)
    if run:
        words += _encoded_words(" ".join(run))
    lines = [f"{name}:"]
    for word in words:
        if len(lines[-1]) + 1 + len(word) > 78 and len(lines[-1]) > len(name) + 1:
            lines.append("")
        lines[-1] += " " + word
    return "\r\n".join(lines).encode("ascii")


def _encoded_words(text: str) -> list[str]:
    """Text as Q encoded-words of at most 75 characters each (RFC 2047 2)."""
    out: list[str] = []
    chunk = b""
    for ch in text:
        piece = _q_encode(ch.encode("utf-8"))
        if len(chunk) + len(piece) > 75 - len("=?utf-8?q??="):
            out.append("=?utf-8?q?" + chunk.decode("ascii") + "?=")
            chunk = b""
        chunk += piece
    if chunk:
        out.append("=?utf-8?q?" + chunk.decode("ascii") + "?=")
    return out


# --- wrapping -------------------------------------------------------------------------------


def _wrap(
    data: bytes, inline: Banner, wrapped: Banner, header_value: str, subject_prefix: str
) -> bytes:
    """A new multipart/mixed message: a banner first, then the original. Signed, encrypted
    and malformed messages are attached whole as message/rfc822 (their bytes intact, so their
    signature still verifies) under the ``wrapped`` banner; a message without a text part
    keeps its content as the second part (its body bytes intact) under the ``inline`` one."""
    end = data.find(b"\r\n\r\n")
    if data.startswith(CRLF):
        block, body = b"", data[2:]
    elif end < 0:
        block, body = data, b""
    else:
        block, body = data[: end + 2], data[end + 4 :]
    fields = split_fields(block)
    content = [f for f in fields if field_name(f).startswith(b"content-")]
    whole = _needs_whole(data, fields, content)
    kept = [_BARE_CR.sub(b" ", f).replace(b"\x00", b"") for f in fields
            if not field_name(f).startswith(b"content-")
            and field_name(f) != b"mime-version" and _FIELD_NAME.match(f)]
    outer = header_fields(kept, header_value, subject_prefix)
    boundary = new_boundary(data)
    outer += [b"MIME-Version: 1.0",
              b'Content-Type: multipart/mixed; boundary="' + boundary + b'"']
    if whole:  # the CRLF before the next delimiter belongs to it: the part is data exactly
        cte = _identity_encoding(data)
        second = (b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n"
                  + (b"Content-Transfer-Encoding: " + cte + CRLF if cte != b"7bit" else b"")
                  + CRLF + data)
    else:
        second = join_fields(content) + CRLF + body
    dash = b"--" + boundary
    return (join_fields(outer) + CRLF + b"This is a multi-part message in MIME format.\r\n"
            + dash + CRLF + banner_part(wrapped if whole else inline, data) + CRLF
            + dash + CRLF + second + CRLF + dash + b"--" + CRLF)


def _needs_whole(data: bytes, fields: list[bytes], content: list[bytes]) -> bool:
    """Whether the original goes in whole (message/rfc822) rather than as a body part:
    always unless it is a well-formed message whose content merely has no text part."""
    if data.count(b"\r") != data.count(CRLF):
        return True
    try:
        top = parse_entity(data, 0, len(data), "text/plain", 0, [0])
        found: list[Entity] = []
        reader_parts(top, found, 0)
    except Unsafe:
        return True
    return bool(found) or any(not _FIELD_NAME.match(f) for f in fields) or not content


def _identity_encoding(data: bytes) -> bytes:
    """7bit, 8bit or binary: the identity encoding (RFC 2045 6.2) that describes data."""
    if b"\x00" in data or b"\r" in data.replace(CRLF, b"") or any(
        len(line) > 998 for line in data.split(CRLF)
    ):
        return b"binary"
    return b"7bit" if data.isascii() else b"8bit"


def banner_part(banner: Banner, data: bytes) -> bytes:
    """A multipart/alternative body part with the banner as text and as an HTML page."""
    boundary = new_boundary(data, b"alt")
    dash = b"--" + boundary
    page = ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
            + banner.html.strip() + "\n</body></html>\n")
    parts = [
        (b"text/plain", banner.text.rstrip("\n") + "\n"),
        (b"text/html", page),
    ]
    out = b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n'
    for ctype, text in parts:
        body = qp_encode(text.replace("\n", "\r\n").encode("utf-8"))
        out += (dash + b"\r\nContent-Type: " + ctype + b"; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body)
        if not body.endswith(CRLF):
            out += CRLF
    return out + dash + b"--"


def new_boundary(data: bytes, kind: bytes = b"mix", token: Callable[[int], str] | None = None
                 ) -> bytes:
    """A boundary that does not occur in data ("=_" never occurs in QP or base64 text)."""
    make = token or secrets.token_hex
    while True:
        boundary = b"=_mailward_" + kind + b"_" + make(12).encode()
        if boundary not in data:
            return boundary
