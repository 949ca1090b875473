"""Delivery of queued messages: local Maildir per recipient, or relay to a downstream MTA."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib

from mailward.dns import Resolver, Status
from mailward.mtasts import MtaStsResolver


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

    async def deliver(
        self, queue_id: str, index: int, recipient: str, raw: bytes, first: bool = False
    ) -> Attempt:
        """Write one copy; ``first`` says no earlier attempt of this queue id can exist."""
        return await asyncio.to_thread(self._deliver, queue_id, index, recipient, raw, first)

    def _deliver(
        self, queue_id: str, index: int, recipient: str, raw: bytes, first: bool
    ) -> Attempt:
        box = self.mailbox(recipient)
        name = f"{queue_id}.R{index}.{self.host}"
        try:
            if not (box / "new").is_dir():
                for sub in ("tmp", "new", "cur"):
                    (box / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
            if not first and self._already_there(box, name):
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

    @staticmethod
    def _already_there(box: Path, name: str) -> bool:
        """A copy from an earlier attempt, still new or already read (``name:2,FLAGS``)."""
        if (box / "new" / name).exists():
            return True
        with os.scandir(box / "cur") as entries:
            return any(e.name.split(":", 1)[0] == name for e in entries)


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
            await _hang_up(client)
        return _outcomes(recipients, reply, errors)


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT politely; close the socket when the server cannot take even that."""
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


def _outcomes(
    recipients: list[str], reply: str, errors: Mapping[str, tuple[int, str]], prefix: str = ""
) -> dict[str, Attempt]:
    """Per-recipient outcome of an accepted transaction: delivered, except those refused."""
    out = {r: Attempt("delivered", f"{prefix}{reply}") for r in recipients}
    for rcpt, (code, message) in errors.items():
        out[rcpt] = Attempt(_classify(code), f"{prefix}{code} {message}")
    return out


def _classify(code: int) -> str:
    return "failed" if 500 <= code < 600 else "deferred"


class MxDelivery:
    """Delivers to other sites by MX lookup, STARTTLS when offered, MTA-STS when published.

    Under an MTA-STS ``enforce`` policy only MX hosts the policy names are used, and only over
    TLS with a certificate valid for the MX host name; anything else defers the message.
    """

    def __init__(
        self, resolver: Resolver, hostname: str, mta_sts: MtaStsResolver,
        verified_tls: ssl.SSLContext, port: int = 25, timeout: float = 60.0,
    ) -> None:
        self.resolver = resolver
        self.hostname = hostname
        self.mta_sts = mta_sts
        self.verified_tls = verified_tls
        self.opportunistic_tls = ssl.create_default_context()
        self.opportunistic_tls.check_hostname = False
        self.opportunistic_tls.verify_mode = ssl.CERT_NONE
        self.port = port
        self.timeout = timeout

    async def hosts(self, domain: str) -> tuple[list[str], str]:
        """MX hosts in preference order (implicit MX: the domain itself), or an error text."""
        mx = await self.resolver.mx(domain)
        if mx.status is Status.TEMPERROR:
            return [], f"MX lookup for {domain} failed: {mx.error}"
        if mx.status is Status.NXDOMAIN:
            return [], f"{domain} does not exist"
        if mx.records:
            hosts = [h for _, h in sorted(mx.records)]
            if hosts == [""]:
                return [], f"{domain} accepts no mail (null MX, RFC 7505)"
            return hosts, ""
        return [domain], ""

    async def deliver_many(
        self, mail_from: str, recipients: list[str], raw: bytes
    ) -> dict[str, Attempt]:
        by_domain: dict[str, list[str]] = {}
        for rcpt in recipients:
            by_domain.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        results: dict[str, Attempt] = {}
        for domain, rcpts in by_domain.items():
            results.update(await self._deliver_domain(domain, mail_from, rcpts, raw))
        return results

    async def _deliver_domain(
        self, domain: str, mail_from: str, rcpts: list[str], raw: bytes
    ) -> dict[str, Attempt]:
        hosts, error = await self.hosts(domain)
        if not hosts:
            status = "deferred" if "failed" in error else "failed"
            return {r: Attempt(status, error) for r in rcpts}
        sts = await self.mta_sts.policy_for(domain)
        if sts.temporary:
            return {r: Attempt("deferred", sts.error) for r in rcpts}
        enforce = sts.policy is not None and sts.policy.mode == "enforce"
        if enforce and sts.policy is not None:
            hosts = [h for h in hosts if sts.policy.allows(h)]
            if not hosts:
                return {r: Attempt("deferred", f"no MX of {domain} matches its MTA-STS policy")
                        for r in rcpts}
        last = Attempt("deferred", "no MX host could be reached")
        for host in hosts:
            address = await self.resolver.a(host)
            if not address.ok or not address.records:
                last = Attempt("deferred", f"{host} has no address")
                continue
            outcome = await self._send(host, address.records[0], enforce, mail_from, rcpts, raw)
            if outcome is not None:
                return outcome
        return {r: last for r in rcpts}

    async def _send(
        self, host: str, ip: str, enforce: bool, mail_from: str, rcpts: list[str], raw: bytes
    ) -> dict[str, Attempt] | None:
        client = aiosmtplib.SMTP(
            hostname=ip, port=self.port, local_hostname=self.hostname, timeout=self.timeout,
            start_tls=False, use_tls=False,
        )
        try:
            await client.connect()
            await client.ehlo()
            if client.supports_extension("starttls"):
                context = self.verified_tls if enforce else self.opportunistic_tls
                await client.starttls(tls_context=context, server_hostname=host)
            elif enforce:
                return None  # RFC 8461 4.2: no TLS, try the next MX
            errors, reply = await client.sendmail(mail_from, rcpts, raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {r.recipient: Attempt(_classify(r.code), f"{host}: {r.code} {r.message}")
                    for r in exc.recipients}
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                return None
            return {r: Attempt(_classify(exc.code), f"{host}: {exc.code} {exc.message}")
                    for r in rcpts}
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError):
            return None
        finally:
            await _hang_up(client)
        return _outcomes(rcpts, reply, errors, f"{host}: ")
