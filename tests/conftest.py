"""Shared test plumbing: conformance pass counts printed at the end of the run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.pg import pg_server  # noqa: F401  (the PostgreSQL fixture, for every test folder)
from tests.slapd import slapd_server  # noqa: F401  (the OpenLDAP fixture)

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONFORMANCE = SHARED / "conformance"

_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    suite = getattr(report, "conformance_suite", None)
    if suite is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        _counts[suite][outcome] += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    marker = item.get_closest_marker("conformance")
    if marker is not None and marker.args:
        outcome.get_result().conformance_suite = marker.args[0]


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _counts:
        return
    terminalreporter.section("conformance suites")
    for suite in sorted(_counts):
        c = _counts[suite]
        total = sum(c.values())
        extra = ", ".join(f"{n} {k}" for k, n in sorted(c.items()) if k != "passed")
        terminalreporter.write_line(
            f"{suite}: {c['passed']}/{total} passed" + (f" ({extra})" if extra else "")
        )
