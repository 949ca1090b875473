"""The content check through `mailward check --json`: phrase rules in four languages on decoded
text of every part, deceptive links, login forms, and the combination with who is asking."""

from __future__ import annotations

import base64
import quopri
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import check_json, symbols

CONFIG = """
[site]
authserv_id = "mx.ourcorp.example"
domains = ["ourcorp.example"]
[identity]
protected_names = ["System Administrator", "IT Support", "Jane Smith"]
partner_domains = ["paybank.test"]
"""
SITE_IP = "198.51.100.7"
OUTSIDE_IP = "192.0.2.1"
INTERNAL = "Kim Lee <kim.lee@ourcorp.example>"  # authenticated when sent from SITE_IP


def zones() -> dict[str, Any]:
    z: dict[str, Any] = {
        "ourcorp.example": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
        "_dmarc.ourcorp.example": [{"TXT": "v=DMARC1; p=none"}],
    }
    for domain in ("freemail.test", "0urcorp.example"):
        z[domain] = [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]
        z[f"_dmarc.{domain}"] = [{"TXT": "v=DMARC1; p=none"}]
    return z  # nobody.test publishes nothing: its mail cannot be authenticated


def message(body: bytes | str, *, from_: str = INTERNAL, subject: str = "Hello",
            content_type: str = "text/plain; charset=utf-8", cte: str = "8bit") -> bytes:
    head = (
        f"From: {from_}\r\nTo: staff@ourcorp.example\r\nSubject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 09:00:00 +0000\r\nMessage-ID: <c1@example.net>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head.encode("utf-8") + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def run(tmp_path: Path, raw: bytes, *, ip: str = SITE_IP) -> dict[str, Any]:
    return check_json(tmp_path, raw, zones(), ip=ip, config=CONFIG)


def content_symbols(report: dict[str, Any]) -> set[str]:
    return {f["symbol"] for f in report["findings"] if f["check"] == "content"}


def detail(report: dict[str, Any], symbol: str) -> str:
    return next(f["detail"] for f in report["findings"] if f["symbol"] == symbol)


# --- phrase rules, four languages; from an authenticated internal sender: findings only --------

PHRASES = [
    ("en", "CONTENT_PASSWORD_SET", "Please set your password to Welcome2024 today."),
    ("en", "CONTENT_PASSWORD_SET", "Change your password to 'letmein' now."),
    ("en", "CONTENT_PASSWORD_SET", "Your new password is: Summer#23"),
    ("en", "CONTENT_PASSWORD_SET", "Your password has been reset to Start123! for now."),
    ("de", "CONTENT_PASSWORD_SET", "Bitte setzen Sie Ihr Passwort auf Sommer2024."),
    ("de", "CONTENT_PASSWORD_SET", "Ändern Sie Ihr Kennwort sofort in „Start123“."),
    ("de", "CONTENT_PASSWORD_SET", "Ihr neues Passwort lautet: Herbst2024"),
    ("fr", "CONTENT_PASSWORD_SET", "Définissez votre mot de passe en Bienvenue2024."),
    ("fr", "CONTENT_PASSWORD_SET", "Votre nouveau mot de passe est « Soleil#1 »."),
    ("es", "CONTENT_PASSWORD_SET", "Cambie su contraseña a Hola2024 hoy."),
    ("es", "CONTENT_PASSWORD_SET", "Su nueva contraseña es: Verano2024"),
    ("en", "CONTENT_CREDENTIAL_REQUEST", "Could you send me your username and password?"),
    ("en", "CONTENT_CREDENTIAL_REQUEST", "Reply with the 6-digit code you just received."),
    ("en", "CONTENT_CREDENTIAL_REQUEST", "What is your VPN password?"),
    ("en", "CONTENT_CREDENTIAL_REQUEST", "Please verify your mailbox at the link below."),
    ("de", "CONTENT_CREDENTIAL_REQUEST", "Schicken Sie mir bitte Ihr Kennwort."),
    ("fr", "CONTENT_CREDENTIAL_REQUEST", "Envoyez-moi votre mot de passe."),
    ("es", "CONTENT_CREDENTIAL_REQUEST", "Envíeme su contraseña, por favor."),
    ("en", "CONTENT_SENSITIVE_FILE_REQUEST", "Please send me a copy of the password file."),
    ("en", "CONTENT_SENSITIVE_FILE_REQUEST", "Can you email me /etc/shadow from the server?"),
    ("en", "CONTENT_SENSITIVE_FILE_REQUEST", "Forward me the SSH private key for the build box."),
    ("en", "CONTENT_SENSITIVE_FILE_REQUEST", "I need the list of all user passwords."),
    ("de", "CONTENT_SENSITIVE_FILE_REQUEST", "Senden Sie mir eine Kopie der Passwortdatei."),
    ("fr", "CONTENT_SENSITIVE_FILE_REQUEST", "Envoyez-moi le fichier des mots de passe."),
    ("es", "CONTENT_SENSITIVE_FILE_REQUEST", "Envíeme el archivo de contraseñas."),
    ("en", "CONTENT_ACCOUNT_THREAT", "Otherwise your account will be suspended."),
    ("de", "CONTENT_ACCOUNT_THREAT", "Sonst wird Ihr Konto gesperrt."),
    ("fr", "CONTENT_ACCOUNT_THREAT", "Sinon votre compte sera supprimé."),
    ("es", "CONTENT_ACCOUNT_THREAT", "Si no, su cuenta será bloqueada."),
    ("en", "CONTENT_URGENCY", "Do it within 24 hours."),
    ("de", "CONTENT_URGENCY", "Das ist dringend."),
    ("fr", "CONTENT_URGENCY", "Faites-le dans les 24 heures."),
    ("es", "CONTENT_URGENCY", "Hágalo lo antes posible."),
    ("en", "CONTENT_SECRECY", "Do not mention this to anyone."),
    ("de", "CONTENT_SECRECY", "Sagen Sie niemandem davon."),
    ("fr", "CONTENT_SECRECY", "N'en parlez à personne."),
    ("es", "CONTENT_SECRECY", "No se lo diga a nadie."),
    ("en", "CONTENT_PAYMENT_CHANGE", "Our bank details have changed, see the new account."),
    ("de", "CONTENT_PAYMENT_CHANGE", "Bitte beachten Sie unsere neue Bankverbindung."),
    ("fr", "CONTENT_PAYMENT_CHANGE", "Voici nos nouvelles coordonnées bancaires."),
    ("es", "CONTENT_PAYMENT_CHANGE", "Estos son nuestros nuevos datos bancarios."),
]


@pytest.mark.parametrize(("language", "symbol", "text"), PHRASES)
def test_phrase_from_authenticated_internal_sender_is_only_a_finding(
    tmp_path: Path, language: str, symbol: str, text: str
) -> None:
    report = run(tmp_path, message(f"Hello,\n\n{text}\n\nKim\n"))
    found = content_symbols(report)
    assert symbol in found
    assert not {s for s in found if s.startswith("CONTENT_REQUEST_")}
    f = next(f for f in report["findings"] if f["symbol"] == symbol)
    assert f["advice"]
    assert report["verdict"]["disposition"] == "accept"


@pytest.mark.parametrize(
    "text",
    [
        "Please change your password to something only you know.",
        "Forgot your password? Click here to reset your password.",
        "To unsubscribe, visit the page and enter your password.",
        "My password is too weak, I will change it.",
        "Send me the code so I can review the patch.",
        "Please send me the public key, id_rsa.pub, for the new server.",
        "Our account has been closed after the move; see the minutes.",
        "We changed the order of the agenda items.",
    ],
)
def test_ordinary_wording_is_not_a_request(tmp_path: Path, text: str) -> None:
    report = run(tmp_path, message(f"Hi,\n\n{text}\n"), ip=OUTSIDE_IP)
    assert not content_symbols(report) - {"CONTENT_URGENCY"}


# --- decoding: transfer encodings, charsets, HTML, nesting, evasions ----------------------------

SEED = "Please set your password to Welcome2024 or your account will be suspended."


def _mixed(inner: str) -> str:
    return (
        "--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        "--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee below.\r\n"
        f"--inner\r\n{inner}\r\n--inner--\r\n"
        "--outer\r\nContent-Type: application/pdf; name=a.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--outer--\r\n"
    )


@pytest.mark.parametrize(
    ("content_type", "cte", "body"),
    [
        ("text/plain; charset=utf-8", "quoted-printable",
         quopri.encodestring(SEED.encode() * 3).decode()),
        ("text/plain; charset=utf-8", "base64", base64.encodebytes(SEED.encode()).decode()),
        ("text/plain; charset=iso-8859-1", "8bit",
         "Bitte ändern Sie Ihr Passwort auf Sommer2024.".encode("iso-8859-1")),
        ("text/plain; charset=utf-16", "base64",
         base64.encodebytes(SEED.encode("utf-16")).decode()),
        ("text/html; charset=utf-8", "7bit",
         "<html><style>p{}</style><body><p>Please <b>set</b> your pass<i>word</i> to "
         "<span>Welcome2024</span></p></body></html>"),
        ("multipart/mixed; boundary=outer", "7bit",
         _mixed("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
                "base64\r\n\r\n" + base64.encodebytes(f"<p>{SEED}</p>".encode()).decode())),
        ("message/rfc822", "7bit",
         "From: a@b.test\r\nSubject: fwd\r\nContent-Type: text/plain\r\n\r\n" + SEED),
        ("text/plain; charset=utf-8", "8bit", "Please set your pass\u200bword to Welcome2024."),
        ("text/plain; charset=utf-8", "8bit", "Please set your раssword to Welcome2024."),
    ],
    ids=["qp", "base64", "latin1", "utf16", "html", "nested", "rfc822", "zero-width",
         "cyrillic"],
)
def test_decoded_text_of_every_part(tmp_path: Path, content_type: str, cte: str,
                                    body: str | bytes) -> None:
    report = run(tmp_path, message(body, content_type=content_type, cte=cte))
    assert "CONTENT_PASSWORD_SET" in content_symbols(report)


def test_subject_is_read(tmp_path: Path) -> None:
    report = run(tmp_path, message("See subject.", subject="Send me a copy of the password file"))
    assert "CONTENT_SENSITIVE_FILE_REQUEST" in content_symbols(report)


def test_text_attachments_are_not_read(tmp_path: Path) -> None:
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nLogs attached.\r\n--b\r\n"
        "Content-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment\r\n\r\n"
        f"{SEED}\r\n--b--\r\n"
    )
    report = run(tmp_path, message(body, content_type="multipart/mixed; boundary=b"))
    assert "CONTENT_PASSWORD_SET" not in content_symbols(report)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/mixed", "no boundary at all"),
        ("multipart/mixed; boundary=x", "--x\r\nContent-Type: text/plain\r\n\r\nunterminated"),
        ("text/plain; charset=no-such-charset", "caf\xe9"),
        ("text/html", "<a href='http://[::1'>x</a><<<>>><!-- <form"),
    ],
)
def test_broken_mime_never_crashes(tmp_path: Path, content_type: str, body: str) -> None:
    raw = message(body.encode("latin-1"), content_type=content_type, cte="base64")
    report = run(tmp_path, raw)
    assert "CONTENT_TEMPERROR" not in symbols(report)


# --- links and forms -------------------------------------------------------------------------


def html(body: str) -> bytes:
    return message(f"<html><body>{body}</body></html>", content_type="text/html; charset=utf-8")


def test_link_showing_a_partner_domain_leading_elsewhere(tmp_path: Path) -> None:
    report = run(tmp_path, html('<a href="https://evil.test/login">https://www.paybank.test/'
                                "login</a>"))
    assert "CONTENT_LINK_MISMATCH_PROTECTED" in content_symbols(report)
    assert "paybank.test" in detail(report, "CONTENT_LINK_MISMATCH_PROTECTED")


def test_link_showing_one_domain_leading_to_another(tmp_path: Path) -> None:
    report = run(tmp_path, html('<a href="http://click.tracker.test/r?1">www.news.example.org</a>'))
    found = content_symbols(report)
    assert "CONTENT_LINK_MISMATCH" in found and "CONTENT_LINK_MISMATCH_PROTECTED" not in found
    assert "www.news.example.org" in detail(report, "CONTENT_LINK_MISMATCH")


@pytest.mark.parametrize(
    "anchor",
    [
        '<a href="https://www.paybank.test/login">paybank.test</a>',
        '<a href="https://evil.test/">click here</a>',
        '<a href="https://evil.test/">report.pdf</a>',
        '<a href="mailto:x@evil.test">paybank.test</a>',
    ],
)
def test_honest_links(tmp_path: Path, anchor: str) -> None:
    report = run(tmp_path, html(anchor))
    assert not content_symbols(report) & {"CONTENT_LINK_MISMATCH",
                                          "CONTENT_LINK_MISMATCH_PROTECTED"}


@pytest.mark.parametrize(
    "raw",
    [
        html('<a href="https://0urcorp.example/owa">Outlook Web Access</a>'),
        message("Log in at https://ourcorp.example.login-check.test/reset today."),
    ],
    ids=["html", "plain-text-url"],
)
def test_link_to_lookalike_domain(tmp_path: Path, raw: bytes) -> None:
    report = run(tmp_path, raw)
    assert "CONTENT_LINK_LOOKALIKE" in content_symbols(report)
    assert "ourcorp.example" in detail(report, "CONTENT_LINK_LOOKALIKE")


def test_login_form_in_html_attachment(tmp_path: Path) -> None:
    page = (
        "<html><body><form action='https://collect.evil.test/p' method=post>"
        "<input name=u><input type=password name=p></form></body></html>"
    )
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nPlease open the attached invoice.\r\n--b\r\n"
        "Content-Type: application/octet-stream; name=\"invoice.html\"\r\n"
        "Content-Disposition: attachment; filename=\"invoice.html\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(page.encode()).decode() + "--b--\r\n"
    )
    report = run(tmp_path, message(body, content_type="multipart/mixed; boundary=b"))
    assert "CONTENT_LOGIN_FORM" in content_symbols(report)
    assert "invoice.html" in detail(report, "CONTENT_LOGIN_FORM")
    assert "collect.evil.test" in detail(report, "CONTENT_LOGIN_FORM")


# --- the combination: who asks -----------------------------------------------------------------

REQUEST = "Hi,\n\nplease send me a copy of the password file.\n\nThanks\n"


def test_request_from_authenticated_internal_sender(tmp_path: Path) -> None:
    report = run(tmp_path, message(REQUEST), ip=SITE_IP)
    assert content_symbols(report) == {"CONTENT_SENSITIVE_FILE_REQUEST"}
    assert report["verdict"]["disposition"] == "accept"


def test_request_from_unauthenticated_sender_is_quarantined(tmp_path: Path) -> None:
    report = run(tmp_path, message(REQUEST, from_="Audit Office <audit@nobody.test>"),
                 ip=OUTSIDE_IP)
    assert "CONTENT_REQUEST_UNAUTHENTICATED" in content_symbols(report)
    assert "did not prove who they are" in detail(report, "CONTENT_REQUEST_UNAUTHENTICATED")
    assert report["verdict"]["disposition"] == "quarantine"


@pytest.mark.parametrize(
    ("from_", "posing"),
    [
        ("Help <it@0urcorp.example>", "lookalike domain"),
        ("Jane Smith <jane.smith@freemail.test>", "name of one of our people"),
        ('"accounts@ourcorp.example" <js@freemail.test>', "addresses in its name"),
    ],
)
def test_request_from_impersonator_is_quarantined(tmp_path: Path, from_: str,
                                                  posing: str) -> None:
    report = run(tmp_path, message(REQUEST, from_=from_), ip=OUTSIDE_IP)
    assert "DMARC_PASS" in symbols(report)  # the impersonator's own domain authenticates
    assert "CONTENT_REQUEST_IMPERSONATION" in content_symbols(report)
    assert posing in detail(report, "CONTENT_REQUEST_IMPERSONATION")
    assert report["verdict"]["disposition"] == "quarantine"


def test_request_from_own_domain_not_authenticated(tmp_path: Path) -> None:
    report = run(tmp_path, message(REQUEST, from_="<kim.lee@ourcorp.example>"), ip=OUTSIDE_IP)
    assert "CONTENT_REQUEST_IMPERSONATION" in content_symbols(report)
    assert report["verdict"]["disposition"] in ("quarantine", "reject")


def test_request_from_authenticated_outsider_is_tagged(tmp_path: Path) -> None:
    report = run(tmp_path, message(REQUEST, from_="Sam <sam@freemail.test>"), ip=OUTSIDE_IP)
    assert "CONTENT_REQUEST_EXTERNAL_SENDER" in content_symbols(report)
    assert "from outside our organization (freemail.test)" in detail(
        report, "CONTENT_REQUEST_EXTERNAL_SENDER")
    assert report["verdict"]["disposition"] == "tag"


def test_seed_message_from_outside_is_quarantined(tmp_path: Path) -> None:
    raw = message(
        "Dear user,\n\nset your password to Welcome2024 or your account is suspended.\n",
        from_='"System Administrator" <sysadmin@freemail.test>',
    )
    report = run(tmp_path, raw, ip=OUTSIDE_IP)
    found = symbols(report)
    assert {"IDENTITY_DISPLAY_NAME_PROTECTED", "CONTENT_PASSWORD_SET",
            "CONTENT_ACCOUNT_THREAT", "CONTENT_REQUEST_IMPERSONATION"} <= found
    assert report["verdict"]["disposition"] == "quarantine"
