"""A tagged message is delivered with a warning banner that teaches; MIME and attachments intact."""

from __future__ import annotations

import base64
import email
import email.policy
import smtplib
from pathlib import Path

import yaml

from tests.integration.hubproc import HubProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ATTACHMENT = bytes(range(256)) * 20


def tagged_message() -> bytes:
    encoded = base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n")
    return (
        b'From: "IT Support" <helpdesk.team@freemail.test>\r\n'
        b"To: staff@ourcorp.example\r\nSubject: Quarterly newsletter\r\n"
        b"Message-ID: <news-1@freemail.test>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hello all, here is the newsletter.\r\n"
        b"--outer\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded +
        b"--outer--\r\n"
    )


def test_tagged_message_carries_the_banner(tmp_path: Path) -> None:
    zones = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    zones["freemail.test"] = [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}]
    zones["_dmarc.freemail.test"] = [{"TXT": "v=DMARC1; p=none"}]
    hub = HubProcess(tmp_path, zones, extra_config=(
        '[identity]\nprotected_names = ["IT Support", "System Administrator"]\n'
        '[banner]\nreport_address = "abuse@ourcorp.example"\n'
    )).start()
    try:
        with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as c:
            c.ehlo("mail.freemail.test")
            forged_warning = b"X-Mailward-Warning: none, trust me\r\n"
            c.sendmail("helpdesk.team@freemail.test", ["staff@ourcorp.example"],
                       forged_warning + tagged_message())
        (delivered,) = hub.maildir("staff@ourcorp.example")
    finally:
        hub.stop()
    message = email.message_from_bytes(delivered, policy=email.policy.default)
    assert message["Subject"].startswith("[Suspicious]")
    warnings = message.get_all("X-Mailward-Warning")
    assert warnings and len(warnings) == 1 and "trust me" not in warnings[0]
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "IT Support" in content and "freemail.test" in content
    assert "never ask you for your password" in content
    assert "abuse@ourcorp.example" in content
    assert "Hello all, here is the newsletter." in content
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content() == ATTACHMENT
    assert not any(part.defects for part in message.walk())
