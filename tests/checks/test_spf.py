"""The SPF check: hand-made cases through `mailward check --json`, plus evaluator details."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.checks.base import CheckContext
from mailward.checks.spf import SpfCheck
from mailward.config import Config
from mailward.dns import Lookup, Resolver, ZoneBackend, ZoneResolver
from mailward.model import Connection, Envelope, Message, Result, Transaction
from mailward.spf_eval import (
    RecordCache,
    SpfPermError,
    SpfSyntaxError,
    check_host,
    client_address,
    parse_record,
)
from tests.helpers import check_json

CONFIG = '[site]\nauthserv_id = "mx.ourcorp.example"\n[checks]\nenabled = ["spf"]\n'
MESSAGE = (b"From: The Boss <ceo@example.com>\r\nTo: staff@ourcorp.example\r\n"
           b"Subject: quarterly numbers\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n")
HELO_OK = {"mail.example.net": [{"TXT": "v=spf1 +all"}]}  # the default HELO never fails


def run_spf(tmp_path: Path, zones: dict[str, Any], *, config: str = CONFIG,
            **kwargs: Any) -> tuple[dict[str, dict[str, Any]], str]:
    """Findings of the spf check by symbol, and the Authentication-Results value."""
    kwargs.setdefault("mail_from", "ceo@example.com")
    tmp_path.mkdir(parents=True, exist_ok=True)
    report = check_json(tmp_path, MESSAGE, {**HELO_OK, **zones}, config=config, **kwargs)
    findings = {f["symbol"]: f for f in report["findings"] if f["check"] == "spf"}
    return findings, report["authentication_results"]


# --- through the CLI ------------------------------------------------------------------------


def test_pass_and_authentication_results(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]}
    findings, ar = run_spf(tmp_path, zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_PASS"}
    assert findings["SPF_PASS"]["result"] == "pass"
    assert "192.0.2.1 is allowed to send mail for example.com" in findings["SPF_PASS"]["detail"]
    assert "spf=pass" in ar and "smtp.mailfrom=ceo@example.com" in ar
    assert ar.startswith("mx.ourcorp.example;")


def test_fail_with_explanation(tmp_path: Path) -> None:
    zones = {
        "example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all exp=why.example.com"}],
        "why.example.com": [{"TXT": "%{i} is not a mail server of %{d}, see %{d}/spf?l=%{L}"}],
    }
    findings, ar = run_spf(tmp_path, zones, ip="203.0.113.9", mail_from="c.e.o@example.com")
    fail = findings["SPF_FAIL"]
    assert fail["result"] == "fail"
    assert ("203.0.113.9 is not allowed to send mail for example.com "
            "(its SPF record ends in -all)") in fail["detail"]
    assert "203.0.113.9 is not a mail server of example.com, see example.com/spf?l=c.e.o" in (
        fail["detail"])
    assert "forged" in fail["advice"]
    assert "spf=fail" in ar and "smtp.mailfrom=c.e.o@example.com" in ar


def test_softfail(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 ~all"}]}
    findings, ar = run_spf(tmp_path, zones, ip="203.0.113.9")
    assert set(findings) == {"SPF_SOFTFAIL"}
    assert "probably not allowed" in findings["SPF_SOFTFAIL"]["detail"]
    assert findings["SPF_SOFTFAIL"]["advice"]
    assert "spf=softfail" in ar


def test_include_chain(tmp_path: Path) -> None:
    zones = {
        "example.com": [{"TXT": "v=spf1 include:_spf.example.com -all"}],
        "_spf.example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 include:_spf2.example.com ?all"}],
        "_spf2.example.com": [{"TXT": "v=spf1 mx:relay.example.org -all"}],
        "relay.example.org": [{"MX": [10, "mx1.example.org"]}, {"MX": [20, "mx2.example.org"]}],
        "mx1.example.org": [{"A": "198.51.100.1"}],
        "mx2.example.org": [{"A": "198.51.100.2"}],
    }
    findings, _ = run_spf(tmp_path / "a", zones, ip="198.51.100.2")
    assert "matched include:_spf.example.com" in findings["SPF_PASS"]["detail"]
    # _spf.example.com ends in ?all: neutral in an include is no match, so -all decides.
    findings, _ = run_spf(tmp_path / "b", zones, ip="198.51.100.3")
    assert set(findings) == {"SPF_FAIL"}


def _a_terms(count: int) -> str:
    return " ".join(f"a:h{i}.example.com" for i in range(count))


LIMIT_ZONES = {f"h{i}.example.com": [{"A": "10.0.0.1"}] for i in range(11)}


def test_lookup_limit(tmp_path: Path) -> None:
    zones = {**LIMIT_ZONES, "example.com": [{"TXT": f"v=spf1 {_a_terms(11)} -all"}]}
    findings, ar = run_spf(tmp_path / "a", zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_PERMERROR"}
    assert "more than 10 DNS-querying terms" in findings["SPF_PERMERROR"]["detail"]
    assert "spf=permerror" in ar
    # Ten terms are allowed; spf.lookup_limit raises the limit.
    zones["example.com"] = [{"TXT": f"v=spf1 {_a_terms(10)} -all"}]
    findings, _ = run_spf(tmp_path / "b", zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_FAIL"}
    zones["example.com"] = [{"TXT": f"v=spf1 {_a_terms(11)} -all"}]
    config = CONFIG + "[spf]\nlookup_limit = 11\n"
    findings, _ = run_spf(tmp_path / "c", zones, ip="192.0.2.1", config=config)
    assert set(findings) == {"SPF_FAIL"}


def test_void_lookup_limit(tmp_path: Path) -> None:
    record = "v=spf1 a:gone1.example.com a:gone2.example.com mx:gone3.example.com -all"
    zones = {"example.com": [{"TXT": record}]}
    findings, _ = run_spf(tmp_path / "a", zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_PERMERROR"}
    assert "void lookup limit" in findings["SPF_PERMERROR"]["detail"]
    config = CONFIG + "[spf]\nvoid_lookup_limit = 3\n"
    findings, _ = run_spf(tmp_path / "b", zones, ip="192.0.2.1", config=config)
    assert set(findings) == {"SPF_FAIL"}


def test_macro_record(tmp_path: Path) -> None:
    zones = {
        "example.com": [{"TXT": "v=spf1 exists:%{ir}.%{l1-}.%{v}.allow.%{d2} -all"}],
        "1.2.0.192.ceo.in-addr.allow.example.com": [{"A": "127.0.0.2"}],
    }
    findings, _ = run_spf(tmp_path / "a", zones, ip="192.0.2.1", mail_from="the-ceo@example.com")
    assert set(findings) == {"SPF_PASS"}
    findings, _ = run_spf(tmp_path / "b", zones, ip="192.0.2.1", mail_from="intern@example.com")
    assert set(findings) == {"SPF_FAIL"}


def test_null_sender_uses_helo(tmp_path: Path) -> None:
    zones = {"mail.example.net": [{"TXT": "v=spf1 a -all"}, {"A": "192.0.2.1"}]}
    findings, ar = run_spf(tmp_path / "a", zones, ip="192.0.2.1", mail_from="",
                           helo="mail.example.net")
    assert set(findings) == {"SPF_PASS"}
    assert 'spf=pass reason="matched a" smtp.helo=mail.example.net' in ar
    assert "smtp.mailfrom" not in ar
    findings, ar = run_spf(tmp_path / "b", zones, ip="192.0.2.66", mail_from="",
                           helo="mail.example.net")
    assert set(findings) == {"SPF_FAIL"}
    assert "the HELO name mail.example.net" in findings["SPF_FAIL"]["detail"]
    assert 'spf=fail reason="matched -all" smtp.helo=mail.example.net' in ar


def test_helo_identity_fails_separately(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
             "liar.example.org": [{"TXT": "v=spf1 -all"}]}
    findings, ar = run_spf(tmp_path / "a", zones, ip="198.51.100.5", helo="liar.example.org")
    assert set(findings) == {"SPF_PASS", "SPF_HELO_FAIL"}
    assert ar.count("spf=") == 1 and "spf=pass" in ar
    config = CONFIG + "[spf]\nhelo_check = false\n"
    findings, _ = run_spf(tmp_path / "b", zones, ip="198.51.100.5", helo="liar.example.org",
                          config=config)
    assert set(findings) == {"SPF_PASS"}


def test_dns_timeout_is_temperror(tmp_path: Path) -> None:
    findings, ar = run_spf(tmp_path, {"example.com": ["TIMEOUT"]}, ip="192.0.2.1")
    assert set(findings) == {"SPF_TEMPERROR"}
    assert "could not be checked now" in findings["SPF_TEMPERROR"]["detail"]
    assert "spf=temperror" in ar


def test_syntax_error_is_permerror(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "v=spf1 ip4:192.0.2.0/24 ip4:192.0.2.300 -all"}]}
    findings, ar = run_spf(tmp_path, zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_PERMERROR"}
    assert "bad IPv4 address" in findings["SPF_PERMERROR"]["detail"]
    assert "spf=permerror" in ar


def test_no_record_is_none(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "google-site-verification=abc"}]}
    findings, ar = run_spf(tmp_path, zones, ip="192.0.2.1")
    assert set(findings) == {"SPF_NONE"}
    assert "publishes no SPF record" in findings["SPF_NONE"]["detail"]
    assert "spf=none" in ar


def test_ipv4_mapped_client_is_ipv4(tmp_path: Path) -> None:
    zones = {"example.com": [{"TXT": "v=spf1 ip6:::ffff:0:0/96 ip4:192.0.2.0/24 -all"}]}
    findings, _ = run_spf(tmp_path, zones, ip="::ffff:192.0.2.7")
    assert "matched ip4:192.0.2.0/24" in findings["SPF_PASS"]["detail"]


# --- directly: what the CLI cannot show -----------------------------------------------------


def _run_check(tx: Transaction, resolver: Resolver, config: Config | None = None
               ) -> list[Any]:
    config = config or Config()
    check = SpfCheck(config)
    return asyncio.run(check.run(tx, CheckContext(resolver, config, {}, 0.0)))


def test_no_client_ip_is_none() -> None:
    tx = Transaction(Connection(ip=None, helo="mail.example.net"),
                     Envelope("ceo@example.com"), Message(MESSAGE))
    (finding,) = _run_check(tx, ZoneResolver({}))
    assert finding.symbol == "SPF_NONE" and finding.method_result
    assert "no client IP address" in finding.detail
    assert finding.properties == (("smtp.mailfrom", "ceo@example.com"),)


class SlowBackend:
    """Zone answers after a delay, counting how many queries are in flight at once."""

    def __init__(self, zones: dict[str, Any]) -> None:
        self.zone = ZoneBackend(zones)
        self.inflight = 0
        self.peak = 0

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        self.inflight += 1
        self.peak = max(self.peak, self.inflight)
        try:
            await asyncio.sleep(0.02)
            return self.zone.lookup_now(name, rdtype)
        finally:
            self.inflight -= 1


def test_independent_lookups_run_concurrently() -> None:
    zones: dict[str, Any] = {
        "example.com": [{"TXT": "v=spf1 mx -all"}] + [{"MX": [i, f"mx{i}.example.com"]}
                                                      for i in range(5)],
        **{f"mx{i}.example.com": [{"A": f"198.51.100.{i}"}] for i in range(5)},
    }
    backend = SlowBackend(zones)
    outcome = asyncio.run(check_host(Resolver(backend), RecordCache(), "198.51.100.4",
                                     "example.com", "ceo@example.com"))
    assert outcome.result is Result.PASS
    assert backend.peak == 5  # the A records of all five MX hosts at once


def test_helo_evaluated_while_mail_from_waits() -> None:
    zones = {"example.com": [{"TXT": "v=spf1 -all"}], "liar.example.org": [{"TXT": "v=spf1 -all"}]}
    backend = SlowBackend(zones)
    tx = Transaction(Connection(ip="192.0.2.1", helo="liar.example.org"),
                     Envelope("ceo@example.com"), Message(MESSAGE))
    findings = _run_check(tx, Resolver(backend))
    assert [f.symbol for f in findings] == ["SPF_FAIL", "SPF_HELO_FAIL"]
    assert backend.peak == 2


def test_parsed_records_are_cached_and_bounded() -> None:
    cache = RecordCache(max_entries=2)
    first = cache.record(b"v=spf1 ip4:192.0.2.0/24 -all")
    assert cache.record(b"v=spf1 ip4:192.0.2.0/24 -all") is first
    with pytest.raises(SpfSyntaxError):
        cache.record(b"v=spf1 foo -all")
    cache.record(b"v=spf1 -all")
    assert len(cache) == 2
    assert cache.record(b"v=spf1 ip4:192.0.2.0/24 -all") is not first  # evicted, parsed anew


@pytest.mark.parametrize("record", [
    "v=spf1 a/33", "v=spf1 ip4:1.2.3.4/032", "v=spf1 ip6:::1//64", "v=spf1 include:",
    "v=spf1 exists:%{d0}.example.com", "v=spf1 a:%{c}.example.com", "v=spf1 mx:example",
    "v=spf1 -all exp=a exp=b", "v=spf1 ptr:example.com/24", "v=spf1 all:x",
])
def test_syntax_errors(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)



_PIECES = ["a", "mx", "ptr", "all", "ip4:", "ip6:", "include:", "exists:", "redirect=", "exp=",
           "x=", "/", "//", "24", "0", "33", "129", ":", ".", "-", "~", "?", "+", " ", "  ",
           "%{", "}", "%%", "%_", "%-", "%", "d", "i", "ir", "l1r-", "p", "h", "c", "D2", "{",
           "192.0.2.1", "::1", "example.com", "e.example.com", ".com.", "\x00", "\xe9", "\t"]


@settings(max_examples=300, deadline=None)
@given(record=st.lists(st.sampled_from(_PIECES), max_size=14).map("".join),
       local=st.sampled_from(["ceo", "", "a.b-c+d", "x y", "%{d}"]),
       ip=st.sampled_from(["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"]))
def test_any_record_gives_an_outcome(record: str, local: str, ip: str) -> None:
    with contextlib.suppress(SpfSyntaxError):
        parse_record("v=spf1 " + record)
    zones = {"example.com": [{"TXT": "v=spf1 " + record}, {"A": "192.0.2.1"},
                             {"MX": [1, "e.example.com"]}],
             "e.example.com": [{"TXT": "v=spf1 " + record + " -all"}, {"AAAA": "2001:db8::1"}],
             "1.2.0.192.in-addr.arpa": [{"PTR": "e.example.com"}]}
    outcome = asyncio.run(check_host(ZoneResolver(zones), RecordCache(), ip, "example.com",
                                     f"{local}@example.com", helo="e.example.com"))
    assert outcome.result in {Result.PASS, Result.FAIL, Result.SOFTFAIL, Result.NEUTRAL,
                              Result.PERMERROR}


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.tuples(*[st.integers(0, 300)] * 4).map(lambda q: ".".join(map(str, q))),
    st.text(st.sampled_from("0123456789.: abf"), max_size=16),
    st.sampled_from(["01.2.3.4", "1.2.3.04", "::ffff:192.0.2.1", " 192.0.2.1", "192.0.2.1\n",
                     "1.2.3", "0.0.0.0", "255.255.255.255", "256.1.1.1", "2001:db8::1"]),
))
def test_client_address_fast_path_reads_as_ipaddress(text: str) -> None:
    import ipaddress

    try:
        addr = ipaddress.ip_address(text.strip())
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        expected: object = (type(addr), addr)
    except ValueError:
        expected = ValueError
    try:
        found = client_address(text)
        got: object = (type(found), found)
    except ValueError:
        got = ValueError
    assert got == expected


def test_the_spf_record_of_an_rrset_is_parsed_once() -> None:
    cache = RecordCache(max_entries=4)
    rrset = (b"google-site-verification=x", b"v=spf1 ip4:192.0.2.0/24 -all")
    first = cache.select(rrset)
    assert first is not None and cache.select(rrset) is first
    assert first is cache.record(rrset[1])
    assert cache.select((b"not spf",)) is None
    broken = (b"v=spf1 -all", b"v=spf1 +all")
    depths = []
    for _ in range(3):
        with pytest.raises(SpfPermError, match="2 SPF records") as raised:
            cache.select(broken)
        depth, tb = 0, raised.value.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
    assert depths[0] == depths[1] == depths[2]  # a remembered error collects no tracebacks
