"""The store's write API, shared by ``Store`` (writes at once) and ``EventWriter`` (queues).

Every method takes plain values (strings, numbers, aware datetimes; no SMTP objects), cleans
and clips network text, stamps the time of the call (not of the write) and hands one
``WriteJob`` to ``_submit``. Ids of connections and transactions are made here, so they are
known at once even when the write is queued.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from mailward.store import limits
from mailward.store.ids import new_id
from mailward.store.jobs import WriteJob
from mailward.store.models import (
    URL_LENGTH,
)
from mailward.store.redact import safe_payload
from mailward.store.tables import (
    ALERTS,
    AUTH_EVENTS,
    CONNECTIONS,
    DELIVERIES,
    EVENTS,
    FINDINGS,
    QUARANTINE,
    RECIPIENTS,
    REPORTS,
    TRANSACTIONS,
    URLS,
)

# links stored per message (campaign grouping); more are ignored
MAX_URLS = 100

# store.keep_raw values, mildest first
KEEP_RAW = ("none", "quarantine", "quarantine-and-reported")


class FindingLike(Protocol):
    """What is stored of a finding (``mailward.model.Finding`` has all of it)."""

    @property
    def check(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def result(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def detail(self) -> str: ...


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: datetime | None) -> datetime:
    """``value`` checked at the call (not later in a writer thread), or now."""
    if value is None:
        return _now()
    if value.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
    return value


class Recorder(abc.ABC):
    """Write methods; subclasses decide when the job is applied."""

    instance: str
    keep_raw: str

    @abc.abstractmethod
    def _submit(self, job: WriteJob) -> None: ...

    def keeps_raw(self, kind: str) -> bool:
        """Whether raw messages of ``kind`` ("quarantine" or "report") are kept (store.keep_raw)."""
        if kind == "quarantine":
            return self.keep_raw in ("quarantine", "quarantine-and-reported")
        if kind == "report":
            return self.keep_raw == "quarantine-and-reported"
        raise ValueError(f"unknown raw message kind {kind!r}")

    def record_connection(
        self,
        *,
        peer_ip: str | None,
        rdns: str | None = None,
        helo: str | None = None,
        tls_version: str | None = None,
        tls_cipher: str | None = None,
        auth_user: str | None = None,
        opened_at: datetime | None = None,
    ) -> str:
        """Log a new SMTP connection; returns its id (for transactions and updates)."""
        connection_id = new_id()
        row = {
            "id": connection_id,
            "instance": limits.clean(self.instance, limits.HOST),
            "peer_ip": limits.ip(peer_ip),
            "rdns": limits.clean_opt(rdns, limits.HOST),
            "helo": limits.clean_opt(helo, limits.HOST),
            "tls_version": limits.clean_opt(tls_version, limits.SHORT),
            "tls_cipher": limits.clean_opt(tls_cipher, limits.NAME),
            "auth_user": limits.clean_opt(auth_user, limits.NAME),
            "opened_at": _when(opened_at),
            "closed_at": None,
        }
        self._submit(WriteJob(f"connection {connection_id}", [(CONNECTIONS, row)]))
        return connection_id

    def update_connection(
        self,
        connection_id: str,
        *,
        helo: str | None = None,
        tls_version: str | None = None,
        tls_cipher: str | None = None,
        auth_user: str | None = None,
        closed_at: datetime | None = None,
    ) -> None:
        """Record what was learnt later on a connection (HELO, STARTTLS, AUTH, close).

        Only the values given (not None) change.
        """
        values: dict[str, Any] = {}
        if helo is not None:
            values["helo"] = limits.clean(helo, limits.HOST)
        if tls_version is not None:
            values["tls_version"] = limits.clean(tls_version, limits.SHORT)
        if tls_cipher is not None:
            values["tls_cipher"] = limits.clean(tls_cipher, limits.NAME)
        if auth_user is not None:
            values["auth_user"] = limits.clean(auth_user, limits.NAME)
        if closed_at is not None:
            values["closed_at"] = _when(closed_at)
        if not values:
            return
        values["id"] = connection_id
        self._submit(
            WriteJob(f"connection update {connection_id}", updates=[(CONNECTIONS, values)])
        )

    def close_connection(self, connection_id: str, *, closed_at: datetime | None = None) -> None:
        """Mark a connection closed (now, unless ``closed_at`` is given)."""
        self.update_connection(connection_id, closed_at=_when(closed_at))

    def record_transaction(
        self,
        *,
        queue_id: str,
        mail_from: str,
        recipients: Iterable[str],
        disposition: str,
        score: float = 0.0,
        forced_by: str | None = None,
        findings: Iterable[FindingLike] = (),
        connection_id: str | None = None,
        message_id: str | None = None,
        header_from: str | None = None,
        from_address: str | None = None,
        reply_to: str | None = None,
        subject: str | None = None,
        size: int = 0,
        body_sha256: str | None = None,
        received_at: datetime | None = None,
        urls: Iterable[str] = (),
    ) -> str:
        """Log one message with its recipients and findings (one commit); returns its row id.

        ``header_from`` is the From header as sent (display name included); ``from_address`` is
        the address parsed from it. ``queue_id`` must be unique across the whole site.
        ``urls`` are the message's links as ``campaign.message_urls`` normalizes them (the
        first MAX_URLS distinct ones are kept).
        """
        transaction_id = new_id()
        envelope_from = limits.address(mail_from) or ""
        sender = limits.address(from_address)
        inserts = [
            (
                TRANSACTIONS,
                {
                    "id": transaction_id,
                    "queue_id": limits.clean(queue_id, limits.QUEUE_ID),
                    "connection_id": connection_id,
                    "received_at": _when(received_at),
                    "message_id": limits.message_id(message_id),
                    "mail_from": envelope_from,
                    "mail_from_domain": limits.domain_of(envelope_from),
                    "header_from": limits.clean_opt(header_from),
                    "from_address": sender,
                    "from_domain": limits.domain_of(sender),
                    "reply_to": limits.clean_opt(reply_to),
                    "subject": limits.clean_opt(subject, limits.SUBJECT),
                    "size": size,
                    "body_sha256": limits.clean_opt(body_sha256, 64),
                    "disposition": limits.clean(str(disposition), limits.SHORT),
                    "score": limits.number(score),
                    "forced_by": limits.clean_opt(forced_by, limits.NAME),
                },
            )
        ]
        for rcpt in recipients:
            address = limits.address(rcpt) or ""
            inserts.append(
                (
                    RECIPIENTS,
                    {
                        "transaction_id": transaction_id,
                        "address": address,
                        "domain": limits.domain_of(address),
                    },
                )
            )
        for finding in findings:
            inserts.append(
                (
                    FINDINGS,
                    {
                        "transaction_id": transaction_id,
                        "check_name": limits.clean(finding.check, limits.SHORT),
                        "symbol": limits.clean(finding.symbol, limits.NAME),
                        "result": limits.clean(str(finding.result), limits.SHORT),
                        "score": limits.number(finding.score),
                        "detail": limits.clean(finding.detail),
                    },
                )
            )
        kept: set[str] = set()
        for url in urls:
            link = limits.clean(url.strip(), URL_LENGTH)
            if not link or link in kept:
                continue
            if len(kept) >= MAX_URLS:
                break
            kept.add(link)
            inserts.append((URLS, {"transaction_id": transaction_id, "url": link}))
        self._submit(WriteJob(f"transaction {queue_id!r}", inserts))
        return transaction_id

    def record_delivery(
        self,
        *,
        queue_id: str,
        recipient: str,
        status: str,
        attempt: int = 1,
        reply: str = "",
        at: datetime | None = None,
    ) -> None:
        """Log one delivery attempt (status e.g. delivered, deferred, bounced)."""
        row = {
            "queue_id": limits.clean(queue_id, limits.QUEUE_ID),
            "recipient": limits.address(recipient) or "",
            "attempt": attempt,
            "status": limits.clean(status, limits.SHORT),
            "reply": limits.clean(reply),
            "at": _when(at),
        }
        self._submit(WriteJob(f"delivery {queue_id!r}", [(DELIVERIES, row)]))

    def record_auth(
        self,
        *,
        ip: str | None,
        user: str,
        mechanism: str,
        success: bool,
        reason: str = "",
        at: datetime | None = None,
    ) -> None:
        """Log one AUTH attempt. There is deliberately no way to pass the password."""
        row = {
            "at": _when(at),
            "ip": limits.ip(ip),
            "user_name": limits.clean(user, limits.NAME),
            "mechanism": limits.clean(mechanism, limits.SHORT),
            "success": bool(success),
            "reason": limits.clean(reason),
        }
        self._submit(WriteJob("auth event", [(AUTH_EVENTS, row)]))

    def record_event(
        self,
        kind: str,
        payload: Mapping[str, Any],
        queue_id: str | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Log anything else as a JSON payload; secret-looking keys are redacted first."""
        row = {
            "at": _when(at),
            "kind": limits.clean(kind, limits.NAME),
            "queue_id": limits.clean_opt(queue_id, limits.QUEUE_ID),
            "payload": safe_payload(payload),
        }
        self._submit(WriteJob(f"event {kind!r}", [(EVENTS, row)]))

    def record_alert(
        self,
        *,
        kind: str,
        detail: str,
        user: str | None = None,
        ip: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Log something an administrator must look at, about a user and/or an IP."""
        row = {
            "at": _when(at),
            "kind": limits.clean(kind, limits.NAME),
            "user_name": limits.clean_opt(user, limits.NAME),
            "ip": limits.ip(ip),
            "detail": limits.clean(detail),
        }
        self._submit(WriteJob(f"alert {kind!r}", [(ALERTS, row)]))

    def record_report(
        self,
        *,
        reporter: str,
        queue_id: str | None = None,
        message_id: str | None = None,
        comment: str = "",
        raw: bytes | None = None,
        raw_path: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Log a user's report of a suspicious message (raw copy only if store.keep_raw says)."""
        keep = self.keeps_raw("report")
        row = {
            "at": _when(at),
            "reporter": limits.address(reporter) or "",
            "queue_id": limits.clean_opt(queue_id, limits.QUEUE_ID),
            "message_id": limits.message_id(message_id),
            "comment": limits.clean(comment),
            "raw_path": raw_path if keep else None,
            "raw": raw if keep else None,
        }
        self._submit(WriteJob("user report", [(REPORTS, row)]))

    def record_quarantine(
        self,
        *,
        queue_id: str,
        reason: str = "",
        raw: bytes | None = None,
        raw_path: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Log a quarantined message (raw copy only if store.keep_raw says)."""
        keep = self.keeps_raw("quarantine")
        row = {
            "queue_id": limits.clean(queue_id, limits.QUEUE_ID),
            "at": _when(at),
            "reason": limits.clean(reason),
            "raw_path": raw_path if keep else None,
            "raw": raw if keep else None,
            "released_at": None,
            "deleted_at": None,
        }
        self._submit(WriteJob(f"quarantine {queue_id!r}", [(QUARANTINE, row)]))
