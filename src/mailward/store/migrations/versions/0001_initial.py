"""Initial schema: connections, transactions with recipients and findings, deliveries, auth
events, users and their addresses, user reports, quarantine, alerts and generic events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types frozen as of this revision (later model changes get their own revision).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROW_ID = sa.String(length=32)
TS = sa.DateTime(timezone=True)
PAYLOAD = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# table -> (column, unique) of each single-column index
INDEXES: dict[str, list[tuple[str, bool]]] = {
    "connections": [("peer_ip", False), ("auth_user", False), ("opened_at", False)],
    "transactions": [
        ("queue_id", True),
        ("connection_id", False),
        ("received_at", False),
        ("message_id", False),
        ("mail_from", False),
        ("mail_from_domain", False),
        ("from_address", False),
        ("from_domain", False),
        ("subject", False),
        ("body_sha256", False),
        ("disposition", False),
    ],
    "recipients": [("transaction_id", False), ("address", False), ("domain", False)],
    "findings": [("transaction_id", False), ("symbol", False)],
    "deliveries": [("queue_id", False), ("recipient", False), ("at", False)],
    "auth_events": [("at", False), ("ip", False), ("user_name", False)],
    "users": [("name", True)],
    "user_addresses": [("user_id", False), ("address", True)],
    "user_reports": [
        ("at", False),
        ("reporter", False),
        ("queue_id", False),
        ("message_id", False),
    ],
    "quarantine": [("queue_id", True), ("at", False)],
    "alerts": [("at", False), ("kind", False), ("user_name", False), ("ip", False)],
    "events": [("at", False), ("kind", False), ("queue_id", False)],
}


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.Constraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("instance", sa.String(255), nullable=False),
        sa.Column("peer_ip", sa.String(45)),
        sa.Column("rdns", sa.String(255)),
        sa.Column("helo", sa.String(255)),
        sa.Column("tls_version", sa.String(32)),
        sa.Column("tls_cipher", sa.String(128)),
        sa.Column("auth_user", sa.String(128)),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        _pk("connections"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("connection_id", ROW_ID),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("message_id", sa.String(500)),
        sa.Column("mail_from", sa.String(320), nullable=False),
        sa.Column("mail_from_domain", sa.String(255)),
        sa.Column("header_from", sa.Text()),
        sa.Column("from_address", sa.String(320)),
        sa.Column("from_domain", sa.String(255)),
        sa.Column("reply_to", sa.Text()),
        sa.Column("subject", sa.String(500)),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("body_sha256", sa.String(64)),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("forced_by", sa.String(128)),
        _fk("transactions", "connection_id", "connections"),
        _pk("transactions"),
    )
    op.create_table(
        "recipients",
        sa.Column("id", ID, nullable=False),
        sa.Column("transaction_id", ROW_ID, nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("domain", sa.String(255)),
        _fk("recipients", "transaction_id", "transactions", "CASCADE"),
        _pk("recipients"),
    )
    op.create_table(
        "findings",
        sa.Column("id", ID, nullable=False),
        sa.Column("transaction_id", ROW_ID, nullable=False),
        sa.Column("check_name", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(128), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _fk("findings", "transaction_id", "transactions", "CASCADE"),
        _pk("findings"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        _pk("deliveries"),
    )
    op.create_table(
        "auth_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("mechanism", sa.String(32), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _pk("auth_events"),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _pk("users"),
    )
    op.create_table(
        "user_addresses",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("alias", sa.Boolean(), nullable=False),
        _fk("user_addresses", "user_id", "users", "CASCADE"),
        _pk("user_addresses"),
    )
    op.create_table(
        "user_reports",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reporter", sa.String(320), nullable=False),
        sa.Column("queue_id", sa.String(64)),
        sa.Column("message_id", sa.String(500)),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("raw_path", sa.Text()),
        sa.Column("raw", sa.LargeBinary()),
        _pk("user_reports"),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", ID, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_path", sa.Text()),
        sa.Column("raw", sa.LargeBinary()),
        sa.Column("released_at", TS),
        sa.Column("deleted_at", TS),
        _pk("quarantine"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(128)),
        sa.Column("ip", sa.String(45)),
        sa.Column("detail", sa.Text(), nullable=False),
        _pk("alerts"),
    )
    op.create_table(
        "events",
        sa.Column("id", ID, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("queue_id", sa.String(64)),
        sa.Column("payload", PAYLOAD, nullable=False),
        _pk("events"),
    )
    for table, columns in INDEXES.items():
        for column, unique in columns:
            op.create_index(f"ix_{table}_{column}", table, [column], unique=unique)


def downgrade() -> None:
    for table in reversed(INDEXES):
        op.drop_table(table)  # drops its indexes too
