"""Compromise indicators: each alert at its threshold (not below), once per hour per account,
the learnt normal rate, bounded memory, the admins' notification and the monitor's recording."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailward import alerts
from mailward.alerts import Alert, AlertMonitor, CompromiseDetector, notification
from mailward.config import AlertsConfig, Config, ConfigError, SmtpConfig
from mailward.store import Store

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def detector(**thresholds: Any) -> CompromiseDetector:
    return CompromiseDetector(AlertsConfig(**thresholds))


def kinds(found: list[Alert]) -> list[str]:
    return [a.kind for a in found]


# -- logins -------------------------------------------------------------------------------------


def test_failed_logins_then_success() -> None:
    d = detector(failed_logins_before_success=5)
    for i in range(4):
        assert d.auth("alice", f"198.51.100.{i}", False, at(i)) == []
    assert d.auth("alice", "198.51.100.9", True, at(10)) == []  # 4 failures: below
    d.auth("alice", "203.0.113.7", False, at(15))  # (the success ended that run)
    assert d.auth("alice", "198.51.100.9", True, at(16)) == []
    for i in range(5):
        d.auth("alice", "203.0.113.7", False, at(20 + i))
    (alert,) = d.auth("alice", "203.0.113.8", True, at(30))
    assert alert.kind == alerts.LOGIN_AFTER_FAILURES
    assert (alert.user, alert.ip, alert.at) == ("alice", "203.0.113.8", at(30))
    assert "5 failed logins to alice" in alert.detail and "203.0.113.7" in alert.detail
    assert "successful login from 203.0.113.8" in alert.detail


def test_a_long_brute_force_is_reported_without_keeping_every_failure() -> None:
    d = detector(failed_logins_before_success=10)
    for i in range(5000):
        d.auth("alice", f"203.0.113.{i % 200}", False, at(i * 0.5))
    assert len(d._accounts["alice"].failures) == 20  # bounded
    (alert,) = d.auth("alice", "203.0.113.1", True, at(2600))
    assert alert.detail.startswith("20+ failed logins to alice")
    assert "(+15 more)" in alert.detail  # of the 20 kept


def test_failures_older_than_an_hour_do_not_count() -> None:
    d = detector(failed_logins_before_success=3)
    for i in range(3):
        d.auth("alice", "203.0.113.7", False, at(i))
    assert d.auth("alice", "203.0.113.7", True, at(3601)) == []


def test_failures_of_other_accounts_do_not_count() -> None:
    d = detector(failed_logins_before_success=3)
    for user in ("bob", "carol", "dave"):
        d.auth(user, "203.0.113.7", False, at(0))
    assert d.auth("alice", "203.0.113.7", True, at(1)) == []


def test_logins_from_many_ips() -> None:
    d = detector(login_ips_per_hour=3)
    for i in range(3):
        assert d.auth("alice", f"198.51.100.{i}", True, at(i * 60)) == []
    assert d.auth("alice", "198.51.100.1", True, at(200)) == []  # an IP seen before
    (alert,) = d.auth("alice", "203.0.113.50", True, at(300))
    assert alert.kind == alerts.LOGIN_IPS
    assert "4 different IP addresses" in alert.detail and "203.0.113.50" in alert.detail
    assert d.auth("alice", "203.0.113.51", False, at(301)) == []  # failures are not logins


def test_login_ips_age_out() -> None:
    d = detector(login_ips_per_hour=2)
    d.auth("alice", "198.51.100.1", True, at(0))
    d.auth("alice", "198.51.100.2", True, at(60))
    assert d.auth("alice", "198.51.100.3", True, at(3660)) == []  # the first one aged out


# -- submissions --------------------------------------------------------------------------------


def send(d: CompromiseDetector, user: str, count: int, start: float, step: float,
         recipients: list[tuple[str, bool]] | None = None) -> list[Alert]:
    found: list[Alert] = []
    for i in range(count):
        found += d.submitted(user, recipients or [("x@ourcorp.example", False)],
                             at(start + i * step))
    return found


def test_a_new_account_alerts_above_the_floor() -> None:
    d = detector(rate_min_per_hour=10)
    assert send(d, "alice", 10, 0, 60) == []
    (alert,) = send(d, "alice", 1, 600, 1)
    assert alert.kind == alerts.SEND_RATE
    assert "sent 11 messages within an hour" in alert.detail
    assert "normal rate is not known yet" in alert.detail


def test_the_rate_window_slides() -> None:
    d = detector(rate_min_per_hour=10)
    assert send(d, "alice", 10, 0, 60) == []
    assert send(d, "alice", 10, 3700, 60) == []  # the first ten are out of the window


def test_a_busy_account_is_judged_by_its_normal_rate() -> None:
    d = detector(rate_min_per_hour=30, rate_factor=5.0)
    # two days at 20 messages an hour (under the floor while it is learnt): a normal rate of 20
    for hour in range(48):
        assert send(d, "robot", 20, hour * 3600, 150) == []
    assert send(d, "robot", 100, 48 * 3600, 30) == []  # 100 = 5 x 20: not above
    (alert,) = send(d, "robot", 1, 48 * 3600 + 3100, 1)
    assert alert.kind == alerts.SEND_RATE
    assert "normal rate is 20.0 per hour" in alert.detail and "alert above 100" in alert.detail
    # a quiet account sending the same 101 alerts long before
    quiet = detector(rate_min_per_hour=30, rate_factor=5.0)
    for hour in range(48):
        send(quiet, "alice", 1, hour * 3600, 1)
    assert kinds(send(quiet, "alice", 31, 48 * 3600, 30)) == [alerts.SEND_RATE]


def test_rates_learnt_from_the_log_survive_a_restart() -> None:
    history = [("robot", (T0 + timedelta(seconds=hour * 3600 + i * 150)).timestamp())
               for hour in range(48) for i in range(20)]  # two days at 20 an hour
    restarted = detector(rate_min_per_hour=30, rate_factor=5.0)
    assert restarted.learn(T0.timestamp(), history) == 1
    assert send(restarted, "robot", 100, 48 * 3600, 30) == []  # its normal rate is known
    (alert,) = send(restarted, "robot", 1, 48 * 3600 + 3100, 1)
    assert "normal rate is 20.0 per hour" in alert.detail
    # without the history the same hour alerts at the floor
    forgetful = detector(rate_min_per_hour=30, rate_factor=5.0)
    assert kinds(send(forgetful, "robot", 31, 48 * 3600, 30)) == [alerts.SEND_RATE]


def test_the_last_hour_of_the_log_counts_in_the_window() -> None:
    d = detector(rate_min_per_hour=10)
    d.learn(T0.timestamp(), [("alice", at(i * 60).timestamp()) for i in range(10)])
    (alert,) = send(d, "alice", 1, 700, 1)  # the 11th within the hour, the first after restart
    assert "sent 11 messages within an hour" in alert.detail


def test_many_external_recipients() -> None:
    d = detector(external_recipients_per_hour=5)
    internal = [(f"user{i}@ourcorp.example", False) for i in range(50)]
    assert d.submitted("alice", internal, at(0)) == []
    assert d.submitted("alice", [(f"r{i}@outside.example", True) for i in range(5)], at(1)) == []
    assert d.submitted("alice", [("R0@Outside.example", True)], at(2)) == []  # same address
    (alert,) = d.submitted("alice", [("new@outside.example", True)], at(3))
    assert alert.kind == alerts.EXTERNAL_RECIPIENTS
    assert "6 different recipients outside the site" in alert.detail


def test_sender_binding_refusals() -> None:
    d = detector(binding_refusals_per_hour=3)
    assert d.binding_refused("alice", "ceo@ourcorp.example", at(0)) == []
    assert d.binding_refused("alice", "ceo@ourcorp.example", at(10)) == []
    (alert,) = d.binding_refused("alice", "cfo@ourcorp.example", at(20), ip="203.0.113.9")
    assert (alert.kind, alert.ip) == (alerts.SENDER_BINDING, "203.0.113.9")
    assert "3 submissions by alice refused" in alert.detail
    assert "cfo@ourcorp.example" in alert.detail


# -- once per condition per hour, bounded memory ------------------------------------------------


def test_the_same_condition_alerts_once_an_hour() -> None:
    d = detector(binding_refusals_per_hour=1, login_ips_per_hour=1)
    assert kinds(d.binding_refused("alice", "x@y", at(0))) == [alerts.SENDER_BINDING]
    assert d.binding_refused("alice", "x@y", at(60)) == []
    assert d.binding_refused("alice", "x@y", at(3599)) == []
    # another condition or another account is another alert
    d.auth("alice", "198.51.100.1", True, at(100))
    assert kinds(d.auth("alice", "198.51.100.2", True, at(101))) == [alerts.LOGIN_IPS]
    assert kinds(d.binding_refused("bob", "x@y", at(100))) == [alerts.SENDER_BINDING]
    assert kinds(d.binding_refused("alice", "x@y", at(3601))) == [alerts.SENDER_BINDING]


def test_accounts_are_bounded() -> None:
    d = CompromiseDetector(AlertsConfig(), max_accounts=100)
    for i in range(1000):  # a spray of made-up user names
        d.auth(f"guess{i}", "203.0.113.7", False, at(i))
    assert len(d) == 100


def test_sets_are_bounded_and_still_alert() -> None:
    d = detector(external_recipients_per_hour=10)
    many = [(f"r{i}@outside.example", True) for i in range(100_000)]
    (alert,) = d.submitted("alice", many, at(0))
    assert "11 different recipients" in alert.detail  # the set stopped growing at 11
    account = d._accounts["alice"]
    assert account.external.count(at(0).timestamp()) == 11


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        detector().auth("alice", None, True, datetime(2026, 1, 1))


def test_the_clock_is_used_without_times() -> None:
    d = CompromiseDetector(AlertsConfig(binding_refusals_per_hour=1), clock=lambda: 1e9)
    (alert,) = d.binding_refused("alice", "x@y")
    assert alert.at == datetime.fromtimestamp(1e9, UTC)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"to": ["not an address"]}, "alerts.to"),
        ({"rate_factor": 1.0}, "rate_factor"),
        ({"login_ips_per_hour": 0}, "login_ips_per_hour"),
    ],
)
def test_config_is_checked(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AlertsConfig(**values)


# -- what an alert becomes ----------------------------------------------------------------------


def site_config(to: list[str]) -> Config:
    return Config(smtp=SmtpConfig(hostname="mx.ourcorp.example"), alerts=AlertsConfig(to=to))


def test_notification_is_a_plain_rfc5322_message() -> None:
    alert = Alert(alerts.LOGIN_AFTER_FAILURES, "alice", "12 failed logins ... é", T0,
                  "203.0.113.8")
    raw = notification(alert, site_config(["sec@ourcorp.example", "it@ourcorp.example"]))
    assert b"\r\n\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["From"] == "mailward <postmaster@mx.ourcorp.example>"
    assert msg["To"] == "sec@ourcorp.example, it@ourcorp.example"
    assert msg["Subject"] == "[mailward] alice: login after many failed ones"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@mx.ourcorp.example>")
    assert email.utils.parsedate_to_datetime(msg["Date"]) == T0
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content()
    assert "12 failed logins ... é" in body and "203.0.113.8" in body
    assert "change the password" in body


def test_notification_resists_header_injection() -> None:
    evil = "alice\r\nBcc: everyone@example.com\r\n"
    raw = notification(Alert(alerts.SENDER_BINDING, evil, f"by {evil}", T0), site_config(
        ["sec@ourcorp.example"]))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Bcc"] is None
    assert "\n" not in msg["Subject"] and "alice??Bcc" in msg["Subject"]


class ListRecorder:
    """What the monitor calls on the store's recorder."""

    def __init__(self, fail: bool = False) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.fail = fail

    def record_alert(self, **values: Any) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.alerts.append(values)


def test_monitor_records_and_mails(tmp_path: Path) -> None:
    sent: list[tuple[bytes, list[str]]] = []
    config = Config(smtp=SmtpConfig(hostname="mx.ourcorp.example"),
                    alerts=AlertsConfig(to=["sec@ourcorp.example"], binding_refusals_per_hour=2))
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}", instance="mx1.test") as store:
        monitor = AlertMonitor(config, store, send=lambda raw, to: sent.append((raw, to)))
        assert monitor.binding_refused("alice", "ceo@ourcorp.example", at(0)) == []
        (alert,) = monitor.binding_refused("alice", "ceo@ourcorp.example", at(5), "203.0.113.9")
        (stored,) = store.alerts()
        assert (stored.kind, stored.user, stored.ip, stored.at) == (
            alerts.SENDER_BINDING, "alice", "203.0.113.9", at(5),
        )
        assert stored.detail == alert.detail
    ((raw, to),) = sent
    assert to == ["sec@ourcorp.example"]
    assert b"Subject: [mailward] alice: sending as addresses" in raw


def test_monitor_without_admins_only_records() -> None:
    sent: list[object] = []
    recorder = ListRecorder()
    config = Config(alerts=AlertsConfig(binding_refusals_per_hour=1))
    monitor = AlertMonitor(config, recorder, send=lambda raw, to: sent.append(raw))  # type: ignore[arg-type]
    assert len(monitor.binding_refused("alice", "x@y", at(0))) == 1
    assert len(recorder.alerts) == 1 and sent == []


def test_a_failing_store_or_mailer_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    def broken_send(raw: bytes, to: list[str]) -> None:
        raise OSError("spool full")

    config = Config(alerts=AlertsConfig(to=["sec@ourcorp.example"], binding_refusals_per_hour=1))
    for recorder, send_ in ((ListRecorder(fail=True), None), (ListRecorder(), broken_send)):
        monitor = AlertMonitor(config, recorder, send=send_)  # type: ignore[arg-type]
        assert len(monitor.binding_refused("alice", "x@y", at(0))) == 1
    assert "could not be recorded or sent" in caplog.text


def test_an_async_mailer_runs_as_a_task() -> None:
    queued: list[list[str]] = []

    async def enqueue(raw: bytes, to: list[str]) -> None:
        await asyncio.sleep(0)
        queued.append(to)

    async def main() -> None:
        config = Config(alerts=AlertsConfig(to=["sec@ourcorp.example"],
                                            failed_logins_before_success=1))
        monitor = AlertMonitor(config, None, send=enqueue)
        monitor.auth("alice", "203.0.113.7", False, at(0))
        assert len(monitor.auth("alice", "203.0.113.7", True, at(1))) == 1
        assert queued == []  # queued later, without blocking the login
        await asyncio.sleep(0.01)
        assert queued == [["sec@ourcorp.example"]] and not monitor._tasks

    asyncio.run(main())


def test_every_kind_has_a_title_and_advice() -> None:
    assert set(alerts.KINDS) == set(alerts.TITLES) == set(alerts.ADVICE)
