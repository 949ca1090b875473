"""Operating the hub: the queue commands, and one queue id followed through the store."""

from __future__ import annotations

import smtplib
import subprocess
import time
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

from mailward import config as config_mod
from mailward.store import Store
from tests.integration.hubproc import MAILWARD, HubProcess, free_port, stop_controller

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZONES = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")


def mailward(hub: HubProcess, *args: str) -> str:
    proc = subprocess.run([MAILWARD, *args, "--config", str(hub.config_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_queue_list_flush_remove_and_store_trail(tmp_path: Path) -> None:
    port = free_port()  # the downstream server is down at first
    hub = HubProcess(tmp_path, ZONES, extra_config=(
        f'[delivery]\ndownstream = "smtp://127.0.0.1:{port}"\nretry_base = 300.0\n'
    )).start()
    received: list[bytes] = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            received.append(envelope.original_content)
            return "250 OK"

    try:
        with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as c:
            c.ehlo("mail.partner.test")
            c.sendmail("billing@partner.test", ["one@ourcorp.example"], GENUINE)
            c.sendmail("billing@partner.test", ["two@ourcorp.example"], GENUINE)
        deadline = time.monotonic() + 20
        listing = ""
        while time.monotonic() < deadline:
            listing = mailward(hub, "queue", "list")
            if listing.count("attempts=1") == 2:
                break
            time.sleep(0.2)
        assert "2 message(s) queued" in listing and "downstream 127.0.0.1" in listing, listing
        first, second = [line.split()[0] for line in listing.splitlines()[:2]]
        assert "removed" in mailward(hub, "queue", "remove", second)
        controller = Controller(Sink(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            assert "flushed" in mailward(hub, "queue", "flush")
            deadline = time.monotonic() + 20
            while not received and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop_controller(controller)
        assert len(received) == 1  # the removed message is gone for good
        assert "0 message(s) queued" in mailward(hub, "queue", "list")
    finally:
        assert hub.stop() == 0, hub.log()

    config = config_mod.load(hub.config_path)
    store = Store.from_config(config.store, data_dir=hub.data_dir)
    try:
        tx = store.transaction(first)
        assert tx is not None and tx.disposition == "accept"
        assert tx.message_id == "<inv-2026-114@partner.test>"
        # the client is 127.0.0.1, outside partner.test's SPF (~all): DKIM carries DMARC
        assert {f.symbol for f in tx.findings} >= {"SPF_SOFTFAIL", "DKIM_PASS", "DMARC_PASS"}
        assert tx.connection_id is not None
        connection = store.connection(tx.connection_id)
        assert connection is not None and connection.peer_ip == "127.0.0.1"
        assert connection.helo == "mail.partner.test"
        statuses = [d.status for d in store.deliveries(first)]
        assert statuses == ["deferred", "delivered"], statuses
    finally:
        store.close()
