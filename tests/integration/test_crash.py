"""Never lose mail: kill -9 the hub in the middle of a load, restart it, count deliveries."""

from __future__ import annotations

import contextlib
import re
import smtplib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.integration.hubproc import HubProcess, wait_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")
TOTAL, CLIENTS = 2000, 8


class Client(threading.Thread):
    """Sends its share of messages; records which got 250, which were in doubt."""

    def __init__(self, hub: HubProcess, seqs: list[int]) -> None:
        super().__init__(daemon=True)
        self.hub, self.seqs = hub, seqs
        self.acked: set[int] = set()
        self.in_doubt: set[int] = set()  # the final dot was sent, then the connection died
        self.refused: set[int] = set()

    def run(self) -> None:
        client: smtplib.SMTP | None = None
        for seq in self.seqs:
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.hub.inbound_port,
                                          local_hostname="mail.partner.test", timeout=20)
                    client.ehlo("mail.partner.test")
                self.send_one(client, seq)
            except (OSError, smtplib.SMTPException):
                client = None
                time.sleep(0.05)
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()

    def send_one(self, client: smtplib.SMTP, seq: int) -> None:
        body = b"X-Seq: %d\r\n" % seq + GENUINE
        client.mail("billing@partner.test")
        client.rcpt(f"user{seq % 50}@ourcorp.example")
        code, _ = client.docmd("DATA")
        if code != 354:
            self.refused.add(seq)
            client.rset()
            return
        client.send(body + b"\r\n.\r\n")
        self.in_doubt.add(seq)
        code, _ = client.getreply()
        self.in_doubt.discard(seq)
        (self.acked if code == 250 else self.refused).add(seq)


def delivered_sequences(data_dir: Path) -> Counter[int]:
    counts: Counter[int] = Counter()
    for path in (data_dir / "maildir").glob("*/new/*"):
        match = re.search(rb"X-Seq: (\d+)", path.read_bytes())
        assert match, path
        counts[int(match.group(1))] += 1
    return counts


@pytest.mark.slow
def test_kill_9_mid_load_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    zones = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    # every core receiving (one worker per core), as in production
    hub = HubProcess(tmp_path, zones, workers=0,
                     extra_config="[delivery]\nretry_base = 1.0\n").start()
    clients = [Client(hub, list(range(i, TOTAL, CLIENTS))) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    while sum(len(c.acked) for c in clients) < TOTAL // 3:
        time.sleep(0.01)
    hub.kill9()
    time.sleep(0.5)
    hub.start()
    for c in clients:
        c.join(timeout=300)
    acked = set().union(*(c.acked for c in clients))
    in_doubt = set().union(*(c.in_doubt for c in clients))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        counts = delivered_sequences(hub.data_dir)
        if acked <= set(counts) and not list((hub.data_dir / "spool" / "queue").glob("*.msg")):
            break
        time.sleep(0.2)
    wait_port(hub.inbound_port)
    assert hub.stop() == 0, hub.log()
    counts = delivered_sequences(hub.data_dir)
    lost = acked - set(counts)
    duplicated = {s for s, n in counts.items() if n > 1}
    unacked_delivered = set(counts) - acked - in_doubt
    doubt_delivered = in_doubt & set(counts)
    print(
        f"\ncrash test: {TOTAL} sent by {CLIENTS} clients, {len(acked)} got 250, "
        f"{len(in_doubt)} in doubt (connection cut after the final dot; "
        f"{len(doubt_delivered)} of them delivered), {TOTAL - len(acked) - len(in_doubt)} "
        f"refused or never sent; delivered {sum(counts.values())}; lost {len(lost)}, "
        f"duplicated {len(duplicated)}, delivered without 250 {len(unacked_delivered)}"
    )
    assert not lost, sorted(lost)[:20]
    assert not duplicated, sorted(duplicated)[:20]
    assert not unacked_delivered, sorted(unacked_delivered)[:20]
    assert len(acked) > TOTAL // 3
