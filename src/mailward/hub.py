"""The hub: what happens to a received message between the SMTP reply and delivery.

`Hub.receive` is the one call the SMTP layer makes at end of DATA: it runs the pipeline, and for
an accepted message writes it to the spool (fsynced) before returning, so the reply the SMTP
layer derives from the outcome is only 250 when the message is safe on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session

from mailward import actions, banner, campaign, signing
from mailward.config import Config
from mailward.delivery import Attempt, MaildirDelivery, MxDelivery, SmtpRelayDelivery
from mailward.dns import Resolver
from mailward.history import SenderHistory
from mailward.keys import KeyStore
from mailward.model import Disposition, Envelope, Message, Transaction
from mailward.mtasts import MtaStsResolver
from mailward.pipeline import Evaluation, Pipeline
from mailward.queue_runner import QueueRunner
from mailward.smtp.common import connection_of
from mailward.spool import Recipient, Spool, SpoolEntry, new_queue_id

if TYPE_CHECKING:
    from mailward.metrics import Metrics
    from mailward.store.recorder import Recorder

log = logging.getLogger("mailward.hub")


@dataclass(slots=True)
class Outcome:
    """What happened to a received message: the evaluation and where the message went."""

    queue_id: str
    evaluation: Evaluation
    stored: str  # queued | quarantined | refused


class Hub:
    """Owns the pipeline, the spool, the quarantine and the delivery runner."""

    def __init__(
        self, config: Config, resolver: Resolver, pipeline: Pipeline | None = None,
        recorder: Recorder | None = None, notify: Callable[[str], None] | None = None,
        history: SenderHistory | None = None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        # where a newly queued message is announced: our own runner, or (in a worker
        # process) the master that runs the delivery queue
        self.notify = notify
        self.resolver = resolver
        self.pipeline = pipeline or Pipeline(config, resolver, history=history)
        self.data_dir = Path(config.server.data_dir)
        self.spool = Spool(self.data_dir / "spool")
        self.quarantine_dir = self.data_dir / "quarantine"
        self.quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.maildir = MaildirDelivery(self.data_dir / "maildir")
        downstream = config.delivery.downstream
        self.relay = SmtpRelayDelivery(downstream, config.hostname) if downstream else None
        self.site_domains = config.local_domains
        self.keys = KeyStore(self.data_dir)
        verified = ssl.create_default_context(cafile=config.delivery.tls_ca_file or None)
        self.mx = MxDelivery(
            resolver, config.hostname,
            MtaStsResolver(resolver, verified, https_port=config.delivery.https_port),
            verified, port=config.delivery.mx_port,
        )
        self.runner = QueueRunner(self.spool, self.route, config.delivery, config.hostname,
                                  recorder, on_delivery=self._observe_delivery)
        # optional observers, set by `serve`: Prometheus metrics and compromise indicators
        self.metrics: Metrics | None = None
        self.monitor: Any = None

    async def receive(self, tx: Transaction) -> Outcome:
        """Evaluate and store one message. Raises on internal failure (the caller answers 451)."""
        tx.queue_id = tx.queue_id or new_queue_id()
        started = time.perf_counter()
        async with asyncio.timeout(self.config.smtp.verdict_timeout):
            evaluation = await self.pipeline.evaluate(tx)
        if self.metrics is not None:
            self.metrics.observe_message(str(evaluation.verdict.disposition),
                                         evaluation.findings, time.perf_counter() - started)
        disposition = evaluation.verdict.disposition
        if disposition in (Disposition.REJECT, Disposition.TEMPFAIL):
            outcome = Outcome(tx.queue_id, evaluation, "refused")
        else:
            raw = actions.prepare_inbound(
                tx.message.parsed, tx.connection, self.config.hostname, self.config.authserv_id,
                evaluation.authentication_results, tx.queue_id, tx.envelope.rcpt_to,
            )
            if disposition is Disposition.TAG and self.config.banner.enabled:
                # tell the reader, in the message itself, why it is suspicious
                raw = banner.apply_warning(
                    raw, banner.warning_for(evaluation.verdict, self.config), self.config
                )
            if disposition is Disposition.QUARANTINE:
                path = await asyncio.to_thread(self._quarantine, tx.queue_id, raw)
                outcome = Outcome(tx.queue_id, evaluation, "quarantined")
                if self.recorder is not None:
                    self.recorder.record_quarantine(
                        queue_id=tx.queue_id, reason=evaluation.verdict.admin_explanation,
                        raw_path=str(path),
                    )
            elif self.relay is None:
                # Local Maildir delivery is final delivery: done (fsynced) before the 250,
                # so the message needs no spool round trip.
                await self._deliver_locally(tx.queue_id, tx.envelope.rcpt_to, raw)
                outcome = Outcome(tx.queue_id, evaluation, "delivered")
            else:
                entry = SpoolEntry(
                    tx.queue_id, tx.envelope.mail_from,
                    [Recipient(r) for r in tx.envelope.rcpt_to], time.time(),
                    disposition=str(disposition),
                    # never bounce mail whose sender we could not verify (no backscatter)
                    bounce_allowed=False,
                )
                await asyncio.to_thread(self.spool.enqueue, raw, entry)
                self._queued(entry.queue_id)
                outcome = Outcome(tx.queue_id, evaluation, "queued")
        self._record_transaction(tx, evaluation, str(evaluation.verdict.disposition))
        v = evaluation.verdict
        log.info(
            "%s from=<%s> to=%s ip=%s disposition=%s score=%.1f forced=%s stored=%s",
            tx.queue_id, tx.envelope.mail_from, ",".join(tx.envelope.rcpt_to),
            tx.connection.ip, v.disposition, v.score, v.forced_by or "-", outcome.stored,
        )
        return outcome

    def _record_transaction(
        self, tx: Transaction, evaluation: Evaluation | None, disposition: str
    ) -> None:
        if self.recorder is None:
            return
        parsed = tx.message.parsed
        sender = parsed.from_addresses[0].address if parsed.from_addresses else None
        verdict = evaluation.verdict if evaluation else None
        try:
            self.recorder.record_transaction(
                queue_id=tx.queue_id, mail_from=tx.envelope.mail_from,
                recipients=tx.envelope.rcpt_to, disposition=disposition,
                score=verdict.score if verdict else 0.0,
                forced_by=verdict.forced_by if verdict else None,
                findings=evaluation.findings if evaluation else (),
                connection_id=tx.connection.connection_id,
                message_id=parsed.first("Message-ID"), header_from=parsed.first("From"),
                from_address=sender, reply_to=parsed.first("Reply-To"),
                subject=parsed.first("Subject"), size=len(tx.message.raw),
                body_sha256=hashlib.sha256(parsed.body).hexdigest(),
                urls=campaign.message_urls(parsed, self.site_domains),
            )
        except Exception:  # the log must never lose the mail
            log.exception("%s could not be logged to the store", tx.queue_id)

    async def _deliver_locally(self, queue_id: str, recipients: list[str], raw: bytes) -> None:
        for index, rcpt in enumerate(recipients):
            attempt = await self.maildir.deliver(queue_id, index, rcpt, raw, first=True)
            if attempt.status != "delivered":
                raise OSError(f"local delivery to {rcpt} failed: {attempt.reply}")
            if self.recorder is not None:
                self.recorder.record_delivery(queue_id=queue_id, recipient=rcpt,
                                              status=attempt.status, reply=attempt.reply)
            self._observe_delivery(attempt.status, 0.0)

    def _observe_delivery(self, status: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_delivery(status, seconds)

    async def queue_notification(self, raw: bytes, recipients: list[str]) -> str:
        """Queue a message of our own (an alert to the administrators) from the null sender."""
        qid = new_queue_id()
        entry = SpoolEntry(qid, "", [Recipient(r) for r in recipients], time.time(),
                           direction="outbound", bounce_allowed=False,
                           extra={"notification": "alert"})
        await asyncio.to_thread(self.spool.enqueue, raw, entry)
        self._queued(qid)
        return qid

    def _quarantine(self, queue_id: str, raw: bytes) -> Path:
        path = self.quarantine_dir / f"{queue_id}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    # --- delivery -------------------------------------------------------------------------

    def _queued(self, queue_id: str) -> None:
        if self.notify is not None:
            self.notify(queue_id)
        else:
            self.runner.enqueued(queue_id)

    def wake(self) -> None:
        """Look at the whole queue again now (after `mailward queue flush`)."""
        self.runner.flush()

    def start(self, recover: bool = True) -> None:
        self.runner.start(recover)

    async def stop(self) -> None:
        await self.runner.stop()

    def is_local(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() in self.site_domains

    async def route(self, entry: SpoolEntry, raw: bytes) -> dict[str, Attempt]:
        """One delivery attempt for the pending recipients: local ones to the Maildir or the
        downstream server, the others by MX."""
        local = [r for r in entry.pending if self.is_local(r.address)]
        remote = [r.address for r in entry.pending if not self.is_local(r.address)]
        results: dict[str, Attempt] = {}
        if remote:
            results.update(await self.mx.deliver_many(entry.mail_from, remote, raw))
        if local and self.relay is not None:
            results.update(
                await self.relay.deliver_many(entry.mail_from, [r.address for r in local], raw)
            )
        elif local:
            for index, rcpt in enumerate(entry.recipients):
                if rcpt in local:
                    results[rcpt.address] = await self.maildir.deliver(
                        entry.queue_id, index, rcpt.address, raw
                    )
        return results

    # --- submission -----------------------------------------------------------------------

    async def submit(
        self, user: str, session: Session, envelope: SmtpEnvelope, message: Message
    ) -> str:
        """Sign and queue a message from an authenticated user; fsynced before returning."""
        qid = new_queue_id()
        connection = connection_of(session)
        raw = actions.received_header(
            connection, self.config.hostname, qid, None, time.time(), protocol="ESMTP"
        ) + message.parsed.canonical
        from_domain = message.parsed.from_domain or (envelope.mail_from or "").rpartition("@")[2]
        signatures = b""
        for key in self.keys.keys_for(from_domain):
            signatures += signing.dkim_sign(
                raw, key.domain, key.selector, key.private, algorithm=key.algorithm
            )
        entry = SpoolEntry(
            qid, envelope.mail_from or "", [Recipient(r) for r in envelope.rcpt_tos],
            time.time(), direction="outbound", bounce_allowed=True, extra={"user": user},
        )
        await asyncio.to_thread(self.spool.enqueue, signatures + raw, entry)
        self._queued(qid)
        tx = Transaction(connection, Envelope(envelope.mail_from or "", list(envelope.rcpt_tos)),
                         message, qid)
        self._record_transaction(tx, None, "submitted")
        if self.metrics is not None:
            self.metrics.observe_message("submitted")
        if self.monitor is not None:
            self.monitor.submitted(user, [(r, not self.is_local(r)) for r in envelope.rcpt_tos],
                                   ip=connection.ip)
        log.info("%s submitted by %s from=<%s> to=%s signed=%s", qid, user,
                 envelope.mail_from, ",".join(envelope.rcpt_tos), bool(signatures))
        return qid
