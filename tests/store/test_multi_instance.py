"""Several hub processes share one database (the site's central log): they migrate a new
database together, write concurrently, and one search sees what all of them logged."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from mailward.store import Store
from tests.store.conftest import fast_hashing

MESSAGES = 150

HUB = """
import sys
from mailward.model import Finding, Result
from mailward.store import Store

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Store.open(url, instance=name) as store, store.writer() as writer:
    conn = writer.record_connection(peer_ip="192.0.2.1" if name == "mx-a" else "192.0.2.2")
    for i in range(count):
        writer.record_transaction(
            queue_id=f"{name}-{i}",
            connection_id=conn,
            mail_from="sender@example.net",
            recipients=["staff@ourcorp.example"],
            disposition="accept",
            findings=[Finding("spf", "SPF_PASS", Result.PASS)],
        )
    writer.close_connection(conn)
    writer.flush()
    assert writer.failed == 0 and writer.dropped == 0
"""


def test_two_hub_processes_share_one_database(store_url: str) -> None:
    hubs = [
        subprocess.Popen(
            [sys.executable, "-c", HUB, store_url, name, str(MESSAGES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("mx-a", "mx-b")
    ]
    try:
        for hub in hubs:
            _, err = hub.communicate(timeout=60)
            assert hub.returncode == 0, err
    finally:  # a failure above leaves no process (or its pipes) behind for the next test
        for hub in hubs:
            if hub.poll() is None:
                hub.kill()
            hub.communicate()
    with Store.open(store_url, instance="console", hashing=fast_hashing()) as store:
        found = store.find_transactions(limit=1000)
        assert Counter(t.instance for t in found) == {"mx-a": MESSAGES, "mx-b": MESSAGES}
        assert {(t.instance, t.client_ip) for t in found} == {
            ("mx-a", "192.0.2.1"),
            ("mx-b", "192.0.2.2"),
        }
        assert len(store.find_transactions(client_ip="192.0.2.2", limit=1000)) == MESSAGES
        assert len(store.find_transactions(recipient="staff@ourcorp.example", limit=1000)) == (
            2 * MESSAGES
        )
        connections = [store.connection(cid) for cid in {t.connection_id or "" for t in found}]
        assert [(c.instance, c.closed_at is not None) for c in connections if c] in (
            [("mx-a", True), ("mx-b", True)],
            [("mx-b", True), ("mx-a", True)],
        )
