"""Pieces both listeners share: the session's Connection, extensions, bare-line-ending test."""

from __future__ import annotations

from aiosmtpd.smtp import Session

from mailward.model import Connection

EXTENSIONS = ("250-PIPELINING", "250-ENHANCEDSTATUSCODES")


def connection_of(session: Session) -> Connection:
    peer = session.peer
    ip = peer[0] if isinstance(peer, tuple) else None
    if ip and ip.startswith("::ffff:"):
        ip = ip[7:]
    tls = session.ssl or {}
    cipher = tls.get("cipher")
    return Connection(
        ip=ip,
        helo=session.host_name,
        tls_version=cipher[1] if cipher else None,
        tls_cipher=cipher[0] if cipher else None,
        auth_user=session.auth_data if session.authenticated else None,
        connection_id=getattr(session, "connection_id", None),
    )


def has_bare_line_ending(data: bytes) -> bool:
    """A LF not preceded by CR, or a CR not followed by LF (SMTP smuggling, RFC 5321 2.3.8)."""
    return data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n")
