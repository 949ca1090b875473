"""Engines: SQLite settings (WAL, foreign keys, write transactions take the lock up front),
UTC timestamps on both backends, and foreign keys enforced everywhere."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from mailward.store import Store, StoreError
from mailward.store.coltypes import UtcDateTime
from mailward.store.engine import WRITE_OPTION, make_engine


def test_sqlite_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL: safe with WAL, no fsync per commit
        "busy_timeout": 30_000,
    }


def test_sqlite_write_transactions_take_the_lock_when_they_begin(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin(), pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
        with engine.connect() as conn:  # plain reads do not lock
            conn.execute(text("SELECT 1"))
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_sqlite_writers_wait_for_each_other(tmp_path: Path) -> None:
    """A second writer waits (busy timeout) instead of failing with 'database is locked'."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    with Store.open(url) as first, Store.open(url) as second:
        holder = make_engine(url)
        try:
            with holder.connect() as conn:
                conn.execution_options(**{WRITE_OPTION: True})
                conn.begin()
                done = threading.Event()

                def write() -> None:
                    second.record_event("waited", {})
                    done.set()

                thread = threading.Thread(target=write)
                thread.start()
                time.sleep(0.3)
                assert not done.is_set()
                conn.rollback()
            thread.join(10)
            assert done.is_set()
        finally:
            holder.dispose()
        assert [e.kind for e in first.events()] == ["waited"]


OPEN_AT_ONCE = """
import sys, time
from sqlalchemy import text
from mailward.store.engine import make_engine
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
engine = make_engine(sys.argv[1])
with engine.connect() as conn:
    print(conn.execute(text("PRAGMA journal_mode")).scalar())
engine.dispose()
"""


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    start = time.time() + 1.0  # every process connects at the same moment
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, url, str(start)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        assert out.strip() == "wal"


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StoreError, match="transaction 'Q1'"):
        store.record_transaction(
            queue_id="Q1",
            connection_id="f" * 32,  # no such connection
            mail_from="",
            recipients=[],
            disposition="accept",
        )


def test_utc_datetime_type() -> None:
    kind = UtcDateTime()
    sqlite = make_engine("sqlite:////nonexistent/never-opened.db").dialect
    plus_one = timezone(timedelta(hours=1))
    assert kind.process_bind_param(datetime(2026, 1, 1, 13, tzinfo=plus_one), sqlite) == datetime(
        2026, 1, 1, 12
    )
    assert kind.process_result_value(datetime(2026, 1, 1, 12), sqlite) == datetime(
        2026, 1, 1, 12, tzinfo=UTC
    )
    assert kind.process_bind_param(None, sqlite) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        kind.process_bind_param(datetime(2026, 1, 1), sqlite)
