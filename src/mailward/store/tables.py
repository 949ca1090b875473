"""The store's tables as SQLAlchemy Core objects, named once for every module that queries."""

from __future__ import annotations

from mailward.store.models import (
    AlertRow,
    AuthEventRow,
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

CONNECTIONS = ConnectionRow.__table__
TRANSACTIONS = TransactionRow.__table__
RECIPIENTS = RecipientRow.__table__
FINDINGS = FindingRow.__table__
DELIVERIES = DeliveryRow.__table__
AUTH_EVENTS = AuthEventRow.__table__
EVENTS = EventRow.__table__
ALERTS = AlertRow.__table__
REPORTS = UserReportRow.__table__
QUARANTINE = QuarantineRow.__table__
URLS = UrlRow.__table__
USERS = UserRow.__table__
ADDRESSES = UserAddressRow.__table__
