"""Labelled spoofing set: generated impersonation attempts in the two families of the seed
issue (password instructions, requests for sensitive files), with their SMTP envelope and the
DNS zone data they need. ``python bench/spoof_corpus.py --out DIR`` writes them as .eml files
with labels.jsonl and zones.yaml; bench/detect.py imports ``generate()``.

Every message is an attack on the site ourcorp.example (partner bank paybank.test): the
sender tactics (display names, forged own domain, lookalike and homoglyph domains, hidden
addresses, unauthenticated senders, Reply-To detours) are crossed with varied wording in English,
German, French and Spanish and with varied MIME shapes (plain, quoted-printable, base64,
multipart/alternative with HTML, HTML only).
"""

from __future__ import annotations

import argparse
import base64
import json
import quopri
import random
from dataclasses import asdict, dataclass
from email.header import Header
from email.utils import formataddr
from pathlib import Path
from typing import Any

import yaml

SITE = "ourcorp.example"
SITE_NET = "198.51.100.0/24"
ATTACKER_NET = "203.0.113.0/24"
FREEMAIL = ("freemail.test", "webpost.test", "quickmail.test")
UNAUTH = ("mailer-relay.test", "bulk-notice.test", "secure-portal.test")
LOOKALIKES = (
    "0urcorp.example", "ourc0rp.example", "ourcorp-example.com", "ourcorp-support.example",
    "ourcorp.example.login-check.test", "our-corp.example", "ourcorp.com", "ourcorp-it.test",
    "ourcorp-helpdesk.test", "ourcrop.example",
)
HOMOGLYPHS = ("оurcorp.example", "ourcоrp.example", "оurcоrp.example", "ourcorр.example")
PARTNER_LOOKALIKES = ("paybank-secure.test", "paybnak.test", "paybank.example", "pay-bank.test")
PROTECTED = ("System Administrator", "IT Support", "Help Desk", "Jane Smith")
NAME_VARIANTS = {
    "System Administrator": ("System Administrator", "system  administrator", "Sys Admin",
                             "SYSTEM ADMINISTRATOR", "Systеm Administrator"),
    "IT Support": ("IT Support", "IT-Support Team", "IT Support Desk", "ITSupport", "It support"),
    "Help Desk": ("Help Desk", "HelpDesk", "Help-Desk OurCorp", "The Help Desk"),
    "Jane Smith": ("Jane Smith", "Jane  Smith", "J. Smith", "Smith, Jane", "Jane Smith (CEO)",
                   "Jäne Smith"),
}
TACTICS = (
    "display-name-freemail", "own-domain-forged", "lookalike-domain", "homoglyph-domain",
    "display-name-address", "unauthenticated-outsider", "reply-to-detour", "partner-lookalike",
)


@dataclass(frozen=True)
class Sample:
    """One labelled spoofing message with the envelope it arrives with."""

    name: str
    family: str  # "password-instruction" or "file-request"
    language: str
    tactic: str
    shape: str
    ip: str
    helo: str
    mail_from: str
    raw: bytes

    def label(self) -> dict[str, Any]:
        out = asdict(self)
        del out["raw"]
        return out


def zones() -> dict[str, Any]:
    """DNS data: the site enforces nothing yet (p=none, the case our checks must carry);
    attackers publish SPF and DMARC for their own domains, as real ones do."""
    z: dict[str, Any] = {
        SITE: [{"TXT": f"v=spf1 ip4:{SITE_NET} -all"}, {"A": "198.51.100.10"}],
        f"_dmarc.{SITE}": [{"TXT": "v=DMARC1; p=none"}],
        "paybank.test": [{"TXT": "v=spf1 ip4:192.0.2.0/25 -all"}],
        "_dmarc.paybank.test": [{"TXT": "v=DMARC1; p=reject"}],
    }
    own = [*FREEMAIL, *LOOKALIKES, *PARTNER_LOOKALIKES, *(_ascii(d) for d in HOMOGLYPHS)]
    for domain in own:
        z[domain] = [{"TXT": f"v=spf1 ip4:{ATTACKER_NET} -all"}, {"A": "203.0.113.20"}]
        z[f"_dmarc.{domain}"] = [{"TXT": "v=DMARC1; p=none"}]
    return z


def _ascii(domain: str) -> str:
    return domain.encode("idna").decode("ascii")


# --- wording --------------------------------------------------------------------------------

PASSWORDS = ("Welcome2024", "Summer#23", "OurCorp!2025", "P@ssw0rd1", "Autumn2024", "Start123!",
             "Company2025", "Passwort2024", "Bienvenue2024", "Hola2024!", "Changeme1", "Secure#88")

TEXTS: dict[tuple[str, str], list[str]] = {
    ("password-instruction", "en"): [
        "IT here: we are rolling out the new portal. Everyone's login will be {pw} from Monday, "
        "please make sure yours matches before then.\n\n{sig}",

        "Dear user,\n\nDue to the migration to our new mail server, all accounts must be updated. "
        "Please set your password to {pw} or your account will be suspended within 24 hours.\n\n"
        "Thank you,\n{sig}",
        "Hello,\n\nOur security audit found weak passwords. Change your password to {pw} before "
        "5pm today, otherwise your mailbox will be deactivated.\n\n{sig}",
        "Hi,\n\nWe are resetting all network accounts this weekend. Your new password is {pw}. "
        "Log in once and confirm it, or your account will be locked.\n\nRegards,\n{sig}",
        "Attention,\n\nThe password policy changed. Kindly update your email password to "
        "\"{pw}\" immediately. Accounts not updated by end of day will be deleted.\n\n{sig}",
        "Team,\n\nfor the VPN upgrade please reset your password to {pw} right away. "
        "Failure to comply will result in suspension of your account.\n\n{sig}",
        "Hello,\n\nTo keep access after the system upgrade, use the temporary password: {pw} and "
        "set your password to it today. Otherwise your access will be disabled.\n\n{sig}",
        "Dear colleague,\n\nplease switch your Windows password to {pw} as soon as possible so "
        "that the new single sign-on works. Your account is going to be blocked "
        "otherwise.\n\nThanks\n{sig}",
        "URGENT: your mailbox has exceeded its limit. Your password has been reset to {pw}; "
        "sign in within 12 hours or the mailbox will be permanently closed.\n\n{sig}",
    ],
    ("password-instruction", "de"): [
        "Sehr geehrte Damen und Herren,\n\nwegen der Umstellung auf den neuen Mailserver setzen "
        "Sie bitte Ihr Passwort auf {pw}, sonst wird Ihr Konto innerhalb von 24 Stunden "
        "gesperrt.\n\nMit freundlichen Grüßen\n{sig}",
        "Hallo,\n\nbitte ändern Sie Ihr Kennwort sofort in {pw}. Ihr Postfach wird sonst "
        "heute noch deaktiviert.\n\n{sig}",
        "Guten Tag,\n\nIhr neues Passwort lautet: {pw}. Melden Sie sich umgehend an, sonst wird "
        "Ihr Zugang gelöscht.\n\n{sig}",
        "Liebe Kolleginnen und Kollegen,\n\nim Rahmen des Sicherheitsaudits bitten wir Sie, das "
        "Passwort auf \"{pw}\" zu setzen. Konten ohne Änderung werden bis morgen "
        "gesperrt.\n\n{sig}",
    ],
    ("password-instruction", "fr"): [
        "Bonjour,\n\nmerci d'utiliser désormais le mot de passe {pw} pour vous connecter au "
        "nouveau portail.\n\n{sig}",

        "Bonjour,\n\nSuite à la migration de la messagerie, définissez votre mot de passe en "
        "{pw}, sinon votre compte sera suspendu dans les 24 heures.\n\nCordialement,\n{sig}",
        "Madame, Monsieur,\n\nvotre nouveau mot de passe est {pw}. Connectez-vous "
        "immédiatement, faute de quoi votre boîte aux lettres sera désactivée.\n\n{sig}",
        "Bonjour à tous,\n\nmerci de changer votre mot de passe en « {pw} » avant ce soir. "
        "Votre accès sera bloqué sinon.\n\n{sig}",
    ],
    ("password-instruction", "es"): [
        "Estimado usuario:\n\nPor la migración del servidor de correo, cambie su contraseña a "
        "{pw} o su cuenta será suspendida en las próximas 24 horas.\n\nAtentamente,\n{sig}",
        "Hola,\n\nsu nueva contraseña es {pw}. Inicie sesión de inmediato; de lo contrario su "
        "buzón será desactivado.\n\n{sig}",
        "Buenos días:\n\nestablezca su contraseña en \"{pw}\" hoy mismo. Las cuentas sin "
        "actualizar serán bloqueadas.\n\n{sig}",
    ],
    ("file-request", "en"): [
        "Can you pull the admin logins out of the vault and drop them into a reply? Thanks "
        "a lot.\n\n{sig}",

        "Hi,\n\nI am in a meeting with the auditors and need a copy of the password file from "
        "the main server right now. Please send it to me as an attachment. Do not mention this "
        "to anyone, it is confidential.\n\n{sig}",
        "Hello,\n\nCould you email me /etc/shadow from the mail server? The security vendor "
        "needs it for the review today.\n\nThanks,\n{sig}",
        "Hi,\n\nplease send me the KeePass database of the admin team asap. I lost my copy "
        "and the board meeting starts in an hour.\n\n{sig}",
        "Quick favour: can you forward me the SSH private key for the build server? I need "
        "to fix a deployment tonight. Keep this between us for now.\n\n{sig}",
        "Hi,\n\nwe need the credentials spreadsheet for the migration project. Please send it "
        "over before noon, the contractor is waiting.\n\n{sig}",
        "Hello,\n\nfor the compliance audit, send us a full export of the password database "
        "by end of day. This request is strictly confidential.\n\n{sig}",
        "Hey,\n\ncould you attach the id_rsa file from your home directory to your reply? I "
        "have to check the key fingerprints urgently.\n\n{sig}",
        "Hi,\n\nI need the list of all user passwords for the new HR system. Please send it "
        "to me directly, don't tell the IT team, they are informed.\n\n{sig}",
    ],
    ("file-request", "de"): [
        "Hallo,\n\nkönnen Sie mir die Zugangsdaten aller Administratoren schicken? Danke!\n\n{sig}",

        "Hallo,\n\nich bin gerade in einer Besprechung mit den Prüfern und brauche dringend "
        "eine Kopie der Passwortdatei vom Hauptserver. Bitte senden Sie sie mir sofort. Sagen "
        "Sie niemandem davon.\n\n{sig}",
        "Guten Tag,\n\nschicken Sie mir bitte die Passwortliste der Administratoren, der "
        "Dienstleister wartet darauf.\n\n{sig}",
        "Hallo,\n\nkönnen Sie mir den privaten SSH-Schlüssel des Buildservers zukommen lassen? "
        "Es ist eilig.\n\n{sig}",
    ],
    ("file-request", "fr"): [
        "Bonjour,\n\nje suis en réunion avec les auditeurs : envoyez-moi une copie du fichier "
        "des mots de passe du serveur principal, c'est urgent. N'en parlez à personne.\n\n{sig}",
        "Bonjour,\n\npouvez-vous me transmettre la liste des mots de passe des administrateurs "
        "avant ce soir ?\n\n{sig}",
        "Bonjour,\n\nj'ai besoin de la clé privée SSH du serveur de production, envoyez-la "
        "moi tout de suite.\n\n{sig}",
    ],
    ("file-request", "es"): [
        "Hola,\n\n¿me puedes pasar el Excel con las claves de todos? Lo necesito para el "
        "informe.\n\n{sig}",

        "Hola,\n\nestoy en una reunión con los auditores y necesito una copia del archivo de "
        "contraseñas del servidor principal. Envíemelo cuanto antes. No se lo diga a "
        "nadie.\n\n{sig}",
        "Buenos días,\n\nenvíeme por favor la lista de contraseñas de los administradores hoy "
        "mismo.\n\n{sig}",
        "Hola,\n\nnecesito la clave privada SSH del servidor de compilación, mándemela "
        "urgentemente.\n\n{sig}",
    ],
}
SUBJECTS = {
    ("password-instruction", "en"): ("Action required: password update", "Mailbox migration",
                                     "Security notice", "Your account", "URGENT"),
    ("password-instruction", "de"): ("Passwortänderung erforderlich", "Wichtig: Ihr Konto",
                                     "Mailserver-Umstellung"),
    ("password-instruction", "fr"): ("Mise à jour du mot de passe", "Votre compte",
                                     "Migration de la messagerie"),
    ("password-instruction", "es"): ("Actualización de contraseña", "Su cuenta",
                                     "Migración del correo"),
    ("file-request", "en"): ("Quick request", "Need this now", "Audit", "Confidential",
                             "Re: files"),
    ("file-request", "de"): ("Kurze Bitte", "Dringend", "Prüfung"),
    ("file-request", "fr"): ("Demande urgente", "Audit", "Confidentiel"),
    ("file-request", "es"): ("Petición urgente", "Auditoría", "Confidencial"),
}


def _sender(rng: random.Random, tactic: str, family: str) -> tuple[str, str, str, list[str]]:
    """(display name, From address, MAIL FROM, extra header lines) for a tactic."""
    protected = rng.choice(PROTECTED if family == "password-instruction" else ("Jane Smith",
                                                                                "IT Support"))
    shown = rng.choice(NAME_VARIANTS[protected])
    local = rng.choice(("admin", "it-support", "helpdesk", "jane.smith", "security", "noreply"))
    extra: list[str] = []
    if tactic == "display-name-freemail":
        addr = f"{local}{rng.randint(1, 999)}@{rng.choice(FREEMAIL)}"
        return shown, addr, addr, extra
    if tactic == "own-domain-forged":
        addr = f"{local}@{SITE}"
        return shown, addr, f"bounce@{rng.choice(UNAUTH)}", extra
    if tactic == "lookalike-domain":
        addr = f"{local}@{rng.choice(LOOKALIKES)}"
        return rng.choice((shown, "", "OurCorp IT")), addr, addr, extra
    if tactic == "homoglyph-domain":
        domain = rng.choice(HOMOGLYPHS)  # in From as punycode, or raw UTF-8 (SMTPUTF8)
        header_domain = rng.choice((domain, _ascii(domain)))
        envelope = f"{local}@{_ascii(domain)}"
        return rng.choice((shown, "")), f"{local}@{header_domain}", envelope, extra
    if tactic == "display-name-address":
        addr = f"{local}{rng.randint(1, 99)}@{rng.choice(FREEMAIL)}"
        return f"{local}@{SITE}", addr, addr, extra
    if tactic == "unauthenticated-outsider":
        addr = f"{rng.choice(('notice', 'accounts', 'audit', 'office'))}@{rng.choice(UNAUTH)}"
        return rng.choice(("Account Services", "Mail Team", "Audit Office", "")), addr, addr, extra
    if tactic == "reply-to-detour":
        addr = f"{local}@{rng.choice(FREEMAIL)}"
        extra.append(f"Reply-To: {local}.private@{rng.choice(UNAUTH)}")
        return shown, addr, addr, extra
    addr = f"{rng.choice(('service', 'security', 'online'))}@{rng.choice(PARTNER_LOOKALIKES)}"
    return rng.choice(("PayBank Security", "PayBank Online", "")), addr, addr, extra


def _signature(rng: random.Random, display: str) -> str:
    return display.strip() or rng.choice(("IT Department", "Administration", "Security Team"))


def _body(text: str, shape: str, rng: random.Random) -> tuple[list[str], bytes]:
    """Content headers and body bytes for one MIME shape."""
    data = text.replace("\n", "\r\n").encode("utf-8")
    if shape == "plain":
        return ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], data
    if shape == "quoted-printable":
        return (["Content-Type: text/plain; charset=utf-8",
                 "Content-Transfer-Encoding: quoted-printable"],
                _crlf(quopri.encodestring(data)))
    if shape == "base64":
        return (["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"],
                _b64(data))
    link = rng.choice(("https://ourcorp.example.login-check.test/reset",
                       "https://0urcorp.example/owa", "https://secure-portal.test/ourcorp"))
    shown_link = "https://mail.ourcorp.example/reset"
    paragraphs = "".join(f"<p>{_html_escape(p)}</p>" for p in text.split("\n\n"))
    html = (f"<html><body>{paragraphs}<p><a href=\"{link}\">{shown_link}</a></p>"
            "</body></html>").encode()
    if shape == "html":
        return (["Content-Type: text/html; charset=utf-8", "Content-Transfer-Encoding: base64"],
                _b64(html))
    boundary = f"=_b{rng.randint(10**8, 10**9)}"
    parts = [
        f"--{boundary}", "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64", "", _b64(data).decode(),
        f"--{boundary}", "Content-Type: text/html; charset=utf-8",
        "Content-Transfer-Encoding: quoted-printable", "",
        _crlf(quopri.encodestring(html)).decode(), f"--{boundary}--", "",
    ]
    return ([f'Content-Type: multipart/alternative; boundary="{boundary}"'],
            "\r\n".join(parts).encode())


def _crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _b64(data: bytes) -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return encoded


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "\n", "<br>")


def _from_header(display: str, address: str) -> str:
    if not display:
        return f"<{address}>"
    if not address.isascii():
        return f'"{display}" <{address}>'
    if display.isascii():
        return formataddr((display, address))
    return f"{Header(display, 'utf-8').encode()} <{address}>"


def generate(count: int = 240, seed: int = 20261127) -> list[Sample]:
    """``count`` labelled spoofing messages, half of each family, tactics and languages mixed."""
    rng = random.Random(seed)
    samples = []
    shapes = ("plain", "quoted-printable", "base64", "alternative", "html")
    for i in range(count):
        family = ("password-instruction", "file-request")[i % 2]
        language = rng.choices(("en", "de", "fr", "es"), weights=(5, 2, 2, 2))[0]
        tactic = TACTICS[(i // 2) % len(TACTICS)]
        shape = rng.choice(shapes)
        display, address, mail_from, extra = _sender(rng, tactic, family)
        sig = _signature(rng, display if "@" not in display else "")
        text = rng.choice(TEXTS[(family, language)]).format(pw=rng.choice(PASSWORDS), sig=sig)
        content_headers, body = _body(text, shape, rng)
        subject = rng.choice(SUBJECTS[(family, language)])
        helo = f"mail{rng.randint(1, 9)}.{mail_from.rpartition('@')[2]}"
        headers = [
            f"Return-Path: <{mail_from}>",
            f"Received: from {helo} (unknown [203.0.113.{20 + i % 200}]) by mx.{SITE}; "
            f"Fri, 27 Nov 2026 09:{i % 60:02d}:00 +0000",
            f"From: {_from_header(display, address)}",
            f"To: staff{i % 17}@{SITE}",
            f"Subject: {Header(subject, 'utf-8').encode() if not subject.isascii() else subject}",
            f"Date: Fri, 27 Nov 2026 09:{i % 60:02d}:00 +0000",
            f"Message-ID: <spoof{i:04d}.{rng.randint(10**6, 10**7)}@{helo.split('.', 1)[1]}>",
            *extra,
            "MIME-Version: 1.0",
            *content_headers,
        ]
        raw = ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + body
        samples.append(Sample(f"spoof{i:04d}", family, language, tactic, shape,
                              f"203.0.113.{20 + i % 200}", helo, mail_from, raw))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the .eml files and labels")
    parser.add_argument("--count", type=int, default=240)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = generate(args.count, args.seed)
    with (out / "labels.jsonl").open("w") as labels:
        for sample in samples:
            (out / f"{sample.name}.eml").write_bytes(sample.raw)
            labels.write(json.dumps(sample.label()) + "\n")
    (out / "zones.yaml").write_text(yaml.safe_dump(zones(), allow_unicode=True))
    print(f"{len(samples)} messages in {out}")


if __name__ == "__main__":
    main()
