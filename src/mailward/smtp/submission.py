"""The submission listener (RFC 6409, 8314): AUTH only over TLS, senders bound to accounts."""

from __future__ import annotations

import asyncio
import logging
from base64 import b64decode
from collections.abc import Callable
from typing import Any, Protocol

from aiosmtpd.smtp import MISSING, AuthResult, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailward.message import parse_addresses
from mailward.model import Message
from mailward.smtp.common import EXTENSIONS, has_bare_line_ending
from mailward.smtp.server import LimitedSMTP
from mailward.smtp.throttle import AuthKeys, AuthThrottle, auth_keys

log = logging.getLogger("mailward.auth")


class Accounts(Protocol):
    """Who may log in, and which addresses each account may send as."""

    async def verify(self, user: str, password: str) -> bool: ...

    async def owns(self, user: str, address: str) -> bool: ...


class Submitter(Protocol):
    """Takes an authenticated message (signs, queues it); returns the queue id."""

    async def submit(
        self, user: str, session: Session, envelope: SmtpEnvelope, message: Message
    ) -> str: ...


class SubmissionSMTP(LimitedSMTP):
    """aiosmtpd's protocol with AUTH PLAIN/LOGIN verified asynchronously (argon2 off the loop)."""

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            response = await self.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False)
        else:
            try:
                response = b64decode(args[1].encode(), validate=True)
            except ValueError:
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        assert isinstance(response, bytes)
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await self.push("501 5.5.2 Cannot split the PLAIN response")
            return AuthResult(success=False, handled=True)
        return await self.event_handler.authenticate(self, "PLAIN", parts[1], parts[2])

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await self.challenge_auth("Username:")
            if login is MISSING:
                return AuthResult(success=False)
        else:
            try:
                login = b64decode(args[1].encode(), validate=True)
            except ValueError:
                await self.push("501 5.5.2 Cannot decode base64")
                return AuthResult(success=False, handled=True)
        password = await self.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False)
        assert isinstance(login, bytes) and isinstance(password, bytes)
        return await self.event_handler.authenticate(self, "LOGIN", login, password)


class SubmissionHandler:
    """Envelope and header policy for authenticated users; hands messages to the Submitter."""

    def __init__(
        self, accounts: Accounts, submitter: Submitter, throttle: AuthThrottle,
        max_recipients: int, record_auth: Any = None, monitor: Any = None,
        share_login: Callable[[AuthKeys, bool], None] | None = None,
    ) -> None:
        self.accounts = accounts
        self.submitter = submitter
        self.throttle = throttle
        self.max_recipients = max_recipients
        self.record_auth = record_auth
        # compromise indicators (mailward.alerts.AlertMonitor or the worker's relay of it)
        self.monitor = monitor
        # tells the other worker processes what this throttle counted (a failure: both keys;
        # a success: the account key is cleared), so the limit holds for the whole hub
        self.share_login = share_login

    async def authenticate(
        self, server: SubmissionSMTP, mechanism: str, login: bytes, password: bytes
    ) -> AuthResult:
        session = server.session
        assert session is not None
        ip = session.peer[0] if isinstance(session.peer, tuple) else "unknown"
        user = login.decode("utf-8", "replace").strip().lower()
        keys = auth_keys(ip, user)
        if self.throttle.blocked(*keys):
            self._log(ip, user, mechanism, False, "throttled")
            await asyncio.sleep(1.0)
            await server.push("454 4.7.0 Too many failed logins; try again later")
            return AuthResult(success=False, handled=True)
        ok = await self.accounts.verify(user, password.decode("utf-8", "replace"))
        if not ok:
            self.throttle.fail(*keys)
            if self.share_login is not None:
                self.share_login(keys, False)
            self._log(ip, user, mechanism, False, "bad credentials")
            await asyncio.sleep(0.5)  # slow down guessing on this connection
            return AuthResult(
                success=False, handled=False,
                message="535 5.7.8 Authentication credentials invalid",
            )
        self.throttle.succeed(keys.account)
        if self.share_login is not None:
            self.share_login(keys, True)
        self._log(ip, user, mechanism, True, "")
        return AuthResult(success=True, auth_data=user)

    def _log(self, ip: str, user: str, mechanism: str, success: bool, reason: str) -> None:
        # never the password: only who, from where, how and the outcome
        level = logging.INFO if success else logging.WARNING
        log.log(level, "auth %s user=%s ip=%s mechanism=%s %s", "ok" if success else "failed",
                user, ip, mechanism, reason)
        if self.record_auth is not None:
            self.record_auth(ip=ip, user=user, mechanism=mechanism, success=success,
                             reason=reason)
        if self.monitor is not None:
            self.monitor.auth(user, ip, success)

    def _refused(self, session: Session, user: str, address: str) -> None:
        if self.monitor is not None:
            ip = session.peer[0] if isinstance(session.peer, tuple) else None
            self.monitor.binding_refused(user, address, ip=ip)

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: SmtpEnvelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], *EXTENSIONS, responses[-1]]

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: SmtpEnvelope, address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        user = str(session.auth_data)
        if not address or not await self.accounts.owns(user, address):
            self._refused(session, user, address)
            return f"553 5.7.1 <{address}>: sender address not owned by {user}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: SmtpEnvelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients})"
        if "@" not in address or address.startswith("@"):
            return "501 5.1.3 Bad recipient address syntax"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: SmtpEnvelope) -> str:
        user = str(session.auth_data)
        raw = envelope.original_content or b""
        if has_bare_line_ending(raw):
            return "554 5.6.0 Message refused: bare CR or LF line endings are not allowed"
        message = Message(raw)
        senders = parse_addresses([f.value for f in message.parsed.get_all("From")])
        senders += parse_addresses([f.value for f in message.parsed.get_all("Sender")])
        if not senders:
            return "553 5.7.1 The message has no From address"
        for sender in senders:
            if not await self.accounts.owns(user, sender.address):
                self._refused(session, user, sender.address)
                return f"553 5.7.1 From address <{sender.address}> not owned by {user}"
        try:
            qid = await self.submitter.submit(user, session, envelope, message)
        except Exception:
            log.exception("internal error while submitting for %s", user)
            return "451 4.3.0 Internal error, message not accepted; try again later"
        return f"250 2.0.0 OK queued as {qid}"


__all__ = ["Accounts", "SubmissionHandler", "SubmissionSMTP", "Submitter"]
