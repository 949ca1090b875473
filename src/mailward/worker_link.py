"""The pipe from worker processes to the master: queued messages, compromise-indicator events
and counted logins, one JSON object per line (each write under PIPE_BUF, so lines never
interleave)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from mailward.smtp.throttle import AuthKeys, AuthThrottle
from mailward.throttle_link import LoginFollower, LoginUpdate

log = logging.getLogger("mailward")
LINE_LIMIT = 4000  # below PIPE_BUF (4096 on Linux): one write() is atomic
MAX_RECIPIENTS = 100


class WorkerLink:
    """The worker's end: announces queued messages, relays alert events and the logins its
    throttle counted to the master; ``login_fd`` brings the other workers' logins back."""

    def __init__(self, fd: int, index: int = 0, login_fd: int | None = None) -> None:
        self.fd = fd
        self.index = index
        self.login_fd = login_fd

    def _send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if len(line) > LINE_LIMIT:
            log.warning("worker link: event too large to relay, dropped: %s", line[:80])
            return
        os.write(self.fd, line)

    def queued(self, queue_id: str) -> None:
        self._send({"queued": queue_id})

    def login_counted(self, keys: AuthKeys, success: bool) -> None:
        """For the master to pass on to the other workers (SubmissionHandler.share_login)."""
        self._send(LoginUpdate(self.index, keys, success).message())

    def follow_logins(self, throttle: AuthThrottle) -> LoginFollower | None:
        """Count the other workers' logins in ``throttle`` from now on (on the running loop)."""
        if self.login_fd is None:
            return None
        follower = LoginFollower(self.login_fd, self.index, throttle)
        follower.start(asyncio.get_running_loop())
        return follower

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

    def __init__(
        self, on_queued: Callable[[str], None], monitor: Any,
        on_login: Callable[[LoginUpdate], None] | None = None,
    ) -> None:
        self.on_queued = on_queued
        self.monitor = monitor
        self.on_login = on_login  # LoginBroadcast.send: to every other worker
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
        if "login" in message:
            if self.on_login is not None:
                self.on_login(LoginUpdate.parse(message))
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
