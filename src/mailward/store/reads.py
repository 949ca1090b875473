"""Reading back the other logs: connections, deliveries, AUTH attempts, events, alerts,
user reports and quarantine entries (newest first, bounded)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, Table, exists, func, select

from mailward.store import limits
from mailward.store.records import (
    QuarantineEntry,
    StoredAlert,
    StoredAuth,
    StoredConnection,
    StoredDelivery,
    StoredEvent,
    StoredReport,
)
from mailward.store.tables import (
    ALERTS,
    AUTH_EVENTS,
    CONNECTIONS,
    DELIVERIES,
    EVENTS,
    QUARANTINE,
    RECIPIENTS,
    REPORTS,
    TRANSACTIONS,
)

# dispositions of mail that reached its recipients (tagged mail was delivered, with a banner)
DELIVERED = ("accept", "tag")


def _since(table: Table, since: datetime | None) -> list[ColumnElement[bool]]:
    if since is None:
        return []
    if since.tzinfo is None:
        raise ValueError("since must be a timezone-aware datetime")
    return [table.c.at >= since]


def known_correspondent(reads: Engine, address: str, delivered_before: datetime) -> bool:
    """Whether the site's users have sent mail to ``address``, or mail with ``address`` in
    From was delivered before ``delivered_before`` (two indexed lookups)."""
    if delivered_before.tzinfo is None:
        raise ValueError("delivered_before must be a timezone-aware datetime")
    address = limits.address(address) or ""
    written_to = exists().where(
        RECIPIENTS.c.address == address,
        RECIPIENTS.c.transaction_id == TRANSACTIONS.c.id,
        TRANSACTIONS.c.disposition == "submitted",
    )
    delivered = exists().where(
        TRANSACTIONS.c.from_address == address,
        TRANSACTIONS.c.disposition.in_(DELIVERED),
        TRANSACTIONS.c.received_at < delivered_before,
    )
    with reads.connect() as conn:
        return bool(conn.execute(select(written_to | delivered)).scalar())


def submission_history(
    reads: Engine, since: datetime, limit: int
) -> tuple[datetime | None, list[tuple[str, datetime]]]:
    """When the log begins (its oldest transaction, None when empty), and the messages each
    account submitted since ``since`` as (account, time), oldest first, at most ``limit``
    (the newest are kept)."""
    if since.tzinfo is None:
        raise ValueError("since must be a timezone-aware datetime")
    query = (
        select(CONNECTIONS.c.auth_user, TRANSACTIONS.c.received_at)
        .join(CONNECTIONS, TRANSACTIONS.c.connection_id == CONNECTIONS.c.id)
        .where(
            TRANSACTIONS.c.disposition == "submitted",
            TRANSACTIONS.c.received_at >= since,
            CONNECTIONS.c.auth_user.is_not(None),
        )
        .order_by(TRANSACTIONS.c.received_at.desc())
        .limit(limit)
    )
    with reads.connect() as conn:
        begins = conn.execute(select(func.min(TRANSACTIONS.c.received_at))).scalar()
        rows = [(r.auth_user, r.received_at) for r in conn.execute(query)]
    rows.reverse()
    return begins, rows


def connection(reads: Engine, connection_id: str) -> StoredConnection | None:
    with reads.connect() as conn:
        row = conn.execute(select(CONNECTIONS).where(CONNECTIONS.c.id == connection_id)).first()
    return None if row is None else StoredConnection(**row._mapping)


def deliveries(reads: Engine, queue_id: str) -> list[StoredDelivery]:
    """Every delivery attempt of one message, in order."""
    query = (
        select(DELIVERIES)
        .where(DELIVERIES.c.queue_id == queue_id)
        .order_by(DELIVERIES.c.at, DELIVERIES.c.id)
    )
    with reads.connect() as conn:
        return [
            StoredDelivery(r.queue_id, r.recipient, r.attempt, r.status, r.reply, r.at)
            for r in conn.execute(query)
        ]


def auth_events(
    reads: Engine,
    *,
    user: str | None = None,
    ip: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StoredAuth]:
    where = _since(AUTH_EVENTS, since)
    if user is not None:
        where.append(AUTH_EVENTS.c.user_name == user)
    if ip is not None:
        where.append(AUTH_EVENTS.c.ip == limits.ip(ip))
    if success is not None:
        where.append(AUTH_EVENTS.c.success == success)
    query = (
        select(AUTH_EVENTS)
        .where(*where)
        .order_by(AUTH_EVENTS.c.at.desc(), AUTH_EVENTS.c.id.desc())
        .limit(limit)
    )
    with reads.connect() as conn:
        return [
            StoredAuth(r.at, r.ip, r.user_name, r.mechanism, r.success, r.reason)
            for r in conn.execute(query)
        ]


def events(
    reads: Engine,
    *,
    kind: str | None = None,
    queue_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StoredEvent]:
    where = _since(EVENTS, since)
    if kind is not None:
        where.append(EVENTS.c.kind == kind)
    if queue_id is not None:
        where.append(EVENTS.c.queue_id == queue_id)
    query = (
        select(EVENTS).where(*where).order_by(EVENTS.c.at.desc(), EVENTS.c.id.desc()).limit(limit)
    )
    with reads.connect() as conn:
        return [StoredEvent(r.at, r.kind, r.queue_id, r.payload) for r in conn.execute(query)]


def alerts(
    reads: Engine,
    *,
    kind: str | None = None,
    user: str | None = None,
    ip: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StoredAlert]:
    where = _since(ALERTS, since)
    if kind is not None:
        where.append(ALERTS.c.kind == kind)
    if user is not None:
        where.append(ALERTS.c.user_name == user)
    if ip is not None:
        where.append(ALERTS.c.ip == limits.ip(ip))
    query = (
        select(ALERTS).where(*where).order_by(ALERTS.c.at.desc(), ALERTS.c.id.desc()).limit(limit)
    )
    with reads.connect() as conn:
        return [StoredAlert(r.at, r.kind, r.user_name, r.ip, r.detail) for r in conn.execute(query)]


def reports(
    reads: Engine,
    *,
    queue_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[StoredReport]:
    where = _since(REPORTS, since)
    if queue_id is not None:
        where.append(REPORTS.c.queue_id == queue_id)
    query = (
        select(REPORTS)
        .where(*where)
        .order_by(REPORTS.c.at.desc(), REPORTS.c.id.desc())
        .limit(limit)
    )
    with reads.connect() as conn:
        return [
            StoredReport(r.at, r.reporter, r.queue_id, r.message_id, r.comment, r.raw_path, r.raw)
            for r in conn.execute(query)
        ]


def quarantined(
    reads: Engine, *, pending_only: bool = True, since: datetime | None = None,
    limit: int = 100,
) -> list[QuarantineEntry]:
    """Quarantined messages, newest first (without their raw copies); ``pending_only``: only
    those neither released nor deleted."""
    where = _since(QUARANTINE, since)
    if pending_only:
        where += [QUARANTINE.c.released_at.is_(None), QUARANTINE.c.deleted_at.is_(None)]
    q = QUARANTINE.c
    query = (
        select(q.queue_id, q.at, q.reason, q.raw_path, q.released_at, q.deleted_at)
        .where(*where)
        .order_by(q.at.desc(), q.id.desc())
        .limit(limit)
    )
    with reads.connect() as conn:
        return [
            QuarantineEntry(r.queue_id, r.at, r.reason, r.raw_path, None, r.released_at,
                            r.deleted_at)
            for r in conn.execute(query)
        ]


def quarantine_entry(reads: Engine, queue_id: str) -> QuarantineEntry | None:
    with reads.connect() as conn:
        r = conn.execute(select(QUARANTINE).where(QUARANTINE.c.queue_id == queue_id)).first()
    if r is None:
        return None
    return QuarantineEntry(
        r.queue_id, r.at, r.reason, r.raw_path, r.raw, r.released_at, r.deleted_at
    )


def deliveries_of(reads: Engine, queue_ids: Sequence[str]) -> dict[str, list[StoredDelivery]]:
    """Every delivery attempt of each of these messages, in order (queue id -> attempts)."""
    found: dict[str, list[StoredDelivery]] = {}
    unique = sorted(set(queue_ids))
    with reads.connect() as conn:
        for start in range(0, len(unique), 500):
            query = (
                select(DELIVERIES)
                .where(DELIVERIES.c.queue_id.in_(unique[start : start + 500]))
                .order_by(DELIVERIES.c.at, DELIVERIES.c.id)
            )
            for r in conn.execute(query):
                found.setdefault(r.queue_id, []).append(
                    StoredDelivery(r.queue_id, r.recipient, r.attempt, r.status, r.reply, r.at)
                )
    return found
