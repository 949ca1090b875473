"""Message parsing survives anything and names what was wrong."""

from __future__ import annotations

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
