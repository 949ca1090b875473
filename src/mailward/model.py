"""The vocabulary: Connection, Envelope, Message, Transaction, Finding, Verdict."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailward.message import ParsedHeaders


class Result(enum.StrEnum):
    """RFC 8601 result words (plus ``policy``)."""

    PASS = "pass"
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    POLICY = "policy"


class Disposition(enum.StrEnum):
    """What the hub does with a message, from mildest to strongest."""

    ACCEPT = "accept"
    TAG = "tag"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    TEMPFAIL = "tempfail"

    @property
    def rank(self) -> int:
        return _DISPOSITION_RANK[self]


_DISPOSITION_RANK = {
    Disposition.ACCEPT: 0,
    Disposition.TAG: 1,
    Disposition.QUARANTINE: 2,
    Disposition.REJECT: 3,
    Disposition.TEMPFAIL: 4,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact a check established.

    ``method_result`` marks the finding that is the check's RFC 8601 result (one per method,
    one per DKIM signature); its ``properties`` become ``ptype.property=value`` pairs in
    Authentication-Results. ``score`` is filled in from configuration by the verdict, never by
    the check.
    """

    check: str
    symbol: str
    result: Result
    detail: str = ""
    advice: str = ""
    score: float = 0.0
    method_result: bool = False
    properties: tuple[tuple[str, str], ...] = ()
    reason: str = ""

    def prop(self, name: str) -> str | None:
        for key, value in self.properties:
            if key == name:
                return value
        return None

    def as_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "symbol": self.symbol,
            "result": str(self.result),
            "score": self.score,
            "detail": self.detail,
            "advice": self.advice,
        }


@dataclass(slots=True)
class Connection:
    """The SMTP client as seen on one connection."""

    ip: str | None = None
    rdns: str | None = None
    helo: str | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    tls_client_cert: str | None = None
    auth_user: str | None = None
    connection_id: str | None = None  # the store's id of this connection, when logged


@dataclass(slots=True)
class Envelope:
    """SMTP envelope: MAIL FROM (empty string for the null sender), RCPT TOs, SIZE."""

    mail_from: str = ""
    rcpt_to: list[str] = field(default_factory=list)
    size: int | None = None


class Message:
    """Raw message bytes plus a parsed view, parsed once and lazily."""

    __slots__ = ("__dict__", "_parsed", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._parsed: ParsedHeaders | None = None

    @property
    def parsed(self) -> ParsedHeaders:
        parsed = self._parsed
        if parsed is None:
            from mailward.message import parse_headers

            parsed = self._parsed = parse_headers(self.raw)
        return parsed


@dataclass(slots=True)
class Transaction:
    """One message in flight: connection, envelope, message, queue id."""

    connection: Connection
    envelope: Envelope
    message: Message
    queue_id: str = ""


@dataclass(slots=True)
class Verdict:
    """The pipeline's decision and why."""

    disposition: Disposition
    score: float
    findings: list[Finding]
    reasons: list[str]
    forced_by: str | None = None
    admin_explanation: str = ""
    recipient_explanation: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "disposition": str(self.disposition),
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
            "forced_by": self.forced_by,
            "explanation": self.recipient_explanation,
        }
