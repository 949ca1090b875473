"""Row ids made by the writer: time-ordered and random, unique across hub processes."""

from __future__ import annotations

import secrets
import time


def new_id() -> str:
    """32 hex digits: nanoseconds since the epoch, then 64 random bits.

    Made by the caller, not the database, so a connection or transaction has its id before the
    (possibly queued) write happens, and several hubs never collide on one database.
    """
    return f"{time.time_ns():016x}{secrets.randbits(64):016x}"
