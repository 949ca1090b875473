"""The pipe from worker processes to the master: queued messages and compromise-indicator
events, one JSON object per line (each write under PIPE_BUF, so lines never interleave)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mailward")
LINE_LIMIT = 4000  # below PIPE_BUF (4096 on Linux): one write() is atomic
MAX_RECIPIENTS = 100


class WorkerLink:
    """The worker's end: announces queued messages and relays alert events to the master."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if len(line) > LINE_LIMIT:
            log.warning("worker link: event too large to relay, dropped: %s", line[:80])
            return
        os.write(self.fd, line)

    def queued(self, queue_id: str) -> None:
        self._send({"queued": queue_id})

    # the AlertMonitor interface, relayed so that one detector sees every worker's events
    def auth(self, user: str, ip: str | None, success: bool) -> None:
        self._send({"alert": "auth", "user": user, "ip": ip, "success": success})

    def submitted(self, user: str, recipients: list[tuple[str, bool]],
                  ip: str | None = None) -> None:
        self._send({"alert": "submitted", "user": user, "ip": ip,
                    "recipients": [list(r) for r in recipients[:MAX_RECIPIENTS]]})

    def binding_refused(self, user: str, address: str, ip: str | None = None) -> None:
        self._send({"alert": "binding_refused", "user": user, "address": address[:320],
                    "ip": ip})


class MasterLink:
    """The master's end: reads lines and dispatches them."""

    def __init__(self, on_queued: Callable[[str], None], monitor: Any) -> None:
        self.on_queued = on_queued
        self.monitor = monitor
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buffer.extend(chunk)
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer[:] = rest
        for line in lines:
            try:
                self._dispatch(json.loads(line))
            except Exception:
                log.exception("worker link: bad line %r", line[:80])

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "queued" in message:
            self.on_queued(str(message["queued"]))
            return
        kind = message.get("alert")
        if self.monitor is None:
            return
        if kind == "auth":
            self.monitor.auth(message["user"], message["ip"], bool(message["success"]))
        elif kind == "submitted":
            recipients = [(str(r), bool(external)) for r, external in message["recipients"]]
            self.monitor.submitted(message["user"], recipients, ip=message["ip"])
        elif kind == "binding_refused":
            self.monitor.binding_refused(message["user"], message["address"], ip=message["ip"])
