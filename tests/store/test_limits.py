"""Cleaning untrusted text for storage, address and IP normal forms."""

from __future__ import annotations

import pytest

from mailward.store import limits


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("plain", 10, "plain"),
        ("x" * 20, 10, "x" * 10),
        ("a\x00b", 10, "a\ufffdb"),
        ("é\x00", 10, "é\ufffd"),
        ("bad \udce9 byte", 50, "bad ? byte"),
        ("日本語テキスト", 3, "日本語"),
    ],
)
def test_clean(value: str, limit: int, expected: str) -> None:
    assert limits.clean(value, limit) == expected
    limits.clean(value, limit).encode("utf-8")  # always encodable


def test_clean_opt_keeps_none() -> None:
    assert limits.clean_opt(None) is None and limits.clean_opt("a") == "a"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" <CEO@Example.COM> ", "ceo@example.com"),
        ("", ""),
        (None, None),
        ("x" * 400, "x" * limits.ADDRESS),
    ],
)
def test_address(value: str | None, expected: str | None) -> None:
    assert limits.address(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@b.example", "b.example"),
        ("a@b@c.example", "c.example"),
        ("nodomain", None),
        ("trailing@", None),
        ("", None),
        (None, None),
    ],
)
def test_domain_of(value: str | None, expected: str | None) -> None:
    assert limits.domain_of(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        (" 2001:db8::1 ", "2001:db8::1"),
        ("not-an-ip", "not-an-ip"),
        (None, None),
    ],
)
def test_ip(value: str | None, expected: str | None) -> None:
    assert limits.ip(value) == expected


def test_message_id_keeps_brackets() -> None:
    assert limits.message_id(" <a@b> ") == "<a@b>"
    assert limits.message_id(None) is None


def test_number() -> None:
    assert limits.number(float("nan")) == 0.0
    assert limits.number(2) == 2.0 and limits.number(float("inf")) == float("inf")
