"""``Store``: the one API over the central database (SQLite by default, PostgreSQL at scale).

All methods are synchronous and thread-safe. From asyncio code, never call them on the event
loop: write through an ``EventWriter`` (``store.writer()``), and read with
``await asyncio.to_thread(store.find_transactions, sender=...)``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, update
from sqlalchemy.exc import DataError, IntegrityError

from mailward.passwords import PasswordHashing
from mailward.store import migrate, reads, retention, search, users
from mailward.store.engine import DEFAULT_DATA_DIR, WRITE_OPTION, default_url, make_engine
from mailward.store.jobs import WriteJob, apply_jobs
from mailward.store.recorder import KEEP_RAW, Recorder
from mailward.store.records import (
    PurgeResult,
    QuarantineEntry,
    StoredAlert,
    StoredAuth,
    StoredConnection,
    StoredDelivery,
    StoredEvent,
    StoredReport,
    StoredTransaction,
    StoreError,
    UserAddress,
    UserRecord,
)
from mailward.store.tables import QUARANTINE

if TYPE_CHECKING:
    from mailward.config import StoreConfig
    from mailward.store.writer import EventWriter



def _first_line(exc: IntegrityError | DataError) -> str:
    return (str(exc.orig).strip().splitlines() or ["refused"])[0][:200]


class Store(Recorder):
    """The central store. Make one with ``Store.open(url)`` or ``Store.from_config(cfg)``."""

    def __init__(
        self,
        engine: Engine,
        *,
        instance: str,
        hashing: PasswordHashing,
        keep_raw: str = "quarantine-and-reported",
        retention_days: int = 90,
    ) -> None:
        if keep_raw not in KEEP_RAW:
            raise ValueError(f"keep_raw must be one of {', '.join(KEEP_RAW)}")
        self.instance = instance
        self.keep_raw = keep_raw
        self.retention_days = retention_days
        self._engine = engine
        self._writes = engine.execution_options(**{WRITE_OPTION: True})
        self._hashing = hashing

    @classmethod
    def open(
        cls,
        url: str = "",
        *,
        data_dir: Path = DEFAULT_DATA_DIR,
        instance: str | None = None,
        hashing: PasswordHashing | None = None,
        keep_raw: str = "quarantine-and-reported",
        retention_days: int = 90,
    ) -> Store:
        """Connect to ``url`` (empty: SQLite ``mailward.db`` in ``data_dir``) and migrate the
        schema to the newest revision. ``instance`` names this hub in connection records
        (default: the host name)."""
        engine = make_engine(url or default_url(data_dir))
        try:
            store = cls(
                engine,
                instance=instance or socket.gethostname(),
                hashing=hashing or PasswordHashing(),
                keep_raw=keep_raw,
                retention_days=retention_days,
            )
            migrate.upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        return store

    @classmethod
    def from_config(cls, config: StoreConfig, **kwargs: Any) -> Store:
        """``open`` with the ``[store]`` section of the configuration."""
        return cls.open(
            config.url,
            keep_raw=config.keep_raw,
            retention_days=config.retention_days,
            **kwargs,
        )

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Release the database connections (close EventWriters first)."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def _submit(self, job: WriteJob) -> None:
        self.apply([job])

    def apply(self, jobs: Iterable[WriteJob]) -> None:
        """Apply write jobs in one transaction (the EventWriter's batches come through here)."""
        jobs = list(jobs)
        try:
            with self._writes.begin() as conn:
                apply_jobs(conn, jobs)
        except (IntegrityError, DataError) as exc:
            what = ", ".join(job.what for job in jobs[:3]) + (", ..." if len(jobs) > 3 else "")
            raise StoreError(f"{what}: refused by the database ({_first_line(exc)})") from exc

    def writer(self, **kwargs: Any) -> EventWriter:
        """A new EventWriter (its own thread) writing into this store."""
        from mailward.store.writer import EventWriter

        return EventWriter(self, **kwargs)

    # -- users -----------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        password: str,
        addresses: Iterable[str] = (),
        aliases: Iterable[str] = (),
    ) -> None:
        """Create a user with an argon2id hash of ``password``, the addresses it owns and the
        aliases it may also send as. Raises UserExists / AddressTaken / ValueError."""
        users.add_user(self._writes, self._hashing, name, password, addresses, aliases)

    def remove_user(self, name: str) -> bool:
        return users.remove_user(self._writes, name)

    def set_password(self, name: str, password: str) -> None:
        users.set_password(self._writes, self._hashing, name, password)

    def disable_user(self, name: str, disabled: bool = True) -> None:
        users.set_disabled(self._writes, name, disabled)

    def verify_password(self, name: str, password: str) -> bool:
        """True for an enabled user with this password. Takes about as long for unknown users;
        rehashes the stored hash when the hashing parameters changed."""
        return users.verify_password(self._engine, self._writes, self._hashing, name, password)

    def list_users(self) -> list[UserRecord]:
        return users.list_users(self._engine)

    def addresses_of(self, name: str) -> list[UserAddress]:
        """The user's owned addresses, then its aliases. Raises UnknownUser."""
        return users.addresses_of(self._engine, name)

    def add_address(self, name: str, address: str, *, alias: bool = False) -> None:
        users.add_address(self._writes, name, address, alias)

    def remove_address(self, address: str) -> bool:
        return users.remove_address(self._writes, address)

    def owner_of(self, address: str) -> str | None:
        """The user owning ``address`` (or having it as an alias), if any."""
        return users.owner_of(self._engine, address)

    # -- reading ---------------------------------------------------------------------------

    def find_transactions(
        self,
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
        """Logged messages matching every filter given, newest first.

        ``since`` (inclusive) and ``until`` (exclusive) bound the time received; ``sender``
        matches the envelope sender or the From address, ``recipient`` an envelope recipient
        (addresses case-insensitively); ``domain`` any of the three; ``client_ip`` the
        connecting IP; ``subject`` a case-insensitive substring; ``message_id`` with or
        without angle brackets; ``symbol`` any finding's symbol.
        """
        return search.find_transactions(
            self._engine,
            since=since,
            until=until,
            sender=sender,
            recipient=recipient,
            domain=domain,
            client_ip=client_ip,
            subject=subject,
            disposition=disposition,
            symbol=symbol,
            message_id=message_id,
            queue_id=queue_id,
            limit=limit,
            offset=offset,
        )

    def related_transaction_ids(
        self,
        *,
        since: datetime,
        until: datetime,
        senders: Sequence[str] = (),
        subjects: Sequence[str] = (),
        body_sha256s: Sequence[str] = (),
        urls: Sequence[str] = (),
        limit: int = 1000,
    ) -> dict[str, set[str]]:
        """Row ids of the messages received in [since, until) sharing a sender (envelope or
        From address), a Subject, a body fingerprint or a link with the values given, each with
        the criteria it matched (``sender``, ``subject``, ``body``, ``url``); at most ``limit``
        per criterion, newest first. See ``campaign.find_campaign``."""
        return search.related_ids(
            self._engine,
            since=since,
            until=until,
            senders=senders,
            subjects=subjects,
            body_sha256s=body_sha256s,
            urls=urls,
            limit=limit,
        )

    def transactions_by_ids(self, ids: Sequence[str]) -> list[StoredTransaction]:
        """The logged messages with these row ids (``StoredTransaction.id``), newest first."""
        return search.transactions_by_ids(self._engine, ids)

    def transaction_urls(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """The links stored for each of these messages (row id -> normalized links)."""
        return search.urls_of(self._engine, ids)

    def deliveries_of(self, queue_ids: Sequence[str]) -> dict[str, list[StoredDelivery]]:
        """Every delivery attempt of each of these messages (queue id -> attempts, in order)."""
        return reads.deliveries_of(self._engine, queue_ids)

    def transaction(self, queue_id: str) -> StoredTransaction | None:
        found = self.find_transactions(queue_id=queue_id, limit=1)
        return found[0] if found else None

    def known_correspondent(self, address: str, *, delivered_before: datetime) -> bool:
        """Whether the site has dealt with ``address`` before: its users sent mail to it, or
        mail from it (header From) was delivered before ``delivered_before``."""
        return reads.known_correspondent(self._engine, address, delivered_before)

    def submission_history(
        self, since: datetime, *, limit: int = 1_000_000
    ) -> tuple[datetime | None, list[tuple[str, datetime]]]:
        """When the log begins, and each account's submissions since ``since`` (account, time;
        oldest first; at most ``limit``, the newest): what the compromise detector learns
        accounts' normal rates from after a restart."""
        return reads.submission_history(self._engine, since, limit)

    def connection(self, connection_id: str) -> StoredConnection | None:
        return reads.connection(self._engine, connection_id)

    def deliveries(self, queue_id: str) -> list[StoredDelivery]:
        return reads.deliveries(self._engine, queue_id)

    def auth_events(
        self,
        *,
        user: str | None = None,
        ip: str | None = None,
        success: bool | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredAuth]:
        return reads.auth_events(
            self._engine, user=user, ip=ip, success=success, since=since, limit=limit
        )

    def events(
        self,
        *,
        kind: str | None = None,
        queue_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredEvent]:
        return reads.events(self._engine, kind=kind, queue_id=queue_id, since=since, limit=limit)

    def alerts(
        self,
        *,
        kind: str | None = None,
        user: str | None = None,
        ip: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[StoredAlert]:
        return reads.alerts(self._engine, kind=kind, user=user, ip=ip, since=since, limit=limit)

    def reports(
        self, *, queue_id: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[StoredReport]:
        return reads.reports(self._engine, queue_id=queue_id, since=since, limit=limit)

    def quarantine_entry(self, queue_id: str) -> QuarantineEntry | None:
        return reads.quarantine_entry(self._engine, queue_id)

    def quarantined(
        self, *, pending_only: bool = True, since: datetime | None = None, limit: int = 100
    ) -> list[QuarantineEntry]:
        """Quarantined messages, newest first, without their raw copies (``quarantine_entry``
        has it); ``pending_only``: neither released nor deleted yet."""
        return reads.quarantined(self._engine, pending_only=pending_only, since=since,
                                 limit=limit)

    # -- quarantine and retention ----------------------------------------------------------

    def release_quarantine(self, queue_id: str, *, at: datetime | None = None) -> bool:
        """Mark a quarantined message released; False if absent, released or deleted."""
        return self._quarantine_state(queue_id, "released_at", at)

    def delete_quarantine(self, queue_id: str, *, at: datetime | None = None) -> bool:
        """Mark a quarantined message deleted (its raw copy is dropped from the store)."""
        return self._quarantine_state(queue_id, "deleted_at", at, raw=None)

    def _quarantine_state(
        self, queue_id: str, column: str, at: datetime | None, **extra: Any
    ) -> bool:
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        statement = (
            update(QUARANTINE)
            .where(
                QUARANTINE.c.queue_id == queue_id,
                QUARANTINE.c.released_at.is_(None),
                QUARANTINE.c.deleted_at.is_(None),
            )
            .values({column: when, **extra})
        )
        with self._writes.begin() as conn:
            return bool(conn.execute(statement).rowcount)

    def purge(
        self,
        older_than_days: int | None = None,
        *,
        now: datetime | None = None,
        batch_size: int = 2000,
    ) -> PurgeResult:
        """Delete log rows older than ``older_than_days`` (default: store.retention_days)."""
        days = self.retention_days if older_than_days is None else older_than_days
        if days < 0:
            raise ValueError("older_than_days must not be negative")
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        return retention.purge(self._writes, cutoff, batch_size)
