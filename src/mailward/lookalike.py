"""Lookalikes: text folded to an ASCII skeleton, protected-name and lookalike-domain matching.

Everything here is built once by its owner (a check instance) and caches what it computed in
bounded dictionaries; nothing happens at import time.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

_K = TypeVar("_K")
_V = TypeVar("_V")

_MARKS = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_TOKEN = re.compile(r"[a-z0-9]+")
_NON_ASCII = re.compile(r"([^\x00-\x7f]+)")
# ASCII characters and pairs that read alike in a domain name (l/1/I, o/0, rn/m, vv/w, cl/d).
_ASCII_SKELETON = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "3": "e"})
_ASCII_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
# Characters that hide inside words ("pass\u200bword") and typographic quotes.
_INVISIBLE: dict[int, str | None] = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_QUOTES: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4`"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033"), '"'),
}
# Characters beyond Latin-1 common in mail text, given byte codes of their own for fast folding.
_COMMON = (
    "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2013\u2014\u2010\u2011\u2026\u2022"
    "\u20ac\u2122\u2039\u203a\u2032\u2033\u200b\u200c\u200d\u2060\ufeff\u2020\u2021\u2030"
    "\u0152\u0153\u0160\u0161"
)
# Abbreviations and compounds of role words, expanded before protected names are compared.
_ROLE_WORDS = {
    "sysadmin": ("system", "administrator"),
    "sysadm": ("system", "administrator"),
    "sys": ("system",),
    "admin": ("administrator",),
    "adm": ("administrator",),
    "helpdesk": ("help", "desk"),
    "servicedesk": ("service", "desk"),
    "itsupport": ("it", "support"),
}


def strip_marks(text: str) -> str:
    """Compatibility-decompose and drop combining marks: 'Ｊâne' -> 'Jane'."""
    if text.isascii():
        return text
    return _MARKS.sub("", unicodedata.normalize("NFKD", text))


class Folder:
    """Folds text to lower-case ASCII where it can: compatibility forms, accents, and the
    Unicode confusables (Cyrillic 'а', Greek 'ο', mathematical letters) mapped to the ASCII
    letter they imitate."""

    def __init__(self, cache_size: int = 4096) -> None:
        from confusable_homoglyphs import confusables  # loads its data table here, not at import

        table: dict[int, str] = {}
        for char, glyphs in confusables.confusables_data.items():
            if len(char) != 1 or char.isascii():
                continue
            for glyph in glyphs:
                target = strip_marks(glyph["c"].strip("\u200e\u200f"))
                if target.isascii() and target.isalnum() and len(target) <= 2:
                    table[ord(char)] = target.lower()
                    break
        self._latin_like = frozenset(table)
        self.table: dict[int, str | None] = {**table, **_INVISIBLE, **_QUOTES}
        self._runs: BoundedCache[str, str] = BoundedCache(cache_size)  # non-ASCII run -> folded
        # Fast paths for text whose non-ASCII characters are all Latin-1, or Latin-1 letters
        # and `_COMMON`: one byte per character, and one table translates every byte.
        latin1 = [chr(b) for b in range(128, 256)]
        self._pages = (
            self._code_page(latin1, _Latin1()),
            self._code_page([chr(b) for b in range(160, 256)] + list(_COMMON), _Charmap(
                "".join(chr(b) for b in range(128)) + "".join(latin1[32:]) + _COMMON
            )),
        )

    def _code_page(self, chars: list[str], codec: _Codec) -> _CodePage:
        """How each character of a one-byte code page (byte 128, 129, ... for ``chars``) folds,
        as translation tables; characters that do not fold on their own (their marks could
        be reordered with a neighbour's) or not to ASCII or themselves are left out."""
        table = bytearray(range(256))
        table[ord("A") : ord("Z") + 1] = bytes(range(ord("a"), ord("z") + 1))
        becomes = {code: chr(code) for code in range(128)}  # one character each
        delete, longer, unsure = bytearray(), [], []
        for code, char in enumerate(chars, 128):
            decomposed = unicodedata.normalize("NFKD", char)
            folded = self._fold_run(char).lower()
            if unicodedata.combining(char) or (
                decomposed and unicodedata.combining(decomposed[0])
            ):
                unsure.append(bytes((code,)))
            elif folded == "":
                delete.append(code)
            elif folded.isascii() and len(folded) == 1:
                table[code] = ord(folded)
                becomes[code] = folded
            elif folded.isascii() and not any(c.isspace() for c in folded):
                longer.append((bytes((code,)), folded.encode("ascii")))
            elif folded == char and char.lower() == char:
                becomes[code] = char  # folds to itself
            else:
                unsure.append(bytes((code,)))
        words = bytearray(table)
        for code, char in becomes.items():
            if char.isspace():  # whitespace as str.split() knows it
                words[code] = 32
        return _CodePage(codec, bytes(table), bytes(words), bytes(delete), tuple(longer),
                         tuple(unsure))

    def _fold_run(self, run: str) -> str:
        return strip_marks(run).translate(self.table).casefold()

    def fold(self, text: str) -> str:
        """Lower-case ASCII skeleton of ``text`` as far as it maps (other scripts stay)."""
        if text.isascii():
            return text.lower()
        for page in self._pages:
            data = page.fold(text, words=False)
            if data is not None:
                return data.decode("ascii") if data.isascii() else page.codec.decode(data)
        return self._fold_runs(text)

    def fold_words(self, text: str) -> str:
        """``" ".join(self.fold(text).split())``: the folded text with every run of whitespace
        made one space, without a string for every word."""
        for page in self._pages:
            data = page.fold(text, words=True)
            if data is not None:
                pieces = data.split(b"  ")  # whitespace is all spaces now: one for each run
                data = b" ".join(filter(None, map(bytes.strip, pieces)))
                return data.decode("ascii") if data.isascii() else page.codec.decode(data)
        return " ".join(self._fold_runs(text).split())

    def _fold_runs(self, text: str) -> str:
        """Every run of non-ASCII characters folded on its own, each distinct run once."""
        pieces = _NON_ASCII.split(text)
        runs = self._runs
        folded_runs = []
        for run in pieces[1::2]:
            value = runs.get(run)
            if value is None:
                value = self._fold_run(run)
                runs.put(run, value)
            folded_runs.append(value)
        pieces[1::2] = folded_runs
        return "".join(pieces).lower()

    def has_confusables(self, text: str) -> bool:
        """Whether ``text`` contains a non-ASCII character that imitates an ASCII one."""
        return not text.isascii() and any(ord(c) in self._latin_like for c in strip_marks(text))


class _Codec:
    """A one-byte encoding: ASCII plus 128 more characters."""

    def encode(self, text: str) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> str:
        raise NotImplementedError


class _Latin1(_Codec):
    def encode(self, text: str) -> bytes:
        return text.encode("latin-1")

    def decode(self, data: bytes) -> str:
        return data.decode("latin-1")


class _Charmap(_Codec):
    def __init__(self, chars: str) -> None:
        self._chars = chars
        self._map = codecs.charmap_build(chars)

    def encode(self, text: str) -> bytes:
        return codecs.charmap_encode(text, "strict", self._map)[0]

    def decode(self, data: bytes) -> str:
        return codecs.charmap_decode(data, "strict", self._chars)[0]


@dataclass(frozen=True, slots=True)
class _CodePage:
    """Folding by bytes for text in one code page: ``table`` lower-cases ASCII and folds the
    characters whose folded form is one character, ``words`` also makes whitespace a space;
    ``delete``: characters that fold to nothing; ``longer``: (byte, folded form) for those
    that fold to several; ``unsure``: those this cannot fold (the text takes the slow path)."""

    codec: _Codec
    table: bytes
    words: bytes
    delete: bytes
    longer: tuple[tuple[bytes, bytes], ...]
    unsure: tuple[bytes, ...]

    def fold(self, text: str, words: bool) -> bytes | None:
        try:
            data = self.codec.encode(text)
        except UnicodeEncodeError:
            return None
        for byte in self.unsure:
            if byte in data:
                return None
        data = data.translate(self.words if words else self.table, self.delete)
        for byte, folded in self.longer:
            if byte in data:
                data = data.replace(byte, folded)
        return data


def ascii_skeleton(text: str) -> str:
    """Collapse ASCII characters that look alike in a name (0/o, 1/l/i, rn/m ...)."""
    text = text.translate(_ASCII_SKELETON)
    for pair, single in _ASCII_PAIRS:
        text = text.replace(pair, single)
    return text


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1); ``limit + 1`` once above limit."""
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


class BoundedCache(dict[_K, _V]):
    """A dict that forgets everything once it holds ``size`` entries (cheap and bounded)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: _K, value: _V) -> None:
        if len(self) >= self.size:
            self.clear()
        self[key] = value


# ---------------------------------------------------------------------------------------------
# Protected names (people and roles) in display names


@dataclass(frozen=True, slots=True)
class ProtectedName:
    """A person or role users trust, with the addresses it really uses (may be empty)."""

    name: str
    addresses: frozenset[str] = frozenset()


class NameMatcher:
    """Finds which protected name a display name imitates: case, spacing, punctuation,
    accents and homoglyphs folded; initials ("J. Smith"), reversed order ("Smith, Jane"),
    compounds and abbreviations ("IT-Support Team", "HelpDesk", "Sys Admin")."""

    def __init__(self, names: Iterable[ProtectedName], folder: Folder, cache_size: int = 4096):
        self.folder = folder
        self._compounds: dict[str, tuple[str, ...]] = dict(_ROLE_WORDS)
        self._names: list[tuple[tuple[str, ...], ProtectedName]] = []
        self._by_token: dict[str, list[int]] = {}
        merged: dict[tuple[str, ...], ProtectedName] = {}
        for pn in names:
            tokens = self._tokens(pn.name)
            if not tokens:
                continue
            old = merged.get(tokens)
            merged[tokens] = (
                ProtectedName(old.name, old.addresses | pn.addresses) if old is not None else pn
            )
        for tokens, pn in merged.items():
            index = len(self._names)
            self._names.append((tokens, pn))
            for token in set(tokens):
                if len(token) > 1:
                    self._by_token.setdefault(token, []).append(index)
            if len(tokens) > 1 and len("".join(tokens)) >= 6:
                self._compounds.setdefault("".join(tokens), tokens)
        self._cache: BoundedCache[str, ProtectedName | None] = BoundedCache(cache_size)

    def __len__(self) -> int:
        return len(self._names)

    def _tokens(self, text: str) -> tuple[str, ...]:
        out: list[str] = []
        for token in _TOKEN.findall(self.folder.fold(text)):
            out.extend(self._expand(token))
        return tuple(out)

    def _expand(self, token: str) -> tuple[str, ...]:
        return self._compounds.get(token, (token,))

    def match(self, display_name: str) -> ProtectedName | None:
        """The protected name ``display_name`` matches, or None."""
        if not display_name or not self._names:
            return None
        try:
            return self._cache[display_name]
        except KeyError:
            pass
        tokens = self._tokens(display_name)
        found = None
        keys = {t for t in tokens if len(t) > 1} | {t[:-1] for t in tokens if t.endswith("s")}
        candidates = sorted({i for t in keys for i in self._by_token.get(t, ())})
        for index in candidates:
            wanted, pn = self._names[index]
            if _contains(tokens, wanted) or (
                len(wanted) == 2 and _contains(tokens, (wanted[1], wanted[0]))
            ):
                found = pn
                break
        self._cache.put(display_name, found)
        return found


def _token_equal(seen: str, wanted: str) -> bool:
    """Same word, a plural of it ("administrators"), or its initial ("J" for "Jane")."""
    if seen == wanted or (len(seen) == 1 and len(wanted) > 1 and wanted[0] == seen):
        return True
    return len(wanted) > 3 and seen == wanted + "s"


def _contains(tokens: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """Whether ``wanted`` occurs as consecutive tokens; an initial may stand for a word, but
    at least one full word of two or more letters must match."""
    k = len(wanted)
    for start in range(len(tokens) - k + 1):
        window = tokens[start : start + k]
        if k == 1:
            if window[0] == wanted[0] or (len(wanted[0]) > 3 and window[0] == wanted[0] + "s"):
                return True
            continue
        if all(_token_equal(s, w) for s, w in zip(window, wanted, strict=True)) and any(
            len(s) > 1 for s in window
        ):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Lookalike domains


@dataclass(frozen=True, slots=True)
class Lookalike:
    """A domain that imitates a protected one, and how."""

    domain: str  # as seen, ASCII (punycode) form
    shown: str  # as a reader sees it (IDN decoded)
    target: str  # the protected domain it imitates
    kind: str  # plain words: "look-alike characters", "one letter changed", ...
    homoglyph: bool  # uses non-ASCII characters that imitate ASCII ones (IDN, mixed scripts)

    def describe(self) -> str:
        shown = self.shown if self.shown == self.domain else f"{self.shown} ({self.domain})"
        return f"{shown} imitates {self.target} ({self.kind})"


@dataclass(frozen=True, slots=True)
class _Protected:
    domain: str
    org: str
    label: str  # the registrable label: "ourcorp" for ourcorp.example
    suffix: str
    skeleton: str


def to_unicode(domain: str) -> str:
    """IDN-decode the punycode labels of ``domain`` (labels that do not decode stay)."""
    if "xn--" not in domain:
        return domain
    return ".".join(_idna(label, decode=True) for label in domain.split("."))


def to_ascii(domain: str) -> str:
    """The ASCII (punycode) form of ``domain``; unencodable labels stay as they are."""
    domain = domain.strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    return ".".join(_idna(label, decode=False) for label in domain.split("."))


def _idna(label: str, decode: bool) -> str:
    """One label to Unicode (``decode``) or to punycode; a label that does not convert stays."""
    try:
        if decode:
            return label.encode("ascii").decode("idna") if label.startswith("xn--") else label
        return label if label.isascii() else label.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return label


class DomainMatcher:
    """Decides whether a domain is one of the protected ones (or under one) or imitates one:
    homoglyphs and mixed scripts, ASCII look-alike characters, edit distance, added words,
    hyphenation, the real domain as a subdomain of another, and TLD swaps."""

    MIN_LABEL = 4  # shorter registrable labels are too common to call anything a lookalike

    def __init__(
        self,
        protected: Iterable[str],
        folder: Folder,
        psl: PublicSuffixList,
        cache_size: int = 8192,
    ) -> None:
        self.folder = folder
        self._psl = psl
        self._org_cache: BoundedCache[str, str] = BoundedCache(cache_size)
        self._cache: BoundedCache[str, Lookalike | None] = BoundedCache(cache_size)
        self.protected: list[_Protected] = []
        seen: set[str] = set()
        for raw in protected:
            domain = to_ascii(raw)
            if not domain or domain in seen:
                continue
            seen.add(domain)
            org = self.org(domain)
            suffix = self._suffix(domain)
            label = org[: -len(suffix) - 1] if suffix and org != suffix else org.split(".")[0]
            self.protected.append(
                _Protected(domain, org, label, suffix, ascii_skeleton(label.replace("-", "")))
            )

    def _suffix(self, domain: str) -> str:
        suffix = self._psl.publicsuffix(domain)
        return suffix or ""

    def org(self, domain: str) -> str:
        """The organizational (registrable) domain by the public suffix list."""
        try:
            return self._org_cache[domain]
        except KeyError:
            pass
        org = self._psl.privatesuffix(domain) or domain
        self._org_cache.put(domain, org)
        return org

    def owner(self, domain: str) -> str | None:
        """The protected domain that ``domain`` is (or is a subdomain of), else None."""
        domain = to_ascii(domain)
        for p in self.protected:
            if domain == p.domain or domain.endswith("." + p.domain):
                return p.domain
        return None

    def lookalike(self, domain: str) -> Lookalike | None:
        """How ``domain`` imitates a protected domain, or None (also for the real ones)."""
        if not self.protected or not domain:
            return None
        try:
            return self._cache[domain]
        except KeyError:
            pass
        result = self._classify(domain)
        self._cache.put(domain, result)
        return result

    def _classify(self, raw: str) -> Lookalike | None:
        domain = to_ascii(raw)
        if "." not in domain or len(domain) > 253:
            return None
        org = self.org(domain)
        if any(org == p.org for p in self.protected):
            return None
        shown = to_unicode(domain)
        suffix = self._suffix(domain)
        label = org[: -len(suffix) - 1] if suffix and org != suffix else org.split(".")[0]
        shown_label = to_unicode(label)
        idn = not shown_label.isascii()
        folded = self.folder.fold(shown_label)
        skeleton = ascii_skeleton(folded.replace("-", ""))
        words = folded.split("-")

        def found(target: _Protected, kind: str) -> Lookalike:
            return Lookalike(domain, shown, target.domain, kind, idn)

        for p in self.protected:
            if len(p.label) < self.MIN_LABEL:
                continue
            if idn and skeleton == p.skeleton:
                if self.folder.has_confusables(shown_label):
                    return found(p, "letters from another alphabet that look like the real ones")
                return found(p, "accented letters that look like the real ones")
            if folded == p.label and suffix != p.suffix:
                return found(p, f"the same name under another ending (.{suffix})")
            if skeleton == p.skeleton:
                if folded.replace("-", "") == p.label:
                    return found(p, "the real name with hyphens added")
                return found(p, "characters swapped for look-alike ones (such as 0 for o)")
            if folded in (p.domain.replace(".", "-"), p.domain.replace(".", "")):
                return found(p, "the real domain written into a different name")
            if ("." + p.domain + ".") in ("." + domain + "."):
                return found(p, "the real domain put in front of an unrelated domain")
            if len(p.label) >= 5 and (
                p.label in words
                or (len(words) == 1 and (folded.startswith(p.label) or folded.endswith(p.label)))
            ):
                return found(p, "the real name with words added")
            if len(p.label) >= 5:
                limit = 2 if len(p.label) >= 10 else 1
                if edit_distance(skeleton, p.skeleton, limit) <= limit:
                    return found(p, "a name that differs from the real one by a letter or two")
        return None

