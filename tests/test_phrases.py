"""The phrase rule files: they load, their triggers hold, and windowed scanning finds matches."""

from __future__ import annotations

import random
import re
from typing import TypeAlias

import pytest

from mailward.checks.content import PHRASE_SYMBOLS
from mailward.config import ConfigError
from mailward.lookalike import Folder
from mailward.phrases import (
    LANGUAGES,
    MAX_TRIGGER_HITS,
    WINDOW,
    PhraseRules,
    _excerpt,
    parse_rules,
)
from tests.checks.test_content import PHRASES


@pytest.fixture(scope="module")
def rules() -> PhraseRules:
    return PhraseRules.load(LANGUAGES, PHRASE_SYMBOLS)


def fold(text: str) -> str:
    return " ".join(Folder().fold(text).split())


def test_every_language_has_every_kind_of_rule(rules: PhraseRules) -> None:
    for language in LANGUAGES:
        kinds = {r.symbol for r in rules.rules if r.language == language}
        assert kinds == PHRASE_SYMBOLS, language


def test_unknown_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"content\.languages: no rules for 'xx'"):
        PhraseRules.load(["en", "xx"], PHRASE_SYMBOLS)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"rule": [{"symbol": "NOPE", "triggers": ["a"], "pattern": "a"}]}, "unknown symbol"),
        ({"rule": [{"symbol": "CONTENT_URGENCY", "pattern": "a"}]}, "triggers missing"),
        ({"rule": [{"symbol": "CONTENT_URGENCY", "triggers": ["a"], "pattern": "("}]}, "bad"),
        ({"rule": [{"symbol": "CONTENT_URGENCY", "triggers": ["a"], "pattern": "{{x}}"}]}, "bad"),
        ({"rule": "x"}, "entries expected"),
    ],
)
def test_broken_rules_are_named(data: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_rules(data, "en", PHRASE_SYMBOLS)


@pytest.mark.parametrize(("language", "symbol", "text"), PHRASES)
def test_matches_contain_a_trigger(rules: PhraseRules, language: str, symbol: str,
                                   text: str) -> None:
    """Windowed scanning relies on this: a rule's match contains one of its triggers."""
    folded = fold(text)
    assert symbol in rules.scan(folded)
    for rule in rules.rules:
        match = rule.regex.search(folded)
        if match is not None:
            assert any(t in match.group(0) for t in rule.triggers), rule.name
            assert len(match.group(0)) < WINDOW, rule.name


def test_long_text_is_scanned_in_windows(rules: PhraseRules) -> None:
    filler = "the weekly report is attached for review. " * 400
    text = fold(filler + "Please set your password to Welcome2024. " + filler)
    assert len(text) > 4 * WINDOW
    hit = rules.scan(text)["CONTENT_PASSWORD_SET"]
    assert hit.excerpt == "set your password to welcome2024"
    assert rules.scan(fold(filler)) == {}


def test_excerpt_is_bounded(rules: PhraseRules) -> None:
    text = fold("send me a copy of the password file " + "x" * 10)
    assert len(rules.scan(text)["CONTENT_SENSITIVE_FILE_REQUEST"].excerpt) <= 90


# --- the scan agrees with the plain algorithm it speeds up --------------------------------------


Trie: TypeAlias = dict[str, "Trie"]  # each character to the rest; "" marks a word's end


def trie_pattern(words: list[str]) -> str:
    """A trie-shaped alternation of ``words``: at each place, the longest word starting there."""
    root: Trie = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: Trie) -> str:
        branches = [re.escape(k) + build(v) for k, v in sorted(node.items()) if k]
        if not branches:
            return ""
        inner = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return "(?:" + inner + ")?" if "" in node else inner

    return build(root)


class PlainRules:
    """The reference: the triggers found by one regular expression, then every rule with a
    trigger present searches the whole text (or, when it is long, the windows around its
    triggers) with its own pattern."""

    def __init__(self, rules: PhraseRules) -> None:
        self.rules = rules.rules
        triggers = sorted({t for r in self.rules for t in r.triggers})
        self.gate = re.compile(trie_pattern(triggers))
        self.inside = {t: {u for u in triggers if u in t} for t in triggers}

    def present(self, text: str) -> set[str]:
        found: set[str] = set()
        for longest in set(self.gate.findall(text)):
            found |= self.inside[longest]
        return found

    def scan(self, text: str) -> dict[str, tuple[str, str]]:
        present = self.present(text)
        hits: dict[str, tuple[str, str]] = {}
        for rule in self.rules:
            triggers = present.intersection(rule.triggers)
            if rule.symbol in hits or not triggers:
                continue
            match = self.search(rule.regex, text, triggers)
            if match is not None:
                hits[rule.symbol] = (rule.name, match)
        return hits

    @staticmethod
    def search(regex: re.Pattern[str], text: str, triggers: set[str]) -> str | None:
        if len(text) <= 4 * WINDOW:
            match = regex.search(text)
            return None if match is None else match.group(0)
        spans = []
        for trigger in triggers:
            pos = text.find(trigger)
            for _ in range(MAX_TRIGGER_HITS):
                if pos < 0:
                    break
                spans.append((max(0, pos - WINDOW), pos + len(trigger) + WINDOW))
                pos = text.find(trigger, pos + len(trigger) + WINDOW)
        for s, e in merge(sorted(spans)):
            match = regex.search(text[s:e])
            if match is not None:
                return match.group(0)
        return None


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in spans:
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


FOLDED = [fold(text) for _, _, text in PHRASES]
FILLER_TEXT = ("the weekly report is attached for review please confirm the meeting and share it "
               "with your team before friday our account payment details were updated important "
               "accountant change update bank keep quiet between you and me i am in a meeting and "
               "can't talk "
               "tan pin key asap as soon as possible right away")
FILLER = FILLER_TEXT.split()


def mixed_texts(seed: int, count: int) -> list[str]:
    """Filler around pieces of the test phrases; short ones and long ones (windows)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words = rng.choices(FILLER, k=rng.choice([5, 30, 150, 600]))
        for _ in range(rng.randint(0, 3)):
            phrase = rng.choice(FOLDED).split()
            start = rng.randrange(len(phrase))
            words[rng.randrange(len(words)):0] = phrase[start:start + rng.randint(1, 12)]
        out.append(" ".join(words))
    return out


def test_scan_agrees_with_the_plain_algorithm(rules: PhraseRules) -> None:
    plain = PlainRules(rules)
    hits = 0
    for text in FOLDED + mixed_texts(7, 150):
        assert rules.present(text) == plain.present(text), text
        found = {s: (h.rule.name, h.excerpt) for s, h in rules.scan(text).items()}
        assert found == {s: (name, _excerpt(m)) for s, (name, m) in plain.scan(text).items()}
        hits += len(found)
    assert hits > 100


def test_a_trigger_overlapping_the_end_of_another_is_not_seen(rules: PhraseRules) -> None:
    """As with the one regular expression: "accountant" is "account" then "ant"."""
    assert "tan" not in rules.present("accountant") and "account" in rules.present("accountant")
    assert "tan" in rules.present("important")
    assert rules.present("") == set()
