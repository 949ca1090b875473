"""Delivery status notifications (RFC 3464) for mail our own users sent that cannot be delivered.

Only authenticated, submitted mail ever bounces: inbound mail from outside never does, so a forged
sender address is never sent a bounce (no backscatter).
"""

from __future__ import annotations

import email.utils
import time
import uuid

from mailward.spool import Recipient

MAX_RETURNED = 64 * 1024


def _status_of(reply: str) -> str:
    for token in reply.split():
        parts = token.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and parts[0] in ("4", "5"):
            return token
    return "5.0.0"


def build(
    hostname: str, queue_id: str, mail_from: str, failed: list[Recipient], original: bytes,
    arrival: float, now: float | None = None,
) -> bytes:
    """A multipart/report DSN to ``mail_from`` about ``failed`` recipients of ``queue_id``."""
    now = time.time() if now is None else now
    boundary = f"=_mailward_{uuid.uuid4().hex}"
    date = email.utils.formatdate(now, usegmt=True)
    names = ", ".join(r.address for r in failed)
    human = (
        f"This is the mail system at {hostname}.\r\n\r\n"
        f"Your message could not be delivered to: {names}\r\n\r\n"
        + "".join(f"<{r.address}>: {r.last_reply}\r\n" for r in failed)
    )
    per_message = (
        f"Reporting-MTA: dns; {hostname}\r\nX-Mailward-Queue-ID: {queue_id}\r\n"
        f"Arrival-Date: {email.utils.formatdate(arrival, usegmt=True)}\r\n"
    )
    per_recipient = "".join(
        f"\r\nFinal-Recipient: rfc822; {r.address}\r\nAction: failed\r\n"
        f"Status: {_status_of(r.last_reply)}\r\nDiagnostic-Code: smtp; {r.last_reply}\r\n"
        for r in failed
    )
    headers_only = original.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    returned = original if len(original) <= MAX_RETURNED else headers_only
    returned_type = "message/rfc822" if returned is original else "text/rfc822-headers"
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\nTo: <{mail_from}>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\n"
        f"Message-ID: <{queue_id}.dsn.{uuid.uuid4().hex[:12]}@{hostname}>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
    )
    parts = (
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{human}\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"{per_message}{per_recipient}\r\n"
        f"--{boundary}\r\nContent-Type: {returned_type}\r\n\r\n"
    )
    return (head + parts).encode() + returned + f"\r\n--{boundary}--\r\n".encode()
