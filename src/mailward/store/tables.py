"""The store's tables as SQLAlchemy Core objects, named once for every module that queries."""

from __future__ import annotations

from sqlalchemy import Table

from mailward.store.models import (
    AlertRow,
    AuthEventRow,
    Base,
    ConnectionRow,
    DeliveryRow,
    EventRow,
    FindingRow,
    QuarantineRow,
    RecipientRow,
    TransactionRow,
    UrlRow,
    UserAddressRow,
    UserReportRow,
    UserRow,
)


def _table(model: type[Base]) -> Table:
    """The model's table: declarative types ``__table__`` as any FromClause (a class may map a
    join or a select), but a model declared with ``__tablename__`` always has a Table."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


CONNECTIONS = _table(ConnectionRow)
TRANSACTIONS = _table(TransactionRow)
RECIPIENTS = _table(RecipientRow)
FINDINGS = _table(FindingRow)
DELIVERIES = _table(DeliveryRow)
AUTH_EVENTS = _table(AuthEventRow)
EVENTS = _table(EventRow)
ALERTS = _table(AlertRow)
REPORTS = _table(UserReportRow)
QUARANTINE = _table(QuarantineRow)
URLS = _table(UrlRow)
USERS = _table(UserRow)
ADDRESSES = _table(UserAddressRow)
