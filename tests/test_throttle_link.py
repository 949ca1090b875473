"""The AUTH throttle shared between workers: the line format, the worker's reader (partial lines,
garbage, its own updates skipped), the master's non-blocking broadcast, and what the submission
handler shares (counted failures and successes, never throttled attempts)."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from mailward.smtp import submission
from mailward.smtp.submission import SubmissionHandler
from mailward.smtp.throttle import MAX_ACCOUNT_KEY_NAME, AuthKeys, AuthThrottle, auth_keys
from mailward.throttle_link import (
    LINE_LIMIT,
    LoginBroadcast,
    LoginFollower,
    LoginUpdate,
)
from mailward.worker_link import MasterLink, WorkerLink

KEYS = auth_keys("192.0.2.7", "mallory")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError as error:  # the code under test closed it
            assert error.errno == errno.EBADF


def failures(throttle: AuthThrottle, key: str) -> int:
    return len(throttle._recent(key))


# -- keys and the line format -------------------------------------------------------------------


def test_auth_keys_are_ip_and_account_and_stay_short() -> None:
    assert auth_keys("192.0.2.7", "alice") == AuthKeys("ip:192.0.2.7", "user:alice")
    long_name = "\x00\xff" * 600
    keys = auth_keys("192.0.2.7", long_name)
    assert keys.account.startswith("user:sha256:") and len(keys.account) < 80
    assert keys == auth_keys("192.0.2.7", long_name)  # the same name, the same key
    assert auth_keys("ip", "a" * MAX_ACCOUNT_KEY_NAME).account == "user:" + "a" * 320
    # the worst name an SMTP line can carry still fits in one atomic pipe write
    worst = auth_keys("2001:db8::1", "\x01" * MAX_ACCOUNT_KEY_NAME)
    assert len(LoginUpdate(7, worst, False).line()) < LINE_LIMIT


def test_update_round_trip_and_malformed_messages() -> None:
    for success in (False, True):
        update = LoginUpdate(3, KEYS, success)
        line = update.line()
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert LoginUpdate.parse(json.loads(line)) == update
    bad: list[Any] = [
        [], "failed", {"login": "maybe", "keys": list(KEYS), "origin": 0},
        {"login": "failed", "keys": ["ip:x"], "origin": 0},
        {"login": "failed", "keys": ["user:x", "ip:x"], "origin": 0},
        {"login": "failed", "keys": ["ip:x", 5], "origin": 0},
        {"login": "failed", "keys": list(KEYS), "origin": -1},
        {"login": "failed", "keys": list(KEYS), "origin": "0"},
        {"login": "failed", "keys": list(KEYS), "origin": True},
        {"login": "failed", "keys": list(KEYS)},
    ]
    for message in bad:
        with pytest.raises(ValueError):
            LoginUpdate.parse(message)


# -- the worker's side ---------------------------------------------------------------------------


def test_follower_counts_other_workers_skips_its_own_and_resets_on_success(
    pipe: tuple[int, int],
) -> None:
    throttle = AuthThrottle(max_failures=3, window=600)
    follower = LoginFollower(pipe[0], index=1, throttle=throttle)
    lines = LoginUpdate(0, KEYS, False).line() * 2 + LoginUpdate(1, KEYS, False).line()
    assert follower.feed(lines) == 2  # the third was counted here when it happened
    assert failures(throttle, KEYS.ip) == failures(throttle, KEYS.account) == 2
    assert not throttle.blocked(*KEYS)
    assert follower.feed(LoginUpdate(2, KEYS, False).line()) == 1
    assert throttle.blocked(*KEYS)
    # a success elsewhere clears the account, not the IP (as in the worker it happened in)
    assert follower.feed(LoginUpdate(0, KEYS, True).line()) == 1
    assert failures(throttle, KEYS.account) == 0 and failures(throttle, KEYS.ip) == 3


def test_follower_joins_partial_lines_and_ignores_garbage(
    pipe: tuple[int, int], caplog: pytest.LogCaptureFixture,
) -> None:
    throttle = AuthThrottle(max_failures=5, window=600)
    follower = LoginFollower(pipe[0], index=0, throttle=throttle)
    line = LoginUpdate(1, KEYS, False).line()
    assert follower.feed(line[:10]) == 0
    assert follower.feed(line[10:-1]) == 0  # the line end has not come yet
    assert failures(throttle, KEYS.ip) == 0
    assert follower.feed(b"\n") == 1
    with caplog.at_level(logging.WARNING, logger="mailward"):
        garbage = b"not json\n\xff\xfe\n[1,2]\n{\"login\":\"failed\"}\n\n" + b"[" * 5000 + b"\n"
        assert follower.feed(garbage + line) == 1
    assert failures(throttle, KEYS.ip) == 2
    assert caplog.text.count("bad login update") == 6
    # a flood without any line end is bounded and dropped; the next line is read again
    with caplog.at_level(logging.WARNING, logger="mailward"):
        assert follower.feed(b"x" * 70_000) == 0
    assert "without a line end, discarded" in caplog.text
    assert follower.feed(b"\n" + line) == 1
    assert failures(throttle, KEYS.ip) == 3


def test_follower_reads_its_pipe_on_the_loop_and_stops_at_end_of_file(
    pipe: tuple[int, int], caplog: pytest.LogCaptureFixture,
) -> None:
    read_fd, write_fd = pipe
    throttle = AuthThrottle(max_failures=2, window=600)

    async def scenario() -> None:
        follower = WorkerLink(-1, index=1, login_fd=read_fd).follow_logins(throttle)
        assert follower is not None
        os.write(write_fd, LoginUpdate(0, KEYS, False).line())
        os.write(write_fd, LoginUpdate(0, KEYS, False).line()[:20])
        await asyncio.sleep(0.05)
        assert failures(throttle, KEYS.ip) == 1
        os.write(write_fd, LoginUpdate(0, KEYS, False).line()[20:])
        await asyncio.sleep(0.05)
        assert throttle.blocked(*KEYS)
        os.close(write_fd)  # the master is gone
        await asyncio.sleep(0.05)
        assert follower._loop is None  # stopped reading, fd closed
        follower.close()  # closing again does nothing

    with caplog.at_level(logging.INFO, logger="mailward"):
        asyncio.run(scenario())
    assert "worker 1: login updates closed by the master" in caplog.text
    assert WorkerLink(-1).follow_logins(throttle) is None  # single process: nothing to follow


# -- the master's side ---------------------------------------------------------------------------


def test_master_passes_a_worker_update_to_every_other_worker() -> None:
    pipes = [os.pipe() for _ in range(3)]
    broadcast = LoginBroadcast([w for _, w in pipes])
    worker_read, worker_write = os.pipe()
    try:
        master = MasterLink(lambda qid: None, None, on_login=broadcast.send)
        WorkerLink(worker_write, index=1).login_counted(KEYS, False)
        chunk = os.read(worker_read, 4096)
        master.feed(chunk[:15])  # the master's reader joins partial lines too
        master.feed(chunk[15:])
        for fd in (pipes[0][0], pipes[2][0]):
            assert LoginUpdate.parse(json.loads(os.read(fd, 4096))) == LoginUpdate(1, KEYS, False)
        os.set_blocking(pipes[1][0], False)
        with pytest.raises(BlockingIOError):  # nothing goes back to the origin
            os.read(pipes[1][0], 4096)
    finally:
        broadcast.close()
        for fd in (worker_read, worker_write, *(r for r, _ in pipes)):
            os.close(fd)


def test_master_drops_updates_for_a_full_pipe_without_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    full_read, full_write = os.pipe()
    fcntl.fcntl(full_write, fcntl.F_SETPIPE_SZ, 4096)
    ok_read, ok_write = os.pipe()
    clock = [0.0]
    broadcast = LoginBroadcast([full_write, ok_write], clock=lambda: clock[0])
    try:
        os.write(full_write, b"x" * 4096)  # the worker reading it is busy
        with caplog.at_level(logging.WARNING, logger="mailward"):
            for _ in range(5):
                broadcast.send(LoginUpdate(5, KEYS, False))  # returns at once
            clock[0] = 11.0
            broadcast.send(LoginUpdate(5, KEYS, False))
        assert broadcast.dropped == {0: 6, 1: 0}
        warnings = [r.getMessage() for r in caplog.records if "pipe to worker 0 full" in
                    r.getMessage()]
        assert len(warnings) == 2 and "(6 dropped so far)" in warnings[-1]  # not one per drop
        assert os.read(ok_read, 65536).count(b"\n") == 6  # the other worker got every one
    finally:
        broadcast.close()
        os.close(full_read)
        os.close(ok_read)


def test_master_stops_writing_to_a_worker_that_is_gone(caplog: pytest.LogCaptureFixture) -> None:
    gone_read, gone_write = os.pipe()
    ok_read, ok_write = os.pipe()
    os.close(gone_read)
    broadcast = LoginBroadcast([gone_write, ok_write])
    try:
        with caplog.at_level(logging.WARNING, logger="mailward"):
            broadcast.send(LoginUpdate(9, KEYS, False))
            broadcast.send(LoginUpdate(9, KEYS, True))
        assert caplog.text.count("worker 0 does not read any more") == 1
        assert os.read(ok_read, 65536).count(b"\n") == 2
    finally:
        broadcast.close()  # gone_write was closed when the worker was found gone
        os.close(ok_read)


# -- what the submission handler shares ----------------------------------------------------------


class _Accounts:
    async def verify(self, user: str, password: str) -> bool:
        return password == "right"

    async def owns(self, user: str, address: str) -> bool:
        return True


class _Server:
    def __init__(self) -> None:
        self.session = SimpleNamespace(peer=("192.0.2.7", 40000))
        self.pushed: list[str] = []

    async def push(self, reply: str) -> None:
        self.pushed.append(reply)


def test_handler_shares_counted_failures_and_successes_not_throttled_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_pause(seconds: float) -> None:
        return None

    # the handler pauses after a failure to slow guessing; not needed to see what it shares
    monkeypatch.setattr(submission, "asyncio", SimpleNamespace(sleep=no_pause))
    shared: list[tuple[AuthKeys, bool]] = []
    throttle = AuthThrottle(max_failures=2, window=600)
    handler = SubmissionHandler(_Accounts(), None, throttle, 10,  # type: ignore[arg-type]
                                share_login=lambda keys, ok: shared.append((keys, ok)))
    server = _Server()

    def attempt(user: bytes, password: bytes) -> Any:
        return asyncio.run(handler.authenticate(server, "PLAIN", user, password))  # type: ignore[arg-type]

    assert attempt(b"Mallory", b"wrong").success is False
    assert attempt(b"alice", b"right").success is True
    assert attempt(b"mallory", b"wrong").success is False
    assert attempt(b"mallory", b"wrong").success is False  # throttled: counted nowhere
    assert server.pushed == ["454 4.7.0 Too many failed logins; try again later"]
    mallory, alice = auth_keys("192.0.2.7", "mallory"), auth_keys("192.0.2.7", "alice")
    assert shared == [(mallory, False), (alice, True), (mallory, False)]
