"""First contact through the running hub: the hub's own central log is the sender history."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from mailward.store import Store, StoredTransaction
from tests.integration.hubproc import HubProcess, example_zones

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    zones = example_zones()
    process = HubProcess(tmp_path_factory.mktemp("hub"), zones, extra_config=(
        '[identity]\nprotected_names = ["IT Support", "Jane Smith"]\n'
    ))
    process.add_user("alice", "alice@ourcorp.example", PASSWORD)
    process.start()
    yield process
    assert process.stop() == 0, process.log()


def message(from_: str, n: int) -> bytes:
    return (
        f"From: {from_}\r\nTo: staff@ourcorp.example\r\nSubject: Mailbox {n}\r\n"
        f"Message-ID: <fc-{n}-{time.time_ns()}@freemail.test>\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nPlease call me back today.\r\n"
    ).encode()


def logged(hub: HubProcess, **query: str) -> list[StoredTransaction]:
    """The logged transactions matching ``query``, once the hub's writer has committed them."""
    deadline = time.monotonic() + 15
    with Store.open(data_dir=hub.data_dir) as store:
        while time.monotonic() < deadline:
            found = store.find_transactions(**query)  # type: ignore[arg-type]
            if found:
                return found
            time.sleep(0.1)
    raise AssertionError(f"nothing logged for {query}:\n{hub.log()}")


def symbols_of(tx: StoredTransaction) -> set[str]:
    return {f.symbol for f in tx.findings}


def test_first_contact_and_the_sites_own_correspondents(hub: HubProcess) -> None:
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
        for n in range(2):  # one impersonator, two messages in a row: both first contact
            client.sendmail("helpdesk@freemail.test", ["staff@ourcorp.example"],
                            message('"IT Support" <helpdesk@freemail.test>', n))
    impostor = logged(hub, sender="helpdesk@freemail.test")
    deadline = time.monotonic() + 15
    while len(impostor) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        impostor = logged(hub, sender="helpdesk@freemail.test")
    assert len(impostor) == 2
    for tx in impostor:
        assert {"IDENTITY_DISPLAY_NAME_PROTECTED", "IDENTITY_FIRST_CONTACT"} <= symbols_of(tx)
        # the name alone would tag (6 + 1 for no DKIM and no DMARC); a stranger using it is
        # quarantined (+3)
        assert tx.disposition == "quarantine"

    # alice writes to Jane's private address; Jane's answer is then no first contact
    hub.submit("alice", PASSWORD, "alice@ourcorp.example", ["jane.private@freemail.test"],
               message("Alice <alice@ourcorp.example>", 10))
    assert logged(hub, recipient="jane.private@freemail.test")[0].disposition == "submitted"
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
        client.sendmail("jane.private@freemail.test", ["staff@ourcorp.example"],
                        message('"Jane Smith" <jane.private@freemail.test>', 11))
    (answer,) = [tx for tx in logged(hub, sender="jane.private@freemail.test")
                 if tx.disposition != "submitted"]
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in symbols_of(answer)  # still an outside address
    assert "IDENTITY_FIRST_CONTACT" not in symbols_of(answer)
    assert "IDENTITY_HISTORY_TEMPERROR" not in symbols_of(answer)
    assert answer.disposition == "tag"
    (delivered,) = hub.maildir("staff@ourcorp.example")  # the impostor's two are quarantined
    assert b"Subject: [Suspicious] Mailbox 11" in delivered
