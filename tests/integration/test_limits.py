"""Limits with clear SMTP errors, and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.hubproc import HubProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZONES = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")
LIMITS = """
max_message_size = 20000
max_recipients = 3
max_header_fields = 50
command_timeout = 1.5
data_timeout = 3.0
max_connections_per_ip = 3
shutdown_grace = 1.0
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("hub"), ZONES)
    process.extra_config = ""  # [smtp] is written by HubProcess; append our keys to it
    process.write_config()
    text = process.config_path.read_text().replace("[smtp]\n", "[smtp]\n" + LIMITS, 1)

    def write_config() -> None:
        process.config_path.write_text(text)

    process.write_config = write_config  # type: ignore[method-assign]
    process.start()
    yield process
    process.stop()


def client(hub: HubProcess) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30)
    c.ehlo("mail.partner.test")
    return c


def test_size_is_advertised_and_enforced(hub: HubProcess) -> None:
    with client(hub) as c:
        assert c.esmtp_features["size"] == "20000"
        code, text = c.mail("billing@partner.test", ["SIZE=50000"])
        assert code == 552, text
    big = GENUINE + b"x" * 900 + (b"\r\n" + b"x" * 900) * 40 + b"\r\n"
    with client(hub) as c:  # a client that does not declare SIZE is stopped at the data
        assert c.mail("billing@partner.test")[0] == 250
        assert c.rcpt("a@ourcorp.example")[0] == 250
        code, _ = c.data(big)
    assert code == 552


def test_recipients_per_message(hub: HubProcess) -> None:
    with client(hub) as c:
        c.mail("billing@partner.test")
        codes = [c.rcpt(f"u{i}@ourcorp.example")[0] for i in range(4)]
    assert codes == [250, 250, 250, 452]


def test_header_count(hub: HubProcess) -> None:
    headers = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(60))
    with client(hub) as c, pytest.raises(smtplib.SMTPDataError) as refused:
        c.sendmail("billing@partner.test", ["a@ourcorp.example"], headers + GENUINE)
    assert refused.value.smtp_code == 552 and b"header fields" in refused.value.smtp_error


def test_line_length(hub: HubProcess) -> None:
    long_line = GENUINE + b"y" * 2000 + b"\r\n"
    with client(hub) as c, pytest.raises(smtplib.SMTPDataError) as refused:
        c.sendmail("billing@partner.test", ["a@ourcorp.example"], long_line)
    assert refused.value.smtp_code == 500 and b"Line too long" in refused.value.smtp_error


def test_idle_connection_gets_421(hub: HubProcess) -> None:
    with socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220")
        assert f.readline().startswith(b"421 4.4.2")


def test_connections_per_ip(hub: HubProcess) -> None:
    held = [socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=10)
            for _ in range(3)]
    try:
        for s in held:
            assert s.makefile("rb").readline().startswith(b"220")
        with socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=10) as extra:
            assert extra.makefile("rb").readline().startswith(b"421 4.7.0")
    finally:
        for s in held:
            s.close()


def test_sigterm_finishes_cleanly(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path, ZONES, extra_config="").start()
    with client(hub) as c:
        c.sendmail("billing@partner.test", ["kept@ourcorp.example"], GENUINE)
    idle = socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=30)
    reader = idle.makefile("rb")
    assert reader.readline().startswith(b"220")
    started = time.monotonic()
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGTERM)
    # the idle session is told to come back later once the grace period is over
    assert reader.readline().startswith(b"421 4.3.2")
    idle.close()
    assert hub.proc.wait(30) == 0
    assert time.monotonic() - started < 20
    assert hub.maildir("kept@ourcorp.example")
    assert "stopped" in hub.log()


def _slow_message(hub: HubProcess, seconds: float, step: float = 0.3) -> bytes:
    """Send one message whose lines come every ``step`` seconds for ``seconds`` (a slow but
    busy link); everything the hub answered after DATA."""
    with socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=30) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for line in (b"EHLO mail.partner.test", b"MAIL FROM:<billing@partner.test>",
                     b"RCPT TO:<slow@ourcorp.example>", b"DATA"):
            sock.sendall(line + b"\r\n")
            while (reply := reader.readline())[3:4] == b"-":
                pass
        assert reply.startswith(b"354"), reply
        head, _, body = GENUINE.partition(b"\r\n\r\n")
        sock.sendall(head + b"\r\n\r\n")
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds:
                sock.sendall(b"more text, slowly\r\n")
                time.sleep(step)
            sock.sendall(body + b"\r\n.\r\nQUIT\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return reader.read()  # until the hub closes (after QUIT, or on its own)
        finally:
            reader.close()


def test_a_slow_but_steady_upload_is_not_cut_off(hub: HubProcess) -> None:
    # longer than command_timeout (1.5 s) in all, but never silent that long
    answer = _slow_message(hub, 2.4)
    assert answer.startswith(b"250 "), answer


def test_an_upload_longer_than_data_timeout_is_stopped(hub: HubProcess) -> None:
    answer = _slow_message(hub, 5.0)  # data_timeout is 3 s
    assert answer.startswith(b"421 4.4.2 "), answer
    assert b"too long" in answer
