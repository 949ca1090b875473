"""A hub whose database stops answering still stops on SIGTERM, names the stuck step in its log,
and has delivered the mail it accepted."""

from __future__ import annotations

import smtplib
import sqlite3
import time
from pathlib import Path

import pytest

from tests.integration.hubproc import HubProcess, example_zones


@pytest.mark.slow
def test_stop_with_a_locked_database(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", example_zones())
    hub.workdir.mkdir()
    hub.start()
    deadline = time.monotonic() + 15
    while "listening" not in hub.log():
        assert time.monotonic() < deadline, hub.log()
        time.sleep(0.1)
    # another program takes the database's write lock and keeps it
    blocker = sqlite3.connect(hub.data_dir / "mailward.db", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        body = (b"From: someone@freemail.test\r\nTo: staff@ourcorp.example\r\n"
                b"Subject: during the lock\r\n\r\nHello.\r\n")
        with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
            client.sendmail("someone@freemail.test", ["staff@ourcorp.example"], body)
        assert hub.maildir("staff@ourcorp.example")  # the mail does not wait for the log
        started = time.monotonic()
        assert hub.stop(timeout=40) == 0, hub.log()
        assert time.monotonic() - started < 25
        assert "stopping: store writer (" in hub.log()
        assert "did not finish within 16s" in hub.log()
    finally:
        blocker.rollback()
        blocker.close()
