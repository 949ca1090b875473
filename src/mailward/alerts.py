"""Compromise indicators: per-account sliding windows over logins and submissions that raise an
``Alert`` when a local account behaves like a stolen one, and the mail that tells the admins.

``CompromiseDetector`` is fed plain events (a login, a submitted message, a sender-binding
refusal) and returns the alerts they complete; its memory is bounded (buckets per window, capped
sets, least recently seen accounts forgotten). ``AlertMonitor`` is what the hub holds: it records
each alert through the store's ``record_alert`` and hands a notification to the admins
(``alerts.to``). An account's normal rate is learnt from the central log's last week at start
(``learn``) and then from the messages it submits; with less than a day of history only the
floor ``alerts.rate_min_per_hour`` applies.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import inspect
import logging
import re
import time
import uuid
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailward.config import AlertsConfig, Config
    from mailward.store.recorder import Recorder

log = logging.getLogger("mailward.alerts")

HOUR = 3600.0
SEND_RATE = "send_rate"
EXTERNAL_RECIPIENTS = "external_recipients"
SENDER_BINDING = "sender_binding"
LOGIN_IPS = "login_ips"
LOGIN_AFTER_FAILURES = "login_after_failures"
KINDS = (SEND_RATE, EXTERNAL_RECIPIENTS, SENDER_BINDING, LOGIN_IPS, LOGIN_AFTER_FAILURES)

BASELINE_HOURS = 7 * 24  # history the normal rate is learnt from
MIN_BASELINE_HOURS = 24  # before that much history only the floor applies
MAX_ACCOUNTS = 10_000  # accounts tracked at once (least recently seen forgotten)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Alert:
    """One compromise indicator about one account."""

    kind: str
    user: str
    detail: str
    at: datetime
    ip: str | None = None


def _printable(text: str, limit: int = 128) -> str:
    return _CONTROL.sub("?", text)[:limit]


class _Ring:
    """Counts per time slot over the last ``len(counts)`` slots: a ring of integers (a few
    hundred bytes, however many events)."""

    __slots__ = ("_counts", "_newest", "_width")

    def __init__(self, slots: int, width: float) -> None:
        self._counts = array("I", bytes(4 * slots))
        self._width = width
        self._newest: int | None = None  # number of the newest slot seen

    def _advance(self, t: float) -> int:
        slot = int(t // self._width)
        newest = self._newest
        if newest is None:
            self._newest = slot
        elif slot > newest:
            size = len(self._counts)
            for old in range(newest + 1, min(slot, newest + size) + 1):
                self._counts[old % size] = 0  # slots that went by without events
            self._newest = slot
        return slot

    def add(self, t: float) -> None:
        slot = self._advance(t)
        assert self._newest is not None
        if slot > self._newest - len(self._counts):  # (an event older than the ring: dropped)
            self._counts[slot % len(self._counts)] += 1

    def total(self, t: float, *, without_current: bool = False) -> int:
        """Events in the ring as of ``t`` (optionally not counting ``t``'s own slot)."""
        slot = self._advance(t)
        total = sum(self._counts)
        return total - self._counts[slot % len(self._counts)] if without_current else total


class _Counter(_Ring):
    """Events within the last hour, in one-minute slots."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(60, HOUR / 60)


class _Distinct:
    """Distinct values seen in a sliding window; at most ``cap`` kept (counts saturate)."""

    __slots__ = ("_cap", "_seen", "_window")

    def __init__(self, window: float, cap: int) -> None:
        self._window = window
        self._cap = cap
        self._seen: OrderedDict[str, float] = OrderedDict()  # value -> last seen, oldest first

    def add(self, value: str, t: float) -> None:
        self._seen[value] = t
        self._seen.move_to_end(value)
        self._trim(t)
        while len(self._seen) > self._cap:
            self._seen.popitem(last=False)

    def count(self, t: float) -> int:
        self._trim(t)
        return len(self._seen)

    def values(self) -> list[str]:
        return list(self._seen)

    def _trim(self, t: float) -> None:
        while self._seen:
            value, seen = next(iter(self._seen.items()))
            if seen > t - self._window:
                return
            del self._seen[value]


class _Baseline:
    """Messages per hour over the last week: the account's normal rate."""

    __slots__ = ("_first", "_hours")

    def __init__(self, t: float) -> None:
        self._first = int(t // HOUR)
        self._hours = _Ring(BASELINE_HOURS + 1, HOUR)  # the current hour and a week before

    def add(self, t: float) -> None:
        self._hours.add(t)

    def begin(self, t: float) -> None:
        """The history goes back to ``t`` (earlier than first seen: learnt from the log)."""
        self._first = min(self._first, int(t // HOUR))

    def rate(self, t: float) -> float | None:
        """Mean messages per hour over the complete hours observed (up to a week), not
        counting the current one; None while fewer than MIN_BASELINE_HOURS are known."""
        observed = min(int(t // HOUR) - self._first, BASELINE_HOURS)
        if observed < MIN_BASELINE_HOURS:
            return None
        return self._hours.total(t, without_current=True) / observed


@dataclass(slots=True)
class _Account:
    sent: _Counter
    baseline: _Baseline
    external: _Distinct
    refusals: _Counter
    login_ips: _Distinct
    failures: deque[tuple[float, str]]
    alerted: dict[str, float] = field(default_factory=dict)


class CompromiseDetector:
    """Per-account sliding windows over auth, submission and sender-binding events."""

    def __init__(
        self,
        config: AlertsConfig,
        *,
        max_accounts: int = MAX_ACCOUNTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.max_accounts = max_accounts
        self.clock = clock
        self._accounts: OrderedDict[str, _Account] = OrderedDict()

    def __len__(self) -> int:
        """Accounts currently tracked."""
        return len(self._accounts)

    # -- events ----------------------------------------------------------------------------

    def auth(
        self, user: str, ip: str | None, success: bool, at: datetime | None = None
    ) -> list[Alert]:
        """A login attempt (SMTP AUTH) to ``user`` from ``ip``."""
        t = self._t(at)
        account = self._account(user, t)
        ip_text = ip or "unknown"
        alerts: list[Alert] = []
        failures = account.failures
        while failures and failures[0][0] <= t - HOUR:
            failures.popleft()
        if not success:
            failures.append((t, ip_text))
            return alerts
        # a success ends a run of failures: alert if it was long enough, then start afresh
        if len(failures) >= self.config.failed_logins_before_success:
            ips = list(dict.fromkeys(i for _, i in failures))
            shown = ", ".join(ips[:5]) + (f" (+{len(ips) - 5} more)" if len(ips) > 5 else "")
            alerts += self._raise(
                account,
                LOGIN_AFTER_FAILURES,
                user,
                t,
                ip,
                f"{len(failures)}{'+' if len(failures) == failures.maxlen else ''} failed "
                f"logins to {_printable(user)} within an hour (from "
                f"{shown}), then a successful login from {ip_text}",
            )
        failures.clear()
        account.login_ips.add(ip_text, t)
        distinct = account.login_ips.count(t)
        if distinct > self.config.login_ips_per_hour:
            shown = ", ".join(account.login_ips.values()[-6:])
            alerts += self._raise(
                account,
                LOGIN_IPS,
                user,
                t,
                ip,
                f"{_printable(user)} logged in from {distinct} different IP addresses within an "
                f"hour (limit {self.config.login_ips_per_hour}; latest: {shown})",
            )
        return alerts

    def submitted(
        self,
        user: str,
        recipients: Iterable[tuple[str, bool]],
        at: datetime | None = None,
        ip: str | None = None,
    ) -> list[Alert]:
        """A message submitted by ``user`` to ``recipients`` as (address, is external)."""
        t = self._t(at)
        account = self._account(user, t)
        normal = account.baseline.rate(t)
        account.baseline.add(t)
        account.sent.add(t)
        alerts: list[Alert] = []
        sent = account.sent.total(t)
        floor = self.config.rate_min_per_hour
        limit = floor if normal is None else max(floor, self.config.rate_factor * normal)
        if sent > limit:
            usual = (
                "its normal rate is not known yet"
                if normal is None
                else f"its normal rate is {normal:.1f} per hour"
            )
            alerts += self._raise(
                account,
                SEND_RATE,
                user,
                t,
                ip,
                f"{_printable(user)} sent {sent} messages within an hour; {usual} "
                f"(alert above {limit:.0f})",
            )
        for address, external in recipients:
            if external:
                account.external.add(address.strip().lower(), t)
        external_count = account.external.count(t)
        if external_count > self.config.external_recipients_per_hour:
            alerts += self._raise(
                account,
                EXTERNAL_RECIPIENTS,
                user,
                t,
                ip,
                f"{_printable(user)} sent to {external_count} different recipients outside "
                f"the site within an hour (limit {self.config.external_recipients_per_hour})",
            )
        return alerts

    def binding_refused(
        self,
        user: str,
        address: str,
        at: datetime | None = None,
        ip: str | None = None,
    ) -> list[Alert]:
        """A submission by ``user`` refused because it does not own sender ``address``."""
        t = self._t(at)
        account = self._account(user, t)
        account.refusals.add(t)
        refused = account.refusals.total(t)
        if refused < self.config.binding_refusals_per_hour:
            return []
        return self._raise(
            account,
            SENDER_BINDING,
            user,
            t,
            ip,
            f"{refused} submissions by {_printable(user)} refused within an hour for sender "
            f"addresses it does not own (latest: {_printable(address, 320)})",
        )

    def learn(self, log_begins: float, submissions: Iterable[tuple[str, float]]) -> int:
        """Learn accounts' normal rates from history (the central log after a restart): the
        log covers the time from ``log_begins``; ``submissions`` are (account, time), oldest
        first. Raises no alert. Returns how many accounts were learnt."""
        learnt: set[str] = set()
        for user, t in submissions:
            account = self._account(user, log_begins)
            if user not in learnt:
                account.baseline.begin(log_begins)
                learnt.add(user)
            account.baseline.add(t)
            account.sent.add(t)
        return len(learnt)

    # -- internals -------------------------------------------------------------------------

    def _t(self, at: datetime | None) -> float:
        if at is None:
            return self.clock()
        if at.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        return at.timestamp()

    def _account(self, user: str, t: float) -> _Account:
        account = self._accounts.get(user)
        if account is None:
            # each set only needs to grow one past its limit for the alert to fire
            account = _Account(
                sent=_Counter(),
                baseline=_Baseline(t),
                external=_Distinct(HOUR, self.config.external_recipients_per_hour + 1),
                refusals=_Counter(),
                login_ips=_Distinct(HOUR, self.config.login_ips_per_hour + 1),
                failures=deque(maxlen=max(2 * self.config.failed_logins_before_success, 20)),
            )
            self._accounts[user] = account
            while len(self._accounts) > self.max_accounts:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(user)
        return account

    def _raise(
        self, account: _Account, kind: str, user: str, t: float, ip: str | None, detail: str
    ) -> list[Alert]:
        """The alert, unless the same condition was alerted for this account within the hour."""
        last = account.alerted.get(kind)
        if last is not None and t - last < HOUR:
            return []
        account.alerted[kind] = t
        return [Alert(kind, user, detail, datetime.fromtimestamp(t, UTC), ip)]


# -- what an alert becomes ---------------------------------------------------------------------

TITLES = {
    SEND_RATE: "sending far above its normal rate",
    EXTERNAL_RECIPIENTS: "many outside recipients",
    SENDER_BINDING: "sending as addresses it does not own",
    LOGIN_IPS: "logins from many IP addresses",
    LOGIN_AFTER_FAILURES: "login after many failed ones",
}

ADVICE = {
    SEND_RATE: "Look at what it sent (mailward log search --sender ADDRESS --since 2h). If the "
    "user did not send it, change the password and disable the account until it is clean.",
    EXTERNAL_RECIPIENTS: "Look at what it sent (mailward log search --since 2h); a stolen "
    "account is often used for spam or phishing to outside addresses. If in doubt, change the "
    "password and disable the account.",
    SENDER_BINDING: "Someone logged in as this account tries to send as other people. Check "
    "with the user; if it was not them, change the password.",
    LOGIN_IPS: "The same password is being used from many places. Check with the user; if the "
    "places are not theirs, change the password.",
    LOGIN_AFTER_FAILURES: "A password-guessing run may have found the password. Check with the "
    "user and change the password unless the failures were theirs.",
}


def notification(alert: Alert, config: Config) -> bytes:
    """A short plain-text RFC 5322 message telling the admins (``alerts.to``) about ``alert``."""
    host = config.hostname
    user = _printable(alert.user)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"mailward <postmaster@{host}>"
    msg["To"] = ", ".join(config.alerts.to) or f"postmaster@{host}"
    msg["Subject"] = f"[mailward] {user}: {TITLES.get(alert.kind, _printable(alert.kind))}"
    msg["Date"] = email.utils.format_datetime(alert.at.astimezone(UTC))
    msg["Message-ID"] = f"<alert.{uuid.uuid4().hex}@{host}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    body = (
        f"mailward on {host} raised an alert about the local account {user}.\n\n"
        f"What:  {_printable(alert.detail, 2000)}\n"
        f"When:  {alert.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
        f"IP:    {_printable(alert.ip or '-')}\n"
        f"Alert: {_printable(alert.kind)}\n\n"
        f"{ADVICE.get(alert.kind, 'Check with the user.')}\n\n"
        "The alert is also in the central log. The same condition is not reported again for\n"
        "this account within the next hour.\n"
    )
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()


class AlertMonitor:
    """The hub's side: feeds the detector, records each alert in the store, mails the admins.

    ``send(raw, recipients)`` queues a notification; it must not block (return quickly, or
    return an awaitable, which is run as a task on the running loop).
    """

    def __init__(
        self,
        config: Config,
        recorder: Recorder | None,
        *,
        send: Callable[[bytes, list[str]], Any] | None = None,
        detector: CompromiseDetector | None = None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.send = send
        self.detector = detector or CompromiseDetector(config.alerts)
        self._tasks: set[asyncio.Task[Any]] = set()

    def auth(
        self, user: str, ip: str | None, success: bool, at: datetime | None = None
    ) -> list[Alert]:
        return self._handle(self.detector.auth(user, ip, success, at))

    def submitted(
        self,
        user: str,
        recipients: Iterable[tuple[str, bool]],
        at: datetime | None = None,
        ip: str | None = None,
    ) -> list[Alert]:
        return self._handle(self.detector.submitted(user, recipients, at, ip))

    def binding_refused(
        self, user: str, address: str, at: datetime | None = None, ip: str | None = None
    ) -> list[Alert]:
        return self._handle(self.detector.binding_refused(user, address, at, ip))

    def _handle(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            log.warning("alert %s user=%s ip=%s: %s", alert.kind, _printable(alert.user),
                        alert.ip or "-", _printable(alert.detail, 500))
            try:
                if self.recorder is not None:
                    self.recorder.record_alert(
                        kind=alert.kind, detail=alert.detail, user=alert.user, ip=alert.ip,
                        at=alert.at,
                    )
                if self.send is not None and self.config.alerts.to:
                    self._start(self.send(notification(alert, self.config),
                                          list(self.config.alerts.to)))
            except Exception:  # an alert must never fail a login or a message
                log.exception("alert %s could not be recorded or sent", alert.kind)
        return alerts

    def _start(self, result: Any) -> None:
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("alert notification could not be queued: %s", task.exception())
