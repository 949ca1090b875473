"""Listening sockets and per-connection limits around aiosmtpd's protocol."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP

log = logging.getLogger("mailward.smtp")


class ConnectionLimits:
    """Counts open connections per listener and per client IP."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self.open: Counter[str] = Counter()

    def admit(self, ip: str) -> str | None:
        """None when the connection may proceed, else the 421 reply."""
        if sum(self.open.values()) >= self.total:
            return "421 4.7.0 Too many connections, try again later"
        if self.open[ip] >= self.per_ip:
            return "421 4.7.0 Too many connections from your address, try again later"
        self.open[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP protocol, refusing connections over the limits with 421."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = limits
        self._admitted_ip: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else "unix"
        refusal = self._limits.admit(ip)
        if refusal is not None:
            log.warning("connection from %s refused: %s", ip, refusal)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(refusal.encode() + b"\r\n")
            transport.close()
            return
        self._admitted_ip = ip
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted_ip is not None:
            self._limits.release(self._admitted_ip)
            self._admitted_ip = None
            super().connection_lost(exc)


def split_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def listen(
    address: str, factory: Any, ssl_context: ssl.SSLContext | None = None
) -> asyncio.Server:
    host, port = split_hostport(address)
    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, host, port, ssl=ssl_context, reuse_address=True)
