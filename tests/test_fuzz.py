"""Fuzzing: no input makes parsing or the whole engine raise."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailward import config
from mailward.dns import ZoneResolver
from mailward.message import parse_headers
from mailward.model import Connection, Disposition, Envelope, Message, Transaction
from mailward.pipeline import Pipeline

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED_MESSAGES = [p.read_bytes() for p in sorted(EXAMPLES.glob("*.eml"))]

header_names = st.sampled_from(
    [b"From", b"To", b"DKIM-Signature", b"ARC-Seal", b"ARC-Message-Signature",
     b"ARC-Authentication-Results", b"Subject", b"Content-Type", b"Reply-To", b"X-\xff"]
)
header_values = st.binary(max_size=300) | st.sampled_from(
    [b"v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=; b=", b"i=1; a=rsa-sha256; cv=none",
     b"<a@b>", b"=?utf-8?q?=FF?= <x@y>", b"\r\n\t", b"a@b, c@d", b"i=99999999999999999"]
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = bytearray(draw(st.sampled_from(SEED_MESSAGES)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, len(base)))
        if op == 0:
            base[pos:pos] = draw(header_names) + b": " + draw(header_values) + b"\r\n"
        elif op == 1:
            del base[pos : pos + draw(st.integers(1, 200))]
        elif op == 2:
            base[pos:pos] = draw(st.binary(max_size=50))
        else:
            base[pos:pos] = draw(st.sampled_from([b"\n", b"\r", b"\r\n.\r\n", b"\n.\n", b"\x00"]))
    return bytes(base)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000) | mutated())
def test_parsing_never_raises(raw: bytes) -> None:
    parsed = parse_headers(raw)
    assert parsed.canonical.count(b"\n") == parsed.canonical.count(b"\r\n")
    _ = parsed.from_domain, [f.value for f in parsed.fields]


ZONES = ZoneResolver.from_file(EXAMPLES / "zones.yaml")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
@given(mutated(), st.sampled_from(["", "ceo@ourcorp.example", "x@partner.test", "<>@@"]))
def test_engine_never_raises_on_mutated_messages(raw: bytes, mail_from: str) -> None:
    pipeline = Pipeline(config.Config(), ZONES)
    tx = Transaction(
        Connection(ip="192.0.2.25", helo="mail.partner.test"),
        Envelope(mail_from, ["staff@ourcorp.example"]),
        Message(raw),
    )
    evaluation = asyncio.run(pipeline.evaluate(tx, now=1795812900))
    assert isinstance(evaluation.verdict.disposition, Disposition)
    # no check may have crashed: a crash would show as an internal-error temperror
    assert not [f for f in evaluation.findings if "internal error" in f.detail], [
        f.detail for f in evaluation.findings
    ]
