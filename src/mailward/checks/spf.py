"""The SPF check (RFC 7208): may the client IP send mail for the MAIL FROM (or HELO) domain?"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from mailward.checks.base import Check, CheckContext
from mailward.config import Config
from mailward.model import Finding, Result, Transaction
from mailward.spf_eval import (
    Limits,
    RecordCache,
    SpfOutcome,
    check_host,
    client_address,
    identity,
)

_SYMBOLS = {
    Result.PASS: "SPF_PASS",
    Result.FAIL: "SPF_FAIL",
    Result.SOFTFAIL: "SPF_SOFTFAIL",
    Result.NEUTRAL: "SPF_NEUTRAL",
    Result.NONE: "SPF_NONE",
    Result.TEMPERROR: "SPF_TEMPERROR",
    Result.PERMERROR: "SPF_PERMERROR",
}
_HELO_SYMBOLS = {Result.FAIL: "SPF_HELO_FAIL", Result.SOFTFAIL: "SPF_HELO_SOFTFAIL"}


class SpfCheck(Check):
    """One method result for the MAIL FROM identity (postmaster@HELO for the null sender),
    plus SPF_HELO_FAIL / SPF_HELO_SOFTFAIL when the HELO name's own SPF record fails."""

    name: ClassVar[str] = "spf"
    symbols: ClassVar[frozenset[str]] = frozenset({*_SYMBOLS.values(), *_HELO_SYMBOLS.values()})
    depends: ClassVar[tuple[str, ...]] = ()
    budget: ClassVar[float] = 8.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.records = RecordCache(max_entries=4096)

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        helo = (tx.connection.helo or "").strip()
        mail_from = tx.envelope.mail_from.strip().strip("<>").strip()
        prop = ("smtp.mailfrom", mail_from) if mail_from else ("smtp.helo", helo)
        if not tx.connection.ip:
            return [self._none(prop, "no client IP address is known (the message did not arrive "
                                     "over SMTP), so there is nothing to check SPF against")]
        try:
            addr = client_address(tx.connection.ip)
        except ValueError:
            return [self._none(prop, f"the client address {tx.connection.ip!r} is not an IP "
                                     "address, so there is nothing to check SPF against")]
        if not mail_from and not helo:
            return [self._none(prop, "the message has a null sender and the client gave no HELO "
                                     "name, so there is no domain to check")]
        cfg = ctx.config.spf
        limits = Limits(cfg.lookup_limit, cfg.void_lookup_limit)
        receiver = ctx.config.site.authserv_id or "unknown"

        def evaluate(domain: str, sender: str, on_wait: Callable[[], object] | None = None
                     ) -> Coroutine[Any, Any, SpfOutcome]:
            return check_host(ctx.resolver, self.records, addr, domain, sender, helo=helo,
                              limits=limits, receiver=receiver, now=ctx.now, on_wait=on_wait)

        sender, domain = identity(mail_from, helo)
        want_helo = bool(mail_from and helo and cfg.helo_check)
        helo_task: asyncio.Future[SpfOutcome] | None = None

        def start_helo() -> None:
            # The MAIL FROM evaluation must wait for DNS: evaluate HELO meanwhile. With a warm
            # cache it never waits, and HELO runs after it (a task would cost more than it).
            nonlocal helo_task
            helo_task = asyncio.ensure_future(evaluate(helo, f"postmaster@{helo}"))

        try:
            main = await evaluate(domain, sender, start_helo if want_helo else None)
            helo_outcome = None
            if helo_task is not None:
                helo_outcome = await helo_task
            elif want_helo:
                helo_outcome = await evaluate(helo, f"postmaster@{helo}")
        finally:
            if helo_task is not None and not helo_task.done():
                helo_task.cancel()
        ip = str(addr)
        findings = [self._method_result(main, ip, prop, helo_identity=not mail_from)]
        if helo_outcome is not None and helo_outcome.result in _HELO_SYMBOLS:
            findings.append(self._helo_finding(helo_outcome, ip, helo))
        return findings

    # --- findings in plain words

    def _none(self, prop: tuple[str, str], why: str) -> Finding:
        return self.finding("SPF_NONE", Result.NONE, why, method_result=True,
                            properties=(prop,) if prop[1] else (), reason="nothing to check")

    def _method_result(self, o: SpfOutcome, ip: str, prop: tuple[str, str],
                       helo_identity: bool) -> Finding:
        who = f"the HELO name {o.domain}" if helo_identity else o.domain
        detail, reason = describe(o, ip, who)
        return self.finding(_SYMBOLS[o.result], o.result, detail,
                            advice=advice(o, helo_identity),
                            method_result=True, properties=(prop,) if prop[1] else (),
                            reason=reason)

    def _helo_finding(self, o: SpfOutcome, ip: str, helo: str) -> Finding:
        detail, reason = describe(o, ip, f"the HELO name {helo}")
        return self.finding(_HELO_SYMBOLS[o.result], o.result,
                            detail + "; the client introduced itself with a name it may not use",
                            properties=(("smtp.helo", helo),), reason=reason)


def _where(o: SpfOutcome) -> str:
    if o.term_domain and o.term_domain != o.domain:
        return f" in the SPF record of {o.term_domain}, which {o.domain} refers to"
    return ""


def describe(o: SpfOutcome, ip: str, who: str) -> tuple[str, str]:
    """(detail for the admin, short reason for Authentication-Results) of an outcome."""
    term = o.term
    matched = f"matched {term}"
    if o.result is Result.PASS:
        return f"{ip} is allowed to send mail for {who} ({matched}{_where(o)})", matched
    if o.result is Result.FAIL:
        if term.lower() == "-all":
            why = f"its SPF record ends in {term}{_where(o)}"
        else:
            why = f"its SPF record rejects it with {term}{_where(o)}"
        text = f"{ip} is not allowed to send mail for {who} ({why})"
        if o.explanation:
            text += f". The domain explains: \"{o.explanation}\""
        return text, matched
    if o.result is Result.SOFTFAIL:
        return (f"{ip} is probably not allowed to send mail for {who} (its SPF record says "
                f"{term}{_where(o)}: suspicious, but not a hard failure)", matched)
    if o.result is Result.NEUTRAL:
        if term:
            says = "ends in" if term.lower().endswith("all") else "says"
            return (f"{who} makes no statement about {ip} (its SPF record {says} "
                    f"{term}{_where(o)})", matched)
        return (f"{who} makes no statement about {ip} (no part of its SPF record matched)",
                "no mechanism matched")
    if o.result is Result.NONE:
        return f"nothing to check for {who}: {o.problem}", o.problem
    if o.result is Result.TEMPERROR:
        return (f"the SPF record of {who} could not be checked now ({o.problem}); "
                "the check can succeed later", o.problem)
    return f"the SPF record of {who} is broken: {o.problem}", o.problem


def advice(o: SpfOutcome, helo_identity: bool = False) -> str:
    """What a non-expert should make of a failing result ("" when nothing to say)."""
    if o.result is Result.FAIL:
        claim = (f"The server that delivered this message called itself {o.domain}, but "
                 f"{o.domain} does not allow that server to use its name" if helo_identity else
                 f"This message uses the address domain {o.domain}, but it came from a server "
                 f"that {o.domain} does not allow to send its mail")
        return (f"{claim}. It is probably forged: do not reply, open attachments, follow links "
                "or do what it asks; report it to your administrators.")
    if o.result is Result.SOFTFAIL:
        return (f"{o.domain} says the server this message came from is probably not one of "
                "its own. Be careful: confirm any request in it with the sender through "
                "another channel (phone, a known address) before acting on it.")
    if o.result is Result.PERMERROR:
        return (f"Where this message came from cannot be verified because {o.domain} publishes "
                "a broken SPF record. Be careful with any request it makes.")
    return ""
