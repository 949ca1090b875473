"""Warning banners: the reason chosen and worded from real findings, templates in four languages
and site overrides, and the marked message: banners in the parts a reader sees in their own
charset and transfer encoding, attachments and boundaries byte-identical, signed and malformed
messages wrapped with the original intact, and `email` parsing every output without defects."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import logging
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailward import banner, config
from mailward.banner import Warning, apply_warning, check_texts, load_texts, warning_for
from mailward.checks.content import REQUESTS, ContentCheck
from mailward.checks.identity import IdentityCheck
from mailward.dns import ZoneResolver
from mailward.model import (
    Connection,
    Disposition,
    Envelope,
    Finding,
    Message,
    Result,
    Transaction,
    Verdict,
)
from mailward.pipeline import Pipeline
from tests.conftest import SHARED

SITE = {
    "site": {"domains": ["ourcorp.example"], "authserv_id": "mx.ourcorp.example"},
    "identity": {"protected_names": ["System Administrator", "IT Support", "Jane Smith"],
                 "partner_domains": ["paybank.test"]},
}
REPORT = {"report_address": "security@ourcorp.example",
          "report_url": "https://report.ourcorp.example/"}
OUTSIDE_IP = "192.0.2.1"
ATTACKERS = ["freemail.test", "ourc0rp.example", "xn--urcorp-vqf.example"]
EXAMPLE_REASON = (
    "This message uses the name 'System Administrator' but was sent from an outside "
    "address, freemail.test."
)
BUILTIN = Path(banner.__file__).parent / "templates" / "banner"
LANGUAGES = ["en", "de", "fr", "es"]


def make_config(**banner_keys: Any) -> config.Config:
    return config.from_dict({**SITE, "banner": {**REPORT, **banner_keys}})


CONFIG = make_config()


def protected_name_finding(shown: str = "System Administrator", domain: str = "freemail.test",
                           score: float = 6.0) -> Finding:
    """As the identity check reports it (the property names are checked against the real
    check in test_sentences_from_real_findings)."""
    return Finding(
        "identity", "IDENTITY_DISPLAY_NAME_PROTECTED", Result.POLICY, detail="d",
        advice="Our own people write from our own addresses.", score=score,
        properties=(("identity.name", "System Administrator"), ("display.name", shown),
                    ("from.domain", domain)),
        reason="outside address",
    )


def verdict_of(*findings: Finding) -> Verdict:
    return Verdict(Disposition.TAG, sum(f.score for f in findings), list(findings), [])


WARNING_VERDICT = verdict_of(protected_name_finding())
WARNING = warning_for(WARNING_VERDICT, CONFIG)


def mark(raw: bytes, warning: Warning = WARNING, cfg: config.Config = CONFIG) -> bytes:
    return apply_warning(raw, warning, cfg)


# --- message building and reading -----------------------------------------------------------


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


HEAD = ("From: \"System Administrator\" <admin@freemail.test>\nTo: staff@ourcorp.example\n"
        "Subject: Your mailbox\nDate: Fri, 27 Nov 2026 09:00:00 +0000\n"
        "Message-ID: <m1@freemail.test>\nMIME-Version: 1.0\n")
PDF = base64.encodebytes(bytes(range(256)) * 4).replace(b"\n", b"\r\n")
ATTACHMENT = (b"Content-Type: application/pdf; name=\"invoice.pdf\"\r\n"
              b"Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n" + PDF)


def single(ctype: str, body: bytes, cte: str | None = None, head: str = HEAD) -> bytes:
    fields = f"Content-Type: {ctype}\n" + (f"Content-Transfer-Encoding: {cte}\n" if cte else "")
    return crlf(head + fields + "\n") + body


def mixed_alternative(text_body: bytes, html_body: bytes) -> bytes:
    return (crlf(HEAD + 'Content-Type: multipart/mixed; boundary="mix-1"\n\n'
                 "This is a multi-part message in MIME format.\n--mix-1\n"
                 "Content-Type: multipart/alternative; boundary=alt-1\n\n--alt-1\n"
                 "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
                 "quoted-printable\n\n")
            + text_body
            + crlf("\n--alt-1\nContent-Type: text/html; charset=iso-8859-1\n"
                   "Content-Transfer-Encoding: base64\n\n")
            + base64.encodebytes(html_body).replace(b"\n", b"\r\n")
            + crlf("--alt-1--\n\n--mix-1\n") + ATTACHMENT
            + crlf("--mix-1\nContent-Type: message/rfc822\n\nFrom: boss@ourcorp.example\n"
                   "Subject: forwarded\n\nQuoted forward, not to be touched.\n"
                   "--mix-1--\nepilogue\n"))


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def assert_clean(raw: bytes, wrapped_original: bool = False) -> EmailMessage:
    """`email` parses the output without defects (in the original attached by a wrapper
    only the original's own defects may be)."""
    msg = parse(raw)

    def walk(part: EmailMessage, skip_inner: bool) -> None:
        assert part.defects == [], (part.get_content_type(), part.defects)
        if part.is_multipart():
            for i, child in enumerate(part.iter_parts()):
                if skip_inner and i == 1 and child.get_content_type() == "message/rfc822":
                    assert child.defects == []
                    continue
                walk(child, False)  # type: ignore[arg-type]

    walk(msg, wrapped_original)
    for name in ("Subject", "X-Mailward-Warning", "From"):
        if msg[name] is not None:
            assert msg[name].defects == ()
    return msg


def raw_parts(raw: bytes, boundary: str) -> tuple[bytes, list[bytes], bytes]:
    """(preamble, body parts, epilogue) of the multipart with ``boundary``, as bytes."""
    dash = b"\r\n--" + boundary.encode()
    start = raw.index(b"--" + boundary.encode())
    pieces = raw[start - 2 :].split(dash)
    closing = pieces[-1]
    assert closing.startswith(b"--")
    return raw[: start - 2], [p[2:] for p in pieces[1:-1]], closing[2:]


def attached_original(out: bytes) -> bytes:
    """The exact bytes of the message/rfc822 part of a wrapped message."""
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    parts = raw_parts(out, msg.get_boundary() or "")[1]
    assert len(parts) == 2
    head, _, body = parts[1].partition(b"\r\n\r\n")
    assert b"Content-Type: message/rfc822" in head
    return body


def texts_of(msg: EmailMessage) -> dict[str, str]:
    """The decoded text/plain and text/html parts a reader sees (the body alternatives)."""
    out: dict[str, str] = {}
    for kind in ("plain", "html"):
        body = msg.get_body((kind,))
        if body is not None:
            out[kind] = body.get_content().replace("\r\n", "\n")
    return out


FIRST_LINE = WARNING.inline.text.splitlines()[0]


# --- single text parts: charsets and transfer encodings -------------------------------------


def test_plain_ascii_part() -> None:
    raw = single("text/plain; charset=us-ascii", crlf("Please log in today.\n"), "7bit")
    out = mark(raw)
    msg = assert_clean(out)
    text = texts_of(msg)["plain"]
    assert text.startswith(FIRST_LINE + "\n" + EXAMPLE_REASON[:60])
    assert text.endswith("\n\nPlease log in today.\n")
    assert EXAMPLE_REASON in " ".join(text.split())
    assert "security@ourcorp.example" in text and "https://report.ourcorp.example/" in text
    assert msg["Subject"] == "[Suspicious] Your mailbox"
    assert msg["X-Mailward-Warning"].startswith("IDENTITY_DISPLAY_NAME_PROTECTED; score=6.0; ")
    # an English banner is ASCII: the part keeps its charset and encoding, lines are short
    assert msg.get_content_charset() == "us-ascii" and msg["Content-Transfer-Encoding"] == "7bit"
    assert max(len(line) for line in out.split(b"\r\n")) <= 78


def test_quoted_printable_latin1_part() -> None:
    original = "Grüße aus Köln – bitte das Passwort ändern.\n" * 3 + "Ende =\n"
    qp = crlf(original.replace("–", "-")).decode("utf-8").encode("latin-1")
    import quopri

    body = quopri.encodestring(qp)
    raw = single("text/plain; charset=iso-8859-1", body, "quoted-printable")
    msg = assert_clean(mark(raw))
    assert msg.get_content_charset() == "iso-8859-1"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    text = texts_of(msg)["plain"]
    assert text.startswith(FIRST_LINE)
    assert text.endswith(original.replace("–", "-"))


def test_base64_utf8_part() -> None:
    original = "Привет! Grüße. 你好\n" * 20
    body = base64.encodebytes(original.encode("utf-8").replace(b"\n", b"\r\n"))
    raw = single("text/plain; charset=utf-8", body.replace(b"\n", b"\r\n"), "base64")
    out = mark(raw)
    msg = assert_clean(out)
    assert msg["Content-Transfer-Encoding"] == "base64"
    text = texts_of(msg)["plain"]
    assert text.startswith(FIRST_LINE) and text.endswith(original)
    body_lines = out.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76


def test_8bit_latin1_part_stays_8bit_when_the_banner_fits() -> None:
    raw = single("text/plain; charset=iso-8859-1", "Grüße\r\n".encode("latin-1"), "8bit")
    warning = warning_for(verdict_of(protected_name_finding()), make_config(language="fr"))
    out = mark(raw, warning)
    msg = assert_clean(out)
    assert msg["Content-Transfer-Encoding"] == "8bit"
    assert msg.get_content_charset() == "iso-8859-1"
    assert "« System Administrator »".encode("latin-1") in out
    text = texts_of(msg)["plain"]
    assert text.startswith("[!] ATTENTION : ce message") and text.endswith("Grüße\n")


def test_part_moves_to_utf8_only_when_its_charset_cannot_carry_the_banner() -> None:
    # a Cyrillic look-alike name does not fit latin-1: the part becomes UTF-8, still 8bit
    warning = warning_for(verdict_of(protected_name_finding("Sуstem Administrator")), CONFIG)
    raw = single("text/plain; charset=iso-8859-1", "Grüße\r\n".encode("latin-1"), "8bit")
    msg = assert_clean(mark(raw, warning))
    assert msg.get_content_charset() == "utf-8" and msg["Content-Transfer-Encoding"] == "8bit"
    text = texts_of(msg)["plain"]
    assert "'Sуstem Administrator'" in text and text.endswith("Grüße\n")
    # a 7bit us-ascii part with a German banner becomes UTF-8 quoted-printable
    raw = single("text/plain; charset=us-ascii", b"Hello\r\n", "7bit")
    msg = assert_clean(mark(raw, warning_for(WARNING_VERDICT, make_config(language="de"))))
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert texts_of(msg)["plain"].endswith("\n\nHello\n")



def test_lf_only_input_stays_lf_only() -> None:
    raw = single("text/plain", crlf("Hi\n")).replace(b"\r\n", b"\n")
    out = mark(raw)
    assert b"\r" not in out
    assert texts_of(assert_clean(out.replace(b"\n", b"\r\n")))["plain"].endswith("\n\nHi\n")


# --- multipart messages ---------------------------------------------------------------------


def test_alternative_inside_mixed_with_attachments() -> None:
    html = "<html><head><title>x</title></head><body style='a>b'><p>Grüß Gott</p></body></html>"
    raw = mixed_alternative(b"Gr=C3=BC=C3=9Fe, please log in=\r\n now.", html.encode("latin-1"))
    out = mark(raw)
    msg = assert_clean(out)
    texts = texts_of(msg)
    assert texts["plain"].startswith(FIRST_LINE)
    assert texts["plain"].endswith("\n\nGrüße, please log in now.")
    # the HTML banner right after <body ...>, in the part's own latin-1 and base64
    assert re.search(r"<body style='a>b'>\r?\n<table role=\"presentation\"", texts["html"])
    assert texts["html"].endswith("<p>Grüß Gott</p></body></html>")
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    assert html_part.get_content_charset() == "iso-8859-1"
    assert html_part["Content-Transfer-Encoding"] == "base64"
    # preamble, attachment, forwarded message and epilogue are byte-identical
    before = raw_parts(raw, "mix-1")
    after = raw_parts(out, "mix-1")
    assert before[0].split(b"\r\n\r\n", 1)[1] == after[0].split(b"\r\n\r\n", 1)[1]
    assert before[1][1:] == after[1][1:]
    assert before[1][1] + b"\r\n" == ATTACHMENT  # the delimiter owns the CRLF before it
    assert before[2] == after[2] == b"\r\nepilogue\r\n"
    # the alternative's boundaries are unchanged
    assert raw_parts(raw, "alt-1")[2] == raw_parts(out, "alt-1")[2]
    forwarded = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    assert FIRST_LINE not in forwarded[0].as_string()


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<html><body><p>Hi</p></body></html>", "<body>\n<table"),
        ("<!DOCTYPE html><HTML><HEAD><style>/* <body> */</style></HEAD><BODY bgcolor=\"#fff\">"
         "<p>Hi</p></BODY></HTML>", "<BODY bgcolor=\"#fff\">\n<table"),
        ("<html><head><!-- <body> --><title>&lt;body&gt;</title></head><div>Hi</div></html>",
         "</head>\n<table"),
        ("<p>Just a fragment</p>", None),
        ("Plain words in an HTML part", None),
    ],
)
def test_html_with_and_without_a_body_tag(html: str, expected: str | None) -> None:
    raw = single("text/html; charset=utf-8", crlf(html + "\n"))
    msg = assert_clean(mark(raw))
    shown = texts_of(msg)["html"]
    if expected is None:
        assert shown.startswith("\n<table")
    else:
        assert expected in shown
    assert shown.count("<table role=\"presentation\"") == 1
    assert without_banner(shown) == html + "\n"


def without_banner(html: str) -> str:
    start = html.index("\n<table role=\"presentation\"")
    end = html.index("</td></tr></table>\n", start) + len("</td></tr></table>\n")
    return html[:start] + html[end:]


def test_reason_with_script_and_quotes_is_escaped() -> None:
    hostile = '<script>alert("x")</script> O\'Brien\r\nBcc: victim@ourcorp.example'
    warning = warning_for(verdict_of(protected_name_finding(hostile)), CONFIG)
    assert "\n" not in warning.reason and "\r" not in warning.reason
    raw = mixed_alternative(b"Hello", b"<html><body>Hi</body></html>")
    out = mark(raw, warning)
    msg = assert_clean(out)
    html = texts_of(msg)["html"]
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "O&#39;Brien" in html
    plain = " ".join(texts_of(msg)["plain"].split())
    assert "<script>alert(\"x\")</script> O'Brien Bcc:" in plain
    assert msg["Bcc"] is None and len(msg.get_all("X-Mailward-Warning") or []) == 1


def test_forged_warning_header_is_replaced() -> None:
    raw = crlf("X-Mailward-Warning: none; all clear\n") + single("text/plain", b"Hi\r\n")
    msg = assert_clean(mark(raw))
    assert msg.get_all("X-Mailward-Warning") == [WARNING.header]


# --- the subject ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        ("Your mailbox", "[Suspicious] Your mailbox"),
        ("[Suspicious] Your mailbox", "[Suspicious] Your mailbox"),
        ("Re: [Suspicious] Your mailbox", "Re: [Suspicious] Your mailbox"),
        ("AW: RE: Fwd: [suspicious] Your mailbox", "AW: RE: Fwd: [suspicious] Your mailbox"),
        ("Your mailbox [Suspicious]", "[Suspicious] Your mailbox [Suspicious]"),
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", "[Suspicious] Grüße aus Köln"),
        ("=?iso-8859-1?b?W1N1c3BpY2lvdXNdIEdy/N/l?=", "[Suspicious] Grüßå"),
        ("", "[Suspicious]"),
    ],
)
def test_subject_prefixed_once(subject: str, shown: str) -> None:
    raw = single("text/plain", b"Hi\r\n", head=HEAD.replace("Your mailbox", subject))
    msg = assert_clean(mark(raw))
    assert msg["Subject"] == shown
    again = assert_clean(mark(mark(raw)))
    assert again["Subject"] == shown


def test_non_ascii_prefix_before_an_encoded_subject() -> None:
    cfg = make_config(subject_prefix="[Verdächtig]")
    encoded = HEAD.replace("Your mailbox", "=?utf-8?q?Gr=C3=BC=C3=9Fe?=")
    raw = single("text/plain", b"Hi\r\n", head=encoded)
    assert assert_clean(mark(raw, cfg=cfg))["Subject"] == "[Verdächtig] Grüße"
    raw = single("text/plain", b"Hi\r\n")
    assert assert_clean(mark(raw, cfg=cfg))["Subject"] == "[Verdächtig] Your mailbox"


def test_message_without_subject_gets_one() -> None:
    raw = single("text/plain", b"Hi\r\n", head=HEAD.replace("Subject: Your mailbox\n", ""))
    assert assert_clean(mark(raw))["Subject"] == "[Suspicious]"


# --- signed, attachment-only and malformed messages are wrapped -----------------------------

PGP_SIGNED = crlf(
    HEAD + 'Content-Type: multipart/signed; micalg=pgp-sha256;\n'
    ' protocol="application/pgp-signature"; boundary="sig-1"\n\n'
    "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n--sig-1\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    "Please send me the password file.\n--sig-1\n"
    'Content-Type: application/pgp-signature; name="signature.asc"\n\n'
    "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ==\n=abcd\n-----END PGP SIGNATURE-----\n"
    "--sig-1--\n"
)
SMIME_SIGNED = crlf(
    HEAD + 'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\n'
    '\tmicalg=sha-256; boundary="----smime"\n\nThis is an S/MIME signed message\n\n'
    "------smime\nContent-Type: text/html; charset=utf-8\n\n<p>Set your password</p>\n"
    "------smime\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\n"
    "Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"smime.p7s\"\n"
    "\nMIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIC\n"
    "------smime--\n\n"
)
SMIME_OPAQUE = single('application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"',
                      b"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCA\r\n",
                      "base64")
INLINE_PGP = single("text/plain; charset=us-ascii", crlf(
    "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSend me the password file.\n"
    "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ==\n-----END PGP SIGNATURE-----\n"))
MISSING_BOUNDARY = crlf(HEAD + "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\n"
                        "Hello\n--x--\n")
NO_CLOSE_DELIMITER = crlf(HEAD + "Content-Type: multipart/mixed; boundary=x\n\n--x\n"
                          "Content-Type: text/plain\n\nHello\n")


@pytest.mark.parametrize(
    "raw",
    [PGP_SIGNED, SMIME_SIGNED, SMIME_OPAQUE, INLINE_PGP, MISSING_BOUNDARY, NO_CLOSE_DELIMITER],
    ids=["pgp-mime", "smime-multipart-signed", "smime-opaque", "inline-pgp",
         "missing-boundary", "no-close-delimiter"],
)
def test_signed_and_malformed_messages_are_wrapped(raw: bytes) -> None:
    out = mark(raw)
    assert attached_original(out) == raw  # byte for byte: the signature still verifies
    msg = assert_clean(out, wrapped_original=True)
    assert msg["Subject"] == "[Suspicious] Your mailbox"
    assert msg["From"] == raw_header(raw, "From") and msg["Message-ID"] == "<m1@freemail.test>"
    assert msg.get_all("X-Mailward-Warning") == [WARNING.header]
    texts = texts_of(msg)
    assert texts["plain"].startswith(FIRST_LINE)
    assert "The original message is attached below, unchanged" in " ".join(texts["plain"].split())
    assert "<table role=\"presentation\"" in texts["html"]
    inner = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    assert len(inner) == 1


def raw_header(raw: bytes, name: str) -> str:
    return str(parse(raw)[name])


def test_wrapping_keeps_an_8bit_original_intact() -> None:
    raw = PGP_SIGNED.replace(b"Please send", "Schicken Sie mir, Jürgen,".encode())
    out = mark(raw)
    assert attached_original(out) == raw
    assert b"Content-Transfer-Encoding: 8bit" in out
    assert_clean(out, wrapped_original=True)


def test_message_with_only_an_attachment_gets_a_text_part() -> None:
    raw = crlf(HEAD) + ATTACHMENT
    out = mark(raw)
    msg = assert_clean(out)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["multipart/alternative", "application/pdf"]
    # byte-identical, with the message's final CRLF (the delimiter has its own)
    assert raw_parts(out, msg.get_boundary() or "")[1][1] == ATTACHMENT
    assert texts_of(msg)["plain"].startswith(FIRST_LINE)
    assert "attached below" not in texts_of(msg)["plain"]


def test_mixed_message_whose_first_part_is_an_attachment_is_wrapped_as_is() -> None:
    raw = crlf(HEAD + "Content-Type: multipart/mixed; boundary=b\n\n--b\n") + ATTACHMENT + crlf(
        "--b--\n")
    out = mark(raw)
    msg = assert_clean(out)
    inner = raw_parts(out, msg.get_boundary() or "")[1][1]
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert inner == b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body


def test_dkim_signed_message_is_edited_and_its_signature_fields_kept() -> None:
    dkim = crlf("DKIM-Signature: v=1; a=rsa-sha256; d=freemail.test; s=s1; h=from:subject;\n"
                "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=dGVzdA==\n")
    raw = dkim + single("text/plain", b"Hi\r\n")
    out = mark(raw)
    assert dkim in out
    assert texts_of(assert_clean(out))["plain"].startswith(FIRST_LINE)
    wrapping = make_config(wrap_dkim_signed=True)
    assert attached_original(mark(raw, cfg=wrapping)) == raw
    # l=0 signs none of the body: nothing to keep verifiable
    unsigned_body = raw.replace(b"bh=", b"l=0; bh=")
    assert b"message/rfc822" not in mark(unsigned_body, cfg=wrapping)


def test_disabled_banners_leave_the_message_alone() -> None:
    raw = single("text/plain", b"Hi\r\n")
    assert apply_warning(raw, WARNING, make_config(enabled=False)) is raw


# --- languages and site templates -----------------------------------------------------------

TITLES = {
    "en": "[!] CAUTION: this message may not be what it seems.",
    "de": "[!] VORSICHT: Diese Nachricht ist möglicherweise nicht, was sie zu sein",
    "fr": "[!] ATTENTION : ce message n'est peut-être pas ce qu'il semble être.",
    "es": "[!] PRECAUCIÓN: es posible que este mensaje no sea lo que parece.",
}
REASONS = {
    "en": "This message uses the name 'System Administrator' but was sent from an outside",
    "de": "Diese Nachricht verwendet den Namen „System Administrator“, wurde aber von",
    "fr": "Ce message utilise le nom « System Administrator » mais a été envoyé depuis",
    "es": "Este mensaje usa el nombre «System Administrator», pero se envió desde una",
}
RULES = {
    "en": "Our administrators will never ask you for your password",
    "de": "Unsere Administratoren werden Sie niemals nach Ihrem Passwort fragen",
    "fr": "Nos administrateurs ne vous demanderont jamais votre mot de passe",
    "es": "Nuestros administradores nunca le pedirán su contraseña",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language(language: str) -> None:
    cfg = make_config(language=language)
    warning = warning_for(WARNING_VERDICT, cfg)
    assert warning.language == language
    raw = mixed_alternative(b"Hello", b"<html><body>Hi</body></html>")
    msg = assert_clean(mark(raw, warning, cfg))
    texts = texts_of(msg)
    plain = texts["plain"]
    assert plain.startswith(TITLES[language])
    assert REASONS[language] in plain.replace("\n", " ")
    assert RULES[language] in plain.replace("\n", " ")
    assert "security@ourcorp.example" in plain
    assert RULES[language] in texts["html"]
    assert 'href="mailto:security@ourcorp.example"' in texts["html"]
    assert 'href="https://report.ourcorp.example/"' in texts["html"]
    check_texts(cfg)


def test_site_standing_rule_is_shown_as_written() -> None:
    rule = "IT will never ask for your password. Call 1234 when in doubt."
    warning = warning_for(WARNING_VERDICT, make_config(language="fr", standing_rule=rule))
    assert rule in warning.inline.text.replace("\n", " ") and rule in warning.inline.html
    assert RULES["fr"] not in warning.inline.text
    none = warning_for(WARNING_VERDICT, make_config(standing_rule="", report_address="",
                                                    report_url=""))
    assert RULES["en"] not in none.inline.text and "report" not in none.inline.text.lower()


def test_site_template_dir_overrides_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "banner.txt").write_text("SITE WARNING: {{ reason }} ({{ symbol }})\n")
    (tmp_path / "en" / "reasons.toml").write_text(
        "[reason]\n"
        'IDENTITY_DISPLAY_NAME_PROTECTED = "Not really $display_name (from $from_domain)."\n'
    )
    (tmp_path / "it").mkdir()
    (tmp_path / "it" / "banner.txt").write_text("ATTENZIONE: {{ reason }}\n")
    cfg = make_config(template_dir=str(tmp_path))
    warning = warning_for(WARNING_VERDICT, cfg)
    assert warning.inline.text == (
        "SITE WARNING: Not really System Administrator (from freemail.test).\n"
        "(IDENTITY_DISPLAY_NAME_PROTECTED)\n\n"  # wrapped at 76 columns
    )
    assert "<table role=\"presentation\"" in warning.inline.html  # the built-in banner.html
    assert "Not really System Administrator" in warning.inline.html
    msg = assert_clean(mark(single("text/plain", b"Hi\r\n"), warning, cfg))
    assert texts_of(msg)["plain"].startswith("SITE WARNING: Not really System Administrator")
    # a language only the site provides: its files, the rest from the built-in English
    italian = warning_for(WARNING_VERDICT, make_config(template_dir=str(tmp_path), language="it"))
    assert italian.inline.text.startswith("ATTENZIONE: This message uses the name")


def test_broken_site_templates_fall_back_and_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "banner.html").write_text("<p>{{ reason }</p>\n")
    cfg = make_config(template_dir=str(tmp_path))
    with pytest.raises(config.ConfigError, match=r"banner\.html line 1"):
        check_texts(cfg)
    with caplog.at_level(logging.ERROR, logger="mailward.banner"):
        warning = warning_for(WARNING_VERDICT, cfg)
    assert warning.inline == WARNING.inline
    assert "using the built-in en texts" in caplog.text
    caplog.clear()
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "reasons.toml").write_text("[reason\n")
    with caplog.at_level(logging.ERROR, logger="mailward.banner"):
        german = warning_for(WARNING_VERDICT, make_config(template_dir=str(tmp_path),
                                                          language="de"))
    assert german.inline == warning_for(WARNING_VERDICT, make_config(language="de")).inline
    assert "reasons.toml" in caplog.text and "using the built-in de texts" in caplog.text
    with pytest.raises(config.ConfigError, match="no banner texts for 'pt'"):
        check_texts(make_config(language="pt"))
    with pytest.raises(config.ConfigError, match="not a directory"):
        check_texts(make_config(template_dir=str(tmp_path / "absent")))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"language": "../etc"}, "banner.language"),
        ({"report_url": "javascript:alert(1)"}, "banner.report_url"),
        ({"report_address": "security"}, "banner.report_address"),
        ({"subject_prefix": "[X]\r\nBcc: a@b"}, "banner.subject_prefix"),
    ],
)
def test_config_errors(keys: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.from_dict({"banner": keys})


def test_translations_cover_every_finding_the_checks_can_explain() -> None:
    explained = {s for s in IdentityCheck.symbols | ContentCheck.symbols}
    english = load_texts("", "en")
    assert explained <= set(english.reasons)
    assert set(english.requests) == {*REQUESTS, "CONTENT_LOGIN_FORM"}
    placeholders = {k: _names(v) for k, v in english.reasons.items()}
    for language in LANGUAGES[1:]:
        texts = load_texts("", language)
        own = _own_reasons(language)
        assert set(own["reason"]) == set(english.reasons), language
        assert set(own["request"]) == set(english.requests), language
        for key, value in own["reason"].items():
            assert _names(value) == placeholders[key], (language, key)
        assert texts.standing_rule and texts.default_reason


def _own_reasons(language: str) -> dict[str, dict[str, str]]:
    import tomllib

    return tomllib.loads((BUILTIN / language / "reasons.toml").read_text(encoding="utf-8"))


def _names(template: str) -> set[str]:
    import string

    return set(string.Template(template).get_identifiers())


# --- choosing the reason --------------------------------------------------------------------


def test_identity_findings_explain_first_then_score() -> None:
    content = Finding("content", "CONTENT_REQUEST_UNAUTHENTICATED", Result.POLICY,
                      advice="Do not answer.", score=8.5,
                      properties=(("request", "CONTENT_PASSWORD_SET"),))
    reply_to = Finding("identity", "IDENTITY_REPLY_TO_DIVERGENT", Result.POLICY,
                       advice="Check the address.", score=1.0,
                       properties=(("reply-to.domain", "evil.test"),
                                   ("from.domain", "freemail.test")))
    no_advice = Finding("spf", "SPF_FAIL", Result.FAIL, score=9.0,
                        properties=(("smtp.mailfrom", "x@freemail.test"),))
    identity = protected_name_finding(score=2.0)
    w = warning_for(verdict_of(content, reply_to, no_advice, identity), CONFIG)
    assert (w.symbol, w.reason) == ("IDENTITY_DISPLAY_NAME_PROTECTED", EXAMPLE_REASON)
    w = warning_for(verdict_of(content, reply_to, no_advice), CONFIG)
    assert w.reason == ("This message tells you to set your password to a given value, but "
                        "its sender did not prove who they are.")
    w = warning_for(verdict_of(reply_to, no_advice), CONFIG)
    assert w.reason == ("Replies to this message would go to evil.test, not to the sender's "
                        "organization, freemail.test.")
    w = warning_for(verdict_of(no_advice), CONFIG)
    assert w.reason == ("This message came from a server that freemail.test does not allow to "
                        "send its mail.")
    w = warning_for(verdict_of(), CONFIG)
    assert (w.symbol, w.reason) == ("", "This message did not pass our checks against forged "
                                        "and deceptive mail.")


def test_a_sentence_missing_its_data_is_skipped() -> None:
    broken = Finding("identity", "IDENTITY_LOOKALIKE_DOMAIN", Result.POLICY, advice="a",
                     score=6.0)  # no properties: "$lookalike_domain" cannot be filled in
    threat = Finding("content", "CONTENT_ACCOUNT_THREAT", Result.POLICY, advice="b", score=1.5)
    w = warning_for(verdict_of(broken, threat), CONFIG)
    assert w.symbol == "CONTENT_ACCOUNT_THREAT" and "$" not in w.reason


def test_attacker_values_are_cleaned_and_shortened() -> None:
    shown = "System\u202eAdministrator\u200b " + "x" * 200
    w = warning_for(verdict_of(protected_name_finding(shown)), CONFIG)
    assert "\u202e" not in w.reason and "\u200b" not in w.reason
    assert "System Administrator xxx" in w.reason and "…'" in w.reason
    assert len(w.reason) < 200


# --- reasons from the real checks -----------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    zones: dict[str, Any] = {
        "ourcorp.example": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
        "_dmarc.ourcorp.example": [{"TXT": "v=DMARC1; p=none"}],
    }
    for domain in ATTACKERS:
        zones[domain] = [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]
        zones[f"_dmarc.{domain}"] = [{"TXT": "v=DMARC1; p=none"}]
    return Pipeline(CONFIG, ZoneResolver(zones))


def evaluate(pipeline: Pipeline, from_: str, body: str, mail_from: str) -> Verdict:
    raw = crlf(HEAD.replace('"System Administrator" <admin@freemail.test>', from_)
               + "Content-Type: text/plain; charset=utf-8\n\n" + body + "\n")
    tx = Transaction(Connection(ip=OUTSIDE_IP, helo="mail.example.net"),
                     Envelope(mail_from, ["staff@ourcorp.example"]), Message(raw))
    return asyncio.run(pipeline.evaluate(tx, now=1_800_000_000.0)).verdict


@pytest.mark.parametrize(
    ("from_", "body", "mail_from", "symbol", "reason"),
    [
        ('"System Administrator" <admin@freemail.test>',
         "Set your password to Welcome2024 or your account will be suspended.",
         "admin@freemail.test", "IDENTITY_DISPLAY_NAME_PROTECTED", EXAMPLE_REASON),
        ('"Sуstem Administrator" <admin@freemail.test>', "See you.", "admin@freemail.test",
         "IDENTITY_DISPLAY_NAME_PROTECTED",
         "This message uses the name 'Sуstem Administrator', made to look like 'System "
         "Administrator', but was sent from an outside address, freemail.test."),
        ("<it@ourc0rp.example>", "Please send me the password file.", "it@ourc0rp.example",
         "IDENTITY_LOOKALIKE_DOMAIN",
         "This message comes from ourc0rp.example, a domain made to look like ourcorp.example."),
        ("<it@xn--urcorp-vqf.example>", "Hello.", "it@xn--urcorp-vqf.example",
         "IDENTITY_HOMOGLYPH_DOMAIN",
         "This message comes from a domain spelled with look-alike letters to imitate "
         "ourcorp.example; its real name is xn--urcorp-vqf.example."),
        ("<someone@unknown.test>", "Please reply with your password and login details.",
         "someone@unknown.test", "CONTENT_REQUEST_UNAUTHENTICATED",
         "This message asks for a password, login details or a security code, but its sender "
         "did not prove who they are."),
    ],
    ids=["protected-name", "imitated-name", "lookalike", "homoglyph", "request"],
)
def test_sentences_from_real_findings(
    pipeline: Pipeline, from_: str, body: str, mail_from: str, symbol: str, reason: str
) -> None:
    verdict = evaluate(pipeline, from_, body, mail_from)
    assert verdict.disposition is not Disposition.ACCEPT
    warning = warning_for(verdict, CONFIG)
    assert (warning.symbol, warning.reason) == (symbol, reason)


# --- never raises, and what `email` can parse stays parseable -------------------------------

SEEDS = [
    single("text/plain; charset=iso-8859-1", "Grüße\r\n".encode("latin-1"), "8bit"),
    mixed_alternative(b"Gr=C3=BC=C3=9Fe", b"<html><body>Hi</body></html>"),
    PGP_SIGNED, crlf(HEAD) + ATTACHMENT,
    single("text/html", crlf("<!DOCTYPE html><html><head><title><body></title></head>"
                              "<body bgcolor='>'>Hi</body></html>\n")),
]
TOKENS = [b"\r\n", b"\r", b"\n", b"--mix-1", b"--alt-1", b"--sig-1", b"--", b"\r\n\r\n",
          b"Content-Type: multipart/mixed; boundary=alt-1\r\n", b"Content-Type: text/html\r\n",
          b"Content-Transfer-Encoding: base64\r\n", b"charset=\xff", b"=", b"<body>", b"\xff",
          b"=?utf-8?q?=FF?=", b"From ", b"-----BEGIN PGP MESSAGE-----", b"\x00"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        else:
            del data[pos : pos + draw(st.integers(1, 12))]
    return bytes(data)


def _defects(raw: bytes, skip_attached: bool) -> list[str]:
    msg = parse(raw)
    out: list[str] = []

    def walk(part: Any, top: bool) -> None:
        out.extend(type(d).__name__ for d in part.defects)
        if part.is_multipart():
            for i, child in enumerate(part.get_payload()):
                if not (top and skip_attached and i == 1):
                    walk(child, False)

    walk(msg, True)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_any_input_is_marked_and_parses_as_well_as_before(raw: bytes) -> None:
    out = mark(raw)
    msg = parse(out)
    assert msg.get_all("X-Mailward-Warning") == [WARNING.header]
    assert "[Suspicious]" in str(msg["Subject"])
    wrapped = b"=_mailward_mix_" in out
    before = _defects(raw, False)
    after = _defects(out, wrapped)
    assert [d for d in after if d not in before] == []


# --- real mail: the SpamAssassin corpus's hard ham (HTML newsletters, charsets, attachments) --

BANNER_BLOCK = re.compile(rb'\r?\n<table role="presentation".*?</td></tr></table>\r?\n', re.S)
HARD_HAM = SHARED / "corpora" / "spamassassin-public-corpus" / "hard-ham-1"


def _leaves(msg: Any) -> list[Any]:
    return [p for p in msg.walk() if not p.is_multipart()]


def _payload(part: Any) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else str(part.get_payload()).encode("utf-8", "replace")


def test_real_mail_keeps_its_content() -> None:
    if not HARD_HAM.is_dir():
        pytest.skip(f"corpus not present: {HARD_HAM}")
    counts = {"edited": 0, "wrapped": 0}
    for path in sorted(HARD_HAM.iterdir()):
        raw = path.read_bytes()
        out = mark(raw)
        wrapped = b"=_mailward_mix_" in out
        counts["wrapped" if wrapped else "edited"] += 1
        before, after = _defects(raw, False), _defects(out, wrapped)
        assert [d for d in after if d not in before] == [], path.name
        if wrapped:
            continue
        old = _leaves(email.message_from_bytes(raw))
        new = _leaves(email.message_from_bytes(out))
        assert [p.get_content_type() for p in old] == [p.get_content_type() for p in new]
        bannered = 0
        for o, n in zip(old, new, strict=True):
            was, now = _payload(o), _payload(n)
            if was == now:
                continue
            bannered += 1
            assert o.get_content_type() in ("text/plain", "text/html"), path.name
            if o.get_content_type() == "text/plain":
                assert now.endswith(was), path.name
            else:
                assert BANNER_BLOCK.sub(b"", now, count=1) == was, path.name
        assert bannered >= 1, path.name
    assert counts["edited"] > 200, counts
