"""Evaluation of the impersonation and social-engineering detection.

Runs the whole engine (every enabled check, the verdict) over
- the generated spoofing set (bench/spoof_corpus.py): detection rate = share tagged, quarantined
  or rejected (target >= 90%), per tactic, family and language;
- legitimate mail from ../shared/corpora/ (the SpamAssassin ham folders): banner rate = share
  tagged or worse (target <= 1%);
and prints the median / p95 CPU the identity and content checks add per message.

    .venv/bin/python bench/detect.py [--ham-limit N] [--show-misses] [--show-banners]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spoof_corpus
from mailward import config as config_mod
from mailward.checks import Check, CheckContext
from mailward.dns import ZoneResolver
from mailward.history import Contact
from mailward.model import Connection, Envelope, Finding, Message, Transaction
from mailward.pipeline import Pipeline

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
HAM = ("easy-ham-1", "easy-ham-2", "hard-ham-1")
SITE_CONFIG = {
    "site": {"authserv_id": "mx.ourcorp.example", "domains": ["ourcorp.example"]},
    "identity": {
        "protected_names": ["System Administrator", "IT Support", "Help Desk", "Jane Smith"],
        "partner_domains": ["paybank.test"],
    },
}
DETECTED = ("tag", "quarantine", "reject")


class Timed(Check):
    """Wraps a check and records the CPU time of each run."""

    def __init__(self, inner: Check, times: list[float]) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.symbols = inner.symbols  # type: ignore[misc]
        self.depends = inner.depends  # type: ignore[misc]
        self.budget = inner.budget  # type: ignore[misc]
        self.config = inner.config
        self.times = times

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        start = time.thread_time()
        try:
            return await self.inner.run(tx, ctx)
        finally:
            self.times.append(time.thread_time() - start)


class Strangers:
    """A sender history in which nobody has written before (a site with an empty log): every
    protected name from outside is also a first contact, the strictest case."""

    async def contact(self, address: str, now: float) -> Contact:
        return Contact.FIRST


def pipeline(
    resolver: ZoneResolver, disabled: tuple[str, ...] = (), strangers: bool = False,
) -> tuple[Pipeline, dict[str, list[float]]]:
    enabled = [c for c in config_mod.Config().checks.enabled if c not in disabled]
    config = config_mod.from_dict({**SITE_CONFIG, "checks": {"enabled": enabled}}, "detect.py")
    plain = Pipeline(config, resolver)
    times: dict[str, list[float]] = defaultdict(list)
    checks: list[Check] = [
        Timed(c, times[c.name]) if c.name in ("identity", "content") else c for c in plain.checks
    ]
    return Pipeline(config, resolver, checks, Strangers() if strangers else None), times


def ham_messages(limit: int | None) -> Iterator[tuple[str, bytes]]:
    root = CORPORA / "spamassassin-public-corpus"
    count = 0
    for folder in HAM:
        for path in sorted((root / folder).glob("*.txt")):
            if limit is not None and count >= limit:
                return
            raw = path.read_bytes()
            if raw.startswith(b"From "):  # mbox separator line
                raw = raw.split(b"\n", 1)[1]
            count += 1
            yield f"{folder}/{path.name}", raw


def envelope_of(message: Message) -> str:
    path = message.parsed.first("Return-Path") or ""
    return path.strip().strip("<>").strip()


async def evaluate_all(args: argparse.Namespace) -> int:
    spoof_resolver = ZoneResolver(spoof_corpus.zones())
    disabled = tuple(args.disable)
    spoof_pipeline, spoof_times = pipeline(spoof_resolver, disabled, args.strangers)
    samples = spoof_corpus.generate(args.spoof_count)
    by: dict[str, Counter[str]] = defaultdict(Counter)
    dispositions: Counter[str] = Counter()
    misses = []
    for sample in samples:
        tx = Transaction(
            Connection(ip=sample.ip, helo=sample.helo),
            Envelope(sample.mail_from, ["staff@ourcorp.example"]),
            Message(sample.raw),
        )
        evaluation = await spoof_pipeline.evaluate(tx, now=1795812900)
        disposition = str(evaluation.verdict.disposition)
        dispositions[disposition] += 1
        hit = disposition in DETECTED
        for key in (f"tactic {sample.tactic}", f"family {sample.family}",
                    f"language {sample.language}", f"shape {sample.shape}"):
            by[key]["total"] += 1
            by[key]["detected"] += hit
        if not hit:
            misses.append((sample, evaluation))

    ham_pipeline, ham_times = pipeline(ZoneResolver({}), disabled, args.strangers)
    ham_total = 0
    ham_dispositions: Counter[str] = Counter()
    bannered = []
    ham_symbols: Counter[str] = Counter()
    for name, raw in ham_messages(args.ham_limit):
        message = Message(raw)
        tx = Transaction(
            Connection(ip=None, helo=None), Envelope(envelope_of(message), []), message
        )
        evaluation = await ham_pipeline.evaluate(tx, now=1040000000)
        ham_total += 1
        disposition = str(evaluation.verdict.disposition)
        ham_dispositions[disposition] += 1
        for f in evaluation.findings:
            if f.check in ("identity", "content"):
                ham_symbols[f.symbol] += 1
        if disposition in DETECTED:
            bannered.append((name, evaluation))

    detected = sum(dispositions[d] for d in DETECTED)
    if disabled:
        print("Checks disabled: " + ", ".join(disabled))
    print(f"Spoofing set: {len(samples)} generated messages (bench/spoof_corpus.py)")
    print(f"  detection rate (tag or worse): {detected}/{len(samples)} = "
          f"{100 * detected / len(samples):.1f}%   (target >= 90%)")
    print("  dispositions: " + ", ".join(f"{k} {v}" for k, v in sorted(dispositions.items())))
    for key in sorted(by):
        c = by[key]
        print(f"    {key:<36} {c['detected']:>4}/{c['total']:<4}")
    banner = len(bannered)
    print(f"\nLegitimate mail: {ham_total} messages ({', '.join(HAM)})")
    print(f"  banner rate (tag or worse): {banner}/{ham_total} = "
          f"{100 * banner / max(1, ham_total):.2f}%   (target <= 1%)")
    print("  dispositions: " + ", ".join(f"{k} {v}" for k, v in sorted(ham_dispositions.items())))
    print("  identity/content findings on ham: "
          + (", ".join(f"{k} {v}" for k, v in ham_symbols.most_common()) or "none"))

    all_times = sorted(_per_message(spoof_times) + _per_message(ham_times))
    if all_times:
        print(f"\nCPU added by identity + content per message ({len(all_times)} messages): "
              f"median {1000 * statistics.median(all_times):.3f} ms, "
              f"p95 {1000 * all_times[int(0.95 * (len(all_times) - 1))]:.3f} ms, "
              f"max {1000 * all_times[-1]:.3f} ms   (target: median < 2 ms)")
    for name in ("identity", "content"):
        t = sorted(spoof_times[name] + ham_times[name])
        if t:
            print(f"  {name:<9} median {1000 * statistics.median(t):.3f} ms, "
                  f"p95 {1000 * t[int(0.95 * (len(t) - 1))]:.3f} ms")

    if args.show_misses:
        print("\nMissed spoofing messages:")
        for sample, evaluation in misses:
            print(f"  {sample.name} {sample.tactic} {sample.family} {sample.language} "
                  f"{sample.shape}: {evaluation.verdict.disposition} "
                  f"{evaluation.verdict.score:.1f} "
                  + " ".join(f.symbol for f in evaluation.findings if f.score))
    if args.show_banners:
        print("\nBannered legitimate messages:")
        for name, evaluation in bannered:
            print(f"  {name}: {evaluation.verdict.disposition} {evaluation.verdict.score:.1f} "
                  + "; ".join(f"{f.symbol} {f.detail[:90]}" for f in evaluation.findings
                              if f.score > 0))
    ok = detected >= 0.9 * len(samples) and banner <= 0.01 * max(1, ham_total)
    return 0 if ok else 1


def _per_message(times: dict[str, list[float]]) -> list[float]:
    identity, content = times.get("identity", []), times.get("content", [])
    return [a + b for a, b in zip(identity, content, strict=False)]


def main() -> int:
    parser = argparse.ArgumentParser(description="detection and banner rates of mailward")
    parser.add_argument("--ham-limit", type=int, default=None, help="legitimate messages to use")
    parser.add_argument("--spoof-count", type=int, default=240, help="spoofing messages to build")
    parser.add_argument("--disable", action="append", default=[], metavar="CHECK",
                        help="run without this check (to see what each check contributes)")
    parser.add_argument("--strangers", action="store_true",
                        help="with a sender history that knows nobody: every protected name "
                        "from outside is also a first contact")
    parser.add_argument("--show-misses", action="store_true", help="list undetected spoofs")
    parser.add_argument("--show-banners", action="store_true", help="list bannered ham")
    return asyncio.run(evaluate_all(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
