"""ARC conformance: ValiMail's validation and signing suites, and mail-auth's ARC messages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailward.checks.arc import ArcCheck
from mailward.checks.base import CheckContext
from mailward.config import Config
from mailward.dns import ZoneResolver
from mailward.model import Connection, Envelope, Message, Transaction
from mailward.signing import arc_seal
from tests.conftest import CONFORMANCE

SUITE = CONFORMANCE / "arc-test-suite"
MAIL_AUTH = CONFORMANCE / "mail-auth-rs-resources" / "resources" / "arc"
DEFAULT_NOW = 1_700_000_000.0  # after every t= in these files; no scenario sets its own
EXPECTED = {"None": "none", "Pass": "pass", "Fail": "fail"}

# Written against draft 18, three cases carry an empty expected value (dkimpy's "chain
# terminated"). RFC 8617 decides them: 5.2 step 2 (the newest seal's cv=fail fails the chain)
# and step 3 (seal i=1 must say cv=none), so we expect fail.
RFC8617_ANSWERS = {
    "cv_fail_i1_as_cv_fail": "fail",  # the only seal says cv=fail: step 2
    "cv_fail_i2_as2_fail": "fail",  # the newest seal says cv=fail: step 2
    "cv_fail_i2_as1_fail": "fail",  # seal i=1 says cv=fail, not none: step 3
}


def _scenarios(name: str) -> list[dict[str, Any]]:
    with (SUITE / name).open(encoding="utf-8") as stream:
        return [s for s in yaml.safe_load_all(stream) if s]


def _zone(records: dict[str, str]) -> dict[str, Any]:
    return {name: [{"TXT": value}] for name, value in records.items()}


def _arc_result(message: bytes, zone: dict[str, Any], now: float) -> Any:
    config = Config()
    tx = Transaction(Connection(), Envelope(), Message(message))
    ctx = CheckContext(ZoneResolver(zone), config, {}, now)
    return asyncio.run(ArcCheck(config).run(tx, ctx))[0]


def _validation_cases() -> list[Any]:
    cases = []
    for scenario in _scenarios("arc-draft-validation-tests.yml"):
        for name, test in scenario["tests"].items():
            expected = RFC8617_ANSWERS.get(name) or EXPECTED[test["cv"]]
            now = float(scenario.get("now", DEFAULT_NOW))
            case = (test["message"], scenario["txt-records"], now, expected)
            cases.append(pytest.param(*case, id=name))
    return cases


@pytest.mark.conformance("arc-validation")
@pytest.mark.parametrize(("message", "records", "now", "expected"), _validation_cases())
def test_validation(message: str, records: dict[str, str], now: float, expected: str) -> None:
    found = _arc_result(message.encode(), _zone(records), now)
    assert str(found.result) == expected, found.reason


def test_validation_suite_is_complete() -> None:
    assert len(_validation_cases()) == 171
    empty = [name for s in _scenarios("arc-draft-validation-tests.yml")
             for name, test in s["tests"].items() if not test["cv"]]
    assert sorted(empty) == sorted(RFC8617_ANSWERS)


def _signing_cases() -> list[Any]:
    cases = []
    for scenario in _scenarios("arc-draft-sign-tests.yml"):
        for name, test in scenario["tests"].items():
            cases.append(pytest.param(scenario, test, id=name))
    return cases


def _squeeze(text: str) -> str:
    """A header value with all whitespace removed: the suite's format is fixed up to folding."""
    return "".join(text.split())


@pytest.mark.conformance("arc-signing")
@pytest.mark.parametrize(("scenario", "test"), _signing_cases())
def test_signing(scenario: dict[str, Any], test: dict[str, Any]) -> None:
    fields = arc_seal(
        test["message"].encode(), scenario["domain"], scenario["sel"],
        scenario["privatekey"].encode(), test["srv-id"], timestamp=test["t"],
        headers=test["sig-headers"].split(":"), standardize=True,
    )
    got = {}
    for field in fields:
        name, value = field.decode().split(":", 1)
        got[name] = _squeeze(value)
    wanted = {
        name: _squeeze(test[key])
        for name, key in (("ARC-Seal", "AS"), ("ARC-Message-Signature", "AMS"),
                          ("ARC-Authentication-Results", "AAR"))
        if test[key]
    }
    assert got == wanted
    assert list(got) == list(wanted)  # AS, AMS, AAR: the order to prepend them in


def test_signing_suite_is_complete() -> None:
    assert len(_signing_cases()) == 17


def _mail_auth_cases() -> list[Any]:
    return [pytest.param(path, id=path.stem) for path in sorted(MAIL_AUTH.glob("*.txt"))]


@pytest.mark.conformance("arc-mail-auth-rs")
@pytest.mark.parametrize("path", _mail_auth_cases())
def test_mail_auth_messages(path: Path) -> None:
    records, message = path.read_bytes().split(b"\n\n", 1)
    zone: dict[str, Any] = {}
    for line in records.decode().splitlines():
        name, value = line.split(" ", 1)
        zone.setdefault(name, []).append({"TXT": value})
    found = _arc_result(message, zone, DEFAULT_NOW)
    assert str(found.result) == "pass", found.reason


def test_mail_auth_cases_are_there() -> None:
    assert len(_mail_auth_cases()) == 2
