"""The store's tables as SQLAlchemy 2 declarative models (the migrations must match them).

Free text that comes from the network is clipped to the column limits in ``limits`` before it is
written (see ``rows``). Every indexed text column stays under PostgreSQL's btree entry limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mailward.store import limits
from mailward.store.coltypes import BigId, IdString, Payload, UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base holding the store's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConnectionRow(Base):
    """One SMTP connection as a hub instance saw it."""

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(IdString, primary_key=True)
    instance: Mapped[str] = mapped_column(String(limits.HOST))
    peer_ip: Mapped[str | None] = mapped_column(String(limits.IP), index=True)
    rdns: Mapped[str | None] = mapped_column(String(limits.HOST))
    helo: Mapped[str | None] = mapped_column(String(limits.HOST))
    tls_version: Mapped[str | None] = mapped_column(String(limits.SHORT))
    tls_cipher: Mapped[str | None] = mapped_column(String(limits.NAME))
    auth_user: Mapped[str | None] = mapped_column(String(limits.NAME), index=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class TransactionRow(Base):
    """One message: envelope, the headers an administrator searches by, and the verdict."""

    __tablename__ = "transactions"

    id: Mapped[str] = mapped_column(IdString, primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(limits.QUEUE_ID), unique=True, index=True)
    connection_id: Mapped[str | None] = mapped_column(
        IdString, ForeignKey("connections.id"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    message_id: Mapped[str | None] = mapped_column(String(limits.MESSAGE_ID), index=True)
    mail_from: Mapped[str] = mapped_column(String(limits.ADDRESS), index=True)
    mail_from_domain: Mapped[str | None] = mapped_column(String(limits.HOST), index=True)
    header_from: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(limits.ADDRESS), index=True)
    from_domain: Mapped[str | None] = mapped_column(String(limits.HOST), index=True)
    reply_to: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(limits.SUBJECT), index=True)
    size: Mapped[int] = mapped_column(Integer)
    body_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    disposition: Mapped[str] = mapped_column(String(limits.SHORT), index=True)
    score: Mapped[float] = mapped_column(Float)
    forced_by: Mapped[str | None] = mapped_column(String(limits.NAME))


class RecipientRow(Base):
    """One envelope recipient of a transaction (a row each, so recipients are searchable)."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(
        IdString, ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(limits.ADDRESS), index=True)
    domain: Mapped[str | None] = mapped_column(String(limits.HOST), index=True)


class FindingRow(Base):
    """One finding of one check on a transaction, with the score the verdict gave it."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(
        IdString, ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    check_name: Mapped[str] = mapped_column(String(limits.SHORT))
    symbol: Mapped[str] = mapped_column(String(limits.NAME), index=True)
    result: Mapped[str] = mapped_column(String(limits.SHORT))
    score: Mapped[float] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text)


# Longest link stored for campaign grouping (indexed: under PostgreSQL's btree entry limit).
URL_LENGTH = 500


class UrlRow(Base):
    """A link in a message's text, normalized (no query or fragment), so that the messages of a
    campaign can be found by the links they share."""

    __tablename__ = "transaction_urls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(
        IdString, ForeignKey("transactions.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(URL_LENGTH), index=True)


class DeliveryRow(Base):
    """One delivery attempt of a message to one recipient and the reply it got."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(limits.QUEUE_ID), index=True)
    recipient: Mapped[str] = mapped_column(String(limits.ADDRESS), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(limits.SHORT))
    reply: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class AuthEventRow(Base):
    """One SMTP AUTH attempt (never the password)."""

    __tablename__ = "auth_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ip: Mapped[str | None] = mapped_column(String(limits.IP), index=True)
    user_name: Mapped[str] = mapped_column(String(limits.NAME), index=True)
    mechanism: Mapped[str] = mapped_column(String(limits.SHORT))
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    """A hub user (submission, report page): name and argon2id hash only."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(limits.NAME), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(limits.HASH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled: Mapped[bool] = mapped_column(Boolean)


class UserAddressRow(Base):
    """An address a user owns or may send as (alias); each address has one owner."""

    __tablename__ = "user_addresses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(limits.ADDRESS), unique=True, index=True)
    alias: Mapped[bool] = mapped_column(Boolean)


class UserReportRow(Base):
    """A user's report of a suspicious message."""

    __tablename__ = "user_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reporter: Mapped[str] = mapped_column(String(limits.ADDRESS), index=True)
    queue_id: Mapped[str | None] = mapped_column(String(limits.QUEUE_ID), index=True)
    message_id: Mapped[str | None] = mapped_column(String(limits.MESSAGE_ID), index=True)
    comment: Mapped[str] = mapped_column(Text)
    raw_path: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)


class QuarantineRow(Base):
    """A quarantined message: where its raw copy is, and whether it was released or deleted."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    queue_id: Mapped[str] = mapped_column(String(limits.QUEUE_ID), unique=True, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(Text)
    raw_path: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertRow(Base):
    """Something an administrator should look at (e.g. a user's account sending forgeries)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(limits.NAME), index=True)
    user_name: Mapped[str | None] = mapped_column(String(limits.NAME), index=True)
    ip: Mapped[str | None] = mapped_column(String(limits.IP), index=True)
    detail: Mapped[str] = mapped_column(Text)


class EventRow(Base):
    """Anything else worth a log line, as a JSON payload (secrets redacted before writing)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(limits.NAME), index=True)
    queue_id: Mapped[str | None] = mapped_column(String(limits.QUEUE_ID), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Payload)
