"""The only place that changes a message: trace and authentication headers before delivery."""

from __future__ import annotations

import email.utils
import time

from mailward.authresults import authserv_id_of
from mailward.message import ParsedHeaders
from mailward.model import Connection


def received_header(
    connection: Connection, hostname: str, queue_id: str, recipient: str | None, when: float,
    protocol: str = "ESMTP",
) -> bytes:
    """A Received field (RFC 5321 4.4) naming the client, TLS version/cipher and queue id."""
    helo = connection.helo or "unknown"
    rdns = connection.rdns or "unknown"
    ip = connection.ip or "unknown"
    with_proto = protocol
    if connection.tls_version:
        with_proto += "S"
    if connection.auth_user:
        with_proto += "A"
    tls = ""
    if connection.tls_version:
        tls = f"\r\n\t(using {connection.tls_version} with cipher {connection.tls_cipher})"
    auth = f"\r\n\t(authenticated as {connection.auth_user})" if connection.auth_user else ""
    rcpt = f"\r\n\tfor <{recipient}>" if recipient else ""
    date = email.utils.formatdate(when, localtime=False, usegmt=True)
    return (
        f"Received: from {helo} ({rdns} [{ip}]){tls}{auth}\r\n\tby {hostname} (mailward) "
        f"with {with_proto} id {queue_id}{rcpt};\r\n\t{date}\r\n"
    ).encode("utf-8", "surrogateescape")


def strip_forged_headers(parsed: ParsedHeaders, authserv_id: str) -> bytes:
    """The message without the fields only we may write: Authentication-Results claiming our
    authserv-id, and X-Mailward-Warning."""
    ours = authserv_id.lower()
    forged = [
        f for f in parsed.get_all("Authentication-Results") if authserv_id_of(f.value) == ours
    ] + parsed.get_all("X-Mailward-Warning")
    if not forged:
        return parsed.canonical
    out = bytearray()
    for f in parsed.fields:
        if any(f is g for g in forged):
            continue
        out += f.raw + b"\r\n"
    out += b"\r\n" + parsed.body
    return bytes(out)


def prepare_inbound(
    parsed: ParsedHeaders, connection: Connection, hostname: str, authserv_id: str,
    authentication_results: str, queue_id: str, recipients: list[str], when: float | None = None,
) -> bytes:
    """Received + our Authentication-Results on top; forged copies of ours removed."""
    when = time.time() if when is None else when
    body = strip_forged_headers(parsed, authserv_id)
    rcpt = recipients[0] if len(recipients) == 1 else None
    ar = f"Authentication-Results: {authentication_results}\r\n".encode("utf-8", "replace")
    return ar + received_header(connection, hostname, queue_id, rcpt, when) + body
