"""Message parsing survives anything and names what was wrong."""

from __future__ import annotations

import email.utils
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward import message
from mailward.message import parse_headers


def symbols(raw: bytes) -> set[str]:
    return {f.symbol for f in parse_headers(raw).defects}


def test_plain_message_has_no_defects() -> None:
    parsed = parse_headers(b"From: Jane <jane@example.com>\r\nSubject: hi\r\n\r\nbody\r\n")
    assert parsed.defects == []
    assert parsed.from_domain == "example.com"
    assert parsed.from_addresses[0].display_name == "Jane"
    assert parsed.body == b"body\r\n"
    assert parsed.first("subject") == "hi"


def test_bare_lf_file_is_normalised_without_a_finding() -> None:
    parsed = parse_headers(b"From: a@example.com\nSubject: x\n\nline1\nline2\n")
    assert parsed.body == b"line1\r\nline2\r\n"
    assert parsed.defects == []


def test_mixed_line_endings_are_a_finding() -> None:
    assert "MSG_MIXED_LINE_ENDINGS" in symbols(b"From: a@example.com\r\nX: y\n\r\nbody\n")


def test_folded_header_keeps_raw_and_unfolds_value() -> None:
    parsed = parse_headers(b"Subject: one\r\n two\r\nFrom: a@example.com\r\n\r\n")
    (field,) = parsed.get_all("subject")
    assert field.raw == b"Subject: one\r\n two"
    assert field.value == "one two"


def test_missing_and_duplicate_from() -> None:
    assert "MSG_NO_FROM" in symbols(b"Subject: x\r\n\r\nbody")
    two = parse_headers(b"From: a@example.com\r\nFrom: b@example.org\r\n\r\n")
    assert "MSG_MULTIPLE_FROM" in {f.symbol for f in two.defects}
    assert two.from_domain is None
    many = parse_headers(b"From: a@example.com, b@example.org\r\n\r\n")
    assert "MSG_MULTIPLE_FROM" in {f.symbol for f in many.defects}


def test_unparseable_from() -> None:
    assert "MSG_FROM_UNPARSEABLE" in symbols(b"From: nobody here\r\n\r\n")


def test_eight_bit_headers() -> None:
    parsed = parse_headers(b"From: J\xf6rg <j@example.com>\r\nSubject: \xff\xfe\r\n\r\n")
    assert "MSG_HEADER_8BIT" in {f.symbol for f in parsed.defects}
    assert parsed.from_domain == "example.com"
    # valid UTF-8 (RFC 6532) is not a defect
    assert "MSG_HEADER_8BIT" not in symbols("From: Jörg <j@example.com>\r\n\r\n".encode())


def test_encoded_word_display_name() -> None:
    parsed = parse_headers(b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\n\r\n")
    assert parsed.from_addresses[0].display_name == "Jörg"


def test_malformed_lines_and_missing_separator() -> None:
    found = symbols(b"From: a@example.com\r\nthis is not a header\r\n")
    assert {"MSG_HEADER_MALFORMED", "MSG_NO_BODY_SEPARATOR"} <= found


def test_one_megabyte_header_block() -> None:
    big = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    raw = b"From: a@example.com\r\n" + big * 1100 + b"\r\nbody\r\n"
    parsed = parse_headers(raw)
    found = {f.symbol for f in parsed.defects}
    assert {"MSG_HEADER_TOO_LARGE", "MSG_LINE_TOO_LONG", "MSG_TOO_MANY_HEADERS"} <= found
    assert parsed.from_domain == "example.com"
    assert parsed.body == b"body\r\n"


def test_empty_and_header_only_messages() -> None:
    assert "MSG_NO_FROM" in symbols(b"")
    assert parse_headers(b"\r\nbody only").body == b"body only"


def test_broken_encoded_word_charset_does_not_raise() -> None:
    from mailward.message import decode_words

    assert decode_words("=?utf-8\xff?q?x?=") == "=?utf-8\xff?q?x?="
    parsed = parse_headers(b"From: =?utf-8\xff?q?x?= <a@example.com>\r\n\r\n")
    assert parsed.from_domain == "example.com"


# --- the fast paths give what the general code gives -------------------------------------------

_NAME_CHARS = st.sampled_from([*"abcXYZ019 .-_'!#=?\t\"()<>@,:;[]\\", "é", "\x00"])
_ADDR_CHARS = st.sampled_from([*"abc019.-_+=?'@ <>\"(,", "é"])


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.from_regex(r"[A-Za-z.=?_-]{1,5}(?:[ \t]{1,3}[A-Za-z.=?]{1,5}){0,3}",
                            fullmatch=True), st.text(_NAME_CHARS, max_size=20)),
    st.one_of(st.from_regex(r"[a-z0-9.+='-]{1,6}@[a-z0-9.-]{1,8}", fullmatch=True),
              st.text(_ADDR_CHARS, max_size=20)),
    st.sampled_from(["{n} <{a}>", "{n}<{a}>", '"{n}" <{a}>', "<{a}>", "{a}", " {n}  <{a}> ",
                     "{n} <{a}>, x@y.z", "{n} ({a})", "{a} {n}"]),
)
def test_simple_mailbox_reading_equals_email_utils(name: str, addr: str, shape: str) -> None:
    value = shape.format(n=name, a=addr)
    expected = [
        (message.decode_words(n), a) for n, a in email.utils.getaddresses([value]) if n or a
    ]
    assert [(x.display_name, x.address) for x in message.parse_addresses([value])] == expected


@pytest.mark.parametrize(
    ("value", "name", "address"),
    [
        ("Jane Doe <jane.doe@example.com>", "Jane Doe", "jane.doe@example.com"),
        ('"Doe, Jane" <jane@example.com>', "Doe, Jane", "jane@example.com"),
        ("J. R.  Doe<j@example.com>", "J. R. Doe", "j@example.com"),
        ("=?utf-8?q?J=C3=B6rg?= <j@example.com>", "Jörg", "j@example.com"),
        ("jane@example.com", "", "jane@example.com"),
        ("<jane@example.com>", "", "jane@example.com"),
    ],
)
def test_common_from_forms(value: str, name: str, address: str) -> None:
    assert message._SIMPLE_MAILBOX.match(value) is not None  # the fast path reads these
    (found,) = message.parse_addresses([value])
    assert (found.display_name, found.address) == (name, address)
    assert found == message.Address(name, address)


def _reference_fields(block: bytes) -> tuple[list[tuple[str, bytes]], int, int]:
    """Header fields, malformed and over-long line counts, line by line (the plain way)."""
    fields: list[tuple[str, bytes]] = []
    current: list[bytes] = []
    malformed = long_lines = 0
    for line in block.split(b"\r\n"):
        if not line:
            continue
        long_lines += len(line) > message.MAX_LINE
        if line[:1] in (b" ", b"\t"):
            if current:
                current.append(line)
            else:
                malformed += 1
            continue
        if current:
            raw = b"\r\n".join(current)
            fields.append((raw.split(b":", 1)[0].rstrip(b" \t").decode(), raw))
            current = []
        if re.match(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:", line):
            current = [line]
        else:
            malformed += 1
    if current:
        raw = b"\r\n".join(current)
        fields.append((raw.split(b":", 1)[0].rstrip(b" \t").decode(), raw))
    return fields, malformed, long_lines


_HEADER_LINES = st.lists(
    st.sampled_from([b"From: a@example.com", b"Subject : x", b" folded", b"\tfolded\tmore",
                     b"no colon here", b"X-Long: " + b"y" * 1000, b"Bad Name: v", b"A:",
                     b":empty name", b"Cr: a\rb", b"\t"]),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_HEADER_LINES)
def test_field_splitting_equals_reading_line_by_line(lines: list[bytes]) -> None:
    block = b"".join(line + b"\r\n" for line in lines)
    fields, defects = message._split_fields(block)
    expected, malformed, long_lines = _reference_fields(block)
    assert [(f.name, f.raw) for f in fields] == expected
    assert all(f.lname == f.name.lower() for f in fields)
    found = {d.symbol: d.detail for d in defects}
    assert ("MSG_HEADER_MALFORMED" in found) == bool(malformed)
    assert ("MSG_LINE_TOO_LONG" in found) == bool(long_lines)
    if malformed:
        assert found["MSG_HEADER_MALFORMED"].startswith(f"{malformed} ")
    if long_lines:
        assert found["MSG_LINE_TOO_LONG"].startswith(f"{long_lines} ")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b" ", b"\r", b"\n", b"\r\n", b"\n\r"]), max_size=30))
def test_line_endings_are_read_like_counting_them(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    lf, crlf = raw.count(b"\n"), raw.count(b"\r\n")
    canonical, mixed = message.to_crlf(raw)
    assert mixed == (lf != crlf and crlf > 0)
    assert canonical == (raw if lf == crlf else re.sub(rb"\r?\n", b"\r\n", raw))


def test_fields_by_name_keep_message_order() -> None:
    parsed = parse_headers(b"Received: 1\r\nFrom: a@example.com\r\nreceived: 2\r\n\r\n")
    assert [f.raw for f in parsed.by_name()["received"]] == [b"Received: 1", b"received: 2"]
    assert [f.raw for f in parsed.get_all("RECEIVED")] == [b"Received: 1", b"received: 2"]
    parsed.get_all("received").clear()  # a copy: the index is not changed through it
    assert len(parsed.get_all("received")) == 2
    assert parsed.first("x-missing") is None
