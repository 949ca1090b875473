"""The DMARC check (RFC 9989): author domain, policy discovery, identifier alignment, policy.

It reads the "spf" and "dkim" method results, finds the policy by the DNS Tree Walk
(`mailward.dmarc_record`) and reports exactly one method result. Section numbers are RFC 9989's.

Temporary DNS errors are reported only when they decide the outcome: a policy that cannot be
found is DMARC_TEMPERROR (forced tempfail: the sender retries); so is an unknown alignment or
domain existence when the policy to apply would be quarantine or reject. When the policy to
apply is "none", the same uncertainty is DMARC_TEMPERROR_POLICY_NONE: still ``dmarc=temperror``
(§5.3.6: such a message "cannot be considered to pass or fail"), but it forces nothing, because
"discovered policies of p=none MUST NOT modify existing mail handling processes" (§5.4).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from mailward.checks.base import Check, CheckContext
from mailward.config import Config
from mailward.dmarc_record import DmarcRecord, Policy, TreeWalker, Walk, parse_record
from mailward.dns import Lookup, Resolver, Status
from mailward.message import ParsedHeaders
from mailward.model import Finding, Result, Transaction

RECORD_CACHE_SIZE = 4096
_DOMAIN = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}")
_FAIL_SYMBOL = {
    Policy.REJECT: "DMARC_FAIL_REJECT",
    Policy.QUARANTINE: "DMARC_FAIL_QUARANTINE",
    Policy.NONE: "DMARC_FAIL_NONE",
}
_ROLE_WORDS = {
    "author": "the author domain's own DMARC record",
    "organizational": "the DMARC record of its Organizational Domain {name}",
    "public suffix": "the DMARC record of the public suffix domain {name} (psd=y)",
}


def ascii_domain(text: str) -> str | None:
    """A domain in lower-case A-label form (RFC 9989 §5.3.1: U-labels are converted), or None
    when it is not a usable domain name."""
    name = text.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if len(name) > 253 or not _DOMAIN.fullmatch(name):
        return None
    return name


def author_domain(parsed: ParsedHeaders) -> tuple[str, str]:
    """The Author Domain (RFC 9989 §3.2.2, §5.3.1) as ``(domain, "")``, or ``("", why)``
    when there is not exactly one valid domain in the From header field(s)."""
    for defect in parsed.defects:
        if defect.symbol == "MSG_NO_FROM":
            return "", "the message has no From header field"
        if defect.symbol == "MSG_FROM_UNPARSEABLE":
            return "", defect.detail
    domains: dict[str, str] = {}
    for address in parsed.from_addresses:
        domain = ascii_domain(address.domain) if address.domain else None
        if domain is None:
            return "", f"the From address {address.address[:100]!r} has no valid domain"
        domains.setdefault(domain, address.address)
    if not domains:
        return "", "the From header field names no address"
    if len(domains) > 1:
        names = ", ".join(list(domains)[:5])
        return "", (
            f"the From header names addresses in {len(domains)} different domains ({names}); "
            "DMARC needs exactly one author domain (RFC 9989 §5.3.1)"
        )
    return next(iter(domains)), ""


@dataclass(frozen=True, slots=True)
class Identifier:
    """One SPF or DKIM result as DMARC sees it (RFC 9989 §4.3, §5.3.3)."""

    method: str  # "spf" or "dkim"
    domain: str  # A-label form; "" when the finding names no domain
    result: Result
    name: str  # how a detail names it


def identifiers(tx: Transaction, ctx: CheckContext) -> list[Identifier]:
    """The SPF-Authenticated Identifier candidates (the MAIL FROM identity; for the null sender
    the HELO identity, RFC 9989 §3.2.4) and one DKIM candidate per signature (d=)."""
    out: list[Identifier] = []
    spf = [(f, f.prop("smtp.mailfrom"), f.prop("smtp.helo")) for f in ctx.method_results("spf")]
    if tx.envelope.mail_from:  # only the MAIL FROM identity counts (§4.4.2)
        spf = [s for s in spf if s[1]] or [s for s in spf if not s[2]]
    for f, mailfrom, helo in spf:
        value = mailfrom or helo or ""
        domain = ascii_domain(value.strip("<> ").rpartition("@")[2]) if value else None
        what = "MAIL FROM domain" if mailfrom else "HELO name"
        label = f"SPF for the {what} {domain}" if domain else "SPF"
        out.append(Identifier("spf", domain or "", f.result, label))
    for f in ctx.method_results("dkim"):
        d = f.prop("header.d") or ""
        if not d and f.result is not Result.TEMPERROR:
            continue  # no signature at all (dkim=none): no identifier
        domain = ascii_domain(d) or ""
        selector = f.prop("header.s")
        label = f"the DKIM signature of {domain}" if domain else "DKIM"
        if domain and selector:
            label += f" (selector {selector})"
        out.append(Identifier("dkim", domain, f.result, label))
    return out


async def author_exists(resolver: Resolver, name: str) -> bool | None:
    """Whether the Author Domain exists (np=, RFC 9989 §3.2.13, App. A.4): a NOERROR answer to
    any of the A/AAAA/MX queries, even without records (NODATA), means it exists; NXDOMAIN
    means it does not (RFC 8020); None when DNS could not say."""
    types = ("A", "AAAA", "MX")
    lookups = [resolver.cached(name, t) for t in types]
    if any(lookup is None for lookup in lookups):
        summary = await resolver.exists(name)
        if summary.ok:
            return True
        # Resolver.exists() counts NODATA as "does not exist"; App. A.4 does not: look closer.
        lookups = [resolver.cached(name, t) for t in types]
    answered = [lookup for lookup in lookups if lookup is not None]
    if any(lookup.ok for lookup in answered):
        return True
    if any(lookup.status is Status.NXDOMAIN for lookup in answered):
        return False
    return None


@dataclass(slots=True)
class _Message:
    """The DMARC evaluation of one message once its policy record is known."""

    author: str
    walker: TreeWalker
    policy_name: str
    record: DmarcRecord
    role: str
    idents: list[Identifier]
    aligned: dict[tuple[str, bool], bool | None] = field(default_factory=dict)

    def strict(self, ident: Identifier) -> bool:
        return (self.record.aspf if ident.method == "spf" else self.record.adkim) == "s"

    async def alignment(self, ident: Identifier) -> bool | None:
        """Identifier Alignment (RFC 9989 §4.4, §4.10.2): strict = identical domains, relaxed =
        same Organizational Domain; None when a DNS temperror leaves it unknown."""
        if not ident.domain:
            return None
        if ident.domain == self.author:
            return True
        strict = self.strict(ident)
        key = (ident.domain, strict)
        if key not in self.aligned:
            self.aligned[key] = False if strict else await self._same_org(ident.domain)
        return self.aligned[key]

    async def _same_org(self, domain: str) -> bool | None:
        own = await self.walker.full(self.author)
        other = await self.walker.full(domain)
        mine, theirs = own.organizational_domain(), other.organizational_domain()
        if mine is None or theirs is None:
            return None
        return mine == theirs

    def prime(self, idents: list[Identifier]) -> None:
        """Start the tree walks relaxed alignment will need, all at once."""
        domains = {i.domain for i in idents if i.domain and i.domain != self.author
                   and not self.strict(i)}
        if domains:
            self.walker.prime(self.author)
            for domain in domains:
                self.walker.prime(domain)


class DmarcCheck(Check):
    """DMARC validation of the RFC5322.From domain against SPF and DKIM (RFC 9989)."""

    name = "dmarc"
    symbols = frozenset(
        {
            "DMARC_PASS",
            "DMARC_FAIL_REJECT",
            "DMARC_FAIL_QUARANTINE",
            "DMARC_FAIL_NONE",
            "DMARC_NONE",
            "DMARC_TEMPERROR",
            "DMARC_TEMPERROR_POLICY_NONE",
            "DMARC_PERMERROR",
            "DMARC_FROM_INVALID",
        }
    )
    depends = ("spf", "dkim")
    budget = 15.0  # policy walk, alignment walks and the existence check may each wait on DNS

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.max_labels = max(1, config.dmarc.tree_walk_max_labels)
        self._records: dict[bytes, DmarcRecord | None] = {}
        self._background: set[asyncio.Future[Lookup]] = set()

    def _parse(self, raw: bytes) -> DmarcRecord | None:
        try:
            return self._records[raw]
        except KeyError:
            pass
        record = parse_record(raw)
        if len(self._records) >= RECORD_CACHE_SIZE:
            del self._records[next(iter(self._records))]
        self._records[raw] = record
        return record

    def _spawn(self, query: Coroutine[Any, Any, Lookup]) -> asyncio.Future[Lookup]:
        task = asyncio.ensure_future(query)
        self._background.add(task)  # a speculative query may outlive the walk that began it
        task.add_done_callback(self._background.discard)
        return task

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        author, problem = author_domain(tx.message.parsed)
        if problem:
            return [self._from_invalid(problem)]
        walker = TreeWalker(ctx.resolver, self.max_labels, self._parse, self._spawn)
        walk = await walker.first(author)  # §4.10.1: the Author Domain's own record first
        if walk.own_record is None:
            if not walk.temperror:
                await walker.full(author)
            if walk.temperror:
                return [self._lookup_temperror(author, walk)]
        found = walk.policy_domain()
        if found is None:
            return [self._no_policy(author, walk)]
        name, record, role = found
        if not record.usable:
            return [self._unusable(author, name, record)]
        msg = _Message(author, walker, name, record, role, identifiers(tx, ctx))
        return [await self._evaluate(msg, ctx.resolver)]

    async def _evaluate(self, msg: _Message, resolver: Resolver) -> Finding:
        passes = [i for i in msg.idents if i.result is Result.PASS and i.domain]
        for ident in passes:  # identical domains align in either mode, without DNS
            if ident.domain == msg.author:
                return self._pass(msg, ident)
        msg.prime(passes)
        for ident in passes:
            if await msg.alignment(ident):
                return self._pass(msg, ident)
        # §5.3.5: no aligned pass. Which policy applies, and is the failure certain?
        choice = await self._policy(msg, resolver)
        doubtful = [i for i in passes if await msg.alignment(i) is None]
        for ident in msg.idents:
            if ident.result is Result.TEMPERROR and await msg.alignment(ident) is not False:
                doubtful.append(ident)
        if choice.applied is None or doubtful:
            return self._fail_temperror(msg, choice, doubtful)
        return self._fail(msg, choice)

    async def _policy(self, msg: _Message, resolver: Resolver) -> _Choice:
        """§4.10.1: p for the Author Domain's own record; for a parent's record sp (existing
        subdomain) or np (non-existent), each falling back as §4.7 says; then t=."""
        record = msg.record
        if msg.role == "author":
            published, tag = record.published("author")
            return _Choice(record.applied(published), published, tag)
        sub, sub_tag = record.published("subdomain")
        nx, nx_tag = record.published("nonexistent")
        if record.applied(sub) == record.applied(nx):
            return _Choice(record.applied(sub), sub, sub_tag)
        exists = await author_exists(resolver, msg.author)
        if exists is None:
            return _Choice(None, sub, sub_tag, f"{sub_tag}={sub} and {nx_tag}={nx}")
        if exists:
            return _Choice(record.applied(sub), sub, sub_tag, existence="exists")
        return _Choice(record.applied(nx), nx, nx_tag, existence="does not exist")

    # --- findings ----------------------------------------------------------------------

    def _result(
        self, symbol: str, result: Result, author: str, detail: str, policy: Policy | None = None,
        published: Policy | None = None, advice: str = "", reason: str = "",
    ) -> Finding:
        props: list[tuple[str, str]] = [("header.from", author)] if author else []
        if policy is not None:
            props.append(("policy.dmarc", str(policy)))
            if published is not None and published is not policy:
                props.append(("policy.published-domain-policy", str(published)))
        return self.finding(symbol, result, detail, advice=advice, method_result=True,
                            properties=tuple(props), reason=reason)

    def _from_invalid(self, problem: str) -> Finding:
        return self._result(
            "DMARC_FROM_INVALID", Result.PERMERROR, "",
            f"no single author domain to check DMARC for: {problem}",
            advice="This message does not say clearly who sent it. Do not trust its sender "
            "line, and be careful with its links, attachments and requests.",
            reason="no single RFC5322.From domain",
        )

    def _lookup_temperror(self, author: str, walk: Walk) -> Finding:
        return self._result(
            "DMARC_TEMPERROR", Result.TEMPERROR, author,
            f"could not look up the DMARC policy of {author}: {walk.temperror}; the message is "
            "deferred so that the sender retries",
            advice=_RETRY_ADVICE, reason=f"DNS error: {walk.temperror}",
        )

    def _no_policy(self, author: str, walk: Walk) -> Finding:
        notes = f" ({'; '.join(walk.notes)})" if walk.notes else ""
        return self._result(
            "DMARC_NONE", Result.NONE, author,
            f"{author} publishes no DMARC policy (nothing at _dmarc.{author} or above it), so "
            f"DMARC cannot confirm who sent the message{notes}",
        )

    def _unusable(self, author: str, name: str, record: DmarcRecord) -> Finding:
        where = f"the DMARC record at _dmarc.{name}"
        if record.lacks_only_p:  # §4.10.1: no policy and no report address: DMARC does not apply
            return self._result(
                "DMARC_NONE", Result.NONE, author,
                f"{where} has no p= policy and no rua= report address, so DMARC does not apply "
                "to mail from " + author + " (RFC 9989 §4.10.1)",
            )
        return self._result(
            "DMARC_PERMERROR", Result.PERMERROR, author,
            f"{where} is unusable: {record.policy_problem}, and it names no valid rua= address, "
            f"so DMARC is not applied to mail from {author} (RFC 9989 §4.10.1)",
            advice=f"{author} publishes a broken DMARC record, so the sender of this message "
            "cannot be verified. Be careful with its links, attachments and requests.",
            reason=record.policy_problem,
        )

    def _pass(self, msg: _Message, ident: Identifier) -> Finding:
        mode = "identical" if ident.domain == msg.author else "relaxed alignment"
        published, _tag = msg.record.published("author" if msg.role == "author" else "subdomain")
        return self._result(
            "DMARC_PASS", Result.PASS, msg.author,
            f"{ident.name} passed and is aligned with the author domain {msg.author} ({mode}); "
            f"the policy comes from {_policy_words(msg)}",
            msg.record.applied(published), published,
        )

    def _fail(self, msg: _Message, choice: _Choice) -> Finding:
        assert choice.applied is not None
        author = msg.author
        if choice.applied is Policy.NONE:
            advice = (f"This message claims to come from {author}, but nothing confirms that "
                      f"{author} sent it. Be careful with its links, attachments and requests.")
        else:
            advice = (f"This message pretends to come from {author}, but {author} did not send "
                      "it. Do not reply, click links, open attachments or follow its "
                      "instructions; report it to your administrators.")
        return self._result(
            _FAIL_SYMBOL[choice.applied], Result.FAIL, author,
            f"the DMARC policy for {author} is {choice.describe(msg.record)}, from "
            f"{_policy_words(msg)}, and the message has no aligned authentication: "
            f"{_why_unaligned(msg)}. Policy to apply: {choice.applied}{_notes(msg.record)}",
            choice.applied, choice.published, advice=advice,
        )

    def _fail_temperror(
        self, msg: _Message, choice: _Choice, doubtful: list[Identifier]
    ) -> Finding:
        causes = []
        if doubtful:
            causes.append("alignment of " + ", ".join(i.name for i in doubtful)
                          + " could not be settled (temporary DNS error)")
        if choice.applied is None:
            causes.append(f"whether {msg.author} exists could not be looked up, and it decides "
                          f"between {choice.undecided}")
        why = "; ".join(causes)
        if choice.applied is Policy.NONE:
            return self._result(
                "DMARC_TEMPERROR_POLICY_NONE", Result.TEMPERROR, msg.author,
                f"no aligned pass for {msg.author}, and {why}; its policy is none, so nothing "
                "is enforced",
                Policy.NONE, choice.published, reason="temporary DNS error",
            )
        return self._result(
            "DMARC_TEMPERROR", Result.TEMPERROR, msg.author,
            f"no aligned pass yet for {msg.author}, whose policy in {_policy_words(msg)} asks "
            f"to act on failures, and {why}; the message is deferred so that the sender "
            "retries",
            advice=_RETRY_ADVICE, reason="temporary DNS error",
        )


_RETRY_ADVICE = ("The sender of this message could not be verified yet because of a temporary "
                 "DNS problem; the sending server will try again later.")


@dataclass(frozen=True, slots=True)
class _Choice:
    """The policy chosen for a failing message: ``applied`` after t=, None when a DNS
    temperror on the existence check leaves it open between ``undecided`` policies."""

    applied: Policy | None
    published: Policy
    tag: str
    undecided: str = ""
    existence: str = ""

    def describe(self, record: DmarcRecord) -> str:
        text = f"{self.tag}={self.published}"
        if self.existence:
            text += f" (the author domain {self.existence} in DNS)"
        if record.testing:
            text += " with t=y (testing: one level milder)"
        if record.substitutes_none:
            text += f" (in place of invalid policy tags: {record.policy_problem})"
        return text


def _notes(record: DmarcRecord) -> str:
    return f" (about the record: {'; '.join(record.notes)})" if record.notes else ""


def _policy_words(msg: _Message) -> str:
    return _ROLE_WORDS[msg.role].format(name=msg.policy_name)


def _why_unaligned(msg: _Message) -> str:
    parts = []
    for ident in msg.idents:
        if ident.result is Result.PASS and ident.domain:
            mode = "strict" if msg.strict(ident) else "relaxed"
            parts.append(f"{ident.name} passed but is not aligned ({mode} alignment)")
        else:
            parts.append(f"{ident.name}: {ident.result}")
    methods = {i.method for i in msg.idents}
    if "spf" not in methods:
        parts.append("no SPF result")
    if "dkim" not in methods:
        parts.append("no DKIM signature")
    return "; ".join(parts)
