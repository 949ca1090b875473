"""authheaders' DMARC evaluation cases (authheaders 0.16.3, authheaders/test/), through our check.

The messages are read from the shared conformance folder. The DNS answers and the expected
Authentication-Results lived in authheaders' test code (``test_authentication.py``, its
``dnsfunc`` and assertions), which is not part of that folder: they are transcribed below.
Their DKIM results are given as inputs, exactly as the authheaders harness had them (computed
by its own DKIM verifier, or passed in through ``prev=``), and SPF was off in every case; so
this suite tests DMARC alone. We compare the dmarc= result and its ``header.from`` and
``policy.dmarc`` properties (their comments in parentheses are free text).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import pytest

from mailward import authresults
from mailward.checks.base import CheckContext
from mailward.checks.dmarc import DmarcCheck
from mailward.config import Config
from mailward.dns import ZoneResolver
from mailward.model import Connection, Envelope, Finding, Message, Result, Transaction
from tests.conftest import CONFORMANCE

DATA = CONFORMANCE / "dmarc" / "authheaders-tests"

# authheaders' dnsfunc; "\;" in their strings is zone-file escaping of ";". "sub2.example.biz"
# answers there ("host.example.biz"): it exists; "sub.example.biz" answers None: it does not.
ZONES: dict[str, Any] = {
    "_dmarc.example.com": [{"TXT": (
        "v=DMARC1; p=reject; "
        "rua=mailto:dmarc.reports@valimail.com,mailto:dmarc_agg@vali.email; "
        "ruf=mailto:dmarc.reports@valimail.com,mailto:dmarc_c0cb7153_afrf@vali.email")}],
    "_dmarc.example.org": [{"TXT": "v=DMARC1; p=none"}],
    "_dmarc.example.net": [{"TXT": "v=DMARC1; p=none; sp=reject"}],
    "_dmarc.sub.example.net": [{"TXT": ""}],
    "_dmarc.example.biz": [{"TXT": "v=DMARC1; p=none; sp=quarantine; np=reject"}],
    "_dmarc.nop.example.org": [{"TXT": "v=DMARC1; sp=quarantine; np=reject"}],
    "_dmarc.sub.example.biz": [{"TXT": ""}],
    "_dmarc.sub2.example.biz": [{"TXT": ""}],
    "sub2.example.biz": [{"MX": [10, "host.example.biz"]}],
    "_dmarc.bad.example.com": [{"TXT": "v=DMARC1; p=none; reject"}],
}

MULTI_FROM = (
    "we report dmarc=permerror (DMARC_FROM_INVALID) for a From header naming two domains, as "
    "RFC 9989 §5.3.1 says DMARC validation is then not possible; authheaders applies the "
    "strictest failing policy of the domains (the RFC 7489 approach RFC 9989 §11.5 mentions)"
)


@dataclass(frozen=True)
class Case:
    test: str  # the authheaders test it comes from
    message: str
    dkim: tuple[tuple[str, str], ...]  # (result, d=) inputs
    expected: str  # authheaders' dmarc clause
    differs: str = ""  # why we deliberately differ


CASES = [
    Case("test_authenticate_dmarc", "test.message_signed", (("pass", "example.com"),),
         "dmarc=pass (Used From Domain Record) header.from=example.com policy.dmarc=reject"),
    Case("test_authenticate_dmarc_bad", "test.bad.message", (),
         'dmarc=permerror (missing tag or value: "v=DMARC1\\; p=none\\; reject") '
         "header.from=bad.example.com policy.dmarc=none",
         "RFC 9989 §4.8: a syntax error in a DMARC record (here the bare word 'reject') MUST "
         "be discarded, so the record is p=none and a message without aligned "
         "authentication gets dmarc=fail policy.dmarc=none; authheaders calls it permerror"),
    Case("test_authenticate_dmarc_nofrom", "test.nofrom.message", (),
         "dmarc=permerror (Unable to extract From domain: Test User) header.from=none "
         "policy.dmarc=none"),
    Case("test_authenticate_dmarc_mult_from", "test.message_multi",
         (("fail", "example.com"), ("pass", "example.org")),
         "dmarc=fail (Used From Domain Record) header.from=example.com policy.dmarc=reject",
         MULTI_FROM),
    Case("test_authenticate_dmarc_mult_from2", "test.message_multi2",
         (("fail", "example.com"), ("pass", "example.org")),
         "dmarc=fail (Used From Domain Record) header.from=example.com policy.dmarc=reject",
         MULTI_FROM),
    Case("test_authenticate_dmarc_sub", "test.message_sub", (("fail", "sub.example.net"),),
         "dmarc=fail (Used Org Domain Record) header.from=sub.example.net policy.dmarc=reject"),
    Case("test_authenticate_dmarc_np1", "test.message_np1", (("fail", "sub.example.biz"),),
         "dmarc=fail (Used Org Domain Record) header.from=sub.example.biz policy.dmarc=reject"),
    Case("test_authenticate_dmarc_np2", "test.message_np2", (("fail", "sub2.example.biz"),),
         "dmarc=fail (Used Org Domain Record) header.from=sub2.example.biz "
         "policy.dmarc=quarantine"),
    Case("test_authenticate_dmarc_no_p", "test_nop.message", (("fail", "nop.example.org"),),
         "dmarc=none"),
    Case("test_authenticate_dmarc_comma", "testcomma.message", (("pass", "example.com"),),
         "dmarc=pass (Used From Domain Record) header.from=example.com policy.dmarc=reject"),
]


def clause_parts(clause: str) -> tuple[str, dict[str, str]]:
    """The result word and the header.from/policy.dmarc properties of a dmarc clause."""
    clause = re.sub(r'\((?:[^()"]|"[^"]*")*\)', " ", clause)  # drop comments
    result = re.match(r"\s*dmarc=(\w+)", clause)
    assert result is not None, clause
    return result.group(1), dict(re.findall(r"(header\.from|policy\.dmarc)=(\S+)", clause))


def same(ours: str, theirs: str) -> bool:
    """Same result, and the same value for each property authheaders writes ("none" = we
    write none or leave it out). A property only we write (header.from on dmarc=none) is fine."""
    our_result, our_props = clause_parts(ours)
    their_result, their_props = clause_parts(theirs)
    return our_result == their_result and all(
        our_props.get(key, "none") == value for key, value in their_props.items()
    )


def evaluate(case: Case) -> str:
    raw = (DATA / case.message).read_bytes()
    dkim = [
        Finding("dkim", f"DKIM_{result.upper()}", Result(result), method_result=True,
                properties=(("header.d", d), ("header.i", "@" + d)))
        for result, d in case.dkim
    ]
    ctx = CheckContext(ZoneResolver(ZONES), Config(), {"spf": [], "dkim": dkim}, 0.0)
    tx = Transaction(Connection(ip="192.0.2.1", helo="lists.example.org"),
                     Envelope("jqd@d1.example"), Message(raw))
    (finding,) = asyncio.run(DmarcCheck(Config()).run(tx, ctx))
    return authresults.method_entry(finding)


@pytest.mark.conformance("dmarc-authheaders")
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.test, marks=[pytest.mark.xfail(strict=True, reason=c.differs)]
                     if c.differs else [])
        for c in CASES
    ],
)
def test_authheaders_case(case: Case) -> None:
    ours = evaluate(case)
    assert same(ours, case.expected), f"ours: {ours}; authheaders: {case.expected}"


def test_deliberate_differences_are_what_we_say() -> None:
    """The xfail cases fail for the stated reason, not for another one."""
    by_test = {c.test: c for c in CASES}
    assert evaluate(by_test["test_authenticate_dmarc_bad"]) == (
        "dmarc=fail header.from=bad.example.com policy.dmarc=none")
    for test in ("test_authenticate_dmarc_mult_from", "test_authenticate_dmarc_mult_from2"):
        assert evaluate(by_test[test]).startswith('dmarc=permerror reason="no single')
