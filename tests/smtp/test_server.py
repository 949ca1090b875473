"""The listener protocol: the fast MAIL/RCPT path parser agrees with aiosmtpd's own."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from mailward.smtp.server import ConnectionLimits, LimitedSMTP

PATHS = [
    "<user@example.com>", "<user@example.com> SIZE=1000 BODY=8BITMIME", "<>", "<> SIZE=10",
    "<first.last+tag@sub.example.co.uk>", "<a..b@example.com>", "<.a@example.com>",
    "<a.@example.com>", '<"quoted local"@example.com>', "user@example.com", "<@a:b@c>",
    "<user@[127.0.0.1]>", "  <user@example.com>", "<user@example.com", "<user@ex ample.com>",
    "<us er@example.com>", "", "<x@y>",
]


class _Handler:
    pass


@pytest.mark.parametrize("path", PATHS)
def test_fast_path_parser_matches_aiosmtpd(path: str) -> None:
    loop = asyncio.new_event_loop()  # aiosmtpd would otherwise make one and leave it open
    try:
        ours = LimitedSMTP(_Handler(), limits=ConnectionLimits(10, 10), loop=loop)
        theirs = SMTP(_Handler(), loop=loop)
        assert ours._getaddr(path) == theirs._getaddr(path)
    finally:
        loop.close()


def test_connection_limits() -> None:
    limits = ConnectionLimits(total=3, per_ip=2)
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.1") is None
    assert "from your address" in (limits.admit("192.0.2.1") or "")
    assert limits.admit("192.0.2.2") is None
    assert "Too many connections" in (limits.admit("192.0.2.3") or "")
    limits.release("192.0.2.1")
    assert limits.admit("192.0.2.3") is None
