"""Phrase rules of the content check: loaded from the rule files in ``mailward/rules/`` (one per
language plus shared fragments), matched against folded text (lower case, accents removed,
homoglyphs mapped, whitespace collapsed to single spaces).

Every rule names trigger substrings, at least one of which is part of any text it matches. A
rule runs only when a trigger occurs, and on long texts only in windows around the triggers,
so the cost per message stays small whatever the text size.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from mailward.config import ConfigError

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
        # One pass finds the triggers: a trie-shaped alternation reports the longest trigger at
        # each match, and the triggers inside it come along. (A trigger that only ever occurs
        # overlapping the end of another one is not seen; the gate only saves work.)
        self._gate = re.compile(_trie_pattern(self.triggers)) if self.triggers else None
        self._inside = {t: {u for u in self.triggers if u in t} for t in self.triggers}

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
        if self._gate is None:
            return set()
        found: set[str] = set()
        for longest in set(self._gate.findall(text)):
            found |= self._inside[longest]
        return found

    def scan(self, text: str) -> dict[str, Hit]:
        present = self.present(text)
        hits: dict[str, Hit] = {}
        if not present:
            return hits
        for rule in self.rules:
            if rule.symbol in hits:
                continue
            triggers = present.intersection(rule.triggers)
            if not triggers:
                continue
            match = _search(rule.regex, text, triggers)
            if match is not None:
                hits[rule.symbol] = Hit(rule, _excerpt(match))
        return hits


def _search(regex: re.Pattern[str], text: str, triggers: set[str]) -> str | None:
    if len(text) <= 4 * WINDOW:
        match = regex.search(text)
        return None if match is None else match.group(0)
    spans: list[tuple[int, int]] = []
    for trigger in triggers:
        pos = text.find(trigger)
        for _ in range(MAX_TRIGGER_HITS):
            if pos < 0:
                break
            spans.append((max(0, pos - WINDOW), pos + len(trigger) + WINDOW))
            pos = text.find(trigger, pos + len(trigger) + WINDOW)
    spans.sort()
    start, end = spans[0]
    merged = []
    for s, e in spans[1:]:
        if s <= end:
            end = max(end, e)
        else:
            merged.append((start, end))
            start, end = s, e
    merged.append((start, end))
    for s, e in merged:
        match = regex.search(text[s:e])
        if match is not None:
            return match.group(0)
    return None


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


def _trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, shaped as a trie so that the engine
    follows one branch per character instead of trying every word in turn."""
    root: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = [re.escape(k) + build(v) for k, v in sorted(node.items()) if k]
        if not branches:
            return ""
        inner = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return "(?:" + inner + ")?"
        return inner

    return build(root)


def _excerpt(words: str, limit: int = 90) -> str:
    words = words.strip().rstrip(".,;:!?")
    return words if len(words) <= limit else words[: limit - 1] + "…"
