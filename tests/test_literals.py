"""What a regular expression cannot match without, its alternatives, and its quick form."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.checks.content import PHRASE_SYMBOLS
from mailward.literals import (
    RequirementSet,
    alternatives,
    holds_in,
    quick,
    requirement,
)
from mailward.lookalike import Folder
from mailward.phrases import LANGUAGES, PhraseRules
from tests.checks.test_content import PHRASES

RULES = PhraseRules.load(LANGUAGES, PHRASE_SYMBOLS).rules
FOLDED = [" ".join(Folder().fold(text).split()) for _, _, text in PHRASES]
WORDS = sorted({w for text in FOLDED for w in text.split()} | {"_x", "é", "x1", "a"})


def texts(seed: int, count: int) -> list[str]:
    """Texts made of the test phrases' words, shuffled and cut: near misses and matches."""
    rng = random.Random(seed)
    out = list(FOLDED)
    for _ in range(count):
        words = rng.choices(WORDS, k=rng.randint(1, 40))
        if rng.random() < 0.5:
            phrase = rng.choice(FOLDED).split()
            start = rng.randrange(len(phrase))
            words[rng.randrange(len(words)):0] = phrase[start:start + rng.randint(2, 12)]
        out.append(rng.choice(["", " ", "-", "'"]).join(words))
    return out


TEXTS = texts(1, 600)


def test_every_match_holds_the_requirement() -> None:
    """Soundness: whatever a rule matches contains the words its requirement names."""
    checked = 0
    for rule in RULES:
        req = requirement(rule.regex)
        for text in TEXTS:
            match = rule.regex.search(text)
            if match is not None and req is not None:
                assert holds_in(req, match.group(0)), (rule.name, match.group(0))
                checked += 1
    assert checked > 100


def test_first_match_is_the_earliest_of_the_alternatives() -> None:
    split_rules = 0
    for rule in RULES:
        parts = alternatives(rule.regex)
        if parts is None:
            continue
        split_rules += 1
        for text in TEXTS:
            matches = [m for m in (p.search(text) for p, _ in parts) if m is not None]
            expected = rule.regex.search(text)
            if expected is None:
                assert not matches, rule.name
            else:
                first = min(matches, key=lambda m: m.start())  # min keeps the first on a tie
                assert first.group(0) == expected.group(0), rule.name
            for (part, need), match in ((p, p[0].search(text)) for p in parts):
                if match is not None and need is not None:
                    assert holds_in(need, match.group(0)), (rule.name, part.pattern)
    assert split_rules >= 10


def test_quick_patterns_match_the_same() -> None:
    for rule in RULES:
        fast = quick(rule.regex)
        for text in TEXTS:
            a, b = rule.regex.search(text), fast.search(text)
            assert (a and a.span()) == (b and b.span()), rule.name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab_ é1-\n", max_size=12),
       st.sampled_from([r"\bab", r"\b(?:ab|ba|b)a?", r"\b[ab]b", r"\b[a-c1]+\b", r"\bé",
                        r"\b(?:a|_)b"]))
def test_boundary_moved_behind_the_first_character(text: str, pattern: str) -> None:
    regex = re.compile(pattern)
    fast = quick(regex)
    assert fast.pattern != regex.pattern or fast is regex
    assert [m.span() for m in regex.finditer(text)] == [m.span() for m in fast.finditer(text)]
    for pos in range(len(text) + 1):
        a, b = regex.match(text, pos), fast.match(text, pos)
        assert (a and a.span()) == (b and b.span())


def test_requirement_shapes() -> None:
    # a run of literals is one clause; alternatives multiply; common words are left out
    assert requirement(re.compile(r"\bnew \s+ iban\b", re.VERBOSE)) == (
        (frozenset({"new"}), frozenset({"iban"})),)
    assert requirement(re.compile(r"pass(?:word|code)\s(?:the\s)?(?:file|list)")) == (
        (frozenset({"password", "passcode"}), frozenset({"file", "list"})),)
    assert requirement(re.compile(r"(?:gift\s?cards?|iban)")) == (
        (frozenset({"gift"}), frozenset({"card", "cards"})), (frozenset({"iban"}),))
    assert requirement(re.compile(r"the\s+(?:cat|dog)")) == ((frozenset({"cat", "dog"}),),)
    # nothing to go by: an optional part, a class, case-insensitive matching, short strings
    assert requirement(re.compile(r"(?:secret)?\w+")) is None
    assert requirement(re.compile(r"secret", re.IGNORECASE)) is None
    assert requirement(re.compile(r"ab|secret")) is None


def test_requirement_set() -> None:
    reqs = [
        requirement(re.compile(r"new\s+iban|gift\s+card")),
        None,
        requirement(re.compile(r"password")),
    ]
    needs = RequirementSet(reqs)
    assert needs.strings == ["card", "gift", "iban", "new", "password"]
    found = needs.check({"new", "iban", "card"})
    assert needs.holds(0, found) and needs.holds(1, found) and not needs.holds(2, found)
    assert needs.narrowed(0, found) == ((frozenset({"new"}), frozenset({"iban"})),)
    assert needs.narrowed(1, found) is None and needs.narrowed(2, found) == ()


@pytest.mark.parametrize("pattern", [r"(a)|b", r"x(?:a|b)*", r"\b(?:ab|cd)+"])
def test_no_alternatives_for_other_shapes(pattern: str) -> None:
    assert alternatives(re.compile(pattern)) is None
