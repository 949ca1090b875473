"""The envelope sender: our own domains in MAIL FROM from outside must prove themselves."""

from __future__ import annotations

from typing import ClassVar

from mailward.checks.base import Check, CheckContext
from mailward.model import Finding, Result, Transaction

ADVICE = (
    "This message claims to come from our own organisation, but it arrived from outside without "
    "proof. Our own mail is sent through our mail system. Do not reply or act on it; report it."
)


class EnvelopeCheck(Check):
    """Flags MAIL FROM in one of the site's domains on mail that neither logged in nor passed
    SPF for it nor DMARC. (The From header is the identity check's business.)"""

    name = "envelope"
    symbols: ClassVar[frozenset[str]] = frozenset({"ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED"})
    depends = ("spf", "dmarc")
    budget = 1.0

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        domain = tx.envelope.mail_from.rpartition("@")[2].lower().rstrip(".")
        site = self.config.local_domains
        if not domain or domain not in site or tx.connection.auth_user:
            return []
        spf = ctx.method_results("spf")
        dmarc = ctx.method_results("dmarc")
        if any(f.result is Result.PASS for f in spf + dmarc):
            return []
        spf_word = spf[0].result if spf else "not checked"
        return [
            self.finding(
                "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED",
                Result.POLICY,
                f"the envelope sender {tx.envelope.mail_from} uses our own domain {domain}, but "
                f"the message came from outside without logging in and SPF was {spf_word}",
                advice=ADVICE,
                properties=(("smtp.mailfrom", tx.envelope.mail_from),),
            )
        ]
