"""The phrase rule files: they load, their triggers hold, and windowed scanning finds matches."""

from __future__ import annotations

import pytest

from mailward.checks.content import PHRASE_SYMBOLS
from mailward.config import ConfigError
from mailward.lookalike import Folder
from mailward.phrases import LANGUAGES, WINDOW, PhraseRules, parse_rules
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
