"""The central store: one API over SQLAlchemy for everything the hubs log and the console reads.

SQLite file under the data directory by default, PostgreSQL shared by several hubs at scale;
the schema is migrated by Alembic on ``Store.open``. From asyncio code, write through
``store.writer()`` (an ``EventWriter``: a queue and one committing thread) and read through
``asyncio.to_thread(store.find_transactions, ...)`` so the event loop never waits on the
database. Passwords are stored only as argon2id hashes, and event payloads are redacted.
"""

from __future__ import annotations

from mailward.store.api import Store
from mailward.store.records import (
    AddressTaken,
    PurgeResult,
    QuarantineEntry,
    StoredAlert,
    StoredAuth,
    StoredConnection,
    StoredDelivery,
    StoredEvent,
    StoredFinding,
    StoredReport,
    StoredTransaction,
    StoreError,
    UnknownUser,
    UserAddress,
    UserExists,
    UserRecord,
)
from mailward.store.writer import EventWriter

__all__ = [
    "AddressTaken",
    "EventWriter",
    "PurgeResult",
    "QuarantineEntry",
    "Store",
    "StoreError",
    "StoredAlert",
    "StoredAuth",
    "StoredConnection",
    "StoredDelivery",
    "StoredEvent",
    "StoredFinding",
    "StoredReport",
    "StoredTransaction",
    "UnknownUser",
    "UserAddress",
    "UserExists",
    "UserRecord",
]
