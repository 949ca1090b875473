"""The one entry point from the protocol side: run the checks on a Transaction, get a Verdict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from mailward import authresults, verdict
from mailward.checks import Check, CheckContext, registry
from mailward.config import Config, ConfigError
from mailward.dns import Resolver
from mailward.model import Finding, Result, Transaction, Verdict

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Evaluation:
    """Everything the pipeline established about one message."""

    findings: list[Finding]
    verdict: Verdict
    authentication_results: str


class Pipeline:
    """Runs the configured checks concurrently, honouring dependencies and time budgets."""

    def __init__(self, config: Config, resolver: Resolver, checks: list[Check] | None = None):
        self.config = config
        self.resolver = resolver
        if checks is None:
            available = registry()
            unknown = [n for n in config.checks.enabled if n not in available]
            if unknown:
                raise ConfigError(f"checks.enabled: unknown check(s) {', '.join(unknown)}")
            checks = [available[n](config) for n in config.checks.enabled]
        self.checks = checks
        names = {c.name for c in checks}
        # only checks something else depends on need a completion event
        self._awaited = {d for c in checks for d in c.depends if d in names}
        self.scorer = verdict.Scorer(config)

    async def evaluate(self, tx: Transaction, now: float | None = None) -> Evaluation:
        now = time.time() if now is None else now
        parsed = tx.message.parsed
        results: dict[str, list[Finding]] = {"message": list(parsed.defects)}
        ctx = CheckContext(self.resolver, self.config, results, now)
        # unfinished checks become temperror findings below
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.checks.budget):
                await self._run_all(tx, ctx, results)
        for check in self.checks:
            if check.name not in results:
                results[check.name] = [_temperror(check, "the message's time budget ran out")]
        findings = [f for name in results for f in results[name]]
        scored = self.scorer.score(findings)
        outcome = self.scorer.decide(scored, parsed.from_domain)
        header = authresults.build(self.config.authserv_id, scored)
        return Evaluation(scored, outcome, header)

    async def _run_all(
        self, tx: Transaction, ctx: CheckContext, results: dict[str, list[Finding]]
    ) -> None:
        done = {name: asyncio.Event() for name in self._awaited}

        async def run_one(check: Check) -> None:
            try:
                for dep in check.depends:
                    if dep in done:
                        await done[dep].wait()
                try:
                    async with asyncio.timeout(check.budget):
                        results[check.name] = await check.run(tx, ctx)
                except TimeoutError:
                    results[check.name] = [_temperror(check, f"timed out after {check.budget}s")]
                except Exception as exc:
                    log.exception("check %s failed on %s", check.name, tx.queue_id or "message")
                    results[check.name] = [
                        _temperror(check, f"internal error: {type(exc).__name__}")
                    ]
            finally:
                if check.name in done:
                    done[check.name].set()

        await asyncio.gather(*(run_one(c) for c in self.checks))


def _temperror(check: Check, why: str) -> Finding:
    return Finding(
        check.name,
        f"{check.name.upper()}_TEMPERROR",
        Result.TEMPERROR,
        detail=f"the {check.name} check could not finish: {why}",
        method_result=True,
        reason=why,
    )
