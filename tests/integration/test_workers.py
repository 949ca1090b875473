"""Several worker processes share the listening sockets; the master alone delivers."""

from __future__ import annotations

import os
import re
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from aiosmtpd.controller import Controller

from tests.integration.hubproc import HubProcess, free_port, stop_controller, wait_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZONES = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")


def send(port: int, seq: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mail.partner.test", timeout=30) as c:
        c.sendmail("billing@partner.test", [f"u{seq % 5}@ourcorp.example"],
                   b"X-Seq: %d\r\n" % seq + GENUINE)


def test_two_workers_receive_and_master_relays(tmp_path: Path) -> None:
    received: list[bytes] = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            received.append(envelope.original_content)
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    hub = HubProcess(tmp_path, ZONES, workers=2, extra_config=(
        f'[delivery]\ndownstream = "smtp://127.0.0.1:{port}"\n'
    ))
    try:
        hub.start()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda s: send(hub.inbound_port, s), range(200)))
        deadline = time.monotonic() + 30
        while len(received) < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        seqs = sorted(int(re.search(rb"X-Seq: (\d+)", m).group(1)) for m in received)  # type: ignore[union-attr]
        assert seqs == list(range(200))  # each delivered once, by the master
        log = hub.log()
        assert "master: 2 workers" in log
        workers = set(re.findall(r"worker (\d) listening", log))
        assert workers == {"0", "1"}
        # kill -9 of the master takes its workers along; a restart can bind again
        master_pid = hub.proc.pid if hub.proc else 0
        children = [int(p) for p in re.findall(r"master: 2 workers \((\d+), (\d+)\)", log)[0]]
        hub.kill9()
        deadline = time.monotonic() + 10
        while any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in children):
            assert time.monotonic() < deadline, "workers outlived their master"
            time.sleep(0.1)
        assert master_pid not in children
        hub.start()
        wait_port(hub.inbound_port)
        for attempt in range(5):  # a client retries a connection cut while the hub starts
            try:
                send(hub.inbound_port, 999)
                break
            except (OSError, smtplib.SMTPException):
                if attempt == 4:
                    raise
                time.sleep(1)
        deadline = time.monotonic() + 20  # the restarted master forked its workers again
        while hub.log().count("master: 2 workers") < 2:
            assert time.monotonic() < deadline, hub.log()[-2000:]
            time.sleep(0.1)
    finally:
        hub.stop()
        stop_controller(controller)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
