"""Event payloads: secrets redacted at any depth, values made JSON-safe, and nothing secret
reaches the database through record_event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from mailward.store import Store
from mailward.store.redact import MAX_DEPTH, MAX_ITEMS, REDACTED, safe_payload
from tests.store.test_users import everything_stored

SECRET = "hunter2-correct-horse"


def test_secret_keys_are_redacted_at_any_depth() -> None:
    payload = {
        "user": "alice",
        "password": SECRET,
        "auth": {"mechanism": "PLAIN", "Passwd": SECRET, "steps": [{"client_secret": SECRET}]},
        "api_token": SECRET,
        "Authorization": "Basic " + SECRET,
        "session_cookie": SECRET,
        "PrivateKey": "x",  # not matched: private_key / privatekey are different words
        "private_key": SECRET,
    }
    safe = safe_payload(payload)
    assert SECRET not in json.dumps(safe)
    assert safe["user"] == "alice"
    assert safe["password"] == REDACTED
    assert safe["auth"] == {
        "mechanism": "PLAIN",
        "Passwd": REDACTED,
        "steps": [{"client_secret": REDACTED}],
    }
    assert safe["api_token"] == safe["Authorization"] == safe["session_cookie"] == REDACTED
    assert safe["private_key"] == REDACTED


def test_values_become_json() -> None:
    safe = safe_payload(
        {
            "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "raw": b"caf\xe9",
            "nan": float("nan"),
            "big": 10**30,
            "set": {1},
            "tuple": (1, "a"),
            "decimal": Decimal("1.5"),
            "nul": "a\x00b",
            "surrogate": "x\udcff",
            3: "int key",  # type: ignore[dict-item]  # a non-str key on purpose: it becomes "3"
        }
    )
    json.dumps(safe, allow_nan=False)  # strictly valid JSON
    assert safe["when"] == "2026-01-02T03:04:05+00:00"
    assert safe["raw"] == "caf\ufffd"
    assert safe["nan"] is None
    assert safe["big"] == 10**30
    assert safe["set"] == [1] and safe["tuple"] == [1, "a"]
    assert safe["decimal"] == "1.5"
    assert safe["nul"] == "a\ufffdb" and safe["surrogate"] == "x?"
    assert safe["3"] == "int key"


def test_depth_and_size_are_bounded() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node["d"] = {}
        node = node["d"]  # type: ignore[assignment]
    text = json.dumps(safe_payload(deep), ensure_ascii=False)
    assert text.count("{") == MAX_DEPTH and '"…"' in text
    wide = safe_payload({"items": list(range(MAX_ITEMS + 10))})
    assert len(wide["items"]) == MAX_ITEMS + 1 and wide["items"][-1] == "…"
    many = safe_payload({str(i): i for i in range(MAX_ITEMS + 10)})
    assert len(many) == MAX_ITEMS + 1 and many["…"] == "10 more entries"


def test_no_password_reaches_the_store_through_events(store: Store) -> None:
    """What an AUTH handler might carelessly log: the store keeps everything but the secret."""
    store.record_event(
        "smtp.auth",
        {"user": "alice", "mechanism": "PLAIN", "password": SECRET, "reply": "235 ok"},
        queue_id="Q1",
    )
    with store.writer() as writer:
        writer.record_event("smtp.auth", {"login": {"user": "bob", "passwd": SECRET}})
    stored = everything_stored(store)
    assert SECRET not in stored
    assert "alice" in stored and "235 ok" in stored and "bob" in stored
    (event,) = store.events(queue_id="Q1")
    assert event.payload["password"] == REDACTED
