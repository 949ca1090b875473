"""The one entry point from the protocol side: run the checks on a Transaction, get a Verdict.

Checks are started inline, one after another in dependency order, and a check that completes
without waiting for I/O (the usual case with a warm DNS cache) costs no task, no timer and no
event-loop round-trip. A check that has to wait continues as a task of its own under its time
budget; checks depending on it wait for it; the message's budget bounds them all. Findings come
out in the same order however the checks were scheduled: the message's defects, then each
check's findings in dependency order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any

from mailward import authresults, verdict
from mailward.checks import Check, CheckContext, registry
from mailward.config import Config, ConfigError
from mailward.dns import Resolver
from mailward.history import SenderHistory
from mailward.model import Finding, Result, Transaction, Verdict

log = logging.getLogger(__name__)

Findings = list[Finding]
RunCoroutine = Coroutine[Any, Any, Findings]


@dataclass(slots=True)
class Evaluation:
    """Everything the pipeline established about one message."""

    findings: list[Finding]
    verdict: Verdict
    authentication_results: str


class Pipeline:
    """Runs the configured checks concurrently, honouring dependencies and time budgets."""

    def __init__(
        self, config: Config, resolver: Resolver, checks: list[Check] | None = None,
        history: SenderHistory | None = None,
    ):
        self.config = config
        self.resolver = resolver
        self.history = history
        if checks is None:
            available = registry()
            unknown = [n for n in config.checks.enabled if n not in available]
            if unknown:
                raise ConfigError(f"checks.enabled: unknown check(s) {', '.join(unknown)}")
            checks = [available[n](config) for n in config.checks.enabled]
        self.checks = checks
        self._order, self._blocked = dependency_order(checks)
        self.scorer = verdict.Scorer(config)
        self.authserv_id = config.authserv_id  # may ask the system for its name: ask once

    async def evaluate(self, tx: Transaction, now: float | None = None) -> Evaluation:
        now = time.time() if now is None else now
        parsed = tx.message.parsed
        defects = list(parsed.defects)
        results: dict[str, Findings] = {"message": defects}
        ctx = CheckContext(self.resolver, self.config, results, now, self.history)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.checks.budget
        waiting = self._start_all(tx, ctx, results, loop)
        if waiting:
            # unfinished checks become temperror findings below
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.gather(*waiting.values())
            except TimeoutError:
                pass
        findings = list(defects)
        for check in self._order:
            found = results.get(check.name)
            if found is None:
                found = [_temperror(check, "the message's time budget ran out")]
            findings += found
        for check in self._blocked:
            findings.append(_temperror(check, "it depends on a cycle of checks"))
        scored = self.scorer.score(findings)
        outcome = self.scorer.decide(scored, parsed.from_domain)
        header = authresults.build(self.authserv_id, scored)
        return Evaluation(scored, outcome, header)

    def _start_all(
        self, tx: Transaction, ctx: CheckContext, results: dict[str, Findings],
        loop: asyncio.AbstractEventLoop,
    ) -> dict[str, asyncio.Task[None]]:
        """Run every check as far as it goes without waiting; the tasks of those that wait."""
        waiting: dict[str, asyncio.Task[None]] = {}
        for check in self._order:
            deps = [waiting[d] for d in check.depends if d in waiting]
            if deps:
                waiting[check.name] = loop.create_task(
                    self._after(deps, check, tx, ctx, results, loop))
                continue
            started = self._step(check, tx, ctx, results, loop)
            if started is not None:
                waiting[check.name] = loop.create_task(
                    self._finish(check, tx, *started, results))
        return waiting

    def _step(
        self, check: Check, tx: Transaction, ctx: CheckContext, results: dict[str, Findings],
        loop: asyncio.AbstractEventLoop,
    ) -> tuple[RunCoroutine, Any, float] | None:
        """Run a check inline up to its first real wait. Returns None when it finished (its
        findings are in ``results``), else the suspended coroutine, what it waits on and its
        deadline."""
        deadline = loop.time() + check.budget
        try:
            coro = check.run(tx, ctx)
            waits_on = coro.send(None)
        except StopIteration as done:
            results[check.name] = done.value
            return None
        except TimeoutError:
            results[check.name] = [_temperror(check, f"timed out after {check.budget}s")]
            return None
        except Exception as exc:
            results[check.name] = _crashed(check, tx, exc)
            return None
        return coro, waits_on, deadline

    async def _finish(self, check: Check, tx: Transaction, coro: RunCoroutine, waits_on: Any,
                      deadline: float, results: dict[str, Findings]) -> None:
        """Continue a check that had to wait, under its time budget."""
        try:
            async with asyncio.timeout_at(deadline):
                results[check.name] = await _Resumed(coro, waits_on)
        except TimeoutError:
            results[check.name] = [_temperror(check, f"timed out after {check.budget}s")]
        except Exception as exc:
            results[check.name] = _crashed(check, tx, exc)
        finally:
            coro.close()  # a no-op once it finished; frees it when cancelled or timed out

    async def _after(
        self, deps: list[asyncio.Task[None]], check: Check, tx: Transaction, ctx: CheckContext,
        results: dict[str, Findings], loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Run a check once the checks it depends on have finished (whatever their outcome)."""
        await asyncio.wait(deps)
        started = self._step(check, tx, ctx, results, loop)
        if started is not None:
            await self._finish(check, tx, *started, results)


class _Resumed:
    """Awaiting this continues a coroutine that was started by hand and is suspended on
    ``waits_on``: what the coroutine yields goes to the task awaiting this, and what the task
    sends or throws (results, cancellation) goes back into the coroutine, as ``await`` does."""

    __slots__ = ("coro", "waits_on")

    def __init__(self, coro: RunCoroutine, waits_on: Any) -> None:
        self.coro = coro
        self.waits_on = waits_on

    def __await__(self) -> Generator[Any, Any, Findings]:
        coro, value = self.coro, self.waits_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation, or an error thrown in by the task
                try:
                    value = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value


def dependency_order(checks: list[Check]) -> tuple[list[Check], list[Check]]:
    """The checks in the order they run: configured order, each after the checks it depends
    on (dependencies not configured are ignored); and the checks left over by a cycle."""
    names = {c.name for c in checks}
    placed: set[str] = set()
    order: list[Check] = []
    pending = list(checks)
    while pending:
        ready = []
        for check in pending:
            if all(d in placed or d not in names for d in check.depends):
                ready.append(check)
                placed.add(check.name)
        if not ready:
            break
        order += ready
        pending = [c for c in pending if c.name not in placed]
    return order, pending


def _crashed(check: Check, tx: Transaction, exc: Exception) -> Findings:
    log.error("check %s failed on %s", check.name, tx.queue_id or "message", exc_info=exc)
    return [_temperror(check, f"internal error: {type(exc).__name__}")]


def _temperror(check: Check, why: str) -> Finding:
    return Finding(
        check.name,
        f"{check.name.upper()}_TEMPERROR",
        Result.TEMPERROR,
        detail=f"the {check.name} check could not finish: {why}",
        method_result=True,
        reason=why,
    )
