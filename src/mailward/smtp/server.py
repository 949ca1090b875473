"""Listening sockets and per-connection limits around aiosmtpd's protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Session

from mailward.smtp.common import connection_of
from mailward.smtp.replies import with_enhanced_code

log = logging.getLogger("mailward.smtp")


class ConnectionLimits:
    """Counts open connections per listener and per client IP."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self.open: Counter[str] = Counter()
        self.live: set[LimitedSMTP] = set()

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


# A plain <local@domain> path with an optional parameter tail: the shape of nearly every
# MAIL/RCPT. aiosmtpd parses each with the email header parser (and defines a class per call);
# this fast path gives the same answer for these, and anything else still goes the slow way.
_SIMPLE_PATH = re.compile(
    r"^\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>(.*)$|^\s*<>(.*)$", re.S
)


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP protocol, refusing connections over the limits with 421."""

    def __init__(
        self, handler: Any, *, limits: ConnectionLimits, recorder: Any = None,
        data_timeout: float = 1800.0, **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._data_timeout = data_timeout
        self._data_deadline: asyncio.TimerHandle | None = None
        self._limits = limits
        self._recorder = recorder
        self._admitted_ip: str | None = None
        self.connection_id: str | None = None
        self._greeted = False  # the greeting (the first reply) goes out as it is
        self._in_hello = False  # so do the answers to HELO and EHLO (RFC 2034)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.match(arg)
        if match is None:
            return super()._getaddr(arg)
        if match.group(3) is not None:
            return "<>", match.group(3)
        address = match.group(1)
        if ".." in address or address.startswith(".") or "." + "@" in address:
            return super()._getaddr(arg)
        return address, match.group(2).lstrip()

    async def push(self, status: AnyStr) -> None:
        """Every reply but the greeting and the HELO/EHLO answers gets an enhanced status
        code (we advertise ENHANCEDSTATUSCODES)."""
        if isinstance(status, str) and self._greeted and not self._in_hello:
            status = with_enhanced_code(status)
        self._greeted = True
        await super().push(status)

    async def smtp_HELO(self, hostname: str) -> None:
        with self._hello_replies():
            await super().smtp_HELO(hostname)

    async def smtp_EHLO(self, hostname: str) -> None:
        with self._hello_replies():
            await super().smtp_EHLO(hostname)

    @contextlib.contextmanager
    def _hello_replies(self) -> Iterator[None]:
        """Replies pushed inside go out without an enhanced code (RFC 2034 exempts them)."""
        self._in_hello = True
        try:
            yield
        finally:
            self._in_hello = False

    def data_received(self, data: bytes) -> None:
        """Whatever the client sends restarts the idle timer (aiosmtpd restarts it only when a
        command arrives, so a message still uploading steadily was cut off
        ``command_timeout`` seconds after DATA)."""
        if self._timeout_handle is not None:
            self._reset_timeout()
        super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:
        """DATA under a deadline of its own: a client dribbling its message gets 421 after
        ``data_timeout`` seconds (the idle timer alone would let it go on for ever)."""
        self._data_deadline = self.loop.call_later(self._data_timeout, self._data_too_slow)
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_deadline.cancel()
            self._data_deadline = None

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "DATA" and self._data_deadline is not None:
            self._data_deadline.cancel()  # the message is in; its evaluation has its own limit
        return await super()._call_handler_hook(command, *args)

    def _data_too_slow(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            log.info("%s: the message took longer than %.0fs to send; closing",
                     self._admitted_ip, self._data_timeout)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.4.2 The message took too long to send, closing the "
                            b"connection\r\n")
            transport.close()

    def _timeout_cb(self) -> None:
        """RFC 5321 4.5.3.2: say why before closing an idle connection."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(b"421 4.4.2 Timeout, closing the connection\r\n")
        super()._timeout_cb()

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
        self._limits.live.add(self)
        if self._recorder is not None:
            self.connection_id = self._recorder.record_connection(peer_ip=ip)
        super().connection_made(transport)

    def _create_session(self) -> Session:
        session = super()._create_session()
        session.connection_id = self.connection_id  # type: ignore[attr-defined]
        return session

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted_ip is not None:
            self._limits.live.discard(self)
            self._limits.release(self._admitted_ip)
            self._admitted_ip = None
            if self._recorder is not None and self.connection_id is not None:
                if self.session is not None:
                    seen = connection_of(self.session)
                    self._recorder.update_connection(
                        self.connection_id, helo=seen.helo, tls_version=seen.tls_version,
                        tls_cipher=seen.tls_cipher, auth_user=seen.auth_user,
                    )
                self._recorder.close_connection(self.connection_id)
            super().connection_lost(exc)


async def drain(limits: list[ConnectionLimits], grace: float) -> None:
    """On shutdown: let sessions finish for ``grace`` seconds, then 421 and close the rest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while any(lim.live for lim in limits) and loop.time() < deadline:
        await asyncio.sleep(0.1)
    for lim in limits:
        for protocol in list(lim.live):
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(b"421 4.3.2 Service shutting down, try again later\r\n")
                transport.close()


def split_hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
