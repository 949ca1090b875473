"""The OpenSPF RFC 7208 (and older RFC 4408) test suites, every case through our evaluator."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from mailward.dns import Lookup, Status, ZoneBackend, ZoneResolver, normalize
from mailward.spf_eval import RecordCache, check_host, identity
from tests.conftest import CONFORMANCE

SUITE = CONFORMANCE / "spf-rfc7208-suite"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SuiteZone(ZoneBackend):
    """The suite's zonedata read the way its reference driver (pyspf's testspf.py) reads it.

    Two differences from the plain `ZoneBackend`, both only about the "Record lookup" and
    "Selecting records" scenarios: ``TXT: NONE`` is no record at all (but still stops SPF
    entries from being copied to TXT), and a ``TIMEOUT`` entry only times out the record types
    with no record listed before it (``spftimeout``: TXT answers, type SPF would time out).
    """

    def __init__(self, zones: Mapping[str, Any]) -> None:
        cleaned: dict[str, list[Any]] = {}
        self.before_timeout: dict[str, set[str]] = {}
        explicit_txt: dict[str, list[Any]] = {}
        for raw_name, entries in zones.items():
            name = normalize(str(raw_name))
            seen: set[str] = set()
            kept: list[Any] = []
            timed_out = False
            for entry in entries or []:
                if entry == "TIMEOUT":
                    timed_out = True
                    kept.append(entry)
                    continue
                ((rdtype, value),) = entry.items()
                rdtype = str(rdtype).upper()
                if rdtype == "TXT":
                    explicit_txt.setdefault(name, [])
                if value == "NONE":
                    continue
                if not timed_out:
                    seen.add(rdtype)
                if rdtype == "TXT":
                    explicit_txt[name].append(entry)
                kept.append(entry)
            cleaned[name] = kept
            self.before_timeout[name] = seen
        super().__init__(cleaned)
        for name, txt in explicit_txt.items():
            if not txt:
                self.records[name]["TXT"] = []

    def lookup_now(self, name: str, rdtype: str, depth: int = 0) -> Lookup:
        if name in self.timeouts and rdtype not in self.before_timeout.get(name, set()):
            return Lookup(name, rdtype, Status.TEMPERROR, error="timed out")
        records = self.records.get(name)
        if records is None:
            return Lookup(name, rdtype, Status.NXDOMAIN)
        if rdtype in records:
            return Lookup(name, rdtype, Status.OK, tuple(records[rdtype]), self.ttl)
        if "CNAME" in records and rdtype != "CNAME" and depth < 8:
            return self.lookup_now(records["CNAME"][0], rdtype, depth + 1)
        return Lookup(name, rdtype, Status.OK, (), self.ttl)


@dataclass(frozen=True)
class Case:
    name: str
    zonedata: Mapping[str, Any]
    host: str
    mailfrom: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None


def load(filename: str) -> list[Case]:
    cases = []
    with open(SUITE / filename, "rb") as fh:
        for scenario in yaml.load_all(fh, Loader=_Loader):
            for name, t in scenario["tests"].items():
                expected = t["result"]
                cases.append(Case(
                    name, scenario.get("zonedata") or {}, str(t["host"]),
                    str(t.get("mailfrom") or ""), str(t.get("helo") or ""),
                    tuple(expected) if isinstance(expected, list) else (expected,),
                    t.get("explanation"),
                ))
    return cases


def run_case(case: Case) -> None:
    sender, domain = identity(case.mailfrom, case.helo)
    resolver = ZoneResolver(SuiteZone(case.zonedata))
    outcome = asyncio.run(check_host(resolver, RecordCache(), case.host, domain, sender,
                                     helo=case.helo, now=0.0))
    got = str(outcome.result)
    assert got in case.results, f"{case.name}: got {got} ({outcome.problem}), want {case.results}"
    if case.explanation is not None:
        explanation = outcome.explanation if outcome.explanation is not None else "DEFAULT"
        assert explanation == case.explanation


# Cases we deliberately answer differently, name -> why (an xfail(strict=True) each). None:
# every RFC 7208 case passes, and where RFC 7208 changed an answer (4.4/4.5 SPF-type records
# dropped, 4.6.4 MX limit now permerror, 5/9/2 IPv4-mapped clients, 5/8 exists DNS error) the
# RFC 4408 suite already lists the RFC 7208 answer among its acceptable ones, as
# test_rfc4408_accepts_the_rfc7208_answers checks.
RFC7208_DIFFERENT: dict[str, str] = {}
RFC4408_CHANGED: dict[str, str] = {}


def params(cases: list[Case], xfails: Mapping[str, str]) -> list[Any]:
    out = []
    for case in cases:
        marks: tuple[pytest.MarkDecorator, ...] = ()
        if case.name in xfails:
            marks = (pytest.mark.xfail(strict=True, reason=xfails[case.name]),)
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


@pytest.mark.conformance("spf-rfc7208")
@pytest.mark.parametrize("case", params(load("rfc7208-tests.yml"), RFC7208_DIFFERENT))
def test_rfc7208(case: Case) -> None:
    run_case(case)


@pytest.mark.conformance("spf-rfc4408")
@pytest.mark.parametrize("case", params(load("rfc4408-tests.yml"), RFC4408_CHANGED))
def test_rfc4408(case: Case) -> None:
    run_case(case)


def test_suites_are_complete() -> None:
    """The suites are read in full: 203 RFC 7208 cases and 191 RFC 4408 ones."""
    assert len(load("rfc7208-tests.yml")) == 203
    assert len(load("rfc4408-tests.yml")) == 191


def test_rfc4408_accepts_the_rfc7208_answers() -> None:
    """Why the RFC 4408 run needs no xfail: for every case in both suites, the RFC 4408
    expectation admits the RFC 7208 one (only upper-macro's explanation differs: its
    mailfrom differs too)."""
    new = {c.name: c for c in load("rfc7208-tests.yml")}
    changed = []
    for old in load("rfc4408-tests.yml"):
        case = new.get(old.name)
        if case is None:
            continue
        if not set(case.results) <= set(old.results):
            changed.append(old.name)
        if old.explanation != case.explanation:
            assert old.mailfrom != case.mailfrom, old.name
    assert changed == []
