"""Reading the authentication results for the identity and content checks."""

from __future__ import annotations

import pytest

from mailward.checks.base import CheckContext
from mailward.config import Config
from mailward.dns import ZoneResolver
from mailward.model import Connection, Envelope, Finding, Message, Result, Transaction
from mailward.sender import SiteDomains, sender_auth

SITE = SiteDomains.of(["OurCorp.example.", " "])


def org(domain: str) -> str:
    return ".".join(domain.split(".")[-2:])


def tx(from_: str = "a@mail.ourcorp.example", mail_from: str = "", user: str | None = None
       ) -> Transaction:
    raw = f"From: {from_}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    return Transaction(Connection(auth_user=user), Envelope(mail_from), Message(raw))


def ctx(**results: list[Finding]) -> CheckContext:
    return CheckContext(ZoneResolver({}), Config(), results, 0.0)


def method(check: str, result: Result, *props: tuple[str, str]) -> Finding:
    return Finding(check, f"{check.upper()}_X", result, method_result=True, properties=props)


def test_site_domains() -> None:
    assert SITE.domains == ("ourcorp.example",)
    assert SITE.owns("A.OurCorp.Example.") and not SITE.owns("notourcorp.example")
    assert not SITE.owns(None)


def test_dmarc_pass_authenticates_the_from_domain() -> None:
    auth = sender_auth(tx(), ctx(dmarc=[method("dmarc", Result.PASS)]), SITE, org)
    assert auth.authenticated and auth.as_site and auth.how == "DMARC pass"


@pytest.mark.parametrize(("result", "unknown"), [(Result.FAIL, False), (Result.TEMPERROR, True)])
def test_dmarc_other_results(result: Result, unknown: bool) -> None:
    auth = sender_auth(tx(), ctx(dmarc=[method("dmarc", result)]), SITE, org)
    assert not auth.authenticated and not auth.as_site and auth.unknown is unknown


def test_without_dmarc_aligned_dkim_or_spf() -> None:
    dkim = method("dkim", Result.PASS, ("header.d", "OURCORP.example"))
    assert sender_auth(tx(), ctx(dkim=[dkim]), SITE, org).as_site
    other = method("dkim", Result.PASS, ("header.d", "esp.test"))
    assert not sender_auth(tx(), ctx(dkim=[other]), SITE, org).authenticated
    spf = method("spf", Result.PASS)
    assert sender_auth(tx(mail_from="b@ourcorp.example"), ctx(spf=[spf]), SITE, org).as_site
    assert not sender_auth(tx(mail_from="b@esp.test"), ctx(spf=[spf]), SITE, org).authenticated
    temp = method("spf", Result.TEMPERROR)
    assert sender_auth(tx(mail_from="b@esp.test"), ctx(spf=[temp]), SITE, org).unknown


def test_logged_in_submission() -> None:
    assert sender_auth(tx(user="kim"), ctx(), SITE, org).as_site
    outside = sender_auth(tx("a@freemail.test", user="kim"), ctx(), SITE, org)
    assert outside.authenticated and not outside.as_site


def test_no_single_from_domain() -> None:
    auth = sender_auth(tx("a@x.test, b@y.test"), ctx(dmarc=[method("dmarc", Result.PASS)]),
                       SITE, org)
    assert auth.from_domain is None and not auth.authenticated
