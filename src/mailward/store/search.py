"""Searching the message log the way an administrator does: by time, people, IP, subject, ..."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, exists, func, or_, select

from mailward.store import limits
from mailward.store.records import StoredFinding, StoredTransaction
from mailward.store.tables import CONNECTIONS as C
from mailward.store.tables import FINDINGS as F
from mailward.store.tables import RECIPIENTS as R
from mailward.store.tables import TRANSACTIONS as T
from mailward.store.tables import URLS as U

MAX_LIMIT = 10_000
_CHUNK = 500  # ids per IN (...) when loading recipients and findings


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value


def _domain(value: str) -> str:
    return value.strip().lower().lstrip("@")


def _message_ids(value: str) -> list[str]:
    bare = value.strip().removeprefix("<").removesuffix(">")
    return sorted(
        {limits.clean(bare, limits.MESSAGE_ID), limits.clean(f"<{bare}>", limits.MESSAGE_ID)}
    )


def find_transactions(
    reads: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    domain: str | None = None,
    client_ip: str | None = None,
    subject: str | None = None,
    disposition: str | None = None,
    symbol: str | None = None,
    message_id: str | None = None,
    queue_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[StoredTransaction]:
    """Transactions matching every filter given, newest first. See ``Store.find_transactions``."""
    if not 0 < limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(T.c.received_at >= _aware("since", since))
    if until is not None:
        where.append(T.c.received_at < _aware("until", until))
    if sender is not None:
        address = limits.address(sender)
        where.append(or_(T.c.mail_from == address, T.c.from_address == address))
    if recipient is not None:
        where.append(_recipient_condition(reads, limits.address(recipient) or ""))
    if domain is not None:
        name = _domain(domain)
        where.append(
            or_(
                T.c.mail_from_domain == name,
                T.c.from_domain == name,
                T.c.id.in_(select(R.c.transaction_id).where(R.c.domain == name)),
            )
        )
    if client_ip is not None:
        where.append(C.c.peer_ip == limits.ip(client_ip))
    if subject is not None:
        where.append(T.c.subject.icontains(subject, autoescape=True))
    if disposition is not None:
        where.append(T.c.disposition == disposition)
    if symbol is not None:
        where.append(T.c.id.in_(select(F.c.transaction_id).where(F.c.symbol == symbol)))
    if message_id is not None:
        where.append(T.c.message_id.in_(_message_ids(message_id)))
    if queue_id is not None:
        where.append(T.c.queue_id == queue_id)

    query = (
        select(T, C.c.instance, C.c.peer_ip, C.c.rdns, C.c.helo, C.c.auth_user)
        .select_from(T.outerjoin(C, T.c.connection_id == C.c.id))
        .where(*where)
        .order_by(T.c.received_at.desc(), T.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with reads.connect() as conn:
        rows = conn.execute(query).all()
        ids = [row.id for row in rows]
        recipients: dict[str, list[str]] = {}
        findings: dict[str, list[StoredFinding]] = {}
        for chunk in _chunks(ids):
            for r in conn.execute(
                select(R.c.transaction_id, R.c.address)
                .where(R.c.transaction_id.in_(chunk))
                .order_by(R.c.id)
            ):
                recipients.setdefault(r.transaction_id, []).append(r.address)
            for f in conn.execute(select(F).where(F.c.transaction_id.in_(chunk)).order_by(F.c.id)):
                findings.setdefault(f.transaction_id, []).append(
                    StoredFinding(f.check_name, f.symbol, f.result, f.score, f.detail)
                )
    return [_transaction(row, recipients.get(row.id, ()), findings.get(row.id, ())) for row in rows]


# A recipient with at least this many messages is searched newest-first along the time index
# (probing each message's recipients), one with fewer by looking its messages up: whichever
# touches fewer rows. SQLite plans without per-value statistics and would otherwise load and
# sort every message of a busy mailbox (~1 s for 100,000 of them) to return the newest 100.
BUSY_RECIPIENT = 5000


def _recipient_condition(reads: Engine, address: str) -> ColumnElement[bool]:
    """``the transaction has this envelope recipient``, in the form that is fast for it."""
    with reads.connect() as conn:
        some = select(R.c.id).where(R.c.address == address).limit(BUSY_RECIPIENT).subquery()
        count = conn.execute(select(func.count()).select_from(some)).scalar_one()
    if count >= BUSY_RECIPIENT:
        return exists().where(R.c.transaction_id == T.c.id, R.c.address == address)
    return T.c.id.in_(select(R.c.transaction_id).where(R.c.address == address))


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _transaction(
    row: Any, recipients: Sequence[str], findings: Sequence[StoredFinding]
) -> StoredTransaction:
    return StoredTransaction(
        id=row.id,
        queue_id=row.queue_id,
        received_at=row.received_at,
        connection_id=row.connection_id,
        instance=row.instance,
        client_ip=row.peer_ip,
        rdns=row.rdns,
        helo=row.helo,
        auth_user=row.auth_user,
        message_id=row.message_id,
        mail_from=row.mail_from,
        header_from=row.header_from,
        from_address=row.from_address,
        reply_to=row.reply_to,
        subject=row.subject,
        size=row.size,
        body_sha256=row.body_sha256,
        disposition=row.disposition,
        score=row.score,
        forced_by=row.forced_by,
        recipients=tuple(recipients),
        findings=tuple(findings),
    )


# -- campaigns: the messages sharing something with one message ------------------------------

CRITERIA = ("sender", "subject", "body", "url")


def related_ids(
    reads: Engine,
    *,
    since: datetime,
    until: datetime,
    senders: Sequence[str] = (),
    subjects: Sequence[str] = (),
    body_sha256s: Sequence[str] = (),
    urls: Sequence[str] = (),
    limit: int = 1000,
) -> dict[str, set[str]]:
    """Ids of the transactions received in [since, until) that share something with the given
    values, each with what it shares: ``sender`` (envelope sender or From address equal to one
    of ``senders``), ``subject`` (the same Subject header text), ``body`` (the same body
    fingerprint), ``url`` (one of the same normalized links). Every criterion is one indexed
    query returning at most its ``limit`` newest matches."""
    if not 0 < limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    window = (T.c.received_at >= _aware("since", since), T.c.received_at < _aware("until", until))
    addresses = sorted({a for a in (limits.address(s) for s in senders) if a})
    queries: list[tuple[str, Any]] = []
    if addresses:
        # two queries, not one OR: each uses its own index
        queries.append(("sender", select(T.c.id).where(T.c.mail_from.in_(addresses), *window)))
        queries.append(("sender", select(T.c.id).where(T.c.from_address.in_(addresses), *window)))
    wanted = sorted({limits.clean(s, limits.SUBJECT) for s in subjects if s and s.strip()})
    if wanted:
        queries.append(("subject", select(T.c.id).where(T.c.subject.in_(wanted), *window)))
    bodies = sorted({b for b in body_sha256s if b})
    if bodies:
        queries.append(("body", select(T.c.id).where(T.c.body_sha256.in_(bodies), *window)))
    links = sorted({u for u in urls if u})
    if links:
        queries.append(
            (
                "url",
                select(T.c.id, T.c.received_at)  # DISTINCT needs the ORDER BY column
                .distinct()
                .select_from(T.join(U, U.c.transaction_id == T.c.id))
                .where(U.c.url.in_(links), *window),
            )
        )
    found: dict[str, set[str]] = {}
    with reads.connect() as conn:
        for criterion, query in queries:
            ordered = query.order_by(T.c.received_at.desc()).limit(limit)
            for row in conn.execute(ordered):
                found.setdefault(row[0], set()).add(criterion)
    return found


def transactions_by_ids(reads: Engine, ids: Sequence[str]) -> list[StoredTransaction]:
    """The transactions with these row ids (unknown ids are skipped), newest first."""
    rows: list[Any] = []
    recipients: dict[str, list[str]] = {}
    findings: dict[str, list[StoredFinding]] = {}
    with reads.connect() as conn:
        for chunk in _chunks(sorted(set(ids))):
            rows.extend(
                conn.execute(
                    select(T, C.c.instance, C.c.peer_ip, C.c.rdns, C.c.helo, C.c.auth_user)
                    .select_from(T.outerjoin(C, T.c.connection_id == C.c.id))
                    .where(T.c.id.in_(chunk))
                )
            )
            for r in conn.execute(
                select(R.c.transaction_id, R.c.address)
                .where(R.c.transaction_id.in_(chunk))
                .order_by(R.c.id)
            ):
                recipients.setdefault(r.transaction_id, []).append(r.address)
            for f in conn.execute(select(F).where(F.c.transaction_id.in_(chunk)).order_by(F.c.id)):
                findings.setdefault(f.transaction_id, []).append(
                    StoredFinding(f.check_name, f.symbol, f.result, f.score, f.detail)
                )
    rows.sort(key=lambda row: (row.received_at, row.id), reverse=True)
    return [_transaction(row, recipients.get(row.id, ()), findings.get(row.id, ())) for row in rows]


def urls_of(reads: Engine, ids: Sequence[str]) -> dict[str, list[str]]:
    """The stored links of each of these transactions (row id -> links in message order)."""
    found: dict[str, list[str]] = {}
    with reads.connect() as conn:
        for chunk in _chunks(sorted(set(ids))):
            for r in conn.execute(
                select(U.c.transaction_id, U.c.url)
                .where(U.c.transaction_id.in_(chunk))
                .order_by(U.c.id)
            ):
                found.setdefault(r.transaction_id, []).append(r.url)
    return found
