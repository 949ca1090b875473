"""Retention: deleting log rows older than a cutoff, in batches (short transactions, so the
hubs writing meanwhile are never blocked for long). Users and their addresses are never purged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Engine, Table, delete, exists, select

from mailward.store.records import PurgeResult
from mailward.store.tables import (
    ALERTS,
    AUTH_EVENTS,
    DELIVERIES,
    EVENTS,
    FINDINGS,
    RECIPIENTS,
    REPORTS,
)
from mailward.store.tables import CONNECTIONS as C
from mailward.store.tables import QUARANTINE as Q
from mailward.store.tables import TRANSACTIONS as T

CHILDREN = (FINDINGS, RECIPIENTS)
# table and its time column, in the order they are purged
SIMPLE: tuple[tuple[Table, str], ...] = (
    (DELIVERIES, "at"),
    (AUTH_EVENTS, "at"),
    (EVENTS, "at"),
    (ALERTS, "at"),
    (REPORTS, "at"),
)


def purge(writes: Engine, cutoff: datetime, batch_size: int = 2000) -> PurgeResult:
    """Delete every log row stamped before ``cutoff``; connections once no transaction of theirs
    is left."""
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be a timezone-aware datetime")
    result = PurgeResult()
    result.deleted["transactions"] = _batches(
        writes, T, T.c.received_at < cutoff, batch_size, children=CHILDREN
    )
    for table, column in SIMPLE:
        result.deleted[table.name] = _batches(writes, table, table.c[column] < cutoff, batch_size)
    result.deleted[Q.name] = _batches(
        writes, Q, Q.c.at < cutoff, batch_size, paths=result.raw_paths
    )
    unused = ~exists().where(T.c.connection_id == C.c.id)
    result.deleted[C.name] = _batches(writes, C, (C.c.opened_at < cutoff) & unused, batch_size)
    return result


def _batches(
    writes: Engine,
    table: Table,
    condition: ColumnElement[bool],
    batch_size: int,
    *,
    children: tuple[Table, ...] = (),
    paths: list[str] | None = None,
) -> int:
    key: Column[Any] = table.c.id
    total = 0
    while True:
        with writes.begin() as conn:
            ids = list(conn.execute(select(key).where(condition).limit(batch_size)).scalars())
            if not ids:
                return total
            if paths is not None:
                paths.extend(
                    p
                    for p in conn.execute(
                        select(Q.c.raw_path).where(key.in_(ids), Q.c.raw_path.is_not(None))
                    ).scalars()
                )
            for child in children:
                conn.execute(delete(child).where(child.c.transaction_id.in_(ids)))
            conn.execute(delete(table).where(key.in_(ids)))
        total += len(ids)
        if len(ids) < batch_size:
            return total
