"""Checks each system's decisions against the corpus labels and prints the benchmark tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from corpus import FORGED_KINDS, LEGIT_KINDS, Item

DISPOSITIONS = ["accept", "tag", "quarantine", "reject", "tempfail"]
_RANK = {"accept": 0, "tag": 1, "quarantine": 2, "reject": 3}


def correct(item: Item, disposition: str) -> bool:
    """Legitimate mail must be accepted; forged mail must get at least ``expect_min`` (what
    its DMARC policy asks for, "tag" where there is no policy). tempfail is never right: the
    corpus DNS always answers."""
    if disposition not in _RANK:
        return False
    if item.label == "legit":
        return disposition == "accept"
    return _RANK[disposition] >= _RANK[item.expect_min]


@dataclass(slots=True)
class Decision:
    disposition: str
    dmarc: str | None
    symbols: tuple[str, ...] = ()


@dataclass(slots=True)
class Verification:
    """One system's decisions compared with the labels."""

    system: str
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    ok_by_kind: Counter[str] = field(default_factory=Counter)
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    dmarc_agree: int = 0
    dmarc_checked: int = 0
    dmarc_disagree: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    wrong: list[tuple[Item, Decision]] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(self.ok_by_kind.values())


def verify(system: str, items: Sequence[Item],
           decisions: Sequence[Decision | None]) -> Verification:
    result = Verification(system)
    for item, decision in zip(items, decisions, strict=True):
        got = decision.disposition if decision is not None else "error"
        result.by_kind.setdefault(item.kind, Counter())[got] += 1
        accepted = "accepted" if got == "accept" else "not accepted"
        result.confusion[(item.label, accepted)] += 1
        if decision is not None and correct(item, got):
            result.ok_by_kind[item.kind] += 1
        else:
            result.wrong.append((item, decision or Decision("error", None)))
        if item.expect_dmarc is not None and decision is not None:
            result.dmarc_checked += 1
            if decision.dmarc == item.expect_dmarc:
                result.dmarc_agree += 1
            else:
                result.dmarc_disagree[(item.kind, item.expect_dmarc, str(decision.dmarc))] += 1
    return result


def verification_table(items: Sequence[Item], main: Verification,
                       others: Sequence[Verification]) -> str:
    kinds = Counter(i.kind for i in items)
    head = (f"  {'kind':<30}{'n':>5}   {main.system + ':':<10}"
            + "".join(f"{d[:5]:>6}" for d in DISPOSITIONS) + f"{'ok':>6}"
            + "".join(f" | {o.system[:9]:>9} ok" for o in others))
    lines = [head]
    for label, table in (("legit", LEGIT_KINDS), ("forged", FORGED_KINDS)):
        for kind in table:
            if not kinds[kind]:
                continue
            counts = main.by_kind.get(kind, Counter())
            row = (f"  {label + ' ' + kind:<30}{kinds[kind]:>5}   {'':<10}"
                   + "".join(f"{counts[d]:>6}" for d in DISPOSITIONS)
                   + f"{main.ok_by_kind[kind]:>6}"
                   + "".join(f" | {o.ok_by_kind[kind]:>12}" for o in others))
            lines.append(row)
    lines.append("  expected: legit -> accept; forged -> at least what its DMARC policy asks "
                 "(reject/quarantine; tag for p=none or no policy)")
    for v in (main, *others):
        legit = v.confusion[("legit", "accepted")] + v.confusion[("legit", "not accepted")]
        forged = v.confusion[("forged", "accepted")] + v.confusion[("forged", "not accepted")]
        lines.append(
            f"  {v.system:<9} correct {v.ok}/{len(items)}; legit accepted "
            f"{v.confusion[('legit', 'accepted')]}/{legit} (false positives "
            f"{v.confusion[('legit', 'not accepted')]}); forged not accepted "
            f"{v.confusion[('forged', 'not accepted')]}/{forged} (missed "
            f"{v.confusion[('forged', 'accepted')]}); DMARC result = label "
            f"{v.dmarc_agree}/{v.dmarc_checked}")
        if v.dmarc_disagree:
            differs = ", ".join(f"{k}: {e} -> {g} x{n}"
                                for (k, e, g), n in v.dmarc_disagree.most_common(8))
            lines.append(f"  {'':<9} DMARC differs (kind: label -> {v.system}): {differs}")
    return "\n".join(lines)


def wrong_lines(v: Verification, limit: int | None = None) -> list[str]:
    out = []
    for item, decision in v.wrong[:limit]:
        out.append(f"{item.id} {item.label}/{item.kind} from={item.from_domain} "
                   f"expected={'accept' if item.label == 'legit' else '>=' + item.expect_min} "
                   f"got={decision.disposition} dmarc={decision.dmarc} ({item.note}) "
                   f"{' '.join(decision.symbols)}")
    return out


@dataclass(slots=True)
class Figure:
    """One line of the performance table."""

    name: str
    cpu_ms: float | None
    rate: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    target: str = ""
    status: str = ""


def _num(value: float | None, digits: int = 3, width: int = 9) -> str:
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def performance_table(figures: Sequence[Figure]) -> str:
    lines = [f"  {'':<46}{'CPU ms/msg':>11}{'msgs/s':>9}{'p50 ms':>9}{'p99 ms':>9}   "
             f"{'target':<22}status"]
    for f in figures:
        lines.append(f"  {f.name:<46}{_num(f.cpu_ms, 3, 11)}{_num(f.rate, 0)}"
                     f"{_num(f.p50_ms, 2)}{_num(f.p99_ms, 2)}   {f.target:<22}{f.status}")
    return "\n".join(lines)
