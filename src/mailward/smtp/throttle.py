"""Failed-login throttling per client IP and per account (sliding window)."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import NamedTuple

MAX_ACCOUNT_KEY_NAME = 320  # longer login names are keyed by digest, so every key stays small


class AuthKeys(NamedTuple):
    """What one login attempt counts under: the client IP and the account."""

    ip: str
    account: str


def auth_keys(ip: str, user: str) -> AuthKeys:
    """The throttle keys of a login by ``user`` (already normalized) from ``ip``; the one place
    they are made, for the submission handler and for the other workers' counted logins."""
    if len(user) > MAX_ACCOUNT_KEY_NAME:
        user = "sha256:" + hashlib.sha256(user.encode("utf-8", "replace")).hexdigest()
    return AuthKeys(f"ip:{ip}", f"user:{user}")


class AuthThrottle:
    """Counts recent failures; a key over the limit is refused until its failures age out."""

    def __init__(
        self, max_failures: int = 5, window: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        events = self._failures[key]
        cutoff = self.clock() - self.window
        while events and events[0] < cutoff:
            events.popleft()
        return events

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.max_failures for k in keys)

    def fail(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._recent(key).append(now)
        if len(self._failures) > 100_000:  # bound memory under a distributed attack
            for key in [k for k, v in self._failures.items() if not v][:50_000]:
                del self._failures[key]

    def succeed(self, account_key: str) -> None:
        self._failures.pop(account_key, None)
