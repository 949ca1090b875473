"""A restarted hub learns the accounts' normal sending rates from the central log."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailward.store import Store
from tests.integration.hubproc import HubProcess, example_zones


def test_rates_are_learnt_from_the_log_at_start(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", example_zones())
    hub.workdir.mkdir()
    now = datetime.now(UTC)
    with Store.open(data_dir=hub.data_dir) as store:  # a week of alice's mail in the log
        for n in range(30):
            when = now - timedelta(hours=5 * n + 1)
            connection = store.record_connection(peer_ip="192.0.2.9", auth_user="alice",
                                                 opened_at=when)
            store.record_transaction(
                queue_id=f"OUT{n}", mail_from="alice@ourcorp.example",
                recipients=["x@remote.test"], disposition="submitted",
                connection_id=connection, received_at=when,
            )
    hub.start()
    try:
        deadline = time.monotonic() + 15
        line = "normal sending rates of 1 account(s) learnt from 30 message(s) in the log"
        while line not in hub.log():
            assert time.monotonic() < deadline, hub.log()
            time.sleep(0.1)
    finally:
        assert hub.stop() == 0, hub.log()
