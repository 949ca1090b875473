"""Plain values the store returns (no SQLAlchemy objects leave the store) and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class StoreError(Exception):
    """A store operation could not be done; the message says why."""


class UserExists(StoreError):
    """``add_user`` with a name that is taken."""


class UnknownUser(StoreError):
    """A user operation named a user that does not exist."""


class AddressTaken(StoreError):
    """An address is already owned by (or an alias of) another user."""


@dataclass(frozen=True, slots=True)
class StoredFinding:
    check: str
    symbol: str
    result: str
    score: float
    detail: str


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    """One message as logged, with its connection's facts, recipients and findings."""

    id: str
    queue_id: str
    received_at: datetime
    connection_id: str | None
    instance: str | None
    client_ip: str | None
    rdns: str | None
    helo: str | None
    auth_user: str | None
    message_id: str | None
    mail_from: str
    header_from: str | None
    from_address: str | None
    reply_to: str | None
    subject: str | None
    size: int
    body_sha256: str | None
    disposition: str
    score: float
    forced_by: str | None
    recipients: tuple[str, ...] = ()
    findings: tuple[StoredFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredConnection:
    id: str
    instance: str
    peer_ip: str | None
    rdns: str | None
    helo: str | None
    tls_version: str | None
    tls_cipher: str | None
    auth_user: str | None
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    queue_id: str
    recipient: str
    attempt: int
    status: str
    reply: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredAuth:
    at: datetime
    ip: str | None
    user: str
    mechanism: str
    success: bool
    reason: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    at: datetime
    kind: str
    queue_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredAlert:
    at: datetime
    kind: str
    user: str | None
    ip: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class StoredReport:
    at: datetime
    reporter: str
    queue_id: str | None
    message_id: str | None
    comment: str
    raw_path: str | None
    raw: bytes | None


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    queue_id: str
    at: datetime
    reason: str
    raw_path: str | None
    raw: bytes | None
    released_at: datetime | None
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class UserAddress:
    address: str
    alias: bool


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as listed: never the password hash."""

    name: str
    created_at: datetime
    disabled: bool
    addresses: tuple[UserAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows deleted per table, and the raw-message files the purged quarantine rows named
    (the caller removes those files: the store does not own them)."""

    deleted: dict[str, int] = field(default_factory=dict)
    raw_paths: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())
