"""`mailward quarantine` against a running hub: held messages listed and shown, one released
(delivered to its recipients by the hub), one deleted."""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Iterator

import pytest

from mailward.store import Store
from tests.integration.hubproc import MAILWARD, HubProcess, example_zones


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    zones = example_zones()
    process = HubProcess(tmp_path_factory.mktemp("hub"), zones, extra_config=(
        '[identity]\nprotected_names = ["IT Support"]\n'
    ))
    process.start()
    yield process
    assert process.stop() == 0, process.log()


def quarantine(hub: HubProcess, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILWARD, "quarantine", *argv, "--config", str(hub.config_path)],
                          capture_output=True, text=True, timeout=60)


def held(hub: HubProcess, n: int) -> str:
    """Send a message the hub quarantines (a stranger using a protected name); its queue id."""
    sender = f"helpdesk{n}@freemail.test"
    body = (f'From: "IT Support" <{sender}>\r\nTo: staff{n}@ourcorp.example\r\n'
            f"Subject: Mailbox quota {n}\r\nMessage-ID: <q{n}@freemail.test>\r\n\r\n"
            f"Your mailbox is nearly full ({n}).\r\n").encode()
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
        client.sendmail(sender, [f"staff{n}@ourcorp.example"], body)
    deadline = time.monotonic() + 15
    with Store.open(data_dir=hub.data_dir) as store:
        while time.monotonic() < deadline:
            found = store.find_transactions(sender=sender)
            if found and store.quarantine_entry(found[0].queue_id):
                assert found[0].disposition == "quarantine"
                return found[0].queue_id
            time.sleep(0.1)
    raise AssertionError(f"message {n} not quarantined:\n{hub.log()}")


def test_list_show_release_and_delete(hub: HubProcess) -> None:
    first, second = held(hub, 1), held(hub, 2)
    assert not (hub.data_dir / "maildir" / "staff1@ourcorp.example").exists()

    listing = quarantine(hub, "list")
    assert listing.returncode == 0, listing.stderr
    assert first in listing.stdout and second in listing.stdout
    assert "from=<helpdesk1@freemail.test> to=staff1@ourcorp.example" in listing.stdout
    assert "2 quarantined message(s) waiting for a decision" in listing.stdout

    shown = quarantine(hub, "show", first)
    assert shown.returncode == 0, shown.stderr
    assert f"queue id:   {first} (held)" in shown.stdout
    assert "IDENTITY_FIRST_CONTACT" in shown.stdout
    assert "Subject: Mailbox quota 1" in shown.stdout  # the header of the held copy

    released = quarantine(hub, "release", first)
    assert released.returncode == 0, released.stderr
    assert f"{first} released: queued for staff1@ourcorp.example" in released.stdout
    (delivered,) = hub.maildir("staff1@ourcorp.example")  # the hub was woken and delivered it
    assert delivered.startswith(b"X-Mailward-Released: from quarantine by ")
    assert b"Your mailbox is nearly full (1)." in delivered
    again = quarantine(hub, "release", first)
    assert again.returncode == 1 and f"{first} was already released" in again.stderr

    deleted = quarantine(hub, "delete", second)
    assert deleted.returncode == 0, deleted.stderr
    assert not (hub.data_dir / "quarantine" / f"{second}.eml").exists()
    assert quarantine(hub, "release", second).returncode == 1

    listing = quarantine(hub, "list")
    assert "0 quarantined message(s) waiting for a decision" in listing.stdout
    everything = quarantine(hub, "list", "--all").stdout
    assert "released" in everything and "deleted" in everything
    with Store.open(data_dir=hub.data_dir) as store:
        kinds = {e.kind for e in store.events(queue_id=first)} | {
            e.kind for e in store.events(queue_id=second)}
        assert {"quarantine.released", "quarantine.deleted"} <= kinds
        deliveries = store.deliveries(first)
        assert [d.status for d in deliveries] == ["delivered"]


def test_unknown_queue_id_is_one_line_exit_1(hub: HubProcess) -> None:
    for action in ("show", "release", "delete"):
        result = quarantine(hub, action, "NOSUCHID")
        assert result.returncode == 1
        assert result.stderr == "mailward: no quarantined message NOSUCHID\n"
