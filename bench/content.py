"""Message bodies for the benchmark corpus: plain text, HTML, multipart with attachments.

`Writer.body(rng, size, ...)` returns the MIME headers and the CRLF body of one message of about
``size`` bytes. Text comes from a seeded sentence pool, so a seed gives the same corpus.
"""

from __future__ import annotations

import base64
import quopri
import random
from dataclasses import dataclass

_WORDS = [
    "account", "agenda", "analysis", "annual", "approval", "attached", "audit", "balance",
    "board", "budget", "calendar", "campaign", "client", "committee", "contract", "customer",
    "deadline", "delivery", "department", "draft", "estimate", "feedback", "figures",
    "forecast", "invoice", "meeting", "minutes", "network", "office", "order", "payment",
    "plan", "policy", "priority", "project", "proposal", "quarter", "receipt", "report",
    "request", "review", "revenue", "schedule", "server", "service", "shipment", "signature",
    "status", "summary", "supplier", "support", "team", "ticket", "timeline", "training",
    "update", "vendor", "warehouse", "weekly", "workshop", "the", "a", "an", "and", "or",
    "but", "for", "with", "from", "to", "of", "in", "on", "at", "by", "we", "you", "they",
    "our", "your", "their", "please", "kindly", "note", "confirm", "review", "share", "send",
    "check", "attach", "find", "let", "us", "know", "if", "any", "questions", "regarding",
    "next", "this", "that", "these", "those", "will", "would", "could", "should", "can", "may",
    "must", "have", "has", "had", "is", "are", "was", "were", "be", "been", "being", "as",
    "soon", "possible", "today", "tomorrow", "monday", "tuesday", "wednesday", "thursday",
    "friday", "morning", "afternoon", "evening", "thanks", "regards", "best", "café", "naïve",
    "Grüße", "résumé", "Zürich", "señor", "déjà", "façade",
]
_PHISH = [
    "Your mailbox has exceeded its quota and will be suspended within 24 hours.",
    "Verify your password now to keep access to your account.",
    "Please set your password to the temporary value below and confirm by reply.",
    "I need you to process an urgent wire transfer before the end of the day.",
    "Send me a copy of the password file for the audit, it is confidential.",
    "Your invoice is overdue; open the attached document to avoid penalties.",
    "Unusual sign-in activity was detected; confirm your identity immediately.",
    "Buy gift cards for the client meeting and send me the codes, I am in a meeting.",
]
_ATTACHMENTS = [
    ("application/pdf", "pdf", b"%PDF-1.7\n"),
    ("image/png", "png", b"\x89PNG\r\n\x1a\n"),
    ("text/csv", "csv", None),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx",
     b"PK\x03\x04"),
    ("application/zip", "zip", b"PK\x03\x04"),
]


@dataclass(slots=True)
class Body:
    """MIME header fields (name, value) and the body bytes (CRLF)."""

    headers: list[tuple[str, str]]
    data: bytes


def _crlf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)) + b"\r\n"


def _qp(text: str) -> bytes:
    return _crlf(quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8")))


class Writer:
    """Builds bodies from a sentence pool made once per seed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"writer/{seed}")
        self.sentences = []
        for _ in range(4000):
            words = rng.choices(_WORDS, k=rng.randint(6, 22))
            self.sentences.append(" ".join(words).capitalize() + rng.choice(".?!.."))

    def text(self, rng: random.Random, size: int, phish: bool = False) -> str:
        paragraphs: list[str] = []
        total = 0
        if phish:
            lines = rng.sample(_PHISH, 2)
            paragraphs.append(" ".join(lines))
            total += len(paragraphs[0])
        while total < size:
            paragraph = " ".join(rng.choices(self.sentences, k=rng.randint(2, 7)))
            paragraphs.append(paragraph)
            total += len(paragraph) + 4
        return "\r\n\r\n".join(_wrap(p) for p in paragraphs) + "\r\n"

    def html(self, rng: random.Random, size: int, link_host: str, phish: bool = False) -> str:
        parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{font-family:"
                 "Arial,sans-serif;color:#333}td{padding:4px 8px}.btn{background:#0a66c2;"
                 "color:#fff;padding:8px 16px;border-radius:4px}</style></head><body>"]
        total = len(parts[0])
        if phish:
            parts.append(f"<p><b>{rng.choice(_PHISH)}</b></p><p><a class=\"btn\" href=\"https://"
                         f"{link_host}/login?session={rng.getrandbits(64):x}\">Sign in to "
                         "your account</a></p>")
        while total < size:
            kind = rng.random()
            if kind < 0.6:
                chunk = "<p>" + " ".join(rng.choices(self.sentences, k=rng.randint(2, 6))) + "</p>"
            elif kind < 0.8:
                rows = "".join(
                    f"<tr><td>{rng.choice(_WORDS)}</td><td>{rng.randint(1, 9999)}."
                    f"{rng.randint(0, 99):02d}</td></tr>" for _ in range(rng.randint(2, 8)))
                chunk = f"<table border=\"0\" cellspacing=\"0\">{rows}</table>"
            else:
                chunk = (f"<p><a href=\"https://{link_host}/{rng.choice(_WORDS)}/"
                         f"{rng.getrandbits(48):x}?utm_source=mail&amp;utm_campaign="
                         f"{rng.randint(1, 99)}\">{rng.choice(self.sentences)}</a></p>")
            parts.append(chunk)
            total += len(chunk)
        parts.append("</body></html>")
        return "\r\n".join(parts) + "\r\n"

    def body(self, rng: random.Random, size: int, link_host: str, phish: bool = False) -> Body:
        """A body of about ``size`` bytes in one of several realistic MIME shapes."""
        shape = rng.choices(["plain", "alternative", "mixed", "related"],
                            (0.25, 0.35, 0.3, 0.1))[0]
        if size < 4000 and shape in ("mixed", "related"):
            shape = "alternative"
        if shape == "plain":
            return self._plain(rng, size, phish)
        boundary = f"=_{rng.getrandbits(64):016x}"
        if shape == "alternative":
            inner = self._alternative(rng, size, link_host, phish, boundary)
            return Body([("MIME-Version", "1.0"),
                         ("Content-Type", f'multipart/alternative; boundary="{boundary}"')], inner)
        if shape == "related":
            return self._related(rng, size, link_host, phish, boundary)
        return self._mixed(rng, size, link_host, phish, boundary)

    def _plain(self, rng: random.Random, size: int, phish: bool) -> Body:
        text = self.text(rng, size, phish)
        if text.isascii() and rng.random() < 0.5:
            return Body([("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii"),
                         ("Content-Transfer-Encoding", "7bit")], text.encode("ascii"))
        return Body([("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=utf-8"),
                     ("Content-Transfer-Encoding", "quoted-printable")], _qp(text))

    def _alternative(self, rng: random.Random, size: int, link_host: str, phish: bool,
                     boundary: str) -> bytes:
        text = self.text(rng, size // 3, phish)
        html = self.html(rng, size - size // 3, link_host, phish)
        return (
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            + _qp(text)
            + f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            + _qp(html)
            + f"\r\n--{boundary}--\r\n".encode()
        )

    def _attachment(self, rng: random.Random, size: int, boundary: str) -> bytes:
        ctype, ext, magic = rng.choice(_ATTACHMENTS)
        name = f"{rng.choice(_WORDS)}-{rng.randint(2020, 2026)}-{rng.randint(1, 999):03d}.{ext}"
        if magic is None:
            rows = [",".join(str(rng.randint(0, 99999)) for _ in range(6)) for _ in
                    range(max(1, size // 36))]
            data = ("id,amount,qty,region,code,total\r\n" + "\r\n".join(rows)).encode()
        else:
            data = magic + rng.randbytes(max(16, size - len(magic)))
        return (
            f"--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + _b64_lines(data)
        )

    def _mixed(self, rng: random.Random, size: int, link_host: str, phish: bool,
               boundary: str) -> Body:
        inner_boundary = f"=_{rng.getrandbits(64):016x}"
        text_size = min(size // 3, rng.randint(1500, 12000))
        inner = self._alternative(rng, text_size, link_host, phish, inner_boundary)
        parts = [
            f"--{boundary}\r\nContent-Type: multipart/alternative; "
            f"boundary=\"{inner_boundary}\"\r\n\r\n".encode() + inner
        ]
        remaining = max(600, size - len(inner))
        count = 1 if remaining < 20000 or rng.random() < 0.6 else 2
        for _ in range(count):
            parts.append(self._attachment(rng, remaining * 3 // (4 * count), boundary))
        data = b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()
        return Body([("MIME-Version", "1.0"),
                     ("Content-Type", f'multipart/mixed; boundary="{boundary}"')], data)

    def _related(self, rng: random.Random, size: int, link_host: str, phish: bool,
                 boundary: str) -> Body:
        html = self.html(rng, size // 3, link_host, phish)
        cid = f"logo{rng.getrandbits(32):08x}@{link_host}"
        html = html.replace("<body>", f"<body><img src=\"cid:{cid}\" alt=\"logo\">", 1)
        image = b"\x89PNG\r\n\x1a\n" + rng.randbytes(max(200, (size - len(html)) * 3 // 4))
        data = (
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            + _qp(html)
            + f"\r\n--{boundary}\r\nContent-Type: image/png\r\nContent-ID: <{cid}>\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + _b64_lines(image)
            + f"--{boundary}--\r\n".encode()
        )
        return Body([("MIME-Version", "1.0"),
                     ("Content-Type", f'multipart/related; boundary="{boundary}"; '
                                      'type="text/html"')], data)


def _wrap(paragraph: str, width: int = 76) -> str:
    lines: list[str] = []
    line = ""
    for word in paragraph.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return "\r\n".join(lines)
