"""The verification benchmark: mailward against dkimpy+pyspf (and rspamd) on one labelled corpus.

    .venv/bin/python bench/verify.py [--messages N] [--seed S] [--repeat R] [--peer rspamd]
                                     [--profile]

Generates (or reuses) the corpus under bench/out/ and, pinned to one core, evaluates it with
mailward's pipeline (a warm-up pass, R timed sequential passes of which the median counts, one
pass with 8 evaluations in flight, the same timed passes with only spf/dkim/arc/dmarc) and with
the cached dkimpy+pyspf+DMARC baseline; optionally with rspamd. It checks every decision against
the corpus labels and prints the figures against the targets. Results go to
bench/out/results-s<seed>-n<N>.json, wrong decisions to bench/out/wrong-<system>.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import baseline as baseline_mod
import corpus as corpus_mod
import engine_run
import profiling
import report
import rspamd_peer
from mailward.dns import ZoneBackend
from world import TRUSTED_LIST

TARGET_CPU_MS = 0.5
TARGET_VS_BASELINE = 3.0
TARGET_VS_RSPAMD = 9.0
OUT = Path(__file__).resolve().parent / "out"


def say(text: str = "") -> None:
    print(text, flush=True)


@contextlib.contextmanager
def one_core() -> Iterator[int]:
    """Pin this process to one CPU for the timed passes; restore the mask afterwards."""
    saved = os.sched_getaffinity(0)
    core = max(saved)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, saved)


def describe(corpus: corpus_mod.Corpus) -> str:
    labels = Counter(i.label for i in corpus.items)
    sizes = [len(m) for m in corpus.messages]
    signed = sum(b"DKIM-Signature:" in m[: m.find(b"\r\n\r\n")] for m in corpus.messages)
    ed25519 = sum(b"a=ed25519-sha256" in m for m in corpus.messages)
    arc = sum(m.startswith(b"ARC-Seal") or b"\r\nARC-Seal:" in m for m in corpus.messages)
    return (f"corpus seed {corpus.seed}: {len(sizes)} messages ({labels['legit']} legit, "
            f"{labels['forged']} forged), {min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f} KB "
            f"(mean {sum(sizes) / len(sizes) / 1024:.1f} KB), {signed} DKIM-signed "
            f"({ed25519} with Ed25519), {arc} with ARC, {len(corpus.zones)} DNS names; "
            f"digest {corpus.digest}; {corpus.directory}")


T = TypeVar("T")


def median_pass(runs: list[tuple[engine_run.PassStats, T]]) -> tuple[engine_run.PassStats, T]:
    """The run with the median CPU time (robust against a neighbour's burst of load)."""
    return sorted(runs, key=lambda run: run[0].cpu)[len(runs) // 2]


def baseline_pass(base: baseline_mod.Baseline, corpus: corpus_mod.Corpus
                  ) -> tuple[engine_run.PassStats, list[report.Decision]]:
    decisions: list[report.Decision] = []
    latencies: list[float] = []
    clock = time.perf_counter
    with baseline_mod.pyspf_dns(base.zone):
        gc.collect()
        wall, cpu = clock(), time.process_time()
        for item, raw in zip(corpus.items, corpus.messages, strict=True):
            started = clock()
            result = base.evaluate(raw, item.ip, item.helo, item.mail_from)
            latencies.append(clock() - started)
            decisions.append(report.Decision(result.disposition, result.dmarc))
        cpu, wall = time.process_time() - cpu, clock() - wall
    return engine_run.PassStats("baseline", len(latencies), wall, cpu, latencies), decisions


def run_baseline(corpus: corpus_mod.Corpus, repeat: int
                 ) -> tuple[engine_run.PassStats, list[report.Decision], list[float]]:
    """``repeat`` timed passes of the baseline; the median one, and every pass's CPU ms."""
    base = baseline_mod.Baseline(ZoneBackend(corpus.zones), [TRUSTED_LIST])
    runs = [baseline_pass(base, corpus) for _ in range(repeat)]
    stats, decisions = median_pass(runs)
    return stats, decisions, [r[0].cpu_ms for r in runs]


@dataclass(slots=True)
class PeerRun:
    version: str
    passes: list[rspamd_peer.PeerPass]
    decisions: list[report.Decision | None]
    actions: Counter[str]


def run_peer(corpus: corpus_mod.Corpus) -> PeerRun:
    say("rspamd: starting (DNS server on 127.0.0.1:5353, rspamd on 127.0.0.1:11333) ...")
    with rspamd_peer.RspamdPeer(corpus, OUT, log=say) as peer:
        warm, outcomes = peer.run_pass(8)
        say(f"rspamd: warm-up pass {warm.messages} messages in {warm.wall:.1f} s")
        passes = []
        for width in (1, 8, 32):
            measured, _ = peer.run_pass(width)
            passes.append(measured)
            say(f"rspamd: concurrency {width}: {measured.cpu_ms:.2f} ms CPU/msg, "
                f"{measured.rate:.0f} msgs/s, p99 {measured.percentile(0.99) * 1000:.0f} ms")
    decisions = [None if o is None else report.Decision(o.disposition, o.dmarc, o.symbols)
                 for o in outcomes]
    actions = Counter(o.action for o in outcomes if o is not None)
    return PeerRun(peer.version, passes, decisions, actions)


@dataclass(slots=True)
class EngineRun:
    checks: list[str]
    sequential: engine_run.PassStats
    concurrent: engine_run.PassStats
    warm_wall: float
    outcomes: list[engine_run.Outcome]
    unstable: int
    dns_misses: int
    profiler: cProfile.Profile
    profiled: int
    auth_only: engine_run.PassStats
    spread: dict[str, list[float]]


def timed_passes(engine: engine_run.EngineBench, repeat: int
                 ) -> tuple[engine_run.PassStats, list[engine_run.Outcome], list[float]]:
    runs = []
    for _ in range(repeat):
        gc.collect()
        runs.append(engine.sequential())
    stats, outcomes = median_pass(runs)
    return stats, outcomes, [r[0].cpu_ms for r in runs]


def run_auth_only(corpus: corpus_mod.Corpus, repeat: int
                  ) -> tuple[engine_run.PassStats, list[float]]:
    """The engine with only the checks the baseline also does: a like-for-like figure."""
    engine = engine_run.EngineBench(corpus, engine_run.AUTH_CHECKS)
    try:
        engine.warm()
        stats, _outcomes, spread = timed_passes(engine, repeat)
    finally:
        engine.close()
    return stats, spread


def run_engine(corpus: corpus_mod.Corpus, profile_all: bool, repeat: int) -> EngineRun:
    engine = engine_run.EngineBench(corpus)
    try:
        warm_wall = time.perf_counter()
        warm = engine.warm()
        warm_wall = time.perf_counter() - warm_wall
        sequential, outcomes, spread = timed_passes(engine, repeat)
        gc.collect()
        concurrent = engine.concurrent(8)
        limit = len(corpus.items) if profile_all else min(len(corpus.items), 1000)
        profiler, profiled = engine.profile(limit)
    finally:
        engine.close()
    unstable = sum(a.disposition != b.disposition for a, b in zip(warm, outcomes, strict=True))
    auth, auth_spread = run_auth_only(corpus, repeat)
    return EngineRun(engine.check_names, sequential, concurrent, warm_wall, outcomes, unstable,
                     engine.dns_misses, profiler, profiled, auth,
                     {"engine": spread, "same checks": auth_spread})


def figures(corpus: corpus_mod.Corpus, engine: EngineRun, base: engine_run.PassStats,
            peer: PeerRun | None) -> tuple[list[report.Figure], dict[str, object]]:
    """The performance table and its figures for results.json."""
    ms = 1000.0
    seq = engine.sequential
    cpu = seq.cpu_ms
    auth = engine.auth_only
    rows = [
        report.Figure(f"mailward engine ({len(engine.checks)} checks), sequential", cpu, seq.rate,
                      seq.percentile(0.5) * ms, seq.percentile(0.99) * ms,
                      f"<= {TARGET_CPU_MS} ms CPU",
                      _status(cpu <= TARGET_CPU_MS, f"{cpu / TARGET_CPU_MS:.1f}x over")),
        report.Figure("mailward engine, 8 concurrent", engine.concurrent.cpu_ms,
                      engine.concurrent.rate),
        report.Figure("mailward engine, warm-up pass (cold caches)", None,
                      len(corpus.items) / engine.warm_wall),
        report.Figure("mailward spf+dkim+arc+dmarc only, sequential", auth.cpu_ms, auth.rate,
                      auth.percentile(0.5) * ms, auth.percentile(0.99) * ms,
                      f"<= {TARGET_CPU_MS} ms CPU",
                      _status(auth.cpu_ms <= TARGET_CPU_MS,
                              f"{auth.cpu_ms / TARGET_CPU_MS:.1f}x over")),
        report.Figure("baseline dkimpy+pyspf+DMARC, cached DNS", base.cpu_ms, base.rate,
                      base.percentile(0.5) * ms, base.percentile(0.99) * ms),
    ]
    speedup = base.cpu_ms / cpu
    rows.append(_ratio_row("speed-up vs baseline, whole engine", speedup, TARGET_VS_BASELINE))
    rows.append(_ratio_row("speed-up vs baseline, same checks", base.cpu_ms / auth.cpu_ms,
                           TARGET_VS_BASELINE))
    results: dict[str, object] = {
        "corpus": {"seed": corpus.seed, "messages": len(corpus.items), "digest": corpus.digest},
        "passes_cpu_ms": engine.spread,
        "engine": {"checks": engine.checks, "cpu_ms": cpu, "rate": seq.rate,
                   "p99_ms": seq.percentile(0.99) * ms, "auth_only_cpu_ms": auth.cpu_ms,
                   "concurrent8_cpu_ms": engine.concurrent.cpu_ms,
                   "concurrent8_rate": engine.concurrent.rate,
                   "dns_misses_in_timed_pass": engine.dns_misses, "unstable": engine.unstable},
        "baseline": {"cpu_ms": base.cpu_ms, "rate": base.rate},
        "speedup_vs_baseline": speedup,
        "speedup_vs_baseline_same_checks": base.cpu_ms / auth.cpu_ms,
    }
    if peer is not None:
        for p in peer.passes:
            rows.append(report.Figure(f"{peer.version}, concurrency {p.concurrency}", p.cpu_ms,
                                      p.rate, p.percentile(0.5) * ms, p.percentile(0.99) * ms))
        reference = peer.passes[1]  # concurrency 8, as in the peer README
        rows.append(_ratio_row("speed-up vs rspamd (c=8), whole engine",
                               reference.cpu_ms / cpu, TARGET_VS_RSPAMD))
        results["rspamd"] = {
            "version": peer.version, "actions": dict(peer.actions),
            "passes": [{"concurrency": p.concurrency, "cpu_ms": p.cpu_ms, "rate": p.rate,
                        "p99_ms": p.percentile(0.99) * ms, "errors": p.errors}
                       for p in peer.passes],
        }
        results["speedup_vs_rspamd"] = reference.cpu_ms / cpu
    return rows, results


def _ratio_row(name: str, ratio: float, target: float) -> report.Figure:
    return report.Figure(f"  {name}: {ratio:.2f}x", None, target=f">= {target:g}x",
                         status=_status(ratio >= target, f"need {target / ratio:.1f}x faster"))


def print_profile(engine: EngineRun, full: bool) -> None:
    profiler, count = engine.profiler, engine.profiled
    say(f"=== profile: {count} messages, {profiling.total_ms(profiler, count):.3f} ms per "
        "message under cProfile (the profiler inflates it; read the proportions) ===")
    say("CPU inside each check's run() (ms per message, under the profiler): " + ", ".join(
        f"{name} {spent:.3f}" for name, spent in profiling.per_check(profiler, count)))
    if not full:
        say(profiling.format_rows("top 10 by self time",
                                  profiling.top(profiler, count, "tottime", 10)))
        return
    say(profiling.format_rows("top 25 by cumulative time",
                              profiling.top(profiler, count, "cumulative", 25)))
    say(profiling.format_rows("top 25 by self time",
                              profiling.top(profiler, count, "tottime", 25)))
    say("self time by source file (ms per message):")
    for module, spent in profiling.by_module(profiler, count, 15):
        say(f"  {spent:8.4f}  {module}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000,
                        help="corpus size (default 3000; use >= 2000 for figures)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed")
    parser.add_argument("--peer", choices=["rspamd"], help="also measure this peer")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed passes per in-process system; the median is reported")
    parser.add_argument("--profile", action="store_true",
                        help="profile the engine over the whole corpus: top 25 by cumulative "
                             "and by self time, and self time per source file")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.repeat < 1:
        parser.error("--messages and --repeat must be positive")

    started = time.perf_counter()
    corpus = corpus_mod.load_or_build(args.seed, args.messages, log=say)
    say(describe(corpus))
    say(f"machine: {os.cpu_count()} CPUs, load average {_load()} (other processes share the "
        "cores: CPU times stay valid, messages/s suffer)")
    with one_core() as core:
        say(f"engine: one pipeline, warm-up pass then timed passes, pinned to CPU {core} ...")
        engine = run_engine(corpus, args.profile, args.repeat)
        say("baseline: dkimpy + pyspf + DMARC by hand, DNS from the zone dict ...")
        base, base_decisions, engine.spread["baseline"] = run_baseline(corpus, args.repeat)
    peer = run_peer(corpus) if args.peer == "rspamd" else None

    engine_decisions = [report.Decision(o.disposition, o.dmarc, o.symbols)
                        for o in engine.outcomes]
    checks = [report.verify("mailward", corpus.items, engine_decisions),
              report.verify("baseline", corpus.items, base_decisions)]
    if peer is not None:
        checks.append(report.verify("rspamd", corpus.items, peer.decisions))
    rows, results = figures(corpus, engine, base, peer)
    results["verification"] = {
        c.system: {"correct": c.ok, "dmarc_agree": c.dmarc_agree,
                   "dmarc_checked": c.dmarc_checked,
                   "confusion": {" ".join(k): v for k, v in c.confusion.items()}}
        for c in checks}
    OUT.mkdir(parents=True, exist_ok=True)
    for check in checks:
        (OUT / f"wrong-{check.system}.txt").write_text(
            "".join(line + "\n" for line in report.wrong_lines(check)))
    (OUT / f"results-s{corpus.seed}-n{len(corpus.items)}.json").write_text(
        json.dumps(results, indent=1))

    say()
    say("=== performance (CPU: time.process_time in-process, /proc utime+stime for rspamd) ===")
    say(report.performance_table(rows))
    say(f"  {args.repeat} timed passes each, median shown; CPU ms/msg of every pass: " + "; ".join(
        f"{name} {' '.join(f'{v:.3f}' for v in values)}" for name, values in engine.spread.items()))
    say(f"  timed pass: {engine.dns_misses} DNS cache misses; {engine.unstable} decisions "
        "differ from the warm-up pass")
    say()
    say("=== verification against the corpus labels ===")
    say(report.verification_table(corpus.items, checks[0], checks[1:]))
    if peer is not None:
        say(f"  rspamd actions: {dict(peer.actions)}")
    for line in report.wrong_lines(checks[0], 12):
        say(f"  wrong: {line}")
    if len(checks[0].wrong) > 12:
        say(f"  ... {len(checks[0].wrong) - 12} more in {OUT / 'wrong-mailward.txt'}")
    say()
    print_profile(engine, args.profile)
    say(f"\ndone in {time.perf_counter() - started:.0f} s; load average now {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _status(ok: bool, miss: str) -> str:
    return "OK" if ok else f"MISS ({miss})"


if __name__ == "__main__":
    sys.exit(main())
