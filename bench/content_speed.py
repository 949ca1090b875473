"""Micro-benchmark: CPU per message of the identity and content checks on the bench corpus.

    .venv/bin/python bench/content_speed.py [--messages 3000] [--seed 1] [--repeat 3] [--profile N]

Runs the default pipeline (bench/engine_run.py's configuration) over the cached corpus of
bench/out/ with the identity and content checks wrapped in a CPU timer (``time.thread_time``
around each ``run``): a warm-up pass (DNS cache and the checks' caches), then ``--repeat`` timed
passes pinned to one core. Prints median / p95 / max CPU per message of identity, content and
both together for the median pass (by the median of the sum). ``--profile N`` adds a cProfile
of only those two checks over N messages (top functions by self and cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod
import engine_run
import profiling
from mailward.checks import Check, CheckContext
from mailward.model import Connection, Envelope, Finding, Message, Transaction
from mailward.pipeline import Pipeline
from verify import one_core

TIMED = ("identity", "content")
TARGET_MS = 0.3


class TimedCheck(Check):
    """Wraps a check, records the CPU time of each run and optionally profiles it."""

    def __init__(self, inner: Check, times: list[float]) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.symbols = inner.symbols  # type: ignore[misc]
        self.depends = inner.depends  # type: ignore[misc]
        self.budget = inner.budget  # type: ignore[misc]
        self.config = inner.config
        self.times = times
        self.profiler: cProfile.Profile | None = None

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        profiler = self.profiler
        if profiler is not None:
            profiler.enable()
        start = time.thread_time()
        try:
            return await self.inner.run(tx, ctx)
        finally:
            self.times.append(time.thread_time() - start)
            if profiler is not None:
                profiler.disable()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"  {name:<20} median {statistics.median(ms):.4f} ms   "
            f"p95 {percentile(ms, 0.95):.4f} ms   p99 {percentile(ms, 0.99):.4f} ms   "
            f"max {max(ms):.3f} ms   mean "
            f"{statistics.fmean(ms):.4f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per message of identity + content")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile the two checks over the first N messages")
    parser.add_argument("--only", choices=TIMED, default=None,
                        help="profile only this check")
    args = parser.parse_args(argv)

    corpus = corpus_mod.load_or_build(args.seed, args.messages)
    engine = engine_run.EngineBench(corpus)
    times: dict[str, list[float]] = {name: [] for name in TIMED}
    wrapped: list[TimedCheck] = []
    checks: list[Check] = []
    for check in engine.pipeline.checks:
        if check.name in TIMED:
            timed = TimedCheck(check, times[check.name])
            wrapped.append(timed)
            checks.append(timed)
        else:
            checks.append(check)
    missing = [n for n in TIMED if n not in {c.name for c in checks}]
    if missing:
        print(f"the default configuration does not enable {', '.join(missing)}")
        return 2
    engine.pipeline = Pipeline(engine.pipeline.config, engine.resolver, checks)
    print(f"corpus {corpus.directory.name}: {len(corpus.items)} messages, digest {corpus.digest}")
    try:
        engine.warm()
        passes: list[tuple[list[float], list[float], list[float]]] = []
        with one_core() as core:
            for _ in range(args.repeat):
                for values in times.values():
                    values.clear()
                gc.collect()
                engine.sequential()
                identity, content = list(times["identity"]), list(times["content"])
                both = [a + b for a, b in zip(identity, content, strict=True)]
                passes.append((identity, content, both))
        passes.sort(key=lambda p: statistics.median(p[2]))
        identity, content, both = passes[len(passes) // 2]
        print(f"median of {args.repeat} timed passes (pinned to core {core}), CPU per message:")
        print(line("identity", identity))
        print(line("content", content))
        print(line("identity + content", both))
        median_ms = statistics.median(both) * 1000
        status = "ok" if median_ms <= TARGET_MS else "MISSED"
        print(f"  target: identity + content median <= {TARGET_MS} ms: {status}")
        if args.profile:
            profile(engine, [w for w in wrapped if args.only in (None, w.name)], args.profile)
    finally:
        engine.close()
    return 0


def profile(engine: engine_run.EngineBench, wrapped: list[TimedCheck], limit: int) -> None:
    """cProfile only the two checks (the wrappers switch the profiler on around each run)."""
    profiler = cProfile.Profile()
    for timed in wrapped:
        timed.profiler = profiler
    corpus = engine.corpus
    pairs = list(zip(corpus.items, corpus.messages, strict=True))[:limit]

    async def run() -> None:
        for item, raw in pairs:
            tx = Transaction(Connection(ip=item.ip, helo=item.helo),
                             Envelope(item.mail_from, list(item.rcpt)), Message(raw), item.id)
            await engine.pipeline.evaluate(tx, corpus.now)

    try:
        engine.loop.run_until_complete(run())
    finally:
        for timed in wrapped:
            timed.profiler = None
    print()
    names = " + ".join(timed.name for timed in wrapped)
    print(profiling.format_rows(f"{names} over {len(pairs)} messages, by self time",
                                profiling.top(profiler, len(pairs), "tottime", 25)))
    print()
    print(profiling.format_rows("by cumulative time",
                                profiling.top(profiler, len(pairs), "cumulative", 25)))

if __name__ == "__main__":
    sys.exit(main())
