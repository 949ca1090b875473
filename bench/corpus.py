"""The benchmark corpus: labelled, DKIM-signed messages with envelopes and their zone data.

`load_or_build(seed, count)` returns a `Corpus`, generated once and cached under
bench/out/corpus-s<seed>-n<count>/ (messages/*.eml, manifest.json, zones.yaml). About 80% is
legitimate mail (direct, via ESPs, subdomains, forwarded, mailing lists with ARC, legacy domains
without DKIM/DMARC) and 20% forged in the ways listed in `FORGED_KINDS`. Each item carries what
a correct DMARC evaluation says (`expect_dmarc`) and the mildest acceptable disposition.
"""

from __future__ import annotations

import email.header
import email.utils
import hashlib
import json
import math
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dkim
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from content import Body, Writer
from keys import KeyStore
from world import AUTHSERV_ID, LOOKALIKES, SITE_DOMAIN, TRUSTED_LIST, Org, Selector, World

GENERATOR_VERSION = 6
OUT = Path(__file__).resolve().parent / "out"
BASE_TIME = 1780272000  # 2026-06-01T00:00:00Z: signatures are in the past for every verifier
SPACING = 30  # seconds between messages
MIN_SIZE, MAX_SIZE = 2048, 60 * 1024
CHUNK = 200  # messages per random stream (and per worker task): output is independent of cores

LEGIT_KINDS = {
    "direct": 42, "esp": 14, "subdomain": 8, "forwarded": 4, "mailing_list": 4, "legacy": 8,
}
FORGED_KINDS = {
    "spoof_wrong_ip": 3, "spf_softfail": 2, "body_tampered": 2.5, "unrelated_signature": 2.5,
    "missing_signature": 2, "wrong_key": 1.5, "replayed_header_edit": 2.5,
    "nonexistent_subdomain": 1.5, "lookalike": 2, "length_tag_append": 0.5,
}
_MIN_FOR_POLICY = {"reject": "reject", "quarantine": "quarantine", "none": "tag", None: "tag"}
_FIRST = ["Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas",
          "Kira", "Liam", "Maya", "Noah", "Olga", "Pedro", "Qin", "Rosa", "Sven", "Tara"]
_LAST = ["Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "García", "Hansen", "Ito",
         "Jensen", "Kowalski", "Lopez", "Müller", "Nakamura", "Olsen", "Petrov", "Rossi"]
_ROLES = [("CEO", "ceo"), ("IT Helpdesk", "it-support"), ("Finance", "finance"),
          ("HR Department", "hr"), ("Security Team", "security"), ("Payroll", "payroll")]
_SUBJECTS = ["Quarterly report", "Meeting notes", "Invoice {n}", "Your order #{n} has shipped",
             "Re: project timeline", "Agenda for Monday", "Newsletter: what's new in June",
             "Contract draft v{n}", "Fwd: budget figures", "Réunion de lundi", "Grüße aus Zürich"]
_LURES = ["Password expiry notice", "Action required: verify your account",
          "Urgent: wire transfer", "Updated bank details", "Your mailbox is full",
          "Confidential request", "Invoice {n} overdue"]


@dataclass(slots=True)
class Item:
    """One message's envelope and labels."""

    id: str
    label: str  # legit | forged
    kind: str
    ip: str
    helo: str
    mail_from: str
    rcpt: list[str]
    from_domain: str
    expect_dmarc: str | None  # pass | fail | none | None (not checked)
    expect_min: str  # legit: the disposition expected; forged: the mildest acceptable one
    size: int = 0
    note: str = ""


@dataclass(slots=True)
class Corpus:
    seed: int
    directory: Path
    now: float
    zones: dict[str, Any]
    items: list[Item]
    messages: list[bytes] = field(default_factory=list)
    digest: str = ""


class _Clock:
    """Stands in for the ``time`` module inside dkimpy so signatures get a fixed t=."""

    def __init__(self) -> None:
        self.now = float(BASE_TIME)

    def time(self) -> float:
        return self.now


class _OpenSslRsa:
    """dkimpy's RSASSA-PKCS1-v1_5 signing primitive done by OpenSSL: the same bytes (PKCS#1
    v1.5 is deterministic), twenty times faster than dkimpy's pure-Python modular power."""

    def __init__(self) -> None:
        self._keys: dict[int, rsa.RSAPrivateKey] = {}

    def __call__(self, digest: Any, pk: dict[str, int]) -> bytes:
        key = self._keys.get(pk["modulus"])
        if key is None:
            key = rsa.RSAPrivateNumbers(
                pk["prime1"], pk["prime2"], pk["privateExponent"], pk["exponent1"],
                pk["exponent2"], pk["coefficient"],
                rsa.RSAPublicNumbers(pk["publicExponent"], pk["modulus"]),
            ).private_key(unsafe_skip_rsa_key_validation=True)  # validated when derived
            self._keys[pk["modulus"]] = key
        algorithm = hashes.SHA256() if digest.name.lower() == "sha256" else hashes.SHA1()
        return key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(algorithm))


def _fold(name: str, value: str) -> str:
    """``Name: value``, folded at list commas when longer than 78 characters."""
    line = f"{name}: {value}"
    if len(line) <= 78 or ", " not in value:
        return line
    parts = value.split(", ")
    lines = [f"{name}: {parts[0]}"]
    for part in parts[1:]:
        if len(lines[-1]) + len(part) + 2 > 78:
            lines[-1] += ","
            lines.append(f"\t{part}")
        else:
            lines[-1] += f", {part}"
    return "\r\n".join(lines)


def _compose(headers: list[tuple[str, str]], body: Body) -> bytes:
    lines = [_fold(n, v) for n, v in [*headers, *body.headers]]
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body.data


def _insert_after_headers(raw: bytes, text: bytes, position: float) -> bytes:
    end = raw.index(b"\r\n\r\n") + 4
    at = end + int((len(raw) - end) * position)
    at = raw.index(b"\r\n", at) + 2 if raw.find(b"\r\n", at) >= 0 else len(raw)
    return raw[:at] + text + raw[at:]


def _key_cache(seed: int) -> Path:
    return OUT / f"keys-s{seed}.json"


def prepare_world(seed: int) -> World:
    """The world of ``seed`` with every key it needs derived (in parallel) and cached."""
    probe = KeyStore(seed, _key_cache(seed), collect=True)
    World(seed, probe)  # a dry run lists the keys the world needs
    keys = KeyStore(seed, _key_cache(seed))
    keys.generate(probe.wanted)
    keys.save()
    return World(seed, keys)


class Generator:
    """Writes a run of messages from one seeded random stream (one stream per chunk)."""

    def __init__(self, seed: int, stream: int) -> None:
        self.seed = seed
        self.rng = random.Random(f"corpus/{seed}/{stream}")
        self.keys = KeyStore(seed, _key_cache(seed))
        self.world = World(seed, self.keys)
        self.writer = Writer(seed)
        self.clock = _Clock()
        self.senders = self.world.by_role("sender")
        self.victims = [*self.senders, self.world.orgs[SITE_DOMAIN]]
        self.attackers = self.world.by_role("attacker")

    # --- building blocks ---------------------------------------------------------------------

    def _size(self) -> int:
        return int(math.exp(self.rng.uniform(math.log(2600), math.log(56000))))

    def _person(self) -> tuple[str, str]:
        first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "user"
        return f"{first} {last}", local

    def _rcpts(self) -> list[str]:
        people = {self._person()[1] for _ in range(self.rng.choice([1, 1, 1, 2, 3]))}
        return [f"{p}@{SITE_DOMAIN}" for p in sorted(people)]

    def _subject(self, lure: bool = False) -> str:
        template = self.rng.choice(_LURES if lure else _SUBJECTS)
        text = template.format(n=self.rng.randint(1000, 99999))
        if text.isascii():
            return text
        return email.header.Header(text, "utf-8").encode()

    def _message(self, ts: int, from_name: str, from_addr: str, rcpt: list[str],
                 link_host: str, phish: bool = False,
                 extra: list[tuple[str, str]] | None = None) -> bytes:
        rng = self.rng
        host = from_addr.rpartition("@")[2]
        headers = [
            ("From", email.utils.formataddr((from_name, from_addr))),
            ("To", ", ".join(rcpt)),
            ("Subject", self._subject(lure=phish)),
            ("Date", email.utils.formatdate(ts, localtime=False)),
            ("Message-ID", f"<{rng.getrandbits(96):024x}@{host}>"),
        ]
        if rng.random() < 0.25:
            headers.append(("Cc", ", ".join(f"{self._person()[1]}@{host}" for _ in range(2))))
        if rng.random() < 0.2:
            headers.append(("Reply-To", from_addr))
        if rng.random() < 0.3:
            headers.append(("In-Reply-To", f"<{rng.getrandbits(64):016x}@{SITE_DOMAIN}>"))
            headers.append(("References", f"<{rng.getrandbits(64):016x}@{SITE_DOMAIN}>"))
        headers.append(rng.choice([("X-Mailer", "Microsoft Outlook 16.0"),
                                   ("User-Agent", "Mozilla Thunderbird 128.3"),
                                   ("X-Mailer", "Apple Mail (2.3776)"),
                                   ("Content-Language", "en-US")]))
        headers.extend(extra or [])
        if rng.random() < 0.5:
            headers[1:4] = rng.sample(headers[1:4], 3)
        body = self.writer.body(rng, max(1300, self._size() - 1800), link_host, phish)
        return _compose(headers, body)

    def _submission_received(self, raw: bytes, host: str, ts: int) -> bytes:
        rng = self.rng
        client = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        line = (f"Received: from [{client}] (unknown [{client}])\r\n\tby {host} (Postfix) with "
                f"ESMTPSA id {self.rng.getrandbits(40):010X};\r\n\t"
                f"{email.utils.formatdate(ts - 2, localtime=False)}\r\n")
        return line.encode() + raw

    def _transit_received(self, raw: bytes, from_host: str, ip: str, by: str, ts: int) -> bytes:
        line = (f"Received: from {from_host} ({from_host} [{ip}])\r\n\tby {by} with ESMTPS id "
                f"{self.rng.getrandbits(40):010X};\r\n\t"
                f"{email.utils.formatdate(ts, localtime=False)}\r\n")
        return line.encode() + raw

    def _sign(self, raw: bytes, selector: Selector, org: Org | None, ts: int,
              length: bool = False, key_override: str | None = None) -> bytes:
        """Prepend a DKIM-Signature made by dkimpy (`dkim.sign`) with a fixed t=."""
        present = {line.split(b":", 1)[0].strip().lower().decode() for line in
                   raw[: raw.index(b"\r\n\r\n")].split(b"\r\n") if line[:1] not in (b" ", b"\t")}
        wanted = ["from", "to", "subject", "date", "message-id", "cc", "reply-to", "mime-version",
                  "content-type", "content-transfer-encoding", "in-reply-to", "references",
                  "list-unsubscribe", "list-unsubscribe-post", "list-id"]
        headers = [h for h in wanted if h in present]
        canonicalize = org.canonicalization if org else (b"relaxed", b"relaxed")
        if org is not None and org.oversign_from:
            headers += ["from", "subject"]
        self.clock.now = float(ts)
        signature = dkim.sign(
            raw, selector.name.encode(), selector.domain.encode(),
            (key_override or selector.key.private).encode(),
            canonicalize=canonicalize, signature_algorithm=selector.key.algorithm.encode(),
            include_headers=[h.encode() for h in headers], length=length,
        )
        return signature + raw

    def _sign_org(self, raw: bytes, org: Org, ts: int) -> bytes:
        for selector in org.selectors:
            raw = self._sign(raw, selector, org, ts, length=org.length_tag)
        return raw

    def _authored(self, org: Org, ts: int, phish: bool = False, from_domain: str | None = None,
                  display: str | None = None, local: str | None = None,
                  extra: list[tuple[str, str]] | None = None) -> tuple[bytes, list[str], str]:
        """A message written at ``org`` (not yet signed): raw, recipients, From address."""
        name, person = self._person()
        address = f"{local or person}@{from_domain or org.domain}"
        rcpt = self._rcpts()
        raw = self._message(ts, display or name, address, rcpt, f"www.{org.domain}", phish, extra)
        return raw, rcpt, address

    def _direct(self, org: Org, ts: int) -> tuple[bytes, list[str], str, Any]:
        """A genuine message as ``org`` sends it: submitted, signed, ready to leave."""
        server = self.rng.choice(org.servers)
        raw, rcpt, address = self._authored(org, ts)
        raw = self._submission_received(raw, server.host, ts)
        return self._sign_org(raw, org, ts), rcpt, address, server

    # --- legitimate --------------------------------------------------------------------------

    def legit(self, kind: str, ts: int) -> tuple[bytes, dict[str, Any]]:
        rng = self.rng
        if kind == "direct":
            org = rng.choice(self.senders)
            raw, rcpt, address, server = self._direct(org, ts)
            mail_from = rng.choice([address, f"bounce-{rng.getrandbits(32):08x}@{org.domain}"])
            return raw, dict(ip=server.ip, helo=server.host, mail_from=mail_from, rcpt=rcpt,
                             from_domain=org.domain, expect_dmarc=_dmarc_word(org),
                             expect_min="accept")
        if kind == "esp":
            org = rng.choice([o for o in self.victims if o.esp])
            esp = self.world.orgs[org.esp or ""]
            server = rng.choice(esp.servers)
            extra = [("List-Unsubscribe", f"<https://{esp.domain}/u/{rng.getrandbits(64):x}>"),
                     ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                     ("X-Mailer", f"{esp.domain} campaign engine")]
            local = "hr" if org.role == "site" else rng.choice(["news", "noreply", "billing"])
            raw, rcpt, address = self._authored(org, ts, local=local, extra=extra)
            assert org.esp_selector is not None
            raw = self._sign(raw, org.esp_selector, None, ts)
            raw = self._sign(raw, esp.selectors[0], None, ts)
            bounce = f"bounce+{rng.getrandbits(40):010x}@bounces.{esp.domain}"
            return raw, dict(ip=server.ip, helo=server.host, mail_from=bounce, rcpt=rcpt,
                             from_domain=org.domain, expect_dmarc=_dmarc_word(org),
                             expect_min="accept", note=f"via {esp.domain}")
        if kind == "subdomain":
            org = rng.choice([o for o in self.senders if o.subdomains] or self.senders)
            if not org.subdomains:
                return self.legit("direct", ts)
            sub = org.subdomains[0]
            server = rng.choice([s for s in org.servers if ":" not in s.ip])
            raw, rcpt, _address = self._authored(org, ts, from_domain=sub, local="no-reply")
            raw = self._sign_org(self._submission_received(raw, server.host, ts), org, ts)
            return raw, dict(ip=server.ip, helo=server.host, mail_from=f"bounce@{sub}",
                             rcpt=rcpt, from_domain=sub, expect_dmarc=_dmarc_word(org),
                             expect_min="accept")
        if kind == "forwarded":
            org = rng.choice(self.senders)
            raw, _rcpt, address, server = self._direct(org, ts - 20)
            fwd = self.world.orgs["alumni-mail.example"]
            raw = self._transit_received(raw, server.host, server.ip, fwd.servers[0].host, ts)
            rcpt = [f"{self._person()[1]}@{SITE_DOMAIN}"]
            return raw, dict(ip=fwd.servers[0].ip, helo=fwd.servers[0].host, mail_from=address,
                             rcpt=rcpt, from_domain=org.domain, expect_dmarc=_dmarc_word(org),
                             expect_min="accept", note="forwarded without SRS")
        if kind == "mailing_list":
            return self._mailing_list(ts)
        if kind == "legacy":
            org = rng.choice(self.world.by_role("legacy"))
            server = org.servers[0]
            raw, rcpt, address = self._authored(org, ts)
            raw = self._submission_received(raw, server.host, ts)
            return raw, dict(ip=server.ip, helo=server.host, mail_from=address, rcpt=rcpt,
                             from_domain=org.domain, expect_dmarc="none", expect_min="accept")
        raise ValueError(kind)

    def _mailing_list(self, ts: int) -> tuple[bytes, dict[str, Any]]:
        rng = self.rng
        org = rng.choice(self.senders)
        raw, _rcpt, _address, server = self._direct(org, ts - 60)
        lst = self.world.orgs[TRUSTED_LIST]
        ar = (f"Authentication-Results: {TRUSTED_LIST};\r\n\tdkim=pass header.d={org.domain};"
              f"\r\n\tspf=pass smtp.mailfrom={org.domain};\r\n\tdmarc=pass header.from="
              f"{org.domain}\r\n").encode()
        raw = self._transit_received(raw, server.host, server.ip, lst.servers[0].host, ts - 30)
        raw = raw.replace(b"\r\nSubject: ", b"\r\nSubject: [forum] ", 1)
        raw = ar + raw.replace(b"\r\n\r\n", b"\r\nList-Id: <forum.opensource-forum.example>\r\n"
                               b"List-Post: <mailto:forum@opensource-forum.example>\r\n\r\n", 1)
        raw += b"\r\n_______________________________________________\r\nforum mailing list\r\n"
        selector = lst.selectors[0]
        arc_set = dkim.arc_sign(raw, selector.name.encode(), TRUSTED_LIST.encode(),
                                selector.key.private.encode(), TRUSTED_LIST.encode(),
                                timestamp=ts - 10)
        raw = b"".join(arc_set) + raw
        raw = self._sign(raw, selector, None, ts - 10)
        rcpt = [f"{self._person()[1]}@{SITE_DOMAIN}"]
        return raw, dict(ip=lst.servers[0].ip, helo=lst.servers[0].host,
                         mail_from=f"forum-bounces@{TRUSTED_LIST}", rcpt=rcpt,
                         from_domain=org.domain,
                         expect_dmarc="fail" if org.dmarc else "none", expect_min="accept",
                         note="list rewrote Subject and body; trusted ARC sealer")

    # --- forged ------------------------------------------------------------------------------

    def _victim(self) -> Org:
        if self.rng.random() < 0.3:
            return self.world.orgs[SITE_DOMAIN]
        return self.rng.choice(self.senders)

    def _fake_ar(self, raw: bytes) -> bytes:
        if self.rng.random() < 0.2:  # claims our own authserv-id: must be ignored
            return (f"Authentication-Results: {AUTHSERV_ID}; dkim=pass; spf=pass; "
                    "dmarc=pass\r\n").encode() + raw
        return raw

    def _forged_from(self, victim: Org, ts: int, **kwargs: Any) -> tuple[bytes, list[str], str]:
        display, local = self.rng.choice(_ROLES)
        return self._authored(victim, ts, phish=True, display=display, local=local, **kwargs)

    def forged(self, kind: str, ts: int) -> tuple[bytes, dict[str, Any]]:
        rng = self.rng
        attacker = rng.choice(self.attackers)
        a_server = rng.choice(attacker.servers)
        bounce = f"bounce-{rng.getrandbits(24):06x}@{attacker.domain}"
        if kind in ("spoof_wrong_ip", "spf_softfail"):
            pool = (self.victims if kind == "spoof_wrong_ip"
                    else [o for o in self.senders if o.spf_all == "~all"])
            legacy = [o for o in self.world.by_role("legacy")
                      if kind == "spoof_wrong_ip" or o.spf_all == "~all"]
            victim = rng.choice(legacy) if legacy and (rng.random() < 0.15 or not pool) \
                else rng.choice(pool or self.victims)
            raw, rcpt, address = self._forged_from(victim, ts)
            ip, helo = self.world.attacker_ip(rng)
            return self._fake_ar(raw), self._forged_labels(victim, victim.domain, ip, helo,
                                                           address, rcpt)
        if kind == "nonexistent_subdomain":
            victim = self._victim()
            sub = f"{rng.choice(['security', 'alerts', 'accounts', 'it'])}-{rng.randint(1, 99)}" \
                  f".{victim.domain}"
            raw, rcpt, address = self._forged_from(victim, ts, from_domain=sub)
            ip, helo = self.world.attacker_ip(rng)
            return raw, self._forged_labels(victim, sub, ip, helo, address, rcpt, exists=False)
        if kind == "missing_signature":
            victim = self._victim()
            raw, rcpt, _address = self._forged_from(victim, ts)
            return self._fake_ar(raw), self._forged_labels(victim, victim.domain, a_server.ip,
                                                           a_server.host, bounce, rcpt)
        if kind == "unrelated_signature":
            victim = self._victim()
            raw, rcpt, _address = self._forged_from(victim, ts)
            raw = self._sign(raw, attacker.selectors[0], None, ts)
            return raw, self._forged_labels(victim, victim.domain, a_server.ip, a_server.host,
                                            bounce, rcpt, note=f"signed d={attacker.domain}")
        if kind == "wrong_key":
            victim = rng.choice(self.senders)
            raw, rcpt, address = self._forged_from(victim, ts)
            raw = self._sign(raw, victim.selectors[0], victim, ts,
                             key_override=self._key_for(attacker, victim))
            ip, helo = self.world.attacker_ip(rng)
            return raw, self._forged_labels(victim, victim.domain, ip, helo, address, rcpt,
                                            note="d= victim, signed with another key")
        if kind in ("body_tampered", "replayed_header_edit", "length_tag_append"):
            return self._replayed(kind, ts, a_server.ip, a_server.host, bounce)
        if kind == "lookalike":
            return self._lookalike(ts)
        raise ValueError(kind)

    def _key_for(self, attacker: Org, victim: Org) -> str:
        """A private key of the victim selector's algorithm that is not the victim's."""
        algorithm = victim.selectors[0].key.algorithm
        return self.keys.get(f"{attacker.domain}/forger-{algorithm}", algorithm).private

    def _replayed(self, kind: str, ts: int, ip: str, helo: str,
                  bounce: str) -> tuple[bytes, dict[str, Any]]:
        rng = self.rng
        pool = [o for o in self.senders if o.length_tag] if kind == "length_tag_append" \
            else self.victims
        if not pool:  # no sender of this seed signs with l=
            kind, pool = "body_tampered", self.victims
        victim = rng.choice(pool)
        raw, rcpt, _address, _server = self._direct(victim, ts - 3600)
        note, expect_dmarc = "", "fail"
        if kind == "body_tampered":
            raw = _insert_after_headers(raw, b"Please note our new bank details: IBAN DE89 3704 "
                                        b"0044 0532 0130 00.\r\n", rng.uniform(0.1, 0.6))
            note = "body changed after signing"
        elif kind == "length_tag_append":
            raw += (b"\r\nUPDATE: your account will be suspended, sign in at "
                    b"https://login.cheap-send.test/verify\r\n")
            note, expect_dmarc = "content appended beyond l=", None
        else:
            edit = rng.choice(["subject", "to", "display", "display", "extra_from"])
            note = f"replayed with {edit} edited"
            if edit == "subject":
                raw = _replace_header(raw, b"Subject", b"Subject: Urgent: updated payment details")
            elif edit == "to":
                raw = _replace_header(raw, b"To", f"To: all-staff@{SITE_DOMAIN}".encode())
            elif edit == "display":
                head = raw[: raw.index(b"\r\nFrom: ") + 2]
                line_end = raw.index(b"\r\n", len(head))
                addr = raw[len(head) : line_end].rpartition(b"<")[2].rstrip(b">")
                if b"@" not in addr:
                    addr = raw[len(head) + 6 : line_end].strip()
                raw = head + b'From: "IT Helpdesk" <' + addr + b">" + raw[line_end:]
            else:
                raw = f"From: CEO <ceo@{SITE_DOMAIN}>\r\n".encode() + raw
                expect_dmarc = None
        labels = self._forged_labels(victim, victim.domain, ip, helo, bounce, rcpt, note=note)
        labels["expect_dmarc"] = expect_dmarc if victim.dmarc else (
            None if expect_dmarc is None else "none")
        if expect_dmarc is None:
            labels["expect_min"] = "tag"
        return raw, labels

    def _lookalike(self, ts: int) -> tuple[bytes, dict[str, Any]]:
        rng = self.rng
        domain = rng.choice(sorted(LOOKALIKES))
        org = self.world.orgs[domain]
        server = org.servers[0]
        raw, rcpt, address = self._forged_from(org, ts)
        if org.selectors:
            raw = self._sign(raw, org.selectors[0], org, ts)
        labels = dict(ip=server.ip, helo=server.host, mail_from=address, rcpt=rcpt,
                      from_domain=domain, expect_dmarc="pass" if org.dmarc else "none",
                      expect_min="tag", note=f"lookalike of {LOOKALIKES[domain]}")
        return raw, labels

    def _forged_labels(self, victim: Org, from_domain: str, ip: str, helo: str, mail_from: str,
                       rcpt: list[str], exists: bool = True, note: str = "") -> dict[str, Any]:
        policy = victim.policy_for(from_domain, exists)
        return dict(ip=ip, helo=helo, mail_from=mail_from, rcpt=rcpt, from_domain=from_domain,
                    expect_dmarc="fail" if victim.dmarc else "none",
                    expect_min=_MIN_FOR_POLICY[policy],
                    note=note or (f"DMARC policy {policy}" if policy else "no DMARC record"))

    # --- the whole corpus --------------------------------------------------------------------

    def build(self, start: int, stop: int) -> tuple[list[Item], list[bytes]]:
        kinds = [*LEGIT_KINDS, *FORGED_KINDS]
        weights = [*LEGIT_KINDS.values(), *FORGED_KINDS.values()]
        items, messages = [], []
        saved_time, saved_rsa = dkim.time, dkim.RSASSA_PKCS1_v1_5_sign
        dkim.time = self.clock  # type: ignore[assignment]  # fixed t= for reproducible output
        dkim.RSASSA_PKCS1_v1_5_sign = _OpenSslRsa()
        try:
            for index in range(start, stop):
                kind = self.rng.choices(kinds, weights)[0]
                ts = BASE_TIME + index * SPACING
                label = "legit" if kind in LEGIT_KINDS else "forged"
                make = self.legit if label == "legit" else self.forged
                for _attempt in range(8):  # keep every message within 2-60 KB
                    raw, labels = make(kind, ts)
                    if MIN_SIZE <= len(raw) <= MAX_SIZE:
                        break
                items.append(Item(f"{index:06d}", label, kind, size=len(raw), **labels))
                messages.append(raw)
        finally:
            dkim.time, dkim.RSASSA_PKCS1_v1_5_sign = saved_time, saved_rsa
        return items, messages


def _build_chunk(seed: int, start: int, stop: int) -> tuple[list[Item], list[bytes]]:
    return Generator(seed, start).build(start, stop)


def _dmarc_word(org: Org) -> str:
    return "pass" if org.dmarc else "none"


def _replace_header(raw: bytes, name: bytes, new_line: bytes) -> bytes:
    start = raw.index(b"\r\n" + name + b": ") + 2
    end = start
    while True:  # to the end of the folded field
        end = raw.index(b"\r\n", end) + 2
        if raw[end : end + 1] not in (b" ", b"\t"):
            break
    return raw[:start] + new_line + b"\r\n" + raw[end:]


def corpus_dir(seed: int, count: int) -> Path:
    return OUT / f"corpus-s{seed}-n{count}"


def load_or_build(seed: int, count: int, log: Any = print) -> Corpus:
    """The corpus for (seed, count): from the cache if complete and current, else generated."""
    directory = corpus_dir(seed, count)
    manifest_path = directory / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("generator") == GENERATOR_VERSION:
            return _load(directory, manifest)
    started = time.perf_counter()
    world = prepare_world(seed)
    starts = list(range(0, count, CHUNK))
    stops = [min(count, s + CHUNK) for s in starts]
    items: list[Item] = []
    messages: list[bytes] = []
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for chunk_items, chunk_messages in pool.map(_build_chunk, [seed] * len(starts), starts,
                                                    stops):
            items.extend(chunk_items)
            messages.extend(chunk_messages)
    (directory / "messages").mkdir(parents=True, exist_ok=True)
    for item, raw in zip(items, messages, strict=True):
        (directory / "messages" / f"{item.id}.eml").write_bytes(raw)
    (directory / "zones.yaml").write_text(yaml.safe_dump(world.zones, width=4096,
                                                         allow_unicode=False))
    digest = _digest(messages)
    manifest = {
        "generator": GENERATOR_VERSION, "seed": seed, "count": count,
        "now": BASE_TIME + count * SPACING + 3600, "digest": digest,
        "items": [asdict(i) for i in items],
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))  # written last: marks completion
    log(f"generated corpus {directory} in {time.perf_counter() - started:.1f} s")
    return _load(directory, manifest)


def _digest(messages: list[bytes]) -> str:
    h = hashlib.sha256()
    for raw in messages:
        h.update(hashlib.sha256(raw).digest())
    return h.hexdigest()[:16]


def _load(directory: Path, manifest: dict[str, Any]) -> Corpus:
    items = [Item(**fields) for fields in manifest["items"]]
    zones = yaml.load((directory / "zones.yaml").read_text(), Loader=yaml.CSafeLoader) \
        if hasattr(yaml, "CSafeLoader") else yaml.safe_load((directory / "zones.yaml").read_text())
    messages = [(directory / "messages" / f"{i.id}.eml").read_bytes() for i in items]
    return Corpus(manifest["seed"], directory, float(manifest["now"]), zones, items, messages,
                  manifest["digest"])
