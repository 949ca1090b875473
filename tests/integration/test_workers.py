"""Several worker processes share the listening sockets; the master alone delivers."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.integration.hubproc import (
    HubProcess,
    free_port,
    stop_controller,
    unverified_tls,
    wait_port,
)

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


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _only(workers: list[int], index: int) -> None:
    """Let worker ``index`` alone accept: stop the others (SIGSTOP, so the kernel hands new
    connections on the shared socket to the one still running), continue it."""
    for number, pid in enumerate(workers):
        os.kill(pid, signal.SIGCONT if number == index else signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while any((_state(pid) == "T") != (number != index) for number, pid in enumerate(workers)):
        assert time.monotonic() < deadline, "workers did not stop or continue"
        time.sleep(0.01)
    # a continued worker first reads the updates that waited in its pipe while it was stopped
    time.sleep(0.2)


def _failed_login(port: int, attempt: int) -> tuple[int, bytes]:
    """One wrong password for mallory on a new connection: its reply code and text."""
    context = unverified_tls()
    plain = base64.b64encode(f"\0mallory\0guess{attempt}".encode()).decode()
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=30, context=context) as client:
        client.ehlo("client.test")
        reply = client.docmd("AUTH", "PLAIN " + plain)
    # the failed worker sent its update before its 0.5 s pause and reply; the master passes it
    # on at once, but a worker takes it only when its loop next runs: give it that time, so the
    # next attempt on another worker finds it counted (not a race the test could lose)
    time.sleep(0.2)
    return reply


@pytest.mark.slow  # the hub pauses 0.5 s after each failed login and 1 s before each refusal
def test_failed_logins_are_throttled_across_workers(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, ZONES, workers=2,
                     extra_config="[submission]\nmax_auth_failures = 4\n")
    workers: list[int] = []
    try:
        hub.start()
        deadline = time.monotonic() + 20
        while not (found := re.findall(r"master: 2 workers \((\d+), (\d+)\)", hub.log())):
            assert time.monotonic() < deadline, hub.log()[-2000:]
            time.sleep(0.05)
        workers = [int(pid) for pid in found[0]]  # worker 0, worker 1
        port = hub.submission_tls_port
        # three failures on worker 0 (an echo of its own updates would throttle the third)
        _only(workers, 0)
        codes = [_failed_login(port, n)[0] for n in range(3)]
        assert codes == [535, 535, 535]
        # worker 1 has not seen mallory itself: one more failure there reaches the limit of 4
        _only(workers, 1)
        assert _failed_login(port, 3)[0] == 535
        code, text = _failed_login(port, 4)
        assert (code, text) == (454, b"4.7.0 Too many failed logins; try again later")
        # and worker 0 counted worker 1's failure too
        _only(workers, 0)
        assert _failed_login(port, 5)[0] == 454
        # both running, the kernel picks: throttled whichever worker takes the connection
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
        codes = [_failed_login(port, n)[0] for n in range(6, 9)]
        assert codes == [454] * 3
        log = hub.log()
        assert log.count("auth failed user=mallory ip=127.0.0.1 mechanism=PLAIN bad credentials"
                         ) == 4  # exactly max_auth_failures, not 4 per worker
        assert log.count("auth failed user=mallory") == 9
        assert "login broadcast" not in log and "bad login update" not in log
    finally:
        for pid in workers:  # never leave a stopped worker behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        stopped = hub.stop()
    assert stopped == 0, hub.log()[-3000:]
