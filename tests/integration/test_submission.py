"""The submission listeners end to end: AUTH only over TLS, sender binding, DKIM-signed output."""

from __future__ import annotations

import base64
import json
import re
import smtplib
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.helpers import run_cli
from tests.integration.hubproc import (
    MAILWARD,
    HubProcess,
    free_port,
    stop_controller,
    unverified_tls,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSWORD = "correct horse battery"


def tls_context() -> ssl.SSLContext:
    return unverified_tls()


class RemoteMx:
    """Another site's mail server: records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@remote.test>: no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 2.0.0 thanks"

    def wait(self, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteMx]:
    mx = RemoteMx()
    mx.controller.start()
    yield mx
    stop_controller(mx.controller)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, remote: RemoteMx) -> Iterator[HubProcess]:
    zones = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    zones["remote.test"] = [{"MX": [10, "mx.remote.test"]}]
    zones["mx.remote.test"] = [{"A": "127.0.0.1"}]
    process = HubProcess(
        tmp_path_factory.mktemp("hub"), zones,
        extra_config=f'[delivery]\nmx_port = {remote.port}\n'
        '[submission]\nshared_addresses = {"it-support@ourcorp.example" = ["alice"]}\n',
    )
    process.add_user("alice", "alice@ourcorp.example", PASSWORD)
    cfg = ["--config", str(process.config_path)]
    out = subprocess.run([MAILWARD, "keys", "generate", "ourcorp.example", "--selector", "t",
                          *cfg], capture_output=True, text=True, check=True).stdout
    for name, value in re.findall(r"^(\S+)\. IN TXT \( (.*) \)", out, re.M):
        zones[name] = [{"TXT": "".join(re.findall(r'"([^"]*)"', value))}]
    process.start()
    yield process
    assert process.stop() == 0, process.log()


def message(sender: str, rcpt: str, subject: str = "hello") -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{time.time_ns()}@ourcorp.example>\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n\r\nHello there.\r\n"
    ).encode()


def test_no_auth_before_tls(hub: HubProcess) -> None:
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
        client.ehlo("client.ourcorp.example")
        assert not client.has_extn("auth")
        code, text = client.docmd("AUTH", "PLAIN AGFsaWNlAHBhc3M=")
        assert code == 538, text
        code, _ = client.docmd("MAIL", "FROM:<alice@ourcorp.example>")
        assert code == 530


def test_wrong_sender_after_auth_gets_553(hub: HubProcess) -> None:
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
        client.starttls(context=tls_context())
        client.login("alice", PASSWORD)
        code, text = client.mail("ceo@ourcorp.example")
        assert code == 553 and text.startswith(b"5.7.1")
        client.rset()
        assert client.mail("alice@ourcorp.example")[0] == 250
        assert client.rcpt("bob@ourcorp.example")[0] == 250
        code, text = client.data(message("ceo@ourcorp.example", "bob@ourcorp.example"))
        assert code == 553 and b"From address <ceo@ourcorp.example>" in text


def test_shared_role_address_may_be_used(hub: HubProcess) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", hub.submission_tls_port, timeout=30,
                          context=tls_context()) as client:
        client.login("alice", PASSWORD)
        client.sendmail("it-support@ourcorp.example", ["bob@ourcorp.example"],
                        message("it-support@ourcorp.example", "bob@ourcorp.example"))


def test_submitted_mail_is_dkim_signed_and_verifies(hub: HubProcess, tmp_path: Path) -> None:
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
        client.starttls(context=tls_context())
        client.login("alice", PASSWORD)
        client.sendmail("alice@ourcorp.example", ["carol@ourcorp.example"],
                        message("alice@ourcorp.example", "carol@ourcorp.example", "signed"))
    (delivered,) = [m for m in hub.maildir("carol@ourcorp.example") if b"signed" in m]
    assert delivered.count(b"DKIM-Signature:") == 2  # RSA and Ed25519
    path = tmp_path / "signed.eml"
    path.write_bytes(delivered)
    _code, out, _ = run_cli(["check", str(path), "--json", "--zone-file",
                            str(hub.workdir / "zones.yaml"), "--ip", "198.51.100.10",
                            "--helo", "mx.ourcorp.example", "--mail-from",
                            "alice@ourcorp.example"])
    report = json.loads(out)
    ar = report["authentication_results"]
    assert ar.count("dkim=pass header.d=ourcorp.example") == 2, ar
    assert "header.a=ed25519-sha256" in ar and "header.a=rsa-sha256" in ar
    assert "dmarc=pass" in ar


def test_remote_recipient_delivered_by_mx_lookup(hub: HubProcess, remote: RemoteMx) -> None:
    before = len(remote.received)
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
        client.starttls(context=tls_context())
        client.login("alice", PASSWORD)
        client.sendmail("alice@ourcorp.example", ["dave@remote.test"],
                        message("alice@ourcorp.example", "dave@remote.test", "outbound"))
    remote.wait(before + 1)
    mail_from, rcpts, data = remote.received[-1]
    assert (mail_from, rcpts) == ("alice@ourcorp.example", ["dave@remote.test"])
    assert b"DKIM-Signature:" in data and b"(authenticated as alice)" in data


def test_permanent_failure_bounces_to_our_user(hub: HubProcess) -> None:
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
        client.starttls(context=tls_context())
        client.login("alice", PASSWORD)
        client.sendmail("alice@ourcorp.example", ["nobody@remote.test"],
                        message("alice@ourcorp.example", "nobody@remote.test", "will bounce"))
    deadline = time.monotonic() + 20
    bounces: list[bytes] = []
    while not bounces and time.monotonic() < deadline:
        bounces = [m for m in hub.maildir("alice@ourcorp.example")
                   if b"report-type=delivery-status" in m]
    (dsn,) = bounces
    assert b"Final-Recipient: rfc822; nobody@remote.test" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.1.1" in dsn
    assert b"Subject: will bounce" in dsn  # the original is returned


def test_failed_logins_are_throttled(hub: HubProcess) -> None:
    def plain(user: str, password: str) -> str:
        return base64.b64encode(f"\0{user}\0{password}".encode()).decode()

    codes = []
    for attempt in range(6):
        with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as client:
            client.starttls(context=tls_context())
            client.ehlo("client.test")
            codes.append(client.docmd("AUTH", "PLAIN " + plain("mallory", f"guess{attempt}"))[0])
    assert codes == [535] * 5 + [454]
    log = hub.log()
    assert log.count("auth failed user=mallory") == 6 and "guess1" not in log
    # every attempt is also an event in the central store (never with the password)
    from mailward import config as config_mod
    from mailward.store import Store, StoredAuth

    store = Store.from_config(config_mod.load(hub.config_path).store, data_dir=hub.data_dir)
    try:
        deadline = time.monotonic() + 10
        events: list[StoredAuth] = []
        while len(events) < 6 and time.monotonic() < deadline:
            events = store.auth_events(user="mallory")
            time.sleep(0.2)
        assert len(events) == 6 and not any(e.success for e in events)
        assert {e.reason for e in events} == {"bad credentials", "throttled"}
    finally:
        store.close()
