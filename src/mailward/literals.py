"""Literal words a regular expression cannot match without: a cheap test that rules it out.

`requirement(regex)` reads the compiled pattern and returns alternatives of clauses: every match
contains, for at least one alternative, one string of each of its clauses. A text (or a window
of it) that satisfies no alternative cannot match, so the much slower regular expression need
not run there. The analysis only ever drops information (what it cannot read requires
nothing), so a requirement is true whatever the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# the engine's private modules, read deliberately (typeshed has no stubs for them)
from re import _compiler as sre_compile  # type: ignore[attr-defined]
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

Clause = frozenset[str]  # one of these strings occurs
Alternative = tuple[Clause, ...]  # all of these clauses hold
Requirement = tuple[Alternative, ...]  # at least one of these alternatives holds
MAX_STRINGS = 256  # a finite set of strings larger than this is not worth spelling out
MAX_ALTERNATIVES = 128
MIN_LENGTH = 3  # a clause with a shorter string holds in nearly every text: not kept
# Nor is a clause with one of these: function words and fragments of EN/DE/FR/ES text so common
# that looking for them costs more than it saves.
COMMON = frozenset(
    {
        *("and", "are", "aux", "bin", "bis", "das", "den", "des", "dia", "die", "fur", "get"),
        *("got", "has", "hat", "hoy", "ich", "ihr", "ist", "las", "les", "los", "mit", "nos"),
        *("one", "our", "que", "sie", "sin", "the", "ton", "two", "una", "und", "uns", "use"),
        *("via", "vos", "was", "wir", "you", "this", "with", "your", "have", "will", "been"),
        *("would", "should", "could", "dans", "pour", "vous", "nous", "sans", "sera", "etre"),
        *("esta", "sich", "noch", "dein", "ihre", "tout", "plus", "suis", "wird"),
        # fragments of many words
        *("ass", "est", "end", "day", "ser", "ont", "tes", "fin", "ete", "key", "pin", "tan"),
        *("cle", "rib", "log", "mot", "put", "set"),
    }
)
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
# parsed items: an opcode and its argument, whose shape depends on the opcode (untyped)
_Item = tuple[object, Any]
_Items = Iterable[_Item]
_NOT_AFTER_WORD = sre_parse.parse(r"(?<!\w.)")[0]  # after a character: none before it is \w
_Dnf = list[list[Clause]]


def requirement(regex: re.Pattern[str]) -> Requirement | None:
    """What every match of ``regex`` contains, or None when the analysis finds nothing useful
    (some way to match needs no string of `MIN_LENGTH` characters or more)."""
    parsed = _parse(regex)
    return None if parsed is None else _requirement(parsed)


def quick(regex: re.Pattern[str]) -> re.Pattern[str]:
    """``regex``, or an equivalent pattern the engine scans faster: one starting ``\\b`` then a
    word character is rewritten to start with that character (the engine then skips ahead to
    where it occurs) followed by the same test as a look-behind."""
    parsed = _parse(regex)
    if parsed is None:
        return regex
    return _compile(parsed, list(parsed), regex.flags) or regex


def alternatives(
    regex: re.Pattern[str],
) -> list[tuple[re.Pattern[str], Requirement | None]] | None:
    """For a pattern that is one alternation (``A | B | C``, perhaps between anchors and
    literals such as ``\\b``), a pattern and a requirement for each alternative; None for other
    shapes. The pattern's first match is the earliest first match of the alternatives (of the
    first of them where two start at the same place): the engine tries the alternatives in
    order at each place, and what surrounds them can match in one way only."""
    parsed = _parse(regex)
    if parsed is None or regex.groups:
        return None
    items = list(parsed)
    branches = [i for i, (op, _arg) in enumerate(items) if op is sre.BRANCH]
    if len(branches) != 1:
        return None
    at = branches[0]
    around = items[:at] + items[at + 1 :]
    if any(op not in (sre.AT, sre.LITERAL) for op, _arg in around):
        return None
    _, options = items[at][1]
    out = []
    for option in options:
        part = items[:at] + list(option) + items[at + 1 :]
        compiled = _compile(parsed, part, regex.flags)
        if compiled is None:
            return None
        out.append((compiled, _requirement(part)))
    return out


def _compile(
    parsed: sre_parse.SubPattern, items: list[_Item], flags: int
) -> re.Pattern[str] | None:
    """Compile parsed items (with the leading ``\\b`` moved behind the first character when
    that is possible); None if the engine refuses."""
    if not flags & (re.ASCII | re.LOCALE):
        items = _boundary_after_first(items, parsed.state) or items
    try:
        return sre_compile.compile(sre_parse.SubPattern(parsed.state, items), flags)
    except Exception:  # pragma: no cover - private engine API: then the plain pattern serves
        return None


def _boundary_after_first(items: list[_Item], state: object) -> list[_Item] | None:
    """``\\b X ...`` as ``X(?<!\\w.) ...`` when X always starts with one word character: the
    boundary before it then means "no word character before it", which the look-behind tests
    once that character is matched. Same matches, same order of trying; None if not that
    shape."""
    if len(items) < 2 or items[0] != (sre.AT, sre.AT_BOUNDARY):
        return None
    op, arg = items[1]
    if op is sre.LITERAL or op is sre.IN:
        if not _word_start(op, arg):
            return None
        return [items[1], _NOT_AFTER_WORD, *items[2:]]
    if op is sre.BRANCH:
        _, options = arg
        new = []
        for option in options:
            option = list(option)
            if not option or not _word_start(*option[0]):
                return None
            new.append(sre_parse.SubPattern(state, [option[0], _NOT_AFTER_WORD, *option[1:]]))
        return [(sre.BRANCH, (None, new)), *items[2:]]
    return None


def _word_start(op: object, arg: Any) -> bool:
    """Whether the item is one literal word character or a class of them only."""
    if op is sre.LITERAL:
        return _is_word(chr(arg))
    if op is sre.IN:
        for kind, value in arg:
            if kind is sre.LITERAL and _is_word(chr(value)):
                continue
            if kind is sre.RANGE and all(_is_word(chr(c)) for c in range(value[0], value[1] + 1)):
                continue
            return False
        return True
    return False


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"  # what \w and \b mean in a str pattern


def _parse(regex: re.Pattern[str]) -> sre_parse.SubPattern | None:
    if regex.flags & re.IGNORECASE or not isinstance(regex.pattern, str):
        return None
    try:
        return sre_parse.parse(regex.pattern, regex.flags)
    except (re.error, RecursionError):  # pragma: no cover - it compiled once already
        return None


def _requirement(parsed: _Items) -> Requirement | None:
    out = []
    for alternative in _dnf(parsed):
        kept = tuple(dict.fromkeys(c for c in alternative if _telling(c)))
        if not kept:
            return None
        out.append(kept)
    return tuple(dict.fromkeys(out))


def holds_in(req: Requirement, text: str) -> bool:
    """Whether some alternative has a string of each clause occurring in ``text``."""
    for alternative in req:
        for clause in alternative:
            for string in clause:
                if string in text:
                    break
            else:
                break  # no string of this clause: the alternative fails
        else:
            return True
    return False


class RequirementSet:
    """The requirements of several patterns, checked together against the strings found in
    one text (by one multi-string search for `strings`)."""

    def __init__(self, requirements: Sequence[Requirement | None]) -> None:
        ids: dict[Clause, int] = {}
        self._alternatives: list[tuple[frozenset[int], ...] | None] = []
        for req in requirements:
            if req is None:
                self._alternatives.append(None)
                continue
            self._alternatives.append(
                tuple(frozenset(ids.setdefault(c, len(ids)) for c in alt) for alt in req)
            )
        self._clauses = list(ids)
        self.strings = sorted({w for clause in self._clauses for w in clause})
        holders: dict[str, set[int]] = {w: set() for w in self.strings}
        for number, clause in enumerate(self._clauses):
            for w in clause:
                holders[w].add(number)
        self._holders = {w: frozenset(h) for w, h in holders.items()}

    def check(self, found: set[str]) -> Found:
        """What the strings found (some of `strings`) satisfy."""
        holders = self._holders
        return Found(found, set().union(*(holders[w] for w in found)))

    def clause_sets(self, number: int) -> tuple[frozenset[int], ...] | None:
        """Requirement ``number``'s alternatives, each as the numbers of its clauses, to test
        against `Found.clauses` (None: it requires nothing)."""
        return self._alternatives[number]

    def holds(self, number: int, found: Found) -> bool:
        """Whether requirement ``number`` holds with what was found (or requires nothing)."""
        alternatives = self._alternatives[number]
        if alternatives is None:
            return True
        return any(map(found.clauses.issuperset, alternatives))

    def narrowed(self, number: int, found: Found) -> Requirement | None:
        """Requirement ``number`` cut down to its alternatives that hold in the text and the
        strings found there; () when none holds, None when it requires nothing."""
        alternatives = self._alternatives[number]
        if alternatives is None:
            return None
        clauses, present, held = self._clauses, found.strings, found.clauses
        return tuple(
            tuple(clauses[c] & present for c in alt) for alt in alternatives if alt <= held
        )


@dataclass(frozen=True, slots=True)
class Found:
    """The strings of a `RequirementSet` found in one text, and the clauses they satisfy."""

    strings: set[str]
    clauses: set[int]


# ---------------------------------------------------------------------------------------------


def _telling(clause: Clause) -> bool:
    return min(map(len, clause)) >= MIN_LENGTH and clause.isdisjoint(COMMON)


def _dnf(items: _Items) -> _Dnf:
    """Alternatives of clauses for a sequence of parsed items: each run of items that matches
    one of a finite set of strings gives that set as a clause; a group's alternatives multiply
    the sequence's."""
    out: _Dnf = [[]]
    strings: set[str] | None = {""}
    for op, arg in items:
        language = _language(op, arg)
        if language is not None:
            strings = _product(strings, language)
            if strings is None:  # too many: what came before stays unused, start from here
                strings = language
            continue
        out = _add(out, strings)
        strings = {""}
        out = _times(out, _item_dnf(op, arg))
    return _add(out, strings)


def _item_dnf(op: object, arg: Any) -> _Dnf:
    if op is sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = arg
        return [[]] if add_flags & sre.SRE_FLAG_IGNORECASE else _dnf(sub)
    if op is sre.ATOMIC_GROUP:
        return _dnf(arg)
    if op in _REPEATS:
        low, _high, sub = arg
        return _dnf(sub) if low >= 1 else [[]]
    if op is sre.BRANCH:
        _, alternatives = arg
        out = [alt for sub in alternatives for alt in _dnf(sub)]
        return out if len(out) <= MAX_ALTERNATIVES else _collapse(out)
    return [[]]  # classes, any, group references: nothing required


def _add(dnf: _Dnf, strings: set[str] | None) -> _Dnf:
    if not strings or "" in strings:
        return dnf
    clause = frozenset(strings)
    return [[*alt, clause] for alt in dnf]


def _times(left: _Dnf, right: _Dnf) -> _Dnf:
    if len(left) * len(right) > MAX_ALTERNATIVES:
        if len(left) >= len(right):
            left = _collapse(left)
        if len(left) * len(right) > MAX_ALTERNATIVES:
            right = _collapse(right)
    return [a + b for a in left for b in right]


def _collapse(dnf: _Dnf) -> _Dnf:
    """One alternative implied by all of ``dnf``: the union of each one's best clause."""
    best = []
    for alt in dnf:
        clause = _best(alt)
        if clause is None:
            return [[]]
        best.append(clause)
    return [[frozenset().union(*best)]]


def _best(clauses: list[Clause]) -> Clause | None:
    """The most telling clause: one without common words, with the longest shortest string,
    then with the fewest strings."""
    if not clauses:
        return None
    return max(clauses, key=lambda c: (_telling(c), min(map(len, c)), -len(c)))


def _product(left: set[str] | None, right: set[str]) -> set[str] | None:
    if left is None or len(left) * len(right) > MAX_STRINGS:
        return None
    return {a + b for a in left for b in right}


def _language(op: object, arg: Any) -> set[str] | None:
    """The finite set of strings one parsed item matches, or None (infinite, too many, or not
    plain literals)."""
    if op is sre.LITERAL:
        return {chr(arg)}
    if op in _ZERO_WIDTH:
        return {""}  # consumes nothing: the items around it stay adjacent
    if op is sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = arg
        if add_flags & sre.SRE_FLAG_IGNORECASE:
            return None
        return _sequence_language(sub)
    if op is sre.BRANCH:
        _, alternatives = arg
        union: set[str] = set()
        for alt in alternatives:
            language = _sequence_language(alt)
            if language is None:
                return None
            union |= language
        return union if len(union) <= MAX_STRINGS else None
    if op in _REPEATS:
        low, high, sub = arg
        one = _sequence_language(sub)
        if one is None or high > 3:
            return None
        out: set[str] = set()
        current: set[str] | None = {""}
        for count in range(high + 1):
            if current is None:
                return None
            if count >= low:
                out |= current
            current = _product(current, one)
        return out if len(out) <= MAX_STRINGS else None
    if op is sre.IN:
        chars: set[str] = set()
        for kind, value in arg:
            if kind is sre.LITERAL:
                chars.add(chr(value))
            elif kind is sre.RANGE and value[1] - value[0] < 16:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:
                return None  # negation, categories, big ranges
        return chars
    return None


def _sequence_language(items: _Items) -> set[str] | None:
    strings: set[str] | None = {""}
    for op, arg in items:
        language = _language(op, arg)
        if language is None:
            return None
        strings = _product(strings, language)
        if strings is None:
            return None
    return strings
