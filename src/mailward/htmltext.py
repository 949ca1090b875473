"""HTML to the text a reader sees, its links (href, visible text) and password fields.

The result is defined by ``html.parser`` (Python 3.11), as `HtmlReader` reads it. Most mail HTML
is plain markup (complete tags with quoted or simple attribute values, comments, a doctype,
<style> and <script> blocks): for that, `convert` gets the same result with a few whole-document
regular expression passes and no per-tag Python work. Anything else (stray '<', unusual
attribute syntax, unterminated constructs, <noscript>/<template>, an '&' reference cut by a tag)
goes through the parser, so both paths always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

MAX_LINKS = 200
BLOCK_TAGS = frozenset(
    {"p", "br", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"blockquote", "pre", "hr", "section", "article", "title"}
)
HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript"})


@dataclass(slots=True)
class HtmlText:
    """What a reader sees of one HTML document."""

    text: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, visible text)
    form_actions: list[str] = field(default_factory=list)  # of every <form>, in order
    password_field: bool = False  # an <input type=password> anywhere
    complete: bool = True  # False when the parser gave up part way (hostile markup)


def convert(html: str) -> HtmlText:
    """The reader's view of ``html``: the fast path when it applies, else the parser (which is
    not hardened against hostile markup: if it raises, what it read so far, not complete)."""
    result = fast_convert(html)
    if result is not None:
        return result
    reader = HtmlReader()
    try:
        reader.feed(html)
        reader.close()
    except Exception:  # keep what it read
        partial = reader.result()
        partial.complete = False
        return partial
    return reader.result()


# ---------------------------------------------------------------------------------------------
# The reference: html.parser with handlers


class HtmlReader(HTMLParser):
    """HTML to reader-visible text, with the links (href, visible text) and password forms."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.form_actions: list[str] = []
        self.password_field = False
        self._hidden = 0
        self._href: str | None = None
        self._link_text: list[str] = []

    def result(self) -> HtmlText:
        return HtmlText("".join(self.chunks), self.links, self.form_actions, self.password_field)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden += 1
        elif tag in BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag == "a":
            self._end_link()
            self._href = _attr(attrs, "href")
            self._link_text = []
        elif tag == "td":
            self.chunks.append(" ")
        elif tag == "form":
            self.form_actions.append(_attr(attrs, "action"))
        elif tag == "input" and _attr(attrs, "type").lower() == "password":
            self.password_field = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HIDDEN_TAGS:  # <br/>, <a .../> read as start tags (a link stays open)
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "a":
            self._end_link()
        elif tag in BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.chunks.append(data)
        if self._href is not None:
            self._link_text.append(data)

    def close(self) -> None:
        super().close()
        self._end_link()

    def _end_link(self) -> None:
        if self._href is not None and len(self.links) < MAX_LINKS:
            self.links.append((self._href, "".join(self._link_text)))
        self._href = None


def _attr(attrs: list[tuple[str, str | None]], name: str) -> str:
    for key, value in attrs:
        if key == name:
            return value or ""
    return ""


# ---------------------------------------------------------------------------------------------
# The fast path: a strict subset of HTML on which html.parser's reading is plain to see
#
# A few whole-document passes, each replacing what it matched: comments, the doctype and raw
# <script>/<style> blocks by \x00, block tags by \x01, <td> by \x02, then the remaining tags
# by nothing. Every pass matches only complete tags of the
# strict grammar below (no '<', '>' or \x00-\x02 in attribute values), so a tag can only match
# where the parser sees that same tag: markup the grammar does not cover (or a tag a pass took
# apart) keeps a '<' to the end, and then the parser decides. The sentinels become the text's
# "\n" and " " at the end.


def _anycase(word: str) -> str:
    """``td`` -> ``[tT][dD]`` (not re.IGNORECASE: that also matches 'ſ' for 's', 'K' for 'k')."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


def _lower(word: str) -> str:
    return re.escape(word)


def _trie(words: Iterable[str], cased: Callable[[str], str]) -> str:
    """An alternation of ``words`` shaped as a trie (one branch per first letter), longest
    first where one is a prefix of another."""
    groups: dict[str, list[str]] = {}
    for word in words:
        groups.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in sorted(groups.items()):
        ends = "" in rests
        longer = [r for r in rests if r]
        tail = _trie(longer, cased) if longer else ""
        if tail and ends:
            tail = f"(?:{tail})?"
        branches.append(cased(first) + tail)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


_WS = r"[ \t\n\r\f]"  # what ends a tag name for html.parser (and what it allows around '=')
_NAME_CHARS = r"-.:_a-zA-Z0-9"  # what an end tag's name may hold for html.parser
_END_OF_NAME = rf"(?![{_NAME_CHARS}])"
# Printable ASCII but space " ' < > ` / = (html.parser reads on to a space, '/', '=' or '>').
_ATTR_NAME = r"[\x21\x23-\x26\x28-\x2e\x30-\x3b\x3f-\x5f\x61-\x7e]++"
# An unquoted value: html.parser takes up to a space or '>' (so <a href=/x/> has href "/x/");
# here it starts with neither a quote nor '=' and holds only printable ASCII but '<'.
_BARE = r"[\x21\x23-\x26\x28-\x3b\x3f-\x5f\x61-\x7e][\x21-\x3b\x3d\x3f-\x7e]*+"
_VALUE = rf"""(?:"[^"<>\x00-\x02]*+"|'[^'<>\x00-\x02]*+'|{_BARE})"""
# an attribute follows a space, or directly a quoted value
_ATTRS = rf"(?:(?:{_WS}++|(?<=[\"'])){_ATTR_NAME}(?:{_WS}*+={_WS}*+{_VALUE})?+)*+{_WS}*+"
_COMMENT = r"<!--(?:[^-]++|-(?!-\s*>))*+--\s*>"  # up to the first --> (spaces allowed)
_DOCTYPE = rf"<!{_anycase('doctype')}[^>]*+>"
_PROCESSING = r"<\?[^>]*+>"  # <?...>, up to the first '>'
# html.parser unescapes the data between two markup items on its own: a reference in the data
# that could run into a '<' (or markup replaced by \x00) would read differently without it.
_REFERENCE_AT_MARKUP = re.compile(r"&[^\t\n\f <&;\x00]*+[<\x00]")
_UPPER_CASE_TAG = re.compile(r"</?[a-z0-9]*+[A-Z]")
_ATTR = re.compile(
    rf"""(?:{_WS}+|(?<=["']))({_ATTR_NAME})(?:{_WS}*={_WS}*("[^"]*"|'[^']*'|[^ \t\n\r\f>]+))?"""
)


class _Grammar:
    """The passes for tag names in lower case only (most mail) or in any case."""

    def __init__(self, cased: Callable[[str], str], tag_name: str) -> None:
        self.anycase = cased is _anycase

        def names(words: Iterable[str]) -> str:
            return _trie(words, cased) + _END_OF_NAME

        # every pattern starts with a plain '<': the engine skips to the next one at full speed
        tag = rf"<(?:/{tag_name}{_WS}*+>|(?!{names(HIDDEN_TAGS)}){tag_name}{_ATTRS}/?>)"
        raw = "|".join(
            rf"<{cased(n)}{_ATTRS}>(?:[^<]++|<(?!/\s*{_anycase(n)}\s*>))*+</\s*{_anycase(n)}\s*>"
            for n in ("script", "style")  # html.parser reads their content raw up to the end tag
        )
        block = names(BLOCK_TAGS)
        self.special = re.compile(f"{_COMMENT}|{_DOCTYPE}|{_PROCESSING}|{raw}")
        self.block = re.compile(rf"<(?:/{block}{_WS}*+>|{block}{_ATTRS}/?>)")
        self.cell = re.compile(rf"<{cased('td')}{_END_OF_NAME}{_ATTRS}/?>")
        self.tag = re.compile(tag)
        a = cased("a")
        # in a document that passed: every tag is '<' ... '>' with no '<' or '>' inside
        self.link = re.compile(
            rf"<{a}(?={_WS}|/|>)([^>]*)>((?:[^<]++|<(?!{a}(?:{_WS}|/|>)|/{a}(?:{_WS}|>)))*+)"
        )
        self.input = re.compile(rf"<{cased('input')}{_END_OF_NAME}([^>]*)>")
        self.form = re.compile(rf"<{cased('form')}{_END_OF_NAME}([^>]*)>")
        self.any_tag = re.compile(r"<[^>]*>")

    def convert(self, html: str) -> HtmlText | None:
        body = html
        if "<!" in body or "<?" in body or "<s" in body or (self.anycase and "<S" in body):
            body = self.special.sub("\x00", body)
        if "&" in body and _reference_at_markup(body):
            return None
        text = self.block.sub("\x01", body)
        if self.anycase or "<td" in text:
            text = self.cell.sub("\x02", text)
        if "<" in text:
            text = self.tag.sub("", text)
            if "<" in text:
                return None
        if "\x00" in text:
            text = text.replace("\x00", "")
        text = text.replace("\x01", "\n").replace("\x02", " ")
        out = HtmlText(unescape(text))
        if "<a" in body or (self.anycase and "<A" in body):
            out.links = self._links(body)
        if self.anycase or "<input" in body:
            self._forms(body, out)
        return out

    def _links(self, body: str) -> list[tuple[str, str]]:
        links = []
        for match in self.link.finditer(body):
            attrs, content = match.group(1, 2)
            if "<" in content:
                content = self.any_tag.sub("", content)
            if "\x00" in content:
                content = content.replace("\x00", "")
            links.append((_attribute(attrs, "href"), unescape(content)))
            if len(links) >= MAX_LINKS:
                break
        return links

    def _forms(self, body: str, out: HtmlText) -> None:
        for match in self.input.finditer(body):
            if _attribute(match.group(1), "type").lower() == "password":
                out.password_field = True
                break
        if out.password_field:
            out.form_actions = [_attribute(m.group(1), "action") for m in self.form.finditer(body)]


_LOWER_CASE = _Grammar(_lower, r"[a-z][-.:_a-z0-9]*+")
_ANY_CASE = _Grammar(_anycase, rf"[a-zA-Z][{_NAME_CHARS}]*+")


def fast_convert(html: str) -> HtmlText | None:
    """The reader's view of ``html`` without the parser, or None when the document is not in
    the subset this handles (the caller then runs `HtmlReader`)."""
    if "\x00" in html or "\x01" in html or "\x02" in html:
        return None
    out = _LOWER_CASE.convert(html)
    if out is None and _UPPER_CASE_TAG.search(html) is not None:
        out = _ANY_CASE.convert(html)
    return out


def _reference_at_markup(body: str) -> bool:
    """Whether a character reference in the data runs up to markup (see above); references
    inside tags (in attribute values) are read on their own anyway."""
    for match in _REFERENCE_AT_MARKUP.finditer(body):
        at = match.start()
        if body.rfind(">", 0, at) >= body.rfind("<", 0, at):  # in the data, not in a tag
            return True
    return False


def _attribute(attrs: str, name: str) -> str:
    """The value of the first attribute ``name`` in a tag's attribute text, as html.parser
    gives it ('' when absent or without a value)."""
    for match in _ATTR.finditer(attrs):
        if match.group(1).lower() == name:
            value = match.group(2)
            if not value:
                return ""
            if value[0] in "\"'":
                value = value[1:-1]
            return unescape(value)
    return ""
