"""The pipeline runs checks inline until they wait, then as tasks under their budgets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from mailward.checks import Check, CheckContext
from mailward.config import Config, from_dict
from mailward.dns import ZoneResolver
from mailward.model import Connection, Envelope, Finding, Message, Result, Transaction
from mailward.pipeline import Evaluation, Pipeline, dependency_order

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


class Probe(Check):
    """A check that records what it saw, optionally waits first, and reports one finding."""

    name = "probe"
    symbols = frozenset({"PROBE"})
    wait: float | None = None  # seconds to sleep before answering; None: answer at once
    crash: bool = False

    def __init__(self, config: Config, log: list[str]) -> None:
        super().__init__(config)
        self.log = log

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        self.log.append(f"start {self.name}")
        if self.wait is not None:
            await asyncio.sleep(self.wait)
        if self.crash:
            raise ValueError("boom")
        seen = ",".join(f"{d}={len(ctx.results.get(d, ()))}" for d in self.depends)
        self.log.append(f"end {self.name}")
        return [self.finding(self.name.upper(), Result.PASS, seen)]


def probe(name: str, depends: tuple[str, ...] = (), wait: float | None = None,
          crash: bool = False, budget: float = 10.0) -> type[Probe]:
    attrs: dict[str, Any] = {"name": name, "symbols": frozenset({name.upper()}),
                             "depends": depends, "wait": wait, "crash": crash, "budget": budget}
    return type(f"Probe_{name}", (Probe,), attrs)


def pipeline(log: list[str], *classes: type[Probe], budget: float = 20.0) -> Pipeline:
    config = from_dict({"checks": {"budget": budget}})
    return Pipeline(config, ZoneResolver({}), [cls(config, log) for cls in classes])


def tx() -> Transaction:
    return Transaction(Connection(ip="192.0.2.1"), Envelope("a@example.com"), Message(MESSAGE))


def run(p: Pipeline) -> Evaluation:
    return asyncio.run(p.evaluate(tx(), now=1_700_000_000))


def checks_of(evaluation: Evaluation) -> list[str]:
    return [f.check for f in evaluation.findings]


def test_checks_that_do_not_wait_finish_without_an_event_loop_round_trip() -> None:
    log: list[str] = []
    p = pipeline(log, probe("a"), probe("b", ("a",)), probe("c", ("b",)))

    async def scenario() -> Evaluation:
        coro = p.evaluate(tx(), now=1_700_000_000)
        with pytest.raises(StopIteration) as done:  # the first step already finishes
            coro.send(None)
        return done.value.value

    evaluation = asyncio.run(scenario())
    assert checks_of(evaluation) == ["a", "b", "c"]
    assert [f.detail for f in evaluation.findings] == ["", "a=1", "b=1"]


def test_a_waiting_check_continues_and_its_dependents_see_its_result() -> None:
    log: list[str] = []
    p = pipeline(log, probe("slow", wait=0.01), probe("fast"), probe("after", ("slow", "fast")))
    evaluation = run(p)
    # order of findings is the dependency order, whoever finished first
    assert checks_of(evaluation) == ["slow", "fast", "after"]
    assert evaluation.findings[2].detail == "slow=1,fast=1"
    assert log == ["start slow", "start fast", "end fast", "end slow", "start after", "end after"]


def test_findings_order_does_not_depend_on_which_check_waits() -> None:
    one = run(pipeline([], probe("a", wait=0.01), probe("b"), probe("c", ("a",))))
    two = run(pipeline([], probe("a"), probe("b", wait=0.01), probe("c", ("a",))))
    assert checks_of(one) == checks_of(two) == ["a", "b", "c"]


def test_a_check_listed_before_its_dependency_runs_after_it() -> None:
    log: list[str] = []
    evaluation = run(pipeline(log, probe("late", ("early",)), probe("early"), probe("other")))
    assert checks_of(evaluation) == ["early", "other", "late"]
    assert evaluation.findings[-1].detail == "early=1"


def test_a_check_over_its_budget_becomes_a_temperror_and_dependents_still_run() -> None:
    evaluation = run(pipeline([], probe("slow", wait=5, budget=0.05), probe("next", ("slow",))))
    slow, following = evaluation.findings
    assert (slow.symbol, slow.result) == ("SLOW_TEMPERROR", Result.TEMPERROR)
    assert slow.method_result and "timed out after 0.05s" in slow.detail
    assert following.check == "next" and following.detail == "slow=1"


def test_the_message_budget_bounds_every_waiting_check() -> None:
    evaluation = run(pipeline([], probe("a", wait=5), probe("b"), budget=0.05))
    a, b = evaluation.findings
    assert a.symbol == "A_TEMPERROR" and "time budget ran out" in a.detail
    assert b.symbol == "B" and b.result is Result.PASS


@pytest.mark.parametrize("wait", [None, 0.001])
def test_a_crash_before_or_after_waiting_is_a_logged_temperror(
    wait: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mailward.pipeline"):
        evaluation = run(pipeline([], probe("bad", wait=wait, crash=True), probe("good")))
    bad, good = evaluation.findings
    assert bad.symbol == "BAD_TEMPERROR" and "internal error: ValueError" in bad.detail
    assert good.result is Result.PASS
    assert any(r.exc_info and "check bad failed" in r.getMessage() for r in caplog.records)


def test_checks_in_a_dependency_cycle_are_temperrors_at_once() -> None:
    log: list[str] = []
    p = pipeline(log, probe("x", ("y",)), probe("y", ("x",)), probe("z"))
    evaluation = run(p)
    assert checks_of(evaluation) == ["z", "x", "y"]
    assert all("cycle" in f.detail for f in evaluation.findings[1:])
    assert log == ["start z", "end z"]


def test_dependency_order_ignores_checks_that_are_not_configured() -> None:
    config = Config()
    checks: list[Check] = [probe("b", ("a", "missing"))(config, []), probe("a")(config, [])]
    order, blocked = dependency_order(checks)
    assert [c.name for c in order] == ["a", "b"] and blocked == []


def test_evaluations_in_flight_together_keep_their_own_results() -> None:
    p = pipeline([], probe("a", wait=0.005), probe("b", ("a",)))

    async def many() -> list[Evaluation]:
        return list(await asyncio.gather(*(p.evaluate(tx(), now=1) for _ in range(8))))

    for evaluation in asyncio.run(many()):
        assert checks_of(evaluation) == ["a", "b"]
        assert evaluation.findings[1].detail == "a=1"
