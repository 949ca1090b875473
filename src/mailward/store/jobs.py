"""Write jobs: the rows of one logical write, applied in one transaction.

Jobs are built in the caller's thread from plain values (dicts, no SQL) and applied by the store
at once or by the EventWriter many per commit. Applying a batch inserts all its rows first (one
executemany per table, tables in foreign-key order), then runs its updates in job order, each
run of updates setting the same columns as one executemany. That is correct because an update
only ever targets a row inserted before it (a connection's later facts): no insert depends on an
update, and updates keep their order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update

from mailward.store.models import Base

_TABLE_ORDER = {table: i for i, table in enumerate(Base.metadata.sorted_tables)}


@dataclass(slots=True)
class WriteJob:
    """Rows to insert (every row of a table has the same keys) and rows to update by ``id``
    (the dict's other keys are the columns to set)."""

    what: str  # for log lines: never values, only kind and ids
    inserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)


def apply_jobs(conn: Connection, jobs: Sequence[WriteJob]) -> None:
    """Apply ``jobs`` on ``conn`` (inside the caller's transaction)."""
    rows: dict[Table, list[dict[str, Any]]] = {}
    updates: list[tuple[Table, dict[str, Any]]] = []
    for job in jobs:
        for table, row in job.inserts:
            rows.setdefault(table, []).append(row)
        updates.extend(job.updates)
    for table in sorted(rows, key=_TABLE_ORDER.__getitem__):
        conn.execute(table.insert(), rows[table])
    for (table, columns), run in itertools.groupby(updates, key=_update_shape):
        conn.execute(
            _update_statement(table, columns),
            [{f"b_{key}": value for key, value in row.items()} for _, row in run],
        )


def _update_shape(item: tuple[Table, dict[str, Any]]) -> tuple[Table, tuple[str, ...]]:
    table, row = item
    return table, tuple(sorted(key for key in row if key != "id"))


def _update_statement(table: Table, columns: tuple[str, ...]) -> Any:
    # bind names differ from column names: SQLAlchemy reserves those for SET
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values({column: bindparam(f"b_{column}") for column in columns})
    )
