"""The inbound listener end to end: a real `mailward serve` process and real SMTP clients."""

from __future__ import annotations

import re
import shutil
import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.integration.hubproc import HubProcess, free_port, stop_controller, unverified_tls

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZONES = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
ZONES["slow.test"] = ["TIMEOUT"]
ZONES["_dmarc.slow.test"] = ["TIMEOUT"]
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")
FORGED = (EXAMPLES / "forged-ceo.eml").read_bytes().replace(b"\n", b"\r\n")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("hub"), ZONES).start()
    yield process
    assert process.stop() == 0, process.log()


def smtp(hub: HubProcess, helo: str = "mail.partner.test") -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", hub.inbound_port, local_hostname=helo, timeout=30)
    client.ehlo(helo)
    return client


def test_ehlo_advertises_extensions(hub: HubProcess) -> None:
    with smtp(hub) as client:
        for ext in ("size", "8bitmime", "pipelining", "smtputf8", "enhancedstatuscodes",
                    "starttls"):
            assert client.has_extn(ext), ext


def test_dmarc_reject_forgery_gets_550_with_reason(hub: HubProcess) -> None:
    with smtp(hub, "mail.attacker.test") as client, pytest.raises(
        smtplib.SMTPDataError
    ) as refused:
        client.sendmail("ceo@ourcorp.example", ["staff@ourcorp.example"], FORGED)
    error = refused.value.smtp_error
    assert isinstance(error, bytes)  # typeshed says bytes | str; smtplib hands on the reply's bytes
    code, text = refused.value.smtp_code, error.decode()
    assert code == 550 and text.startswith("5.7.1") and "DMARC_FAIL_REJECT" in text


def test_genuine_message_is_delivered_to_maildir_with_headers(hub: HubProcess) -> None:
    forged_ar = b"Authentication-Results: mx.ourcorp.example; dmarc=pass header.from=x.test\r\n"
    with smtp(hub) as client:
        client.sendmail("billing@partner.test", ["alice@ourcorp.example"], forged_ar + GENUINE)
    (delivered,) = hub.maildir("alice@ourcorp.example")
    head = delivered.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("Authentication-Results: mx.ourcorp.example;")
    assert "dkim=pass header.d=partner.test" in head and "dmarc=pass" in head
    assert "x.test" not in head  # the forged copy claiming our authserv-id is gone
    assert "Received: from mail.partner.test" in head and "[127.0.0.1]" in head
    assert "by mx.ourcorp.example (mailward)" in head


def test_starttls_session_is_recorded_in_received(hub: HubProcess) -> None:

    context = unverified_tls()
    with smtp(hub) as client:
        client.starttls(context=context)
        client.ehlo("mail.partner.test")
        client.sendmail("billing@partner.test", ["tls@ourcorp.example"], GENUINE)
    (delivered,) = hub.maildir("tls@ourcorp.example")
    assert b"using TLSv1.3 with cipher" in delivered or b"using TLSv1.2" in delivered


@pytest.mark.parametrize(
    "rcpt",
    ["relaytest@victim.test", "user%victim.test@ourcorp.example", '"user@victim.test"',
     "victim.test!user@ourcorp.example", "@ourcorp.example:user@victim.test",
     "user@ourcorp.example.", "user@[127.0.0.1]"],
)
def test_relay_attempts_get_554(hub: HubProcess, rcpt: str) -> None:
    with smtp(hub) as client:
        client.mail("someone@partner.test")
        code, text = client.rcpt(rcpt)
    # aiosmtpd refuses unparseable paths itself (553 5.1.x); the relay policy answers 554 5.7.1
    assert code in (553, 554) and text.startswith(b"5."), (code, text)


def test_dns_timeout_gets_451(hub: HubProcess) -> None:
    message = GENUINE.replace(b"paula@partner.test", b"boss@slow.test")
    with smtp(hub) as client, pytest.raises(smtplib.SMTPDataError) as deferred:
        client.sendmail("boss@slow.test", ["staff@ourcorp.example"], message)
    assert deferred.value.smtp_code == 451


def test_bare_lf_smuggling_is_refused(hub: HubProcess) -> None:
    with socket.create_connection(("127.0.0.1", hub.inbound_port), timeout=10) as sock:
        f = sock.makefile("rwb")
        f.readline()
        for line in (b"EHLO x.test", b"MAIL FROM:<a@partner.test>", b"RCPT TO:<b@ourcorp.example>",
                     b"DATA"):
            f.write(line + b"\r\n")
            f.flush()
            while True:
                reply = f.readline()
                if reply[3:4] != b"-":
                    break
        f.write(b"From: a@partner.test\r\n\r\nhello\n.\r\nMAIL FROM:<evil@ourcorp.example>\r\n"
                b".\r\n")
        f.flush()
        reply = f.readline()
    assert reply.startswith(b"554 5.6.0"), reply
    assert not (hub.data_dir / "maildir" / "b@ourcorp.example").exists()


def test_swaks_session(hub: HubProcess) -> None:
    assert shutil.which("swaks"), "swaks missing: run scripts/install-test-deps (make test does)"
    message = hub.workdir / "swaks.eml"
    message.write_bytes(GENUINE)
    proc = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{hub.inbound_port}", "--helo", "mail.partner.test",
         "--from", "billing@partner.test", "--to", "bob@ourcorp.example", "--data",
         str(message)], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "250 2.0.0 OK queued as" in proc.stdout
    assert hub.maildir("bob@ourcorp.example")


def test_relay_to_downstream_smtp_server(tmp_path: Path) -> None:
    received: list[tuple[str, list[str], bytes]] = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            received.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
            return "250 OK stored"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    downstream = f'[delivery]\ndownstream = "smtp://127.0.0.1:{port}"'
    hub = HubProcess(tmp_path, ZONES, extra_config=downstream).start()
    try:
        with smtp(hub) as client:
            client.sendmail("billing@partner.test", ["carol@ourcorp.example"], GENUINE)
        deadline = time.monotonic() + 15
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        assert hub.stop() == 0
        stop_controller(controller)
    ((mail_from, rcpts, data),) = received
    assert mail_from == "billing@partner.test" and rcpts == ["carol@ourcorp.example"]
    assert data.startswith(b"Authentication-Results: mx.ourcorp.example;")
    assert b"dmarc=pass" in data.split(b"\r\n\r\n")[0]
    assert "status=delivered" in hub.log()


def test_dmarc_quarantine_forgery_is_held_not_delivered(hub: HubProcess) -> None:
    from mailward import config as config_mod
    from mailward.store import Store

    forged = (b"From: Paula <paula@partner.test>\r\nTo: q@ourcorp.example\r\n"
              b"Subject: lunch\r\nMessage-ID: <q-1@partner.test>\r\n\r\nSee you at noon.\r\n")
    with smtp(hub, "mail.attacker.test") as client:
        client.mail("paula@partner.test")
        client.rcpt("q@ourcorp.example")
        code, text = client.data(forged)
    assert code == 250
    qid = text.decode().rsplit(" ", 1)[-1]
    assert (hub.data_dir / "quarantine" / f"{qid}.eml").exists()
    assert not (hub.data_dir / "maildir" / "q@ourcorp.example").exists()
    store = Store.from_config(config_mod.load(hub.config_path).store, data_dir=hub.data_dir)
    try:
        deadline = time.monotonic() + 10
        entry = None
        while entry is None and time.monotonic() < deadline:
            entry = store.quarantine_entry(qid)
            time.sleep(0.1)
    finally:
        store.close()
    assert entry is not None and "DMARC_FAIL_QUARANTINE" in entry.reason


def test_every_reply_has_an_enhanced_status_code(hub: HubProcess) -> None:
    """RFC 2034: with ENHANCEDSTATUSCODES advertised, every reply but the greeting and the
    HELO/EHLO answers carries one, aiosmtpd's own replies included."""
    client = smtplib.SMTP(timeout=30)
    code, greeting = client.connect("127.0.0.1", hub.inbound_port)
    with client:
        assert code == 220 and not greeting.startswith(b"2.")  # the greeting stays as it is
        code, text = client.ehlo("mail.partner.test")
        assert code == 250 and b"ENHANCEDSTATUSCODES" in text  # EHLO keywords untouched
        replies = [
            client.docmd("DATA"),  # 503 need MAIL
            client.docmd("RCPT", "TO:<x@ourcorp.example>"),  # 503 need MAIL
            client.docmd("BOGUS"),  # 500 not recognized
            client.docmd("MAIL", "FROM:<a@partner.test> BODY=9BIT"),  # 501 bad BODY
            client.docmd("MAIL", "FROM:<a@partner.test>"),  # 250
            client.docmd("MAIL", "FROM:<b@partner.test>"),  # 503 nested
            client.docmd("RSET"),  # 250
            client.docmd("NOOP"),  # 250
            client.docmd("VRFY", "alice"),  # 252
            client.docmd("EXPN", "staff"),  # 502
        ]
        for code, text in replies:
            assert re.match(rb"[245]\.\d{1,3}\.\d{1,3} ", text), (code, text)
        assert [code for code, _ in replies] == [503, 503, 500, 501, 250, 503, 250, 250, 252,
                                                 502]
        assert replies[0][1].startswith(b"5.5.1 ")  # bad sequence of commands
        assert replies[2][1].startswith(b"5.5.2 ")  # syntax error
        code, text = client.docmd("QUIT")
        assert (code, text[:6]) == (221, b"2.0.0 ")
