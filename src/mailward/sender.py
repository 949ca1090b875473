"""Who the sender proved to be: the SPF/DKIM/DMARC method results read as the identity and
content checks need them (is the From domain authenticated, and is it one of the site's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailward.checks.base import CheckContext
from mailward.model import Result, Transaction


@dataclass(frozen=True, slots=True)
class SiteDomains:
    """The site's own domains, matched with their subdomains."""

    domains: tuple[str, ...]

    @classmethod
    def of(cls, domains: Iterable[str]) -> SiteDomains:
        return cls(tuple(d.strip().rstrip(".").lower() for d in domains if d.strip()))

    def owns(self, domain: str | None) -> bool:
        if not domain:
            return False
        domain = domain.lower().rstrip(".")
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


@dataclass(frozen=True, slots=True)
class SenderAuth:
    """What the authentication checks established about the From domain."""

    from_domain: str | None
    authenticated: bool  # DMARC pass (or, without a DMARC result, aligned SPF/DKIM pass)
    as_site: bool  # authenticated and the From domain is one of the site's
    how: str  # plain words for details: "DMARC pass", "DMARC fail", "no DMARC result", ...
    unknown: bool  # a temperror left the question open


def sender_auth(
    tx: Transaction, ctx: CheckContext, site: SiteDomains, org: Callable[[str], str]
) -> SenderAuth:
    """Read the method results of spf, dkim and dmarc for the message's single From domain.

    A client that logged in (SMTP AUTH on submission) counts as authenticated; the submission
    check verifies that it owns the From address.
    """
    from_domain = tx.message.parsed.from_domain
    if from_domain is None:
        return SenderAuth(None, False, False, "no single From domain", False)
    if tx.connection.auth_user:
        ok = site.owns(from_domain)
        return SenderAuth(from_domain, True, ok, "logged-in submission", False)
    dmarc = ctx.method_results("dmarc")
    if dmarc:
        passed = any(f.result is Result.PASS for f in dmarc)
        unknown = not passed and any(f.result is Result.TEMPERROR for f in dmarc)
        how = "DMARC " + ("pass" if passed else str(dmarc[0].result))
        return SenderAuth(from_domain, passed, passed and site.owns(from_domain), how, unknown)
    from_org = org(from_domain)
    passed = False
    unknown = False
    for f in ctx.method_results("dkim"):
        d = f.prop("header.d")
        if f.result is Result.PASS and d and org(d.lower()) == from_org:
            passed = True
        unknown = unknown or f.result is Result.TEMPERROR
    mail_from = tx.envelope.mail_from
    mf_domain = mail_from.rpartition("@")[2].lower() if "@" in mail_from else ""
    for f in ctx.method_results("spf"):
        if f.result is Result.PASS and mf_domain and org(mf_domain) == from_org:
            passed = True
        unknown = unknown or f.result is Result.TEMPERROR
    how = "aligned SPF or DKIM pass" if passed else "no DMARC result and no aligned SPF/DKIM pass"
    return SenderAuth(
        from_domain, passed, passed and site.owns(from_domain), how, unknown and not passed
    )
