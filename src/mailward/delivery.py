"""Delivery of queued messages: local Maildir per recipient, or relay to a downstream MTA."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one delivery attempt to one recipient."""

    status: str  # delivered | deferred | failed
    reply: str


class MaildirDelivery:
    """Writes each recipient's copy into ``ROOT/<address>/new``; idempotent by queue id.

    The file name is derived from the queue id and the recipient's position, so delivering the
    same queued message again after a crash finds the earlier copy and does not duplicate it.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.host = socket.gethostname().replace("/", "_").replace(":", "_")

    def mailbox(self, recipient: str) -> Path:
        safe = recipient.lower().replace("/", "_")
        return self.root / safe

    async def deliver(self, queue_id: str, index: int, recipient: str, raw: bytes) -> Attempt:
        return await asyncio.to_thread(self._deliver, queue_id, index, recipient, raw)

    def _deliver(self, queue_id: str, index: int, recipient: str, raw: bytes) -> Attempt:
        box = self.mailbox(recipient)
        name = f"{queue_id}.R{index}.{self.host}"
        try:
            for sub in ("tmp", "new", "cur"):
                (box / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
            if (box / "new" / name).exists() or any((box / "cur").glob(name + "*")):
                return Attempt("delivered", f"already in {box.name}")
            tmp = box / "tmp" / name
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, box / "new" / name)
            dirfd = os.open(box / "new", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        except OSError as exc:
            return Attempt("deferred", f"maildir write failed: {exc.strerror or exc}")
        return Attempt("delivered", f"delivered to maildir {box.name}")


class SmtpRelayDelivery:
    """Relays accepted mail to the site's own mail server (``smtp://host:port``)."""

    def __init__(self, url: str, hostname: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"delivery.downstream must look like smtp://host:port, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.implicit_tls = parts.scheme == "smtps"
        self.hostname = hostname
        self.timeout = timeout

    async def deliver_many(
        self, mail_from: str, recipients: list[str], raw: bytes
    ) -> dict[str, Attempt]:
        """One SMTP transaction for all recipients; per-recipient outcome."""
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, local_hostname=self.hostname,
            timeout=self.timeout, use_tls=self.implicit_tls, start_tls=False,
            validate_certs=False,
        )
        try:
            await client.connect()
            if client.supports_extension("starttls") and not self.implicit_tls:
                await client.starttls()
            errors, reply = await client.sendmail(mail_from, recipients, raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {
                r.recipient: Attempt(_classify(r.code), f"{r.code} {r.message}")
                for r in exc.recipients
            }
        except aiosmtplib.SMTPResponseException as exc:
            attempt = Attempt(_classify(exc.code), f"{exc.code} {exc.message}")
            return {r: attempt for r in recipients}
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            attempt = Attempt("deferred", f"downstream {self.host}:{self.port}: {exc}")
            return {r: attempt for r in recipients}
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
        out = {r: Attempt("delivered", reply) for r in recipients}
        for rcpt, (code, message) in errors.items():
            out[rcpt] = Attempt(_classify(code), f"{code} {message}")
        return out


def _classify(code: int) -> str:
    return "failed" if 500 <= code < 600 else "deferred"
