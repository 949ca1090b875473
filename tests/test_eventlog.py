"""Event export: JSON lines (file, stdout; reopened on SIGHUP and after rotation), RFC 5424
syslog over UDP and a unix socket, never bodies or secrets, never blocking the caller, and the
store recorder tee giving the same ids as the store."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mailward.config import ConfigError, EventsConfig
from mailward.eventlog import SYSLOG_MAX, EventSink, EventTee, clean_fields, syslog_line
from mailward.model import Finding, Result
from mailward.store import Store

T0 = datetime(2026, 5, 4, 8, 0, 0, 123000, tzinfo=UTC)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def jsonl(tmp_path: Path) -> Iterator[tuple[EventSink, Path]]:
    path = tmp_path / "events.jsonl"
    sink = EventSink(EventsConfig(jsonl_path=str(path)), hostname="mx1.test", rotation_check=0)
    yield sink, path
    sink.close(5)


def test_json_lines(jsonl: tuple[EventSink, Path]) -> None:
    sink, path = jsonl
    sink.emit("connection", {"peer_ip": "203.0.113.9", "time": "spoofed", "kind": "x"}, T0)
    sink.emit("delivery", {"queue_id": "Q1", "status": "delivered", "é": "ü"}, T0)
    sink.flush(5)
    assert lines(path) == [
        {"time": "2026-05-04T08:00:00.123Z", "kind": "connection", "host": "mx1.test",
         "peer_ip": "203.0.113.9"},
        {"time": "2026-05-04T08:00:00.123Z", "kind": "delivery", "host": "mx1.test",
         "queue_id": "Q1", "status": "delivered", "é": "ü"},
    ]
    assert sink.written == 2 and sink.failed == 0 and sink.dropped == 0


def test_every_line_is_on_disk_at_once(jsonl: tuple[EventSink, Path]) -> None:
    sink, path = jsonl
    for i in range(3):
        sink.emit("tick", {"i": i})
        sink.flush(5)
        assert [e["i"] for e in lines(path)] == list(range(i + 1))  # no buffering in between


def test_rotated_away_file_is_reopened(jsonl: tuple[EventSink, Path]) -> None:
    sink, path = jsonl
    sink.emit("one", {})
    sink.flush(5)
    path.rename(path.with_suffix(".1"))  # logrotate
    sink.emit("two", {})
    sink.flush(5)
    assert [e["kind"] for e in lines(path.with_suffix(".1"))] == ["one"]
    assert [e["kind"] for e in lines(path)] == ["two"]
    path.unlink()  # deleted instead
    sink.emit("three", {})
    sink.flush(5)
    assert [e["kind"] for e in lines(path)] == ["three"]


def test_reopen_on_sighup(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    # rotation checks off: only reopen() makes it write to the new file
    with EventSink(EventsConfig(jsonl_path=str(path)), hostname="h", rotation_check=1e9) as sink:
        sink.emit("one", {})
        sink.flush(5)
        path.rename(tmp_path / "old.jsonl")
        sink.emit("two", {})
        sink.flush(5)
        sink.reopen()
        sink.emit("three", {})
        sink.flush(5)
    assert [e["kind"] for e in lines(tmp_path / "old.jsonl")] == ["one", "two"]
    assert [e["kind"] for e in lines(path)] == ["three"]


def test_stdout() -> None:
    out = io.StringIO()
    with EventSink(EventsConfig(jsonl_path="-"), hostname="h", stdout=out) as sink:
        sink.emit("auth", {"user": "alice", "success": True}, T0)
    assert json.loads(out.getvalue()) == {
        "time": "2026-05-04T08:00:00.123Z", "kind": "auth", "host": "h", "user": "alice",
        "success": True,
    }


def test_off_by_default() -> None:
    sink = EventSink(EventsConfig(), hostname="h")
    assert not sink.enabled
    sink.emit("x", {})
    sink.flush(1)
    sink.close(1)
    assert sink.written == 0


def test_no_bodies_and_no_secrets() -> None:
    fields = {
        "queue_id": "Q1",
        "raw": b"From: a\r\n\r\nthe body",
        "body": "the body as text",
        "attachment": b"\x89PNG",
        "password": "hunter2",
        "nested": {"api_token": "abc", "Content": "body again", "parts": [b"x", "kept"]},
        "when": T0,
    }
    assert clean_fields(fields) == {
        "queue_id": "Q1",
        "password": "[redacted]",
        "nested": {"api_token": "[redacted]", "parts": ["kept"]},
        "when": "2026-05-04T08:00:00.123000+00:00",
    }


class Stuck(io.StringIO):
    """A stdout whose writes block until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(10)
        return super().write(text)


def test_emit_never_blocks_and_counts_drops() -> None:
    out = Stuck()
    sink = EventSink(EventsConfig(jsonl_path="-"), hostname="h", stdout=out, max_pending=10)
    start = time.monotonic()
    for i in range(100):
        sink.emit("tick", {"i": i})
    assert time.monotonic() - start < 0.5  # the writer is stuck; the caller is not
    assert 80 <= sink.dropped <= 90
    out.release.set()
    sink.close(5)
    assert sink.written == 100 - sink.dropped


def test_a_broken_output_does_not_stop_the_writer(tmp_path: Path) -> None:
    bad = tmp_path / "missing-dir" / "events.jsonl"
    with EventSink(EventsConfig(jsonl_path=str(bad)), hostname="h", rotation_check=0) as sink:
        sink.emit("lost", {})
        sink.flush(5)
        assert sink.failed == 1
        bad.parent.mkdir()
        sink.emit("kept", {})
        sink.flush(5)
    assert [e["kind"] for e in lines(bad)] == ["kept"]


# -- syslog ---------------------------------------------------------------------------------------

RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) mailward (?P<pid>\d+) (?P<msgid>\S+) - "
    rb"(?P<msg>.*)",
    re.DOTALL,
)


def parse(datagram: bytes) -> dict[str, Any]:
    match = RFC5424.fullmatch(datagram)
    assert match is not None, datagram
    return {**{k: v.decode() for k, v in match.groupdict().items() if k != "msg"},
            "msg": json.loads(match["msg"])}


def test_syslog_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        config = EventsConfig(syslog=f"udp://127.0.0.1:{port}", syslog_facility="local3")
        with EventSink(config, hostname="mx 1.test") as sink:
            sink.emit("alert", {"user": "alice", "detail": "déjà vu"}, T0)
            sink.emit("delivery", {"queue_id": "Q1"}, T0)
            first, second = server.recv(65536), server.recv(65536)
    got = parse(first)
    assert got["pri"] == str(19 * 8 + 4)  # local3.warning
    assert (got["ts"], got["host"], got["pid"], got["msgid"]) == (
        "2026-05-04T08:00:00.123Z", "mx1.test", str(os.getpid()), "alert",
    )
    assert got["msg"]["detail"] == "déjà vu" and first.isascii()  # JSON escapes, no BOM needed
    assert parse(second)["pri"] == str(19 * 8 + 6)  # info


def test_syslog_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        with EventSink(EventsConfig(syslog=f"unix://{path}"), hostname="h") as sink:
            sink.emit("bounce", {"queue_id": "Q1"}, T0)
            got = parse(server.recv(65536))
    assert got["pri"] == str(2 * 8 + 5)  # mail.notice
    assert got["msg"]["queue_id"] == "Q1" and got["msgid"] == "bounce"


def test_syslog_down_is_counted_not_raised(tmp_path: Path) -> None:
    with EventSink(EventsConfig(syslog=f"unix://{tmp_path / 'none'}"), hostname="h") as sink:
        sink.emit("x", {})
        sink.flush(5)
        assert sink.failed == 1 and sink.written == 0


def test_a_huge_event_is_cut_to_fit_a_datagram() -> None:
    record = {"time": "t", "kind": "transaction", "host": "h", "queue_id": "Q1",
              "subject": "x" * 20_000, "recipients": [f"r{i}@example.com" for i in range(2000)]}
    line = syslog_line(record, T0, 2, 6, "h")
    assert len(line) <= SYSLOG_MAX
    got = parse(line)["msg"]
    assert got["truncated"] is True and got["queue_id"] == "Q1" and len(got["subject"]) < 600


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"syslog": "tcp://host:514"}, "events.syslog"),
        ({"syslog": "udp://host"}, "events.syslog"),
        ({"syslog_facility": "mailbox"}, "events.syslog_facility"),
    ],
)
def test_config_is_checked(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EventsConfig(**values)


# -- the store recorder as events ---------------------------------------------------------------


def test_tee_writes_the_store_and_the_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}", instance="mx1.test") as store, \
            EventSink(EventsConfig(jsonl_path=str(path)), hostname="mx1.test") as sink:
        writer = store.writer()
        tee = EventTee(writer, sink)
        conn = tee.record_connection(peer_ip="203.0.113.9", opened_at=T0)
        tee.record_auth(ip="203.0.113.9", user="alice", mechanism="PLAIN", success=False,
                        reason="bad credentials", at=T0)
        tid = tee.record_transaction(
            queue_id="Q1", connection_id=conn, mail_from="ceo@ourcorp.example",
            recipients=["staff@ourcorp.example"], disposition="reject", score=21.0,
            forced_by="DMARC_FAIL_REJECT", subject="Change your password", received_at=T0,
            findings=[Finding("dmarc", "DMARC_FAIL_REJECT", Result.FAIL, score=18.0,
                              detail="set your password to Winter2026")],
            urls=["https://evil.example/x"],
        )
        tee.record_delivery(queue_id="Q1", recipient="staff@ourcorp.example", status="bounced",
                            at=T0)
        tee.record_event("bounce", {"dsn": "Q2", "secret": "s"}, queue_id="Q1", at=T0)
        tee.record_alert(kind="login_after_failures", detail="12 failed", user="alice", at=T0)
        tee.record_quarantine(queue_id="Q1", raw=b"the whole message", at=T0)
        tee.update_connection(conn, helo="evil.example")
        tee.close_connection(conn, closed_at=T0)
        writer.close()
        sink.flush(5)
        assert store.transaction("Q1") is not None  # the store got it all too
        assert store.transaction("Q1").id == tid  # type: ignore[union-attr]
    events = lines(path)
    assert [e["kind"] for e in events] == [
        "connection", "auth", "transaction", "delivery", "bounce", "alert", "quarantine",
        "connection_update", "connection_closed",
    ]
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["connection"]["id"] == conn == by_kind["connection_closed"]["id"]
    assert by_kind["auth"]["user"] == "alice" and by_kind["auth"]["success"] is False
    tx = by_kind["transaction"]
    assert tx["id"] == tid and tx["connection_id"] == conn and tx["links"] == 1
    assert tx["recipients"] == ["staff@ourcorp.example"]
    assert tx["verdict"] == {
        "disposition": "reject", "score": 21.0, "forced_by": "DMARC_FAIL_REJECT",
        "findings": [{"check": "dmarc", "symbol": "DMARC_FAIL_REJECT", "result": "fail",
                      "score": 18.0}],
    }
    assert by_kind["bounce"] == {**by_kind["bounce"], "queue_id": "Q1", "dsn": "Q2",
                                 "secret": "[redacted]"}
    assert by_kind["alert"]["alert"] == "login_after_failures"
    text = path.read_text()
    assert "Winter2026" not in text  # finding details may quote the message: left out
    assert "the whole message" not in text and "raw" not in by_kind["quarantine"]
