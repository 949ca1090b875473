"""Database engines for the store: URL defaults and per-backend connection settings.

SQLite runs in WAL mode with a busy timeout; its transactions are begun by us (the driver's
implicit transactions are switched off) so DDL is transactional and write transactions take the
write lock up front (``BEGIN IMMEDIATE``) instead of failing half-way when another process
writes. PostgreSQL connections are pinged before use so a restarted server is survived.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

DEFAULT_DATA_DIR = Path("var")
DEFAULT_DB_NAME = "mailward.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option that makes a connection's transactions SQLite write transactions.
WRITE_OPTION = "mailward_write"


def default_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The SQLite file under the data directory (created if missing)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(data_dir / DEFAULT_DB_NAME).resolve()}"


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` with the store's settings for its backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(
        parsed,
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=_json_dumps,
    )


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (a setting of the file: done once, by whichever process
    opens it first). Two processes switching a new file at the same moment can deadlock, and
    SQLite then answers "locked" at once instead of waiting: retry for the busy timeout."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)


def _sqlite_engine(url: URL) -> Engine:
    if url.database in (None, "", ":memory:"):
        raise ValueError(
            "the store needs an SQLite file (an in-memory database is private to one "
            "connection, and the store uses several)"
        )
    engine = create_engine(
        url,
        hide_parameters=True,
        json_serializer=_json_dumps,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
