"""Protected identities changed while the hub runs: every worker loads them again, and a broken
file keeps the identities in use."""

from __future__ import annotations

import os
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailward.store import Store
from tests.integration.hubproc import HubProcess, example_zones


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    zones = example_zones()
    people = tmp_path / "people.csv"
    write(people, "name,email\nJane Smith,\n")
    process = HubProcess(tmp_path / "hub", zones, workers=2, extra_config=(
        f'[identity]\nprotected_file = "{people}"\nreload_interval = 0.2\n'
    ))
    process.workdir.mkdir()
    process.start()
    yield process
    assert process.stop() == 0, process.log()


def write(path: Path, text: str) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def flagged(hub: HubProcess, n: int) -> bool:
    """Send a message from "Bob Builder" and say whether it was taken for an impersonation."""
    sender = f"bob{n}@freemail.test"
    body = (f'From: "Bob Builder" <{sender}>\r\nTo: staff@ourcorp.example\r\nSubject: hi {n}\r\n'
            f"Message-ID: <r{n}@freemail.test>\r\n\r\nHello.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
        client.sendmail(sender, ["staff@ourcorp.example"], body)
    deadline = time.monotonic() + 15
    with Store.open(data_dir=hub.data_dir) as store:
        while time.monotonic() < deadline:
            found = store.find_transactions(sender=sender)
            if found:
                return any(f.symbol == "IDENTITY_DISPLAY_NAME_PROTECTED"
                           for f in found[0].findings)
            time.sleep(0.1)
    raise AssertionError(f"message {n} not logged:\n{hub.log()}")


def wait_log(hub: HubProcess, text: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while hub.log().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} not in the log:\n{hub.log()}"
        time.sleep(0.1)


def test_changed_file_is_loaded_by_every_worker(hub: HubProcess, tmp_path: Path) -> None:
    # several messages, so that both workers answer at least one of them
    assert not any(flagged(hub, n) for n in range(4))
    write(tmp_path / "people.csv", "name,email\nJane Smith,\nBob Builder,bob@home.test\n")
    wait_log(hub, "protected identities reloaded: 2", 2)  # one line per worker
    assert all(flagged(hub, n) for n in range(4, 8))
    # a broken file: said in the log, and the identities in use stay
    write(tmp_path / "people.csv", "email\nbob@home.test\n")
    wait_log(hub, "protected identities not reloaded", 2)
    assert "'name' column" in hub.log()
    assert all(flagged(hub, n) for n in range(8, 12))
