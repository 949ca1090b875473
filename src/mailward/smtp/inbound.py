"""The inbound (MX) SMTP handler: envelope policy, then the hub's outcome as the reply."""

from __future__ import annotations

import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from mailward.hub import Hub, Outcome
from mailward.model import Disposition, Envelope, Message, Transaction
from mailward.smtp.common import EXTENSIONS, connection_of, has_bare_line_ending
from mailward.smtp.relay import check_recipient

log = logging.getLogger("mailward.smtp")

def reply_for(outcome: Outcome) -> str:
    """Turn the hub's outcome into the SMTP reply."""
    verdict = outcome.evaluation.verdict
    qid = outcome.queue_id
    if verdict.disposition is Disposition.REJECT:
        reason = verdict.forced_by or "score"
        first = next((f for f in verdict.findings if f.symbol == verdict.forced_by), None)
        detail = first.detail if first else verdict.reasons[0] if verdict.reasons else ""
        return f"550 5.7.1 Message rejected ({reason}): {_one_line(detail)} [{qid}]"
    if verdict.disposition is Disposition.TEMPFAIL:
        return f"451 4.7.1 Cannot verify the sender now, try again later [{qid}]"
    return f"250 2.0.0 OK queued as {qid}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InboundHandler:
    """aiosmtpd handler for the MX listener: accepts mail for the site's domains only."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        config = hub.config
        self.site_domains = config.local_domains
        self.max_recipients = config.smtp.max_recipients
        self.max_header_fields = config.smtp.max_header_fields

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], *EXTENSIONS, responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.max_recipients})"
        verdict = check_recipient(address, self.site_domains)
        if not verdict.accepted:
            log.info("relay refused: rcpt=<%s> peer=%s: %s", address, session.peer, verdict.reason)
            return f"554 5.7.1 <{address}>: {verdict.reason}"
        envelope.rcpt_tos.append(verdict.address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        raw: Any = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if has_bare_line_ending(raw):
            return "554 5.6.0 Message refused: bare CR or LF line endings are not allowed"
        message = Message(raw)
        if len(message.parsed.fields) > self.max_header_fields:
            return f"552 5.3.4 Too many header fields (at most {self.max_header_fields})"
        tx = Transaction(
            connection_of(session),
            Envelope(envelope.mail_from or "", list(envelope.rcpt_tos), len(raw)),
            message,
        )
        try:
            outcome = await self.hub.receive(tx)
        except Exception:
            log.exception("internal error while receiving a message from %s", session.peer)
            return "451 4.3.0 Internal error, message not accepted; try again later"
        return reply_for(outcome)
