"""Shares the AUTH throttle's counted logins between worker processes, through the master."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailward.smtp.throttle import AuthKeys, AuthThrottle

log = logging.getLogger("mailward")
LINE_LIMIT = 4000  # below PIPE_BUF (4096 on Linux): one write() is atomic, never a partial line
BUFFER_LIMIT = 65536  # a worker drops unparsed input beyond this (garbage without newlines)
DROP_WARNING_INTERVAL = 10.0  # seconds between two "pipe full" log lines for one worker


@dataclass(frozen=True)
class LoginUpdate:
    """A login one worker's throttle counted: a failure (counted under both keys) or a success
    (clears the account key). ``origin`` is that worker's index."""

    origin: int
    keys: AuthKeys
    success: bool

    def message(self) -> dict[str, Any]:
        return {"login": "succeeded" if self.success else "failed", "keys": list(self.keys),
                "origin": self.origin}

    def line(self) -> bytes:
        return json.dumps(self.message(), separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, message: Any) -> LoginUpdate:
        """The update in a decoded JSON message; ValueError if it is not a well-formed one."""
        if not isinstance(message, dict):
            raise ValueError("not an object")
        outcome, keys, origin = message.get("login"), message.get("keys"), message.get("origin")
        if outcome not in ("failed", "succeeded"):
            raise ValueError(f"login outcome {outcome!r}")
        if not (isinstance(keys, list) and len(keys) == 2
                and all(isinstance(k, str) for k in keys)
                and keys[0].startswith("ip:") and keys[1].startswith("user:")):
            raise ValueError("keys are not [ip:..., user:...]")
        if not isinstance(origin, int) or isinstance(origin, bool) or origin < 0:
            raise ValueError(f"origin {origin!r}")
        return cls(origin, AuthKeys(*keys), outcome == "succeeded")

    def apply(self, throttle: AuthThrottle) -> None:
        if self.success:
            throttle.succeed(self.keys.account)
        else:
            throttle.fail(*self.keys)


class LoginPipes:
    """One master -> worker pipe per worker, made before the fork; each process then keeps
    only its own ends (``worker_end`` in a worker, ``master_end`` in the master)."""

    def __init__(self, workers: int) -> None:
        self.pipes = [os.pipe() for _ in range(workers)]

    def worker_end(self, index: int) -> int:
        """In worker ``index``: close every other end; returns the fd to read."""
        for number, (read_fd, write_fd) in enumerate(self.pipes):
            os.close(write_fd)
            if number != index:
                os.close(read_fd)
        return self.pipes[index][0]

    def master_end(self) -> LoginBroadcast:
        """In the master, after the fork: close the read ends; returns the broadcaster."""
        for read_fd, _ in self.pipes:
            os.close(read_fd)
        return LoginBroadcast([write_fd for _, write_fd in self.pipes])


class LoginBroadcast:
    """The master's side: passes each update to every worker but its origin. Writes never
    block the master: a full pipe drops the update (counted and logged), a closed one (its
    worker is gone) is not written to again."""

    def __init__(self, write_fds: list[int], clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._fds = dict(enumerate(write_fds))  # worker index -> write end
        for fd in write_fds:
            os.set_blocking(fd, False)
        self.dropped = dict.fromkeys(self._fds, 0)
        self._last_warning: dict[int, float] = {}

    def send(self, update: LoginUpdate) -> None:
        line = update.line()
        if len(line) > LINE_LIMIT:  # auth_keys keeps keys short; a guard, not a path
            log.warning("login broadcast: update too large, dropped: %r", line[:80])
            return
        for index, fd in list(self._fds.items()):
            if index == update.origin:
                continue
            try:
                os.write(fd, line)  # atomic under PIPE_BUF: all of it or EAGAIN
            except BlockingIOError:
                self._count_drop(index)
            except OSError as error:  # EPIPE: the worker exited
                log.warning("login broadcast: worker %d does not read any more (%s); "
                            "no more updates to it", index, error)
                del self._fds[index]
                os.close(fd)

    def _count_drop(self, index: int) -> None:
        self.dropped[index] += 1
        now = self.clock()
        last = self._last_warning.get(index)
        if last is None or now - last >= DROP_WARNING_INTERVAL:
            self._last_warning[index] = now
            log.warning("login broadcast: pipe to worker %d full, update dropped "
                        "(%d dropped so far); its throttle misses those logins",
                        index, self.dropped[index])

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class LoginFollower:
    """A worker's side: reads its pipe without blocking and counts the other workers' logins
    in this worker's throttle. Garbage is logged and skipped; at end of file (the master is
    gone) it stops reading."""

    def __init__(self, fd: int, index: int, throttle: AuthThrottle) -> None:
        self.fd = fd
        self.index = index
        self.throttle = throttle
        self._buffer = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        os.set_blocking(self.fd, False)
        self._loop = loop
        loop.add_reader(self.fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError as error:
            log.error("worker %d: login updates unreadable (%s); no longer following them",
                      self.index, error)
            self.close()
            return
        if not chunk:
            log.info("worker %d: login updates closed by the master; no longer following them",
                     self.index)
            self.close()
            return
        self.feed(chunk)

    def feed(self, chunk: bytes) -> int:
        """Apply every complete line in ``chunk`` (after what came before); returns how many
        updates were counted here."""
        self._buffer.extend(chunk)
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer[:] = rest
        if len(self._buffer) > BUFFER_LIMIT:
            log.warning("worker %d: login updates: %d bytes without a line end, discarded",
                        self.index, len(self._buffer))
            self._buffer.clear()
        applied = 0
        for line in lines:
            try:
                update = LoginUpdate.parse(json.loads(line))
            except (ValueError, RecursionError) as error:  # JSON and UTF-8 errors included
                log.warning("worker %d: bad login update %r ignored: %s", self.index,
                            line[:80], error)
                continue
            if update.origin == self.index:  # already counted when it happened here
                continue
            update.apply(self.throttle)
            applied += 1
        return applied

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None
        if not self._closed:
            self._closed = True
            os.close(self.fd)
