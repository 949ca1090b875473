"""Events for a site's own log system: JSON lines (a file or standard output) and RFC 5424 syslog
(UDP or a unix socket), written by one thread so the event loop never waits.

Never written: message bodies (``bytes`` values and body-like keys are dropped), finding details
(they may quote the message), secrets (``store.redact``). The JSON file is written line by line
with ``O_APPEND``, reopened on ``reopen()`` (SIGHUP) and when it was rotated away (renamed or
deleted). ``EventTee`` wraps the hub's store recorder so that every record_* call is also an
event, with the same ids as in the store.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO, cast

from mailward.store.jobs import WriteJob
from mailward.store.recorder import Recorder
from mailward.store.redact import safe_payload

if TYPE_CHECKING:
    from mailward.config import EventsConfig

log = logging.getLogger("mailward.events")

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    **{f"local{i}": 16 + i for i in range(8)},
}
WARNING, NOTICE, INFO = 4, 5, 6
SEVERITIES = {"alert": WARNING, "bounce": NOTICE}
# keys whose values are (or may be) message content: never written
BODY_KEYS = frozenset({"raw", "body", "content", "data", "message_bytes", "raw_message"})
RESERVED = ("time", "kind", "host")
SYSLOG_MAX = 8192  # bytes per syslog message (what rsyslog accepts by default)
APP_NAME = "mailward"
_STOP = object()
_Event = tuple[str, dict[str, Any], datetime | None]  # what `emit` queues


def clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as they may be written: body-like keys and bytes dropped (also nested),
    secret-looking keys redacted, values made JSON-ready."""
    return safe_payload(_strip(fields, 0))


def _strip(value: Any, depth: int) -> Any:
    if depth > 12:
        return "…"
    if isinstance(value, Mapping):
        return {
            k: _strip(v, depth + 1)
            for k, v in value.items()
            if str(k).lower() not in BODY_KEYS
            and not isinstance(v, bytes | bytearray | memoryview)
        }
    if isinstance(value, list | tuple):
        return [
            _strip(v, depth + 1)
            for v in value
            if not isinstance(v, bytes | bytearray | memoryview)
        ]
    return value


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventSink:
    """Queue of events and the thread writing them to the configured outputs."""

    def __init__(
        self,
        config: EventsConfig,
        *,
        hostname: str,
        max_pending: int = 10_000,
        rotation_check: float = 1.0,
        stdout: TextIO | None = None,
    ) -> None:
        self.config = config
        self.hostname = "".join(c for c in hostname if 32 < ord(c) < 127)[:255] or "-"
        self.dropped = 0  # events refused because the queue was full
        self.failed = 0  # events an output could not take
        self.written = 0  # events handed to every output
        self._rotation_check = rotation_check
        self._stdout = stdout
        self._reopen = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._jsonl: _JsonLines | None = None
        self._syslog: _Syslog | None = None
        self._thread: threading.Thread | None = None
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="mailward-events", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.config.jsonl_path or self.config.syslog)

    # -- caller side (any thread; never blocks) --------------------------------------------

    def emit(self, kind: str, fields: Mapping[str, Any], at: datetime | None = None) -> None:
        """Queue one event; dropped (and counted) when the queue is full or events are off."""
        if self._thread is not None:
            self._put((kind, dict(fields), at or datetime.now(UTC)))

    def job(self, job: WriteJob) -> None:
        """Queue the events of one store write (turned into events by the writer thread, see
        ``events_of``)."""
        if self._thread is not None:
            self._put(job)

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("event log queue full: %d items dropped so far", self.dropped)

    def reopen(self) -> None:
        """Reopen the JSON-lines file before the next write (call it on SIGHUP)."""
        self._reopen.set()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event queued before this call is written."""
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        if not done.wait(timeout):
            raise TimeoutError("event log writer did not catch up in time")

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the thread and close the outputs. Idempotent."""
        if self._thread is None:
            return
        thread, self._thread = self._thread, None
        self._queue.put(_STOP)
        thread.join(timeout)

    def __enter__(self) -> EventSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                events = events_of(item) if isinstance(item, WriteJob) else [cast(_Event, item)]
                for kind, fields, at in events:
                    try:
                        self._write(kind, fields, at or datetime.now(UTC))
                    except Exception:  # never let the thread die: events would pile up
                        self.failed += 1
                        log.exception("event log: could not write a %s event", kind)
        finally:
            for output in (self._jsonl, self._syslog):
                if output is not None:
                    output.close()

    def _open(self) -> None:
        path = self.config.jsonl_path
        if path:
            stream = (self._stdout or sys.stdout) if path == "-" else None
            self._jsonl = _JsonLines(path, stream, self._rotation_check)
        if self.config.syslog:
            facility = FACILITIES.get(self.config.syslog_facility, FACILITIES["mail"])
            self._syslog = _Syslog(self.config.syslog, facility, self.hostname)

    def _write(self, kind: str, fields: dict[str, Any], at: datetime) -> None:
        record: dict[str, Any] = {"time": _iso(at), "kind": kind, "host": self.hostname}
        record.update((k, v) for k, v in clean_fields(fields).items() if k not in RESERVED)
        ok = True
        if self._jsonl is not None:
            if self._reopen.is_set():
                self._reopen.clear()
                self._jsonl.reopen()
            ok = self._jsonl.write(record) and ok
        if self._syslog is not None:
            ok = self._syslog.send(record, at, SEVERITIES.get(kind, INFO)) and ok
        if ok:
            self.written += 1
        else:
            self.failed += 1


class _JsonLines:
    """One JSON object per line, appended; reopened when asked or when rotated away."""

    def __init__(self, path: str, stream: TextIO | None, rotation_check: float) -> None:
        self.path = path
        self.stream = stream
        self.rotation_check = rotation_check
        self.fd: int | None = None
        self.checked = 0.0
        if stream is None:
            self._open()

    def _open(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            self.fd = None
            log.error("event log: cannot open %s: %s", self.path, exc.strerror or exc)
        self.checked = time.monotonic()

    def reopen(self) -> None:
        if self.stream is None:
            self.close()
            self._open()

    def _rotated(self) -> bool:
        if self.fd is None:
            return True
        now = time.monotonic()
        if now - self.checked < self.rotation_check:
            return False
        self.checked = now
        try:
            on_disk = os.stat(self.path)
        except OSError:
            return True
        mine = os.fstat(self.fd)
        return (on_disk.st_dev, on_disk.st_ino) != (mine.st_dev, mine.st_ino)

    def write(self, record: dict[str, Any]) -> bool:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self.stream is not None:
            self.stream.write(line)
            self.stream.flush()
            return True
        if self._rotated():
            self.reopen()
        if self.fd is None:
            return False
        data = line.encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as exc:
            log.error("event log: cannot write %s: %s", self.path, exc.strerror or exc)
            return False
        return True

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def _printascii(text: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII without spaces, or the nil value."""
    cleaned = "".join(c for c in text if 32 < ord(c) < 127)[:limit]
    return cleaned or "-"


def syslog_line(
    record: dict[str, Any], at: datetime, facility: int, severity: int, hostname: str
) -> bytes:
    """One RFC 5424 message: header, no structured data, the event as ASCII JSON."""
    header = (
        f"<{facility * 8 + severity}>1 {_iso(at)} {_printascii(hostname, 255)} "
        f"{APP_NAME} {os.getpid()} {_printascii(str(record.get('kind', '')), 32)} - "
    ).encode("ascii")
    body = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(header) + len(body) > SYSLOG_MAX:
        body = _shrunk(record, SYSLOG_MAX - len(header))
    return header + body


def _shrunk(record: dict[str, Any], room: int) -> bytes:
    """The record with long strings and lists cut until it fits ``room`` bytes."""
    for text_limit, list_limit in ((512, 50), (128, 10), (32, 3)):
        smaller = {k: _cut(v, text_limit, list_limit) for k, v in record.items()}
        smaller["truncated"] = True
        body = json.dumps(smaller, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        if len(body) <= room:
            return body
    minimal = {k: record[k] for k in (*RESERVED, "queue_id") if k in record}
    minimal["truncated"] = True
    return json.dumps(minimal, ensure_ascii=True, separators=(",", ":")).encode("ascii")[:room]


def _cut(value: Any, text_limit: int, list_limit: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= text_limit else value[:text_limit] + "…"
    if isinstance(value, list):
        return [_cut(v, text_limit, list_limit) for v in value[:list_limit]]
    if isinstance(value, dict):
        return {k: _cut(v, text_limit, list_limit) for k, v in list(value.items())[:list_limit]}
    return value


class _Syslog:
    """An RFC 5424 sender over UDP (RFC 5426) or a local unix datagram socket."""

    def __init__(self, url: str, facility: int, hostname: str) -> None:
        self.url = url
        self.facility = facility
        self.hostname = hostname
        self.sock: socket.socket | None = None
        self.stream = False
        self.retry_at = 0.0

    def _connect(self) -> None:
        if self.url.startswith("unix://"):
            path = self.url.removeprefix("unix://")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(path)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:
                    raise
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # some syslogds
                sock.connect(path)
                self.stream = True
        else:
            hostport = self.url.removeprefix("udp://")
            host, _, port = hostport.rpartition(":")
            host = host.strip("[]")
            family, kind, proto, _, address = socket.getaddrinfo(
                host, int(port), type=socket.SOCK_DGRAM
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.connect(address)
        sock.settimeout(1.0)
        self.sock = sock

    def send(self, record: dict[str, Any], at: datetime, severity: int) -> bool:
        data = syslog_line(record, at, self.facility, severity, self.hostname)
        if self.sock is None:
            if time.monotonic() < self.retry_at:
                return False
            try:
                self._connect()
            except OSError as exc:
                self.retry_at = time.monotonic() + 5.0
                log.error("event log: cannot reach syslog %s: %s", self.url, exc.strerror or exc)
                return False
        assert self.sock is not None
        try:
            if self.stream:
                self.sock.sendall(data + b"\n")
            else:
                self.sock.send(data)
        except OSError as exc:
            log.warning("event log: syslog %s: %s", self.url, exc.strerror or exc)
            self.close()
            return False
        return True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


# -- store writes as events ------------------------------------------------------------------

_TRANSACTION_FIELDS = (
    "queue_id", "connection_id", "message_id", "mail_from", "header_from", "from_address",
    "reply_to", "subject", "size", "body_sha256",
)


def events_of(job: WriteJob) -> list[tuple[str, dict[str, Any], datetime | None]]:
    """The events one store write stands for: (kind, fields, time).

    A transaction row with its recipient, finding and link rows is one ``transaction`` event
    carrying the ``verdict`` (disposition, score, forced_by, findings without their details);
    raw message copies of quarantine entries and reports are left out.
    """
    by_table: dict[str, list[dict[str, Any]]] = {}
    for table, row in job.inserts:
        by_table.setdefault(table.name, []).append(row)
    out: list[tuple[str, dict[str, Any], datetime | None]] = []
    for row in by_table.get("connections", ()):
        out.append(("connection", _without(row, "opened_at", "closed_at"), row.get("opened_at")))
    for table, row in job.updates:
        if table.name == "connections":
            kind = "connection_closed" if "closed_at" in row else "connection_update"
            out.append((kind, _without(row, "closed_at"), row.get("closed_at")))
    out.extend(_transactions(by_table))
    for row in by_table.get("deliveries", ()):
        out.append(("delivery", _without(row, "at"), row.get("at")))
    for row in by_table.get("auth_events", ()):
        fields = _without(row, "at", "user_name")
        fields["user"] = row.get("user_name")
        out.append(("auth", fields, row.get("at")))
    for row in by_table.get("alerts", ()):
        fields = _without(row, "at", "kind", "user_name")
        fields["alert"] = row.get("kind")
        fields["user"] = row.get("user_name")
        out.append(("alert", fields, row.get("at")))
    for row in by_table.get("events", ()):
        fields = {"queue_id": row.get("queue_id"), **(row.get("payload") or {})}
        out.append((str(row.get("kind") or "event"), fields, row.get("at")))
    for row in by_table.get("user_reports", ()):
        out.append(("report", _without(row, "at", "raw", "raw_path"), row.get("at")))
    for row in by_table.get("quarantine", ()):
        fields = _without(row, "at", "raw", "raw_path", "released_at", "deleted_at")
        out.append(("quarantine", fields, row.get("at")))
    return out


def _without(row: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


def _transactions(
    by_table: Mapping[str, Iterable[dict[str, Any]]],
) -> list[tuple[str, dict[str, Any], datetime | None]]:
    recipients: dict[str, list[str]] = {}
    for row in by_table.get("recipients", ()):
        recipients.setdefault(row["transaction_id"], []).append(row["address"])
    findings: dict[str, list[dict[str, Any]]] = {}
    for row in by_table.get("findings", ()):
        findings.setdefault(row["transaction_id"], []).append(
            {
                "check": row["check_name"],
                "symbol": row["symbol"],
                "result": row["result"],
                "score": row["score"],
            }
        )
    links: dict[str, int] = {}
    for row in by_table.get("transaction_urls", ()):
        links[row["transaction_id"]] = links.get(row["transaction_id"], 0) + 1
    out: list[tuple[str, dict[str, Any], datetime | None]] = []
    for row in by_table.get("transactions", ()):
        tid = row["id"]
        fields: dict[str, Any] = {"id": tid, **{k: row.get(k) for k in _TRANSACTION_FIELDS}}
        fields["recipients"] = recipients.get(tid, [])
        fields["links"] = links.get(tid, 0)
        fields["verdict"] = {
            "disposition": row.get("disposition"),
            "score": row.get("score"),
            "forced_by": row.get("forced_by"),
            "findings": findings.get(tid, []),
        }
        out.append(("transaction", fields, row.get("received_at")))
    return out


class EventTee(Recorder):
    """A recorder that hands every write to ``inner`` (the store's EventWriter) and also to
    ``sink`` as events. Close ``inner`` and ``sink`` yourself."""

    def __init__(self, inner: Recorder, sink: EventSink) -> None:
        self.inner = inner
        self.sink = sink
        self.instance = inner.instance
        self.keep_raw = inner.keep_raw

    def _submit(self, job: WriteJob) -> None:
        self.inner._submit(job)
        try:
            self.sink.job(job)
        except Exception:  # the event log must never fail a store write
            log.exception("event log: could not queue the events of %s", job.what)
