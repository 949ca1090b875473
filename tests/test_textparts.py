"""Decoded text, links and login forms of every part of a message."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from mailward.message import ParsedHeaders, parse_headers
from mailward.textparts import extract, host_of


def parsed(
    content_type: str, body: str | bytes, cte: str = "7bit", extra: str = ""
) -> ParsedHeaders:
    data = body.encode() if isinstance(body, str) else body
    head = (f"From: a@b.test\r\nContent-Type: {content_type}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n{extra}\r\n").encode()
    return parse_headers(head + data)


def test_plain_and_bare_urls() -> None:
    view = extract(parsed("text/plain", "Go to https://x.test/a, or http://Y.test."))
    assert "Go to" in view.text
    assert [(link.host, link.text) for link in view.links] == [("x.test", ""), ("y.test", "")]


def test_html_text_links_and_hidden_parts() -> None:
    body = ("<html><head><style>.a{}</style><script>var x='secret';</script></head><body>"
            "<p>Hello&nbsp;<b>there</b></p><a href='https://t.test/x'>see <i>www.s.test</i></a>"
            "<a href=\"//cdn.test/\">cdn</a><a>no href</a></body></html>")
    view = extract(parsed("text/html; charset=utf-8", body))
    assert "Hello\xa0there" in view.text and "secret" not in view.text and ".a{}" not in view.text
    assert [(link.host, link.text) for link in view.links] == [("t.test", "see www.s.test"),
                                                               ("cdn.test", "cdn")]


def test_login_forms_in_body_and_attachments() -> None:
    form = "<form action=/p><input type=PASSWORD name=p></form>"
    body = ("--b\r\nContent-Type: text/html\r\n\r\n" + form + "\r\n--b\r\n"
            "Content-Type: text/html; name=x.htm\r\nContent-Disposition: attachment\r\n\r\n"
            "<input type=password>\r\n--b--\r\n")
    view = extract(parsed("multipart/mixed; boundary=b", body))
    assert [(f.where, f.action) for f in view.login_forms] == [("the message", "/p"), ("x.htm", "")]


def test_rfc2231_file_name() -> None:
    body = ("--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;"
            " filename*=utf-8''r%C3%A9sum%C3%A9.html\r\n\r\n<input type=password>\r\n--b--\r\n")
    view = extract(parsed("multipart/mixed; boundary=\"b\"", body))
    assert view.login_forms[0].where == "résumé.html"


def test_charsets_and_encodings() -> None:
    assert extract(parsed("text/plain; charset=iso-8859-1", "caf\xe9".encode("latin-1"),
                          "8bit")).text == "café"
    assert extract(parsed("text/plain; charset=bogus", "café".encode(), "8bit")).text == "café"
    assert extract(parsed("text/plain; charset=utf-8", b"caf\xe9", "8bit")).text == "café"
    assert extract(parsed("text/plain", "=E2=82=AC 5=\r\n0", "quoted-printable")).text == "€ 50"
    b64 = base64.b64encode("Grüße".encode()).decode()
    assert extract(parsed("text/plain; charset=utf-8", b64[:-1] + "!!", "base64")).text.startswith(
        "Gr")


def test_limits() -> None:
    view = extract(parsed("text/plain", "x" * 5000), limit=1000)
    assert len(view.text) == 1000 and view.truncated
    body = "Content-Type: message/rfc822\r\n\r\n" * 20 + "Content-Type: text/plain\r\n\r\nx"
    view = extract(parsed("message/rfc822", body))
    assert view.truncated and view.parts == 9 and view.text == ""
    nested = "multipart/mixed; boundary=b"
    many = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n" for i in range(100)) + "--b--"
    view = extract(parsed(nested, many))
    assert view.parts <= 64 and view.truncated


def test_host_of() -> None:
    assert host_of("HTTPS://user@Mail.X.test:8443/p?q") == "mail.x.test"
    assert host_of("javascript:alert(1)") == "" and host_of("http:/x") == ""


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(
    ["multipart/mixed; boundary=b", "text/html", "text/plain; charset=utf-16", "message/rfc822"]),
    st.sampled_from(["base64", "quoted-printable", "8bit"]))
def test_never_raises(body: bytes, content_type: str, cte: str) -> None:
    extract(parsed(content_type, b"--b\r\n" + body + b"\r\n--b--", cte))
