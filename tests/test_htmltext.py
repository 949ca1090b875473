"""HTML to reader-visible text: the fast path agrees with html.parser, or stands aside."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.htmltext import HtmlReader, HtmlText, convert, fast_convert


def parsed(html: str) -> HtmlText:
    """What html.parser (through HtmlReader) reads: the reference."""
    reader = HtmlReader()
    reader.feed(html)
    reader.close()
    return reader.result()


def same(a: HtmlText, b: HtmlText) -> bool:
    forms_a = a.form_actions if a.password_field else []
    forms_b = b.form_actions if b.password_field else []
    return (a.text, a.links, a.password_field, forms_a) == (b.text, b.links, b.password_field,
                                                              forms_b)


# Pieces of markup, plain and tricky: documents made of them either take the fast path and read
# exactly as html.parser reads them, or are left to html.parser.
PIECES = [
    "<p>", "</p>", "<br>", "<br/>", "<br />", "<BR>", "<P class=x>", "</P >", "<td>", "<td/>",
    "</td>", "<TD width=85>", "<tr>", "</tr>", "<table border=\"0\">", "</table>", "<h1>",
    "<title>", "</title>", "<pre>", "<div class='a b'>", "</div>", "<hr/>", "<li>", "<b>", "</b>",
    "<span style=\"color:red\">", "</span>", "<a href='https://x.test/a'>", "<a href=\"//y.test\">",
    "<a href=https://z.test/q?a=1&amp;b=2>", "<A HREF='http://u.test'>", "</a>", "</A >", "<a/>",
    "<a name=x />", "<a>", "<a href>", "<a href=''>", "<a href=/x/>", "<abbr>", "</abbr>",
    "<a href=\"&#104;ttp://h.test\">", "<script>", "</script>", "<script type='text/js'>",
    "<Script>", "</SCRIPT>", "<style>", "</style >", "<STYLE>", "</ script>", "<script/>",
    "<!--", "-->", "--!>", "-- >", "<!---->", "<!-->", "<!DOCTYPE html>", "<!doctype>", "<!x>",
    "<?php ?>", "<![CDATA[x]]>", "&amp;", "&amp", "&lt;", "&#65;", "&#x41", "&", "&no", "t;", ";",
    "<", ">", "/", "'", '"', "=", " ", "\n", "\t", "\r\n", "\xa0", "\v", "text", "password",
    "word", "é", "&eacute;", "<input type=password>", "<input type='PassWord' />",
    "<INPUT TYPE=\"text\">", "<form action='/login'>", "<form>", "<FORM ACTION=x>", "</form>",
    "<noscript>", "</noscript>", "<template>", "<img src=x alt='a>b'>", "<img src=\"a<b\">",
    "<p title=x/>", "<span\x00>", "<ſcript>", "</ſcript>", "<p\vx>", "<p a=b c='d' e>", "<p a==b>",
    "<p a=\"b\"c=d>", "<p a=`b`>", "<x-y>", "<p:q>", "</p:q>", "</>", "</ p>", "</p x>", "\x01",
    "<font face=Arial, Helvetica size=2>", "<img alt=\"a\"src=\"b\">", "<o:p>", "</o:p>",
    "<tr:ad name=\"x\" />", "<?xml:ns prefix = o ?>", "<?>", "<a href=\"x?a=1&b=2\">", "&nbsp",
    "<td cellPadding= cellSpacing=0>", "<p a=b=c>", "<p a=b\"c>", "<p.q>", "<a:b href=x>",
    "<x a='1'b='2'>", "<x ,=1>", "<x @click=y>", "<br clear=all/>",
]
VALID = [p for p in PIECES if fast_convert(p + "x") is not None]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_fast_path_reads_as_html_parser(pieces: list[str]) -> None:
    html = "".join(pieces)
    fast = fast_convert(html)
    if fast is not None:
        assert same(fast, parsed(html)), html


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VALID), max_size=40))
def test_fast_path_on_plain_markup(pieces: list[str]) -> None:
    html = "".join(pieces)
    fast = fast_convert(html)
    if fast is not None:
        assert same(fast, parsed(html)), html


def test_most_plain_markup_takes_the_fast_path() -> None:
    html = ("<!DOCTYPE html><html><head><style>p{color:red}</style></head><body>"
            "<table border=\"0\"><tr><td>a</td><td>1.5</td></tr></table>"
            "<p>Hello <b>there</b><br/>next</p><a href=\"https://x.test/?a=1&amp;b=2\">see"
            " <i>here</i></a><!-- note --></body></html>")
    fast = fast_convert(html)
    assert fast is not None and same(fast, parsed(html))
    assert fast.text == "\n\n a 1.5\n\n\nHello there\nnext\nsee here"
    assert fast.links == [("https://x.test/?a=1&b=2", "see here")]


@pytest.mark.parametrize(
    "html",
    [
        "a < b",  # a '<' that starts no tag
        "<noscript><a href=x>y</a></noscript>",  # hidden, but its tags still count
        "<script>var a = '</p>';",  # unterminated raw text
        "<!-- open comment <p>",
        "<img alt='a>b'>",  # '>' inside a quoted value
        "x &amp<b>;</b>",  # a reference cut by a tag
        "<p a==b>",
        "\x01<p>",  # the fast path's own markers
    ],
)
def test_left_to_the_parser(html: str) -> None:
    assert fast_convert(html) is None
    assert same(convert(html), parsed(html))


def test_empty_elements_read_as_start_tags() -> None:
    """html.parser hands <br/> and <a .../> to handle_startendtag, which HtmlReader reads as a
    start tag: one line break, and a link that stays open."""
    html = "a<br/>b<a href='https://x.test/'/>c<p/>d"
    for view in (convert(html), parsed(html)):
        assert view.text == "a\nbc\nd"
        assert view.links == [("https://x.test/", "cd")]


def test_upper_case_tags() -> None:
    html = "<P>One<BR>two</P><TABLE><TR><TD>x</TD></TR></TABLE><A HREF=http://a.test>A</A>"
    fast = fast_convert(html)
    assert fast is not None and same(fast, parsed(html))
    assert fast.links == [("http://a.test", "A")]


def test_password_forms() -> None:
    html = "<form action='/a'></form><FORM ACTION=\"/b\"><input TYPE=Password name=p></FORM>"
    view = convert(html)
    assert view.password_field and view.form_actions == ["/a", "/b"]
    assert not convert("<input type=text><form action=/c>").password_field
    entity = convert("<input type='&#112;assword'>")
    assert entity.password_field and same(entity, parsed("<input type='&#112;assword'>"))


def test_hostile_markup_keeps_what_was_read() -> None:
    view = convert("<p>before</p><![foo[ x ]]><p>after</p>")
    assert not view.complete and view.text == "\nbefore\n"
