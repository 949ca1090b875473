"""Enhanced status codes added to replies that lack one."""

from __future__ import annotations

import pytest

from mailward.smtp.replies import with_enhanced_code


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("500 Error: bad syntax", "500 5.5.2 Error: bad syntax"),
        ("503 Error: need MAIL command", "503 5.5.1 Error: need MAIL command"),
        ("250 OK", "250 2.0.0 OK"),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("557 something new", "557 5.0.0 something new"),
        ("250-first line", "250-2.0.0 first line"),
        ("421 4.3.2 Service shutting down", "421 4.3.2 Service shutting down"),  # kept
        ("550 5.7.1 refused", "550 5.7.1 refused"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("334 ", "334 "),
        ("250 ", "250 2.0.0"),
        ("not a reply", "not a reply"),
    ],
)
def test_with_enhanced_code(reply: str, expected: str) -> None:
    assert with_enhanced_code(reply) == expected
