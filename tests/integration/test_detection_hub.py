"""Every impersonation and social-engineering finding through the running hub: one message per
case over real SMTP, its findings and disposition read back from the central log.

The hub is the site ourcorp.example; its own mail comes from 127.0.0.1 (its SPF), everybody else
connects from 127.0.0.2, which the outside domains' SPF allows (they authenticate as
themselves: what gives them away is who they pretend to be and what they ask).
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mailward.store import Store, StoredTransaction
from tests.integration.hubproc import HubProcess, example_zones

SITE_IP, OUTSIDE_IP = "127.0.0.1", "127.0.0.2"
OUTSIDE = ["freemail.test", "other.test", "esp.test", "0urcorp.example", "paybnak.test",
           "ourcorp.example.login-check.test", "xn--urcorp-vqf.example"]


def zones() -> dict[str, Any]:
    z = example_zones()
    z["ourcorp.example"] = [{"TXT": f"v=spf1 ip4:{SITE_IP} -all"}]
    z["_dmarc.ourcorp.example"] = [{"TXT": "v=DMARC1; p=none"}]
    for domain in OUTSIDE:
        z[domain] = [{"TXT": f"v=spf1 ip4:{OUTSIDE_IP} -all"}]
    # nobody.test publishes nothing: its mail cannot be authenticated
    return z


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = HubProcess(tmp_path_factory.mktemp("hub"), zones(), extra_config=(
        '[identity]\nprotected_names = ["System Administrator", "IT Support", "Jane Smith"]\n'
        'partner_domains = ["paybank.test"]\n'
    ))
    process.start()
    yield process
    assert process.stop() == 0, process.log()


@dataclass(frozen=True)
class Case:
    name: str
    from_: str
    body: str
    mail_from: str = ""  # default: the From address
    headers: str = ""
    content_type: str = "text/plain; charset=utf-8"
    ip: str = OUTSIDE_IP


def raw(case: Case, n: int) -> bytes:
    head = (f"From: {case.from_}\r\nTo: staff@ourcorp.example\r\nSubject: {case.name}\r\n"
            f"Message-ID: <case-{n}@mailward.test>\r\n{case.headers}MIME-Version: 1.0\r\n"
            f"Content-Type: {case.content_type}\r\n\r\n")
    return (head + case.body.replace("\n", "\r\n")).encode("utf-8")


def deliver(hub: HubProcess, case: Case, n: int) -> tuple[int, StoredTransaction]:
    """Send the case over SMTP; the final reply code and the logged transaction."""
    mail_from = case.mail_from or case.from_.rpartition("<")[2].rstrip(">")
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30,
                      source_address=(case.ip, 0)) as client:
        client.ehlo("mail.sender.test")
        try:
            client.sendmail(mail_from, ["staff@ourcorp.example"], raw(case, n))
            code = 250
        except smtplib.SMTPDataError as refused:
            code = refused.smtp_code
    deadline = time.monotonic() + 15
    with Store.open(data_dir=hub.data_dir) as store:
        while time.monotonic() < deadline:
            found = store.find_transactions(message_id=f"<case-{n}@mailward.test>")
            if found:
                return code, found[0]
            time.sleep(0.05)
    raise AssertionError(f"{case.name} not logged:\n{hub.log()}")


HELLO = "Hello,\nsee you at the meeting.\n"
CASES: list[tuple[Case, str, str]] = [  # (case, symbol expected, disposition: "tag+" = or worse)
    (Case("protected name", '"System Administrator" <sysadmin@freemail.test>', HELLO),
     "IDENTITY_DISPLAY_NAME_PROTECTED", "tag+"),
    (Case("folded protected name", '"IT-Support Team" <it@freemail.test>', HELLO),
     "IDENTITY_DISPLAY_NAME_PROTECTED", "tag+"),
    (Case("our address in the name", '"ceo@ourcorp.example" <boss@freemail.test>', HELLO),
     "IDENTITY_DISPLAY_NAME_OWN_ADDRESS", "tag+"),
    (Case("another address in the name", '"orders@bigshop.test" <pay@other.test>', HELLO),
     "IDENTITY_DISPLAY_NAME_ADDRESS", "any"),
    (Case("our domain unauthenticated", "Boss <ceo@ourcorp.example>", HELLO,
          mail_from="bounce@freemail.test"),
     "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED", "reject"),
    (Case("edit distance lookalike", "Support <help@0urcorp.example>", HELLO),
     "IDENTITY_LOOKALIKE_DOMAIN", "tag+"),
    (Case("our domain as a subdomain", "Login <check@ourcorp.example.login-check.test>", HELLO),
     "IDENTITY_LOOKALIKE_DOMAIN", "tag+"),
    (Case("partner lookalike", "Billing <billing@paybnak.test>", HELLO),
     "IDENTITY_LOOKALIKE_DOMAIN", "tag+"),
    (Case("homoglyph domain", "Support <help@xn--urcorp-vqf.example>", HELLO),
     "IDENTITY_HOMOGLYPH_DOMAIN", "tag+"),
    (Case("reply-to elsewhere", "Anna <anna@other.test>", HELLO,
          headers="Reply-To: anna.private@freemail.test\r\n"),
     "IDENTITY_REPLY_TO_DIVERGENT", "any"),
    (Case("return-path elsewhere", "Anna <anna@other.test>", HELLO,
          mail_from="bounces@esp.test"),
     "IDENTITY_RETURN_PATH_DIVERGENT", "any"),
    (Case("password set", "Anna <anna@other.test>",
          "Please set your password to Welcome2024 today.\n"), "CONTENT_PASSWORD_SET", "any"),
    (Case("password file", "Anna <anna@other.test>",
          "Please send me a copy of the password file.\n"),
     "CONTENT_SENSITIVE_FILE_REQUEST", "any"),
    (Case("mfa code", "Anna <anna@other.test>", "Reply with the 6-digit code you just "
          "received.\n"), "CONTENT_CREDENTIAL_REQUEST", "any"),
    (Case("suspension threat", "Anna <anna@other.test>",
          "Otherwise your account will be suspended.\n"), "CONTENT_ACCOUNT_THREAT", "any"),
    (Case("secrecy", "Anna <anna@other.test>", "Do not mention this to anyone.\n"),
     "CONTENT_SECRECY", "any"),
    (Case("bank details", "Anna <anna@other.test>",
          "Our bank details have changed, see the new account.\n"),
     "CONTENT_PAYMENT_CHANGE", "any"),
    (Case("german", "Anna <anna@other.test>", "Bitte setzen Sie Ihr Passwort auf Sommer2024.\n"),
     "CONTENT_PASSWORD_SET", "any"),
    (Case("french", "Anna <anna@other.test>", "Envoyez-moi le fichier des mots de passe.\n"),
     "CONTENT_SENSITIVE_FILE_REQUEST", "any"),
    (Case("spanish", "Anna <anna@other.test>", "Si no, su cuenta será bloqueada.\n"),
     "CONTENT_ACCOUNT_THREAT", "any"),
    (Case("link text names a partner", "Anna <anna@other.test>",
          '<p>Pay at <a href="http://collect.other.test/pay">https://www.paybank.test/pay</a>'
          "</p>\n", content_type="text/html; charset=utf-8"),
     "CONTENT_LINK_MISMATCH_PROTECTED", "tag+"),
    (Case("link to a lookalike", "Anna <anna@other.test>",
          '<p><a href="http://0urcorp.example/reset">Reset here</a></p>\n',
          content_type="text/html; charset=utf-8"), "CONTENT_LINK_LOOKALIKE", "tag+"),
    (Case("login form attached", "Anna <anna@other.test>",
          '--b\nContent-Type: text/plain\n\nSee the attached page.\n--b\n'
          'Content-Type: text/html; name="login.html"\n'
          'Content-Disposition: attachment; filename="login.html"\n\n'
          '<form action="http://collect.other.test/p"><input type="password" name="p">'
          "</form>\n--b--\n", content_type='multipart/mixed; boundary="b"'),
     "CONTENT_LOGIN_FORM", "tag+"),
    # the combination: the same request from an unauthenticated sender is quarantined ...
    (Case("request unauthenticated", "Anna <anna@nobody.test>",
          "Please set your password to Welcome2024 today.\n"),
     "CONTENT_REQUEST_UNAUTHENTICATED", "quarantine"),
    # ... from an impersonator too ...
    (Case("request impersonating", '"IT Support" <it@freemail.test>',
          "Please set your password to Welcome2024 today.\n"),
     "CONTENT_REQUEST_IMPERSONATION", "quarantine+"),
    # ... and from an authenticated colleague it is only a finding
    (Case("request internal", "Kim Lee <kim.lee@ourcorp.example>",
          "Please set your password to Welcome2024 today.\n", ip=SITE_IP),
     "CONTENT_PASSWORD_SET", "accept"),
]
RANK = {"accept": 0, "tag": 1, "quarantine": 2, "reject": 3}


@pytest.mark.parametrize(("case", "symbol", "expected"), CASES, ids=[c.name for c, _, _ in CASES])
def test_finding_through_the_hub(hub: HubProcess, case: Case, symbol: str,
                                 expected: str) -> None:
    n = [c.name for c, _, _ in CASES].index(case.name)
    code, tx = deliver(hub, case, n)
    symbols = {f.symbol for f in tx.findings}
    assert symbol in symbols, (symbols, tx.disposition)
    if expected.endswith("+"):
        assert RANK[tx.disposition] >= RANK[expected[:-1]], (tx.disposition, symbols)
    elif expected != "any":
        assert tx.disposition == expected, (tx.disposition, symbols)
    assert code == (550 if tx.disposition == "reject" else 250)
    if tx.disposition == "tag":  # delivered with the banner naming the reason
        delivered = [m for m in hub.maildir("staff@ourcorp.example")
                     if f"<case-{n}@mailward.test>".encode() in m]
        assert delivered and b"X-Mailward-Warning:" in delivered[0]
