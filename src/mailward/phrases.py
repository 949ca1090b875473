"""Phrase rules of the content check: loaded from the rule files in ``mailward/rules/`` (one per
language plus shared fragments), matched against folded text (lower case, accents removed,
homoglyphs mapped, whitespace collapsed to single spaces).

Every rule names trigger substrings, at least one of which is part of any text it matches. A
rule runs only when a trigger occurs, and on long texts only in windows around the triggers,
so the cost per message stays small whatever the text size. Two Aho-Corasick passes over the
text decide which rules can run at all: one finds the triggers, one the literal words each
rule's pattern cannot match without (`mailward.literals`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from mailward.config import ConfigError
from mailward.literals import (
    Found,
    Requirement,
    RequirementSet,
    alternatives,
    holds_in,
    quick,
    requirement,
)

if TYPE_CHECKING:
    import ahocorasick_rs

LANGUAGES = ("en", "de", "fr", "es")
WINDOW = 240  # characters either side of a trigger searched on long texts (> longest match)
MAX_TRIGGER_HITS = 24  # occurrences of one trigger looked at per rule
_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True, slots=True)
class Rule:
    """One phrase rule: the symbol it supports, its trigger substrings, and the pattern."""

    symbol: str
    name: str
    language: str
    triggers: tuple[str, ...]
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that matched, and the words that matched it."""

    rule: Rule
    excerpt: str


class PhraseRules:
    """The rules of the chosen languages; ``scan`` returns the first hit of each symbol."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self.triggers = tuple(sorted({t for r in self.rules for t in r.triggers}))
        # One pass finds the triggers: at each place where one starts, the longest (what a
        # trie-shaped alternation reports, scanning on after it); the triggers inside it come
        # along. (A trigger that only ever occurs overlapping the end of another one is not
        # seen, as it never was.)
        self._gate = _Finder(self.triggers, longest=True)
        self._inside = {t: {u for u in self.triggers if u in t} for t in self.triggers}
        self._always = {""} if "" in self.triggers else set()  # an empty trigger is everywhere
        # The second pass finds the words the rules' patterns cannot match without: a rule runs
        # only where they occur (in the text, then in each window). A rule that is one
        # alternation runs only the alternatives whose words occur.
        requirements: list[Requirement | None] = []
        plans = []
        for rule in self.rules:
            split: Sequence[tuple[re.Pattern[str] | None, Requirement | None]] | None
            split = alternatives(rule.regex)
            if split is None:
                split = [(None, requirement(rule.regex))]  # None: the whole pattern
            fast = quick(rule.regex)  # the same matches, found faster
            parts = []
            for pattern, req in split:
                parts.append((pattern or fast, len(requirements)))
                requirements.append(req)
            plans.append((rule, fast, parts))
        self._needs = RequirementSet(requirements)
        self._words = _Finder(self._needs.strings, longest=False)
        self._plans = [
            _Plan(rule, rule.symbol, frozenset(rule.triggers), fast,
                  tuple((p, n, self._needs.clause_sets(n)) for p, n in parts))
            for rule, fast, parts in plans
        ]

    @classmethod
    def load(cls, languages: Iterable[str], symbols: frozenset[str]) -> PhraseRules:
        folder = resources.files("mailward").joinpath("rules")
        common = tomllib.loads(folder.joinpath("common.toml").read_text("utf-8"))
        fragments = {str(k): str(v) for k, v in common.get("fragments", {}).items()}
        rules: list[Rule] = []
        for language in languages:
            if language not in LANGUAGES:
                raise ConfigError(
                    f"content.languages: no rules for {language!r} (available: "
                    + ", ".join(LANGUAGES)
                    + ")"
                )
            data = tomllib.loads(folder.joinpath(f"{language}.toml").read_text("utf-8"))
            rules.extend(parse_rules(data, language, symbols, fragments))
        return cls(rules)

    def present(self, text: str) -> set[str]:
        """The triggers that occur in ``text``."""
        found = set(self._always)
        inside = self._inside
        for trigger in self._gate.found(text):
            found |= inside[trigger]
        return found

    def scan(self, text: str) -> dict[str, Hit]:
        present = self.present(text)
        hits: dict[str, Hit] = {}
        if not present:
            return hits
        needs = self._needs
        found: Found | None = None
        windows = _Windows(text) if len(text) > 4 * WINDOW else None
        for plan in self._plans:
            if plan.symbol in hits:
                continue
            triggers = plan.triggers & present
            if not triggers:
                continue
            if found is None:
                found = needs.check(self._words.found(text))
                holds = found.clauses.issuperset
            # the parts that can match: those whose words the text has
            live = [p for p in plan.parts if p[2] is None or any(map(holds, p[2]))]
            if not live:
                continue
            if windows is None:
                match = plan.first(text, [part[0] for part in live])
            else:
                match = plan.first_in_windows(windows, triggers, live, needs, found)
            if match is not None:
                hits[plan.symbol] = Hit(plan.rule, _excerpt(match))
        return hits


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a rule is searched: its triggers, its pattern (in its quick form) and the parts
    that make it up (alternatives, or the whole pattern), each with its requirement's
    number in the `RequirementSet` and that requirement's alternatives as sets of clause
    numbers (None: it requires nothing)."""

    rule: Rule
    symbol: str
    triggers: frozenset[str]
    regex: re.Pattern[str]
    parts: tuple[tuple[re.Pattern[str], int, tuple[frozenset[int], ...] | None], ...]

    def first(self, window: str, patterns: list[re.Pattern[str]]) -> str | None:
        """The rule's first match in ``window`` when only ``patterns`` (of its parts) can
        match: their earliest match, the first part's on a tie."""
        if len(patterns) == len(self.parts):
            match = self.regex.search(window)
            return None if match is None else match.group(0)
        best = None
        for pattern in patterns:
            match = pattern.search(window)
            if match is not None and (best is None or match.start() < best.start()):
                best = match
        return None if best is None else best.group(0)

    def first_in_windows(
        self,
        windows: _Windows,
        triggers: set[str] | frozenset[str],
        live: list[tuple[re.Pattern[str], int, tuple[frozenset[int], ...] | None]],
        needs: RequirementSet,
        found: Found,
    ) -> str | None:
        """The first match in the windows around the triggers, each window searched only for
        the parts whose words it has."""
        wanted = [(pattern, needs.narrowed(number, found)) for pattern, number, _ in live]
        text = windows.text
        for s, e in windows.around(triggers):
            window = text[s:e]
            patterns = [p for p, need in wanted if need is None or holds_in(need, window)]
            if patterns:
                match = self.first(window, patterns)
                if match is not None:
                    return match
        return None


class _Finder:
    """Which of a set of strings occur in a text, by Aho-Corasick: every one that occurs, or
    (``longest``) those a left-to-right scan reports when it takes the longest string at each
    place one starts and goes on after it."""

    def __init__(self, strings: Iterable[str], longest: bool) -> None:
        import ahocorasick_rs as ac

        self._strings = [s for s in dict.fromkeys(strings) if s]  # (it cannot look for "")
        self._kind = ac.MatchKind.LeftmostLongest if longest else ac.MatchKind.Standard
        self._overlapping = not longest
        self._automaton = (
            ac.AhoCorasick(
                self._strings,
                matchkind=self._kind,
                implementation=ac.Implementation.DFA,
                store_patterns=True,
            )
            if self._strings
            else None
        )
        self._bytes_automaton: ahocorasick_rs.BytesAhoCorasick | None = None  # lone surrogates

    def found(self, text: str) -> set[str]:
        if self._automaton is None:
            return set()
        try:
            return set(self._automaton.find_matches_as_strings(text, self._overlapping))
        except UnicodeEncodeError:  # not encodable as UTF-8 (a lone surrogate)
            return self._found_in_bytes(text.encode("utf-8", "surrogatepass"))

    def _found_in_bytes(self, data: bytes) -> set[str]:
        import ahocorasick_rs as ac

        if self._bytes_automaton is None:
            self._bytes_automaton = ac.BytesAhoCorasick(
                [s.encode("utf-8", "surrogatepass") for s in self._strings],
                matchkind=self._kind,
                implementation=ac.Implementation.DFA,
            )
        matches = self._bytes_automaton.find_matches_as_indexes(data, self._overlapping)
        return {self._strings[i] for i, _start, _end in matches}


class _Windows:
    """The windows of one long text around sets of triggers: up to `MAX_TRIGGER_HITS`
    occurrences of each trigger, `WINDOW` characters either side, overlapping ones merged.
    Rules with the same triggers share them, and each trigger is looked for once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._spans: dict[str, list[tuple[int, int]]] = {}
        self._merged: dict[frozenset[str], list[tuple[int, int]]] = {}

    def around(self, triggers: set[str] | frozenset[str]) -> list[tuple[int, int]]:
        key = frozenset(triggers)
        merged = self._merged.get(key)
        if merged is None:
            spans = sorted(span for trigger in key for span in self._spans_of(trigger))
            merged = []
            start, end = spans[0]
            for s, e in spans[1:]:
                if s <= end:
                    end = max(end, e)
                else:
                    merged.append((start, end))
                    start, end = s, e
            merged.append((start, end))
            self._merged[key] = merged
        return merged

    def _spans_of(self, trigger: str) -> list[tuple[int, int]]:
        spans = self._spans.get(trigger)
        if spans is None:
            text, size = self.text, len(trigger)
            spans = []
            pos = text.find(trigger)
            for _ in range(MAX_TRIGGER_HITS):
                if pos < 0:
                    break
                spans.append((max(0, pos - WINDOW), pos + size + WINDOW))
                pos = text.find(trigger, pos + size + WINDOW)
            self._spans[trigger] = spans
        return spans


def parse_rules(
    data: dict[str, object],
    language: str,
    symbols: frozenset[str],
    fragments: dict[str, str] | None = None,
) -> list[Rule]:
    """The rules of one parsed rule file; a broken rule is a programming error, named here."""
    fragments = fragments or {}
    out = []
    entries = data.get("rule", [])
    if not isinstance(entries, list):
        raise ValueError(f"rules/{language}.toml: [[rule]] entries expected")
    for index, entry in enumerate(entries):
        where = f"rules/{language}.toml rule {index + 1}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: a table expected")
        symbol, name = entry.get("symbol"), entry.get("name", f"{language}-{index + 1}")
        if symbol not in symbols:
            raise ValueError(f"{where}: unknown symbol {symbol!r}")
        triggers = entry.get("triggers")
        if not isinstance(triggers, list) or not triggers:
            raise ValueError(f"{where}: triggers missing")
        try:
            pattern = _FRAGMENT.sub(lambda m: fragments[m.group(1)], str(entry["pattern"]))
            regex = re.compile(pattern, re.VERBOSE)
        except (KeyError, re.error) as exc:
            raise ValueError(f"{where}: bad pattern: {exc}") from None
        out.append(Rule(str(symbol), str(name), language, tuple(map(str, triggers)), regex))
    return out


def _excerpt(words: str, limit: int = 90) -> str:
    words = words.strip().rstrip(".,;:!?")
    return words if len(words) <= limit else words[: limit - 1] + "…"
