"""RCPT policy: plain site mailboxes only; every relay trick refused."""

from __future__ import annotations

import pytest

from mailward.smtp.relay import check_recipient
from tests.conftest import CONFORMANCE

SITE = frozenset({"ourcorp.example"})
PATTERNS = CONFORMANCE / "smtp-open-relay-patterns" / "relay-test-patterns.tsv"


def relay_patterns() -> list[tuple[str, str]]:
    rows = []
    for line in PATTERNS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        ident, _mail_from, rcpt, technique = line.split("\t")
        rcpt = rcpt.format(to="relaytest", domain="victim.test", ip="127.0.0.1",
                           srv="ourcorp.example")
        rows.append((f"{ident}-{technique}", rcpt))
    return rows


@pytest.mark.conformance("smtp-open-relay")
@pytest.mark.parametrize(("technique", "rcpt"), relay_patterns())
def test_scanner_relay_patterns_are_refused(technique: str, rcpt: str) -> None:
    assert not check_recipient(f"<{rcpt}>", SITE).accepted, technique


@pytest.mark.parametrize(
    "rcpt",
    [
        "user%other.test@ourcorp.example",
        '"user@other.test"@ourcorp.example',
        "other.test!user@ourcorp.example",
        "@ourcorp.example:user@other.test",
        "user@ourcorp.example.",
        "user@[127.0.0.1]",
        "user@other.test",
        "user@ourcorp.example@other.test",
        "",
        "user@",
        "@ourcorp.example",
        "us er@ourcorp.example",
    ],
)
def test_relay_tricks_are_refused(rcpt: str) -> None:
    assert not check_recipient(rcpt, SITE).accepted


def test_plain_site_address_is_accepted_and_domain_lowercased() -> None:
    result = check_recipient("<Staff.Member@OurCorp.Example>", SITE)
    assert result.accepted and result.address == "Staff.Member@ourcorp.example"
