"""The DMARC check (RFC 9989): acceptance cases through `mailward check`, then its logic.

Every case has its own zone data. The acceptance cases run the real SPF and DKIM checks: SPF
passes through an ``ip4:`` record for the default client 192.0.2.1, DKIM through a signature
made with dkimpy and a key published in the zone.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailward.checks import dmarc as dmarc_module
from mailward.checks.base import CheckContext
from mailward.checks.dmarc import DmarcCheck, ascii_domain, author_domain
from mailward.config import Config, from_dict
from mailward.dmarc_record import Policy, parse_record, walk_names
from mailward.dns import Lookup, Resolver, Status, ZoneBackend, ZoneResolver
from mailward.message import parse_headers
from mailward.model import Connection, Envelope, Finding, Message, Result, Transaction
from tests.helpers import check_json as _check_json
from tests.helpers import symbols

GOOD_IP = "192.0.2.1"  # check_json's default client
BAD_IP = "198.51.100.7"
# The checks DMARC builds on; other checks (content, identity...) are not under test here.
CHECKS = '[checks]\nenabled = ["spf", "dkim", "arc", "dmarc"]\n'


def check_json(tmp_path: Path, raw: bytes, zones: dict[str, Any], *, config: str | None = None,
               **kwargs: Any) -> dict[str, Any]:
    return _check_json(tmp_path, raw, zones, config=CHECKS + (config or ""), **kwargs)


# --- helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    pem: bytes
    txt: str


@pytest.fixture(scope="module")
def key() -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Key(pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())


def message(from_value: str | None, body: str = "Please find the report attached.") -> bytes:
    head = f"From: {from_value}\r\n" if from_value is not None else ""
    return (
        f"{head}To: staff@ourcorp.example\r\nSubject: quarterly report\r\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <q1@test.example>\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def signed(raw: bytes, domain: str, key: Key, selector: str = "s1") -> bytes:
    sig = dkim.sign(raw, selector.encode(), domain.encode(), key.pem,
                    include_headers=[b"from", b"to", b"subject", b"date"])
    return sig + raw


def key_zone(domain: str, key: Key, selector: str = "s1") -> dict[str, Any]:
    return {f"{selector}._domainkey.{domain}": [{"TXT": key.txt}]}


def spf_zone(domain: str) -> dict[str, Any]:
    return {domain: [{"TXT": f"v=spf1 ip4:{GOOD_IP} -all"}]}


def dmarc_zone(domain: str, record: str) -> dict[str, Any]:
    return {f"_dmarc.{domain}": [{"TXT": record}]}


def dmarc_finding(report: dict[str, Any]) -> dict[str, Any]:
    (finding,) = [f for f in report["findings"] if f["check"] == "dmarc"]
    return finding


def dmarc_clause(report: dict[str, Any]) -> str:
    m = re.search(r"\bdmarc=[^;]*", report["authentication_results"])
    assert m is not None, report["authentication_results"]
    return m.group(0).strip()


def props(report: dict[str, Any]) -> dict[str, str]:
    return dict(re.findall(r"([a-z.\-]+)=(\S+)", dmarc_clause(report)))


# --- acceptance cases through the CLI -------------------------------------------------------


def test_pass_via_relaxed_spf_alignment(tmp_path: Path) -> None:
    zones = {**spf_zone("bounce.example.com"), **dmarc_zone("example.com", "v=DMARC1; p=reject")}
    report = check_json(tmp_path, message("Ann <ann@example.com>"), zones,
                        mail_from="ann@bounce.example.com")
    assert "SPF_PASS" in symbols(report)
    assert dmarc_finding(report)["symbol"] == "DMARC_PASS"
    assert dmarc_clause(report) == "dmarc=pass header.from=example.com policy.dmarc=reject"
    assert report["verdict"]["disposition"] == "accept"


def test_pass_via_dkim_alignment_only(tmp_path: Path, key: Key) -> None:
    zones = {**spf_zone("example.com"), **key_zone("example.com", key),
             **dmarc_zone("example.com", "v=DMARC1; p=reject")}
    raw = signed(message("ann@example.com"), "example.com", key)
    report = check_json(tmp_path, raw, zones, ip=BAD_IP, mail_from="ann@example.com")
    assert {"SPF_FAIL", "DKIM_PASS"} <= symbols(report)
    assert dmarc_finding(report)["symbol"] == "DMARC_PASS"
    assert "DKIM signature of example.com" in dmarc_finding(report)["detail"]
    assert report["verdict"]["disposition"] != "reject"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=DMARC1; p=reject", "DMARC_PASS"),
        ("v=DMARC1; p=reject; aspf=s", "DMARC_FAIL_REJECT"),
        ("v=DMARC1; p=reject; aspf=r; adkim=s", "DMARC_PASS"),
    ],
)
def test_relaxed_vs_strict_spf_alignment_of_a_subdomain_sender(
    tmp_path: Path, record: str, expected: str
) -> None:
    zones = {**spf_zone("mail.example.com"), **dmarc_zone("example.com", record)}
    report = check_json(tmp_path, message("ann@example.com"), zones,
                        mail_from="ann@mail.example.com")
    assert "SPF_PASS" in symbols(report)
    assert dmarc_finding(report)["symbol"] == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [("v=DMARC1; p=reject", "DMARC_PASS"), ("v=DMARC1; p=reject; adkim=s", "DMARC_FAIL_REJECT")],
)
def test_relaxed_vs_strict_dkim_alignment_of_a_subdomain_signer(
    tmp_path: Path, key: Key, record: str, expected: str
) -> None:
    zones = {**key_zone("news.example.com", key), **dmarc_zone("example.com", record)}
    raw = signed(message("ann@example.com"), "news.example.com", key)
    report = check_json(tmp_path, raw, zones, mail_from="ann@elsewhere.example")
    assert "DKIM_PASS" in symbols(report)
    assert dmarc_finding(report)["symbol"] == expected


def test_reject_policy_failure_rejects_with_the_reason(tmp_path: Path) -> None:
    zones = {**spf_zone("example.com"), **dmarc_zone("example.com", "v=DMARC1; p=reject")}
    report = check_json(tmp_path, message("ceo@example.com"), zones, ip=BAD_IP,
                        mail_from="ceo@example.com")
    verdict = report["verdict"]
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_REJECT"
    assert verdict["disposition"] == "reject"
    assert verdict["forced_by"] == "DMARC_FAIL_REJECT"
    assert verdict["reasons"][0].startswith("forced: DMARC_FAIL_REJECT -> reject")
    assert "p=reject" in verdict["reasons"][0]
    assert "pretends to come from example.com" in dmarc_finding(report)["advice"]


def test_authentication_results_carry_fail_with_from_and_policy(tmp_path: Path) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject")
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    ar = report["authentication_results"]
    assert "dmarc=fail" in ar
    assert "header.from=example.com" in ar
    assert "policy.dmarc=reject" in ar
    assert dmarc_clause(report) == "dmarc=fail header.from=example.com policy.dmarc=reject"


def test_quarantine_policy_failure_quarantines(tmp_path: Path) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=quarantine")
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_QUARANTINE"
    assert report["verdict"]["disposition"] == "quarantine"
    assert report["verdict"]["forced_by"] == "DMARC_FAIL_QUARANTINE"


def test_none_policy_failure_is_at_most_tagged(tmp_path: Path) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=none")
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_NONE"
    assert props(report)["policy.dmarc"] == "none"
    assert report["verdict"]["disposition"] in ("accept", "tag")


def test_sp_applies_to_an_existing_subdomain(tmp_path: Path) -> None:
    zones = {**dmarc_zone("example.com", "v=DMARC1; p=none; sp=reject"),
             "news.example.com": [{"A": "192.0.2.80"}]}
    report = check_json(tmp_path, message("desk@news.example.com"), zones,
                        mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_REJECT"
    assert "sp=reject" in dmarc_finding(report)["detail"]
    # the Organizational Domain itself still gets p=
    report = check_json(tmp_path, message("desk@example.com"), zones, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_NONE"


@pytest.mark.parametrize(
    ("author", "expected", "tag"),
    [
        ("ghost.example.com", "DMARC_FAIL_REJECT", "np=reject"),  # NXDOMAIN
        ("news.example.com", "DMARC_FAIL_QUARANTINE", "sp=quarantine"),  # has an A record
        # only a TXT record: NODATA for A/AAAA/MX still means it exists (RFC 9989 App. A.4)
        ("txtonly.example.com", "DMARC_FAIL_QUARANTINE", "sp=quarantine"),
    ],
)
def test_np_applies_to_a_nonexistent_subdomain(
    tmp_path: Path, author: str, expected: str, tag: str
) -> None:
    zones = {**dmarc_zone("example.com", "v=DMARC1; p=none; sp=quarantine; np=reject"),
             "news.example.com": [{"A": "192.0.2.80"}],
             "txtonly.example.com": [{"TXT": "hello"}]}
    report = check_json(tmp_path, message(f"billing@{author}"), zones,
                        mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == expected
    assert tag in dmarc_finding(report)["detail"]


@pytest.mark.parametrize(
    ("bank_record", "expected"),
    [
        # psd=y: bank.example is a public suffix, so mega.bank.example is its own
        # Organizational Domain and does not align with giant.bank.example (RFC 9989 B.4.3)
        ("v=DMARC1; p=none; psd=y", "DMARC_FAIL_REJECT"),
        # without psd=y the record with the fewest labels, bank.example, is the
        # Organizational Domain of both, so they align
        ("v=DMARC1; p=none", "DMARC_PASS"),
    ],
)
def test_psd_y_makes_the_domain_below_the_organizational_domain(
    tmp_path: Path, key: Key, bank_record: str, expected: str
) -> None:
    zones = {**dmarc_zone("giant.bank.example", "v=DMARC1; p=reject"),
             **dmarc_zone("bank.example", bank_record),
             **key_zone("mail.mega.bank.example", key)}
    raw = signed(message("ceo@giant.bank.example"), "mail.mega.bank.example", key)
    report = check_json(tmp_path, raw, zones, mail_from="x@other.example")
    assert "DKIM_PASS" in symbols(report)
    assert dmarc_finding(report)["symbol"] == expected


def test_psd_record_supplies_the_policy_of_an_unregistered_subdomain(tmp_path: Path) -> None:
    zones = dmarc_zone("bank.example", "v=DMARC1; p=none; sp=quarantine; np=reject; psd=y")
    report = check_json(tmp_path, message("ceo@giant.bank.example"), zones,
                        mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_REJECT"  # giant.bank.example: NXDOMAIN
    assert "public suffix domain bank.example" in dmarc_finding(report)["detail"]


@pytest.mark.parametrize(
    ("dept_record", "expected"),
    [
        # psd=n: dept.example.com is its own Organizational Domain, its record the policy
        ("v=DMARC1; p=quarantine; psd=n", "DMARC_FAIL_QUARANTINE"),
        # without it, example.com (fewest labels) is the Organizational Domain: aligned
        ("v=DMARC1; p=quarantine", "DMARC_PASS"),
    ],
)
def test_psd_n_declares_an_organizational_domain(
    tmp_path: Path, key: Key, dept_record: str, expected: str
) -> None:
    zones = {**dmarc_zone("example.com", "v=DMARC1; p=reject"),
             **dmarc_zone("dept.example.com", dept_record),
             **key_zone("example.com", key),
             "lab.dept.example.com": [{"A": "192.0.2.9"}]}
    raw = signed(message("head@lab.dept.example.com"), "example.com", key)
    report = check_json(tmp_path, raw, zones, mail_from="x@other.example")
    assert "DKIM_PASS" in symbols(report)
    assert dmarc_finding(report)["symbol"] == expected


DEEP = "a.b.c.d.e.f.g.h.i.j.mail.example.com"  # 13 labels


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # default 8: after the Author Domain the walk jumps to g.h.i.j.mail.example.com (7
        # labels), so the psd=n record at c.d.e.f.g.h.i.j.mail.example.com is never seen
        (None, "DMARC_FAIL_REJECT"),
        # 12: the walk goes on with the 11 right-most labels, which hold that record
        ("[dmarc]\ntree_walk_max_labels = 12\n", "DMARC_FAIL_NONE"),
    ],
)
def test_tree_walk_beyond_eight_labels(tmp_path: Path, config: str | None, expected: str) -> None:
    zones = {**dmarc_zone("c.d.e.f.g.h.i.j.mail.example.com", "v=DMARC1; p=none; psd=n"),
             **dmarc_zone("h.i.j.mail.example.com", "v=DMARC1; p=reject")}
    report = check_json(tmp_path, message(f"x@{DEEP}"), zones, mail_from="x@other.example",
                        config=config)
    assert dmarc_finding(report)["symbol"] == expected


def test_testing_mode_downgrades_reject_to_quarantine(tmp_path: Path) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject; t=y")
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_QUARANTINE"
    assert dmarc_clause(report) == (
        "dmarc=fail header.from=example.com policy.dmarc=quarantine "
        "policy.published-domain-policy=reject"
    )
    assert report["verdict"]["disposition"] == "quarantine"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # RFC 9989 has no sampling: pct=50 is a removed tag and the policy applies in full
        ("v=DMARC1; p=reject; pct=50", "DMARC_FAIL_REJECT"),
        # App. A.6: pct=0 is what t=y replaced
        ("v=DMARC1; p=reject; pct=0", "DMARC_FAIL_QUARANTINE"),
        ("v=DMARC1; p=reject; pct=0; t=n", "DMARC_FAIL_REJECT"),
    ],
)
def test_rfc7489_pct_tag(tmp_path: Path, record: str, expected: str) -> None:
    report = check_json(tmp_path, message("ceo@example.com"), dmarc_zone("example.com", record),
                        mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == expected
    assert "pct=" in dmarc_finding(report)["detail"]


def test_no_record_is_dmarc_none(tmp_path: Path) -> None:
    report = check_json(tmp_path, message("ann@example.org"), {}, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_NONE"
    assert dmarc_clause(report) == "dmarc=none header.from=example.org"


def test_policy_lookup_timeout_tempfails(tmp_path: Path) -> None:
    zones = {"_dmarc.example.com": ["TIMEOUT"]}
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_TEMPERROR"
    assert dmarc_clause(report).startswith("dmarc=temperror")
    assert report["verdict"]["disposition"] == "tempfail"


@pytest.mark.parametrize(
    ("record", "symbol", "disposition"),
    [
        ("v=DMARC1; p=reject", "DMARC_TEMPERROR", {"tempfail"}),
        # with p=none a temperror decides nothing: reported, but nothing is forced
        ("v=DMARC1; p=none", "DMARC_TEMPERROR_POLICY_NONE", {"accept", "tag"}),
    ],
)
def test_spf_temperror_on_the_aligned_domain_decides(
    tmp_path: Path, record: str, symbol: str, disposition: set[str]
) -> None:
    zones = {"example.com": ["TIMEOUT"], **dmarc_zone("example.com", record)}
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="ceo@example.com")
    assert "SPF_TEMPERROR" in symbols(report)
    assert dmarc_finding(report)["symbol"] == symbol
    assert dmarc_clause(report).startswith("dmarc=temperror")
    assert report["verdict"]["disposition"] in disposition


def test_spf_temperror_on_an_unaligned_domain_does_not_decide(tmp_path: Path) -> None:
    zones = {"other.example": ["TIMEOUT"], **dmarc_zone("example.com", "v=DMARC1; p=reject")}
    report = check_json(tmp_path, message("ceo@example.com"), zones, mail_from="x@other.example")
    assert "SPF_TEMPERROR" in symbols(report)
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_REJECT"


@pytest.mark.parametrize(
    "from_value",
    [None, "ceo@example.com, ceo@evil.example", "Chief Executive", "ceo@[192.0.2.1]"],
    ids=["no-from", "two-domains", "no-address", "address-literal"],
)
def test_from_without_one_author_domain(tmp_path: Path, from_value: str | None) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject")
    report = check_json(tmp_path, message(from_value), zones, mail_from="x@other.example")
    finding = dmarc_finding(report)
    assert finding["symbol"] == "DMARC_FROM_INVALID"
    assert finding["result"] == "permerror"
    assert dmarc_clause(report).startswith("dmarc=permerror")
    assert "header.from" not in dmarc_clause(report)


def test_two_from_addresses_of_one_domain_are_evaluated(tmp_path: Path) -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject")
    report = check_json(tmp_path, message("a@example.com, b@EXAMPLE.com"), zones,
                        mail_from="x@other.example")
    assert dmarc_finding(report)["symbol"] == "DMARC_FAIL_REJECT"


# --- the logic, with findings made by hand ---------------------------------------------------


def tx(
    from_value: str | None = "ceo@example.com", mail_from: str = "x@other.example"
) -> Transaction:
    return Transaction(Connection(ip=GOOD_IP, helo="mx.other.example"), Envelope(mail_from),
                       Message(message(from_value)))


def spf(result: Result, mailfrom: str = "", helo: str = "") -> Finding:
    prop = ("smtp.mailfrom", mailfrom) if mailfrom else ("smtp.helo", helo)
    return Finding("spf", f"SPF_{result.upper()}", result, method_result=True, properties=(prop,))


def dkim_result(result: Result, d: str = "") -> Finding:
    props = (("header.d", d), ("header.s", "s1")) if d else ()
    return Finding("dkim", f"DKIM_{result.upper()}", result, method_result=True, properties=props)


def evaluate(
    zones: dict[str, Any] | Resolver, *findings: Finding, check: DmarcCheck | None = None,
    transaction: Transaction | None = None, config: Config | None = None,
) -> Finding:
    resolver = zones if isinstance(zones, Resolver) else ZoneResolver(zones)
    config = config or Config()
    results: dict[str, list[Finding]] = {"spf": [], "dkim": []}
    for f in findings:
        results[f.check].append(f)
    ctx = CheckContext(resolver, config, results, 0.0)
    check = check or DmarcCheck(config)
    out = asyncio.run(check.run(transaction or tx(), ctx))
    assert len(out) == 1 and out[0].method_result
    return out[0]


def test_null_sender_uses_the_helo_identity() -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject")
    f = evaluate(zones, spf(Result.PASS, helo="mx.example.com"),
                 transaction=tx(mail_from=""))
    assert f.symbol == "DMARC_PASS"
    # with a real MAIL FROM, a HELO result is not DMARC's SPF identity (RFC 9989 §4.4.2)
    f = evaluate(zones, spf(Result.PASS, helo="mx.example.com"))
    assert f.symbol == "DMARC_FAIL_REJECT"


def test_temperror_above_the_stop_of_the_walk_is_ignored() -> None:
    """Speculative queries: _dmarc.com times out, but the sequential walk stops at psd=n."""
    zones = {"_dmarc.com": ["TIMEOUT"], **dmarc_zone("example.com", "v=DMARC1; p=reject; psd=n")}
    f = evaluate(zones, transaction=tx("ceo@a.example.com"))
    assert f.symbol == "DMARC_FAIL_REJECT"


@pytest.mark.parametrize(
    ("record", "d", "expected"),
    [
        # identical domains: no tree walk needed, the timeout above does not matter
        ("v=DMARC1; p=reject", "example.com", "DMARC_PASS"),
        # relaxed alignment needs the Organizational Domains: _dmarc.com cannot be read
        ("v=DMARC1; p=reject", "mail.example.com", "DMARC_TEMPERROR"),
        ("v=DMARC1; p=none", "mail.example.com", "DMARC_TEMPERROR_POLICY_NONE"),
        # strict alignment is a string comparison: a certain failure
        ("v=DMARC1; p=reject; adkim=s", "mail.example.com", "DMARC_FAIL_REJECT"),
    ],
)
def test_alignment_temperror_only_when_it_matters(record: str, d: str, expected: str) -> None:
    zones = {"_dmarc.com": ["TIMEOUT"], **dmarc_zone("example.com", record)}
    f = evaluate(zones, dkim_result(Result.PASS, d))
    assert f.symbol == expected
    if expected == "DMARC_TEMPERROR":
        assert f.result is Result.TEMPERROR and "mail.example.com" in f.detail


@pytest.mark.parametrize(
    ("sub_record", "expected", "where"),
    [
        # RFC 9989 §4.10.1/§4.10.2 (and App. B.4.2): without an own record the policy is the
        # Organizational Domain's, i.e. the record with the fewest labels, not the first found
        ("v=DMARC1; p=none", "DMARC_FAIL_REJECT", "Organizational Domain example.com"),
        # psd=n stops the walk: sub.example.com is the Organizational Domain
        ("v=DMARC1; p=none; psd=n", "DMARC_FAIL_NONE", "Organizational Domain sub.example.com"),
    ],
)
def test_policy_of_a_subdomain_comes_from_the_organizational_domain(
    sub_record: str, expected: str, where: str
) -> None:
    zones = {**dmarc_zone("sub.example.com", sub_record),
             **dmarc_zone("example.com", "v=DMARC1; p=reject")}
    f = evaluate(zones, transaction=tx("ceo@a.sub.example.com"))
    assert f.symbol == expected
    assert where in f.detail


def test_internationalized_author_domain_is_looked_up_as_a_label() -> None:
    zones = dmarc_zone("xn--bcher-kva.example", "v=DMARC1; p=reject")
    f = evaluate(zones, transaction=tx("verkauf@bücher.example"))
    assert f.symbol == "DMARC_FAIL_REJECT"
    assert f.prop("header.from") == "xn--bcher-kva.example"


def test_policy_walk_temperror_above_an_intermediate_record() -> None:
    """No own record; a record at sub.example.com; _dmarc.example.com times out: the
    Organizational Domain, hence the policy, is unknown."""
    zones = {"_dmarc.example.com": ["TIMEOUT"],
             **dmarc_zone("sub.example.com", "v=DMARC1; p=none")}
    f = evaluate(zones, transaction=tx("ceo@a.sub.example.com"))
    assert f.symbol == "DMARC_TEMPERROR"
    assert "_dmarc.example.com" in f.detail


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # np would change the outcome (quarantine vs reject): existence unknown -> temperror
        ("v=DMARC1; p=none; sp=quarantine; np=reject", "DMARC_TEMPERROR"),
        # np absent: the same policy either way, no existence check
        ("v=DMARC1; p=none; sp=quarantine", "DMARC_FAIL_QUARANTINE"),
        # t=y makes np=reject and sp=quarantine... still different (quarantine vs none)
        ("v=DMARC1; p=none; sp=quarantine; np=reject; t=y", "DMARC_TEMPERROR"),
        ("v=DMARC1; p=none; sp=reject; np=reject", "DMARC_FAIL_REJECT"),
    ],
)
def test_np_existence_temperror_only_when_np_changes_the_outcome(
    record: str, expected: str
) -> None:
    zones = {"ghost.example.com": ["TIMEOUT"], **dmarc_zone("example.com", record)}
    assert evaluate(zones, transaction=tx("x@ghost.example.com")).symbol == expected


def test_dkim_check_that_could_not_finish_counts_as_possibly_aligned() -> None:
    zones = dmarc_zone("example.com", "v=DMARC1; p=reject")
    broken = Finding("dkim", "DKIM_TEMPERROR", Result.TEMPERROR, method_result=True)
    assert evaluate(zones, broken).symbol == "DMARC_TEMPERROR"
    # a DKIM temperror for an unrelated domain is not aligned: the failure is certain
    assert evaluate(zones, dkim_result(Result.TEMPERROR, "other.example")).symbol == (
        "DMARC_FAIL_REJECT"
    )


def test_several_dmarc_records_at_one_name_are_all_ignored() -> None:
    zones = {"_dmarc.sub.example.com": [{"TXT": "v=DMARC1; p=none"},
                                         {"TXT": "v=DMARC1; p=reject"},
                                         {"TXT": "some other text"}],
             **dmarc_zone("example.com", "v=DMARC1; p=quarantine")}
    f = evaluate(zones, transaction=tx("x@sub.example.com"))
    assert f.symbol == "DMARC_FAIL_QUARANTINE"
    assert "Organizational Domain example.com" in f.detail


@pytest.mark.parametrize(
    ("record", "symbol"),
    [
        ("v=DMARC1; p=rejected", "DMARC_PERMERROR"),  # invalid p, no rua: no DMARC processing
        ("v=DMARC1; p=reject; sp=maybe", "DMARC_PERMERROR"),
        ("v=DMARC1; p=", "DMARC_PERMERROR"),
        ("v=DMARC1; p=r\u00e9ject", "DMARC_PERMERROR"),
        ("v=DMARC1; p=rejected; rua=mailto:d@example.com", "DMARC_FAIL_NONE"),  # as if p=none
        ("v=DMARC1; sp=quarantine; np=reject", "DMARC_NONE"),  # no p and no rua (§4.10.1)
        ("v=DMARC1; rua=mailto:d@example.com", "DMARC_FAIL_NONE"),  # no p but rua: p=none
        ("v=DMARC1; p=none; reject", "DMARC_FAIL_NONE"),  # syntax error discarded (§4.8)
        ("v=DMARC1; P=Reject", "DMARC_FAIL_REJECT"),
        ("v=DMARC1;p=reject;;", "DMARC_FAIL_REJECT"),
        ("v=dmarc1; p=reject", "DMARC_NONE"),  # the version is case-sensitive: not DMARC
        ("v=DMARC1 p=reject", "DMARC_NONE"),
        ("p=reject; v=DMARC1", "DMARC_NONE"),  # v must come first
    ],
)
def test_broken_records(record: str, symbol: str) -> None:
    f = evaluate(dmarc_zone("example.com", record))
    assert f.symbol == symbol
    if symbol == "DMARC_PERMERROR":
        assert f.result is Result.PERMERROR and f.reason


def test_parse_record_tags() -> None:
    r = parse_record(b" v = DMARC1 ; p=quarantine; sp=none; np=reject; adkim=s; aspf=x; "
                     b"psd=n; t=y; rua=mailto:a@example.com!10m, bogus, https://r.example/x; "
                     b"rf=afrf; ri=3600; fo=1; foo=bar")
    assert r is not None
    assert (r.p, r.sp, r.np) == (Policy.QUARANTINE, Policy.NONE, Policy.REJECT)
    assert (r.adkim, r.aspf, r.psd, r.testing) == ("s", "r", "n", True)
    assert r.rua == ("mailto:a@example.com", "https://r.example/x")
    assert r.usable and not r.problems
    assert any("aspf=x" in n for n in r.notes)
    assert any("rf=" in n for n in r.notes) and any("ri=" in n for n in r.notes)
    assert r.published("author") == (Policy.QUARANTINE, "p")
    assert r.published("subdomain") == (Policy.NONE, "sp")
    assert r.published("nonexistent") == (Policy.REJECT, "np")
    assert r.applied(Policy.QUARANTINE) is Policy.NONE
    assert parse_record(b"v=spf1 -all") is None
    conflicting = parse_record(b"v=DMARC1; p=none; p=reject")
    assert conflicting is not None and not conflicting.usable


def test_walk_names_follow_the_rfc_examples() -> None:
    # RFC 9989 §4.10
    assert walk_names("a.b.c.d.e.f.g.h.i.j.mail.example.com") == [
        "a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com",
        "h.i.j.mail.example.com", "i.j.mail.example.com", "j.mail.example.com",
        "mail.example.com", "example.com", "com",
    ]
    # RFC 9989 §5.1.8
    assert walk_names("mail.a.b.c.d.e.f.g.example.com")[:2] == [
        "mail.a.b.c.d.e.f.g.example.com", "c.d.e.f.g.example.com"]
    assert walk_names("a.mail.example.com") == [
        "a.mail.example.com", "mail.example.com", "example.com", "com"]
    nine = walk_names("x.a.b.c.d.e.f.example.com")
    assert len(nine) == 8 and nine[1] == "b.c.d.e.f.example.com"  # 7 labels
    assert walk_names("a.b.c.d.e.f.example.com")[1] == "b.c.d.e.f.example.com"  # 8: the parent
    assert walk_names("a.b.c.d.example.com", max_labels=3) == [
        "a.b.c.d.example.com", "example.com", "com"]
    assert walk_names("localhost") == ["localhost"]


def test_author_domain_extraction() -> None:
    assert author_domain(parse_headers(message('"Test, User" <test@Example.COM.>'))) == (
        "example.com", "")
    assert author_domain(parse_headers(message("joe@bücher.example")))[0] == (
        "xn--bcher-kva.example")
    assert ascii_domain("exa mple.com") is None
    domain, why = author_domain(parse_headers(message("a@one.example, b@two.example")))
    assert domain == "" and "2 different domains" in why


def test_parsed_records_are_cached_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dmarc_module, "RECORD_CACHE_SIZE", 3)
    check = DmarcCheck(Config())
    for i in range(5):
        evaluate(dmarc_zone("example.com", f"v=DMARC1; p=reject; rua=mailto:r{i}@example.com"),
                 check=check)
    assert len(check._records) == 3
    raw = b"v=DMARC1; p=reject; rua=mailto:r4@example.com"
    assert check._parse(raw) is check._parse(raw)


class _SlowBackend(ZoneBackend):
    """Answers TXT queries for one name only when released."""

    def __init__(self, zones: dict[str, Any], slow: str) -> None:
        super().__init__(zones)
        self.slow = slow
        self.release = asyncio.Event()

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        if name == self.slow:
            await self.release.wait()
        return self.lookup_now(name, rdtype)


def test_cancelled_check_does_not_cancel_a_shared_query() -> None:
    """The pipeline cancels a check that overruns its budget; a query another check shares
    must still complete for that other check."""

    async def scenario() -> Lookup:
        backend = _SlowBackend(dmarc_zone("example.com", "v=DMARC1; p=reject"),
                               "_dmarc.example.com")
        resolver = Resolver(backend)
        ctx = CheckContext(resolver, Config(), {"spf": [], "dkim": []}, 0.0)
        check = asyncio.ensure_future(DmarcCheck(Config()).run(tx(), ctx))
        await asyncio.sleep(0.01)  # the check's own query is now in flight...
        other = asyncio.ensure_future(resolver.query("_dmarc.example.com", "TXT"))
        await asyncio.sleep(0.01)  # ...and the other query waits for the same answer
        check.cancel()
        await asyncio.sleep(0.01)
        backend.release.set()
        return await asyncio.wait_for(other, 1.0)

    lookup = asyncio.run(scenario())
    assert lookup.status is Status.OK and lookup.records


def test_config_tree_walk_max_labels_is_read() -> None:
    config = from_dict({"dmarc": {"tree_walk_max_labels": 3}})
    assert DmarcCheck(config).max_labels == 3
