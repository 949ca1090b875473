"""Campaign links: the normalized links of each message (``transaction_urls``), so that
``mailward log campaign`` finds the messages sharing one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types frozen as of this revision.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ROW_ID = sa.String(length=32)


def upgrade() -> None:
    op.create_table(
        "transaction_urls",
        sa.Column("id", ID, nullable=False),
        sa.Column("transaction_id", ROW_ID, nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name="fk_transaction_urls_transaction_id_transactions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transaction_urls"),
    )
    op.create_index("ix_transaction_urls_transaction_id", "transaction_urls", ["transaction_id"])
    op.create_index("ix_transaction_urls_url", "transaction_urls", ["url"])


def downgrade() -> None:
    op.drop_table("transaction_urls")  # drops its indexes too
