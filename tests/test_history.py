"""StoreHistory inside the pipeline: a slow or broken store costs the first-contact finding (a
temperror), never the identity check's other findings or the evaluation itself."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import pytest

from mailward.config import from_dict
from mailward.dns import ZoneResolver
from mailward.history import Contact, StoreHistory
from mailward.model import Connection, Envelope, Message, Transaction
from mailward.pipeline import Pipeline
from mailward.store import Store

CONFIG = {
    "site": {"domains": ["ourcorp.example"]},
    "identity": {"protected_names": ["IT Support"]},
    "checks": {"enabled": ["spf", "dkim", "dmarc", "identity"]},
}
RAW = (b'From: "IT Support" <helpdesk@freemail.test>\r\nTo: staff@ourcorp.example\r\n'
       b"Subject: quota\r\n\r\nYour mailbox is full.\r\n")


class SlowStore:
    """A store that takes ``delay`` seconds to answer (a database under a long lock); the
    real store's reads are tested in tests/store."""

    def __init__(self, delay: float, known: bool = True) -> None:
        self.delay = delay
        self.known = known
        self.asked = 0

    def known_correspondent(self, address: str, *, delivered_before: datetime) -> bool:
        self.asked += 1
        time.sleep(self.delay)
        return self.known


def evaluate(history: StoreHistory) -> set[str]:
    config = from_dict(CONFIG, "test")
    pipeline = Pipeline(config, ZoneResolver({}), history=history)
    tx = Transaction(Connection(ip="192.0.2.1", helo="x.test"),
                     Envelope("helpdesk@freemail.test", ["staff@ourcorp.example"]), Message(RAW))
    evaluation = asyncio.run(pipeline.evaluate(tx))
    return {f.symbol for f in evaluation.findings if f.check == "identity"}


def test_a_slow_store_is_a_temperror_and_the_other_findings_stay() -> None:
    store = SlowStore(delay=1.0)
    started = time.monotonic()
    found = evaluate(StoreHistory(store, 72, timeout=0.2))  # type: ignore[arg-type]
    assert found == {"IDENTITY_DISPLAY_NAME_PROTECTED", "IDENTITY_HISTORY_TEMPERROR"}
    assert store.asked == 1 and time.monotonic() - started < 1.5


def test_known_answers_are_remembered() -> None:
    store = SlowStore(delay=0.0, known=True)
    history = StoreHistory(store, 72)  # type: ignore[arg-type]
    assert evaluate(history) == {"IDENTITY_DISPLAY_NAME_PROTECTED"}
    assert asyncio.run(history.contact("HelpDesk@freemail.test", time.time())) is Contact.KNOWN
    assert store.asked == 1  # the second answer came from memory (addresses fold case)


def test_first_contacts_are_asked_again(tmp_path: Path) -> None:
    with Store.open(data_dir=tmp_path) as store:
        history = StoreHistory(store, 72)
        assert evaluate(history) == {"IDENTITY_DISPLAY_NAME_PROTECTED", "IDENTITY_FIRST_CONTACT"}
        store.record_transaction(queue_id="Q1", mail_from="alice@ourcorp.example",
                                 recipients=["helpdesk@freemail.test"], disposition="submitted")
        assert evaluate(history) == {"IDENTITY_DISPLAY_NAME_PROTECTED"}


@pytest.mark.parametrize("address", ["", "   "])
def test_no_address_is_a_first_contact(address: str) -> None:
    store = SlowStore(delay=0.0)
    history = StoreHistory(store, 72)  # type: ignore[arg-type]
    assert asyncio.run(history.contact(address, time.time())) is Contact.FIRST
    assert store.asked == 0
