"""Event payloads made safe to store: secrets redacted, values turned into clean JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from mailward.store.limits import clean

REDACTED = "[redacted]"

# A key containing any of these (case-insensitive) never has its value stored.
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "api_key",
    "apikey",
    "private_key",
    "cookie",
    "authorization",
)
MAX_DEPTH = 12
MAX_ITEMS = 1000


def is_secret_key(key: str) -> bool:
    low = key.lower()
    return any(part in low for part in SECRET_KEY_PARTS)


def safe_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of ``payload`` with every secret-looking key's value redacted.

    Nested mappings and sequences are walked; bytes, dates and other objects become text;
    NaN/inf become null; nesting deeper than MAX_DEPTH and more than MAX_ITEMS entries per
    level are cut (marked with "…").
    """
    return _mapping(payload, 0)


def _mapping(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (key, item) in enumerate(value.items()):
        if i >= MAX_ITEMS:
            out["…"] = f"{len(value) - MAX_ITEMS} more entries"
            break
        name = clean(str(key), 200)
        out[name] = REDACTED if is_secret_key(name) else _value(item, depth + 1)
    return out


def _value(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean(value)
    if depth >= MAX_DEPTH:
        return "…"
    if isinstance(value, Mapping):
        return _mapping(value, depth)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        out = [_value(v, depth + 1) for v in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            out.append("…")
        return out
    if isinstance(value, bytes | bytearray | memoryview):
        return clean(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return clean(str(value))
