"""Runs mailward's pipeline over the corpus: a warm-up pass, then timed passes on one core.

One `Pipeline` and one `ZoneResolver` live for the whole run (as in the hub). Every timed
evaluation gets a fresh `Message`, so header parsing is paid each time; what stays warm is what
stays warm in production: the DNS cache and the checks' own caches.
"""

from __future__ import annotations

import asyncio
import cProfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from corpus import Corpus, Item
from mailward import config as config_mod
from mailward.dns import ZoneBackend, ZoneResolver
from mailward.model import Connection, Envelope, Message, Transaction
from mailward.pipeline import Evaluation, Pipeline
from world import AUTHSERV_ID, SITE_DOMAIN, TRUSTED_LIST

DAY = 86_400.0  # zone TTL: nothing expires between the warm-up and the timed passes


@dataclass(slots=True)
class Outcome:
    """What one evaluation decided, in the words the comparison needs."""

    disposition: str
    dmarc: str | None  # the dmarc method result word
    symbols: tuple[str, ...]


@dataclass(slots=True)
class PassStats:
    """One timed pass: wall and CPU seconds, per-message latencies (sequential passes)."""

    name: str
    messages: int
    wall: float
    cpu: float
    latencies: list[float] = field(default_factory=list)

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.messages * 1000

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


AUTH_CHECKS = ["spf", "dkim", "arc", "dmarc"]  # what the dkimpy+pyspf baseline also does


def bench_config(checks: list[str] | None = None) -> config_mod.Config:
    """The site of the corpus: ourcorp.example, trusting the forum's ARC sealer; the default
    set of checks unless ``checks`` names them."""
    values: dict[str, object] = {
        "site": {"authserv_id": AUTHSERV_ID, "domains": [SITE_DOMAIN]},
        "arc": {"trusted_sealers": [TRUSTED_LIST]},
    }
    if checks is not None:
        values["checks"] = {"enabled": checks}
    return config_mod.from_dict(values, "bench configuration")


def outcome(evaluation: Evaluation) -> Outcome:
    dmarc = next((str(f.result) for f in evaluation.findings
                  if f.check == "dmarc" and f.method_result), None)
    symbols = tuple(sorted({f.symbol for f in evaluation.findings}))
    return Outcome(str(evaluation.verdict.disposition), dmarc, symbols)


class EngineBench:
    """The pipeline under test plus the corpus it evaluates."""

    def __init__(self, corpus: Corpus, checks: list[str] | None = None) -> None:
        self.corpus = corpus
        self.resolver = ZoneResolver(ZoneBackend(corpus.zones, ttl=DAY), negative_ttl=DAY,
                                     max_ttl=DAY)
        self.pipeline = Pipeline(bench_config(checks), self.resolver)
        self.check_names = [c.name for c in self.pipeline.checks]
        self.dns_misses = 0
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def _tx(self, item: Item, raw: bytes) -> Transaction:
        return Transaction(Connection(ip=item.ip, helo=item.helo),
                           Envelope(item.mail_from, list(item.rcpt)), Message(raw), item.id)

    async def _sequential(self, keep: Callable[[int, Evaluation], None] | None,
                          latencies: list[float] | None) -> None:
        now = self.corpus.now
        evaluate = self.pipeline.evaluate
        clock = time.perf_counter
        for index, (item, raw) in enumerate(zip(self.corpus.items, self.corpus.messages,
                                                strict=True)):
            started = clock()
            evaluation = await evaluate(self._tx(item, raw), now)
            if latencies is not None:
                latencies.append(clock() - started)
            if keep is not None:
                keep(index, evaluation)

    def warm(self) -> list[Outcome]:
        """Evaluate everything once (fills the DNS and check caches); return the outcomes."""
        outcomes: list[Outcome] = [Outcome("", None, ())] * len(self.corpus.items)

        def keep(index: int, evaluation: Evaluation) -> None:
            outcomes[index] = outcome(evaluation)

        self.loop.run_until_complete(self._sequential(keep, None))
        return outcomes

    def sequential(self) -> tuple[PassStats, list[Outcome]]:
        """The timed pass: one message after another, one event loop, one core."""
        latencies: list[float] = []
        evaluations: list[Evaluation] = []
        misses = self.resolver.stats.misses
        wall, cpu = time.perf_counter(), time.process_time()
        self.loop.run_until_complete(
            self._sequential(lambda _i, e: evaluations.append(e), latencies))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = PassStats("sequential", len(latencies), wall, cpu, latencies)
        self.dns_misses = self.resolver.stats.misses - misses
        return stats, [outcome(e) for e in evaluations]

    def concurrent(self, width: int = 8) -> PassStats:
        """The same work with ``width`` evaluations in flight in the one event loop."""
        items = list(zip(self.corpus.items, self.corpus.messages, strict=True))
        now = self.corpus.now

        async def worker(queue: list[tuple[Item, bytes]]) -> None:
            while queue:
                item, raw = queue.pop()
                await self.pipeline.evaluate(self._tx(item, raw), now)

        async def run() -> None:
            queue = items[::-1]
            await asyncio.gather(*(worker(queue) for _ in range(width)))

        wall, cpu = time.perf_counter(), time.process_time()
        self.loop.run_until_complete(run())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return PassStats(f"{width} concurrent", len(items), wall, cpu)

    def profile(self, limit: int) -> tuple[cProfile.Profile, int]:
        """A cProfile'd sequential pass over the first ``limit`` messages."""
        subset = Corpus(self.corpus.seed, self.corpus.directory, self.corpus.now,
                        self.corpus.zones, self.corpus.items[:limit],
                        self.corpus.messages[:limit])
        full, self.corpus = self.corpus, subset
        profiler = cProfile.Profile()
        try:
            profiler.enable()
            self.loop.run_until_complete(self._sequential(None, None))
            profiler.disable()
        finally:
            self.corpus = full
        return profiler, len(subset.items)
