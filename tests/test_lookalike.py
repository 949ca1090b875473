"""Folding, protected-name matching and lookalike-domain classification."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from mailward.lookalike import (
    _COMMON,
    BoundedCache,
    DomainMatcher,
    Folder,
    NameMatcher,
    ProtectedName,
    ascii_skeleton,
    edit_distance,
    strip_marks,
    to_ascii,
    to_unicode,
)


@pytest.fixture(scope="module")
def folder() -> Folder:
    return Folder()


@pytest.fixture(scope="module")
def domains(folder: Folder) -> DomainMatcher:
    return DomainMatcher(["ourcorp.example", "PayBank.test.", "x.test"], folder, PublicSuffixList())


def test_fold(folder: Folder) -> None:
    assert folder.fold("Ｊâne ＳＭＩＴＨ") == "jane smith"
    assert folder.fold("раypаl") == "paypal"  # Cyrillic р and а
    assert folder.fold("pass\u200bword „x“") == 'password "x"'
    assert folder.fold("Straße") == "strasse"
    assert folder.fold("plain ASCII") == "plain ascii"
    assert folder.has_confusables("оurcorp") and not folder.has_confusables("öurcorp")


def test_edit_distance() -> None:
    assert edit_distance("paybank", "paybank") == 0
    assert edit_distance("paybank", "paybnak") == 1  # adjacent swap
    assert edit_distance("paybank", "paybanks") == 1
    assert edit_distance("paybank", "pyabnak") == 2
    assert edit_distance("paybank", "mybank", limit=1) == 2
    assert edit_distance("a", "abcdef", limit=2) == 3


def test_skeleton_and_idna() -> None:
    assert ascii_skeleton("0urc0rp") == "ourcorp" and ascii_skeleton("rnicrosoft") == "mlcrosoft"
    assert to_ascii("оurcorp.example") == "xn--urcorp-vqf.example"
    assert to_unicode("xn--urcorp-vqf.example") == "оurcorp.example"
    assert to_unicode("xn--broken-.example") == "xn--broken-.example"


def test_bounded_cache() -> None:
    cache: BoundedCache[int, int] = BoundedCache(2)
    for i in range(5):
        cache.put(i, i)
        assert len(cache) <= 2
    assert cache[4] == 4


NAMES = [ProtectedName("System Administrator"), ProtectedName("IT Support"),
         ProtectedName("Jane Smith", frozenset({"jane@home.test"})), ProtectedName("CEO"),
         ProtectedName("jane  SMITH")]


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        ("Jane Smith", "Jane Smith"), ("J. Smith", "Jane Smith"), ("Smith, J.", "Jane Smith"),
        ("Jane Smith (CEO)", "Jane Smith"), ("Jäne Smíth", "Jane Smith"),
        ("IT-Support Team", "IT Support"), ("itsupport", "IT Support"),
        ("sysadmin", "System Administrator"), ("System Administrators", "System Administrator"),
        ("The CEO", "CEO"),
        ("J S", None), ("Jane", None), ("Smith", None), ("Janet Smith", None), ("", None),
        ("Support", None), ("CEOs office", None),
    ],
)
def test_name_matcher(folder: Folder, shown: str, expected: str | None) -> None:
    matcher = NameMatcher(NAMES, folder)
    found = matcher.match(shown)
    assert (found.name if found else None) == expected
    assert matcher.match(shown) is found  # cached


def test_duplicate_names_merge_their_addresses(folder: Folder) -> None:
    matcher = NameMatcher([*NAMES, ProtectedName("Jane Smith", frozenset({"js@x.test"}))], folder)
    found = matcher.match("Jane Smith")
    assert found is not None and found.addresses == {"jane@home.test", "js@x.test"}
    assert len(matcher) == 4


@pytest.mark.parametrize(
    ("domain", "target", "homoglyph"),
    [
        ("0urcorp.example", "ourcorp.example", False),
        ("ourcorp-example.com", "ourcorp.example", False),
        ("ourcorp-support.example", "ourcorp.example", False),
        ("secure-ourcorp.example", "ourcorp.example", False),
        ("ourcorpsupport.example", "ourcorp.example", False),
        ("ourcorp.example.login-check.test", "ourcorp.example", False),
        ("ourcorp.co.uk", "ourcorp.example", False),
        ("our-corp.example", "ourcorp.example", False),
        ("ourcrop.example", "ourcorp.example", False),
        ("оurcorp.example", "ourcorp.example", True),
        ("xn--ourcrp-zxa.example", "ourcorp.example", True),  # ourcörp
        ("paybanc.test", "paybank.test", False),
        ("paybank.com", "paybank.test", False),
    ],
)
def test_lookalikes(domains: DomainMatcher, domain: str, target: str, homoglyph: bool) -> None:
    found = domains.lookalike(domain)
    assert found is not None and found.target == target and found.homoglyph is homoglyph
    assert target in found.describe()


@pytest.mark.parametrize(
    "domain",
    ["ourcorp.example", "mail.ourcorp.example", "paybank.test", "gmail.com", "example.com",
     "ourcorp.slack.com", "x.com", "corp.example", "", "localhost", "a" * 300 + ".com"],
)
def test_not_lookalikes(domains: DomainMatcher, domain: str) -> None:
    assert domains.lookalike(domain) is None


def test_owner_and_org(domains: DomainMatcher) -> None:
    assert domains.owner("MAIL.ourcorp.example") == "ourcorp.example"
    assert domains.owner("notourcorp.example") is None
    assert domains.org("a.b.paybank.co.uk") == "paybank.co.uk"


# --- folding fast paths agree with folding each run of non-ASCII characters on its own ----------

_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_ALPHABET = (
    [chr(c) for c in range(0x20, 0x7F)] + [chr(c) for c in range(0x80, 0x100)] + list(_COMMON)
    + list("\u0301\u0308\u0483\u05b4аοΣςİßẞﬁＪ𝐀中\u2028\u3000ᏸᏰ\ufffdµ¼\u2011ǅŉ\t\n\r\x0b\x1c")
)


def reference_fold(folder: Folder, text: str) -> str:
    """The definition: each run of non-ASCII characters decomposed, marks dropped, mapped and
    case-folded on its own; then everything lower case."""
    def run(match: re.Match[str]) -> str:
        return strip_marks(match.group(0)).translate(folder.table).casefold()

    return _NON_ASCII_RUN.sub(run, text).lower()


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_fold_fast_paths(folder: Folder, data: st.DataObject) -> None:
    pool = data.draw(st.lists(st.sampled_from(_ALPHABET), min_size=1, max_size=12))
    text = data.draw(st.text(alphabet=st.sampled_from(pool), max_size=40))
    assert folder.fold(text) == reference_fold(folder, text)
    assert folder.fold_words(text) == " ".join(reference_fold(folder, text).split())


def test_fold_every_pair_of_byte_coded_characters(folder: Folder) -> None:
    """The byte path folds character by character: right for every neighbour it can have."""
    chars = [chr(c) for c in range(0x80, 0x100)] + list(_COMMON) + ["a", " ", "\u0301"]
    for a in chars:
        for b in chars:
            text = f"x{a}{b}Y"
            assert folder.fold(text) == reference_fold(folder, text), (a, b)


def test_fold_words() -> None:
    folder = Folder(cache_size=2)
    text = "  Ｊâne\r\n\r\n SMITH\t«Straße»\u2028end "
    assert folder.fold_words(text) == "jane smith «strasse» end"
    assert folder.fold_words("\x1c a \x85 b \u2003 c") == "a b c"
    other = "Кириллица  и  ελληνικά"  # no byte path: folded run by run
    assert folder.fold_words(other) == " ".join(reference_fold(folder, other).split())
    for text in ("é", "ü", "ß", "\u00e9\u0301", "é"):  # more distinct runs than the cache holds
        assert folder.fold(text) == reference_fold(folder, text)
