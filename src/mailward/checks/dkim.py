"""The DKIM check: verifies every DKIM-Signature (RFC 6376, 8301, 8463) with keys from DNS.

One method result per signature (pass, fail, policy, permerror, temperror; see
`mailward.dkim_verify` for which problem gives which word), ``dkim=none`` when the message is
not signed. Key lookups of all signatures run concurrently; parsed keys are cached on the check
instance by record text, so a warm cache costs canonicalization, two hashes and one signature
check per signature.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailward.checks.base import Check, CheckContext
from mailward.config import Config, DkimConfig
from mailward.dkim_verify import (
    KeyCache,
    MessageView,
    Problem,
    PublicKey,
    Signature,
    Verification,
    check_key,
    parse_signature,
    parse_tag_list,
    verify,
)
from mailward.dns import Lookup, Status
from mailward.message import HeaderField
from mailward.model import Finding, Result, Transaction

_SYMBOLS = {
    Result.PASS: "DKIM_PASS",
    Result.FAIL: "DKIM_FAIL",
    Result.POLICY: "DKIM_POLICY",
    Result.TEMPERROR: "DKIM_TEMPERROR",
    Result.PERMERROR: "DKIM_PERMERROR",
}
_ADVICE = {
    Result.FAIL: (
        "The message's DKIM signature from {d} does not match its content: it was altered on "
        "the way or forged. Do not act on links or requests in it without confirming them "
        "another way."
    ),
    Result.PERMERROR: (
        "The DKIM signature from {d} could not be checked, so it does not confirm who sent "
        "this message."
    ),
    Result.TEMPERROR: (
        "The DKIM signature from {d} could not be checked right now; treat the sender as "
        "unconfirmed until it is."
    ),
    Result.POLICY: (
        "The DKIM signature from {d} uses cryptography too weak to trust, so it does not "
        "confirm who sent this message."
    ),
}
_FWS = b" \t\r\n"
_PREFIX = {
    Result.PASS: "verified",
    Result.FAIL: "failed",
    Result.POLICY: "not accepted",
    Result.PERMERROR: "cannot be checked",
    Result.TEMPERROR: "could not be checked now",
}


@dataclass(slots=True)
class _Candidate:
    """One DKIM-Signature field on its way through parsing, key lookup and verification."""

    field: HeaderField
    tags: dict[str, bytes]
    sig: Signature | None = None
    problem: Problem | None = None
    from_unsigned: bool = False


class DkimCheck(Check):
    """Verifies each DKIM-Signature; never fails a message for having none."""

    name = "dkim"
    symbols = frozenset(
        {
            "DKIM_PASS",
            "DKIM_FAIL",
            "DKIM_NONE",
            "DKIM_POLICY",
            "DKIM_TEMPERROR",
            "DKIM_PERMERROR",
            "DKIM_WEAK_KEY",
            "DKIM_FROM_NOT_SIGNED",
            "DKIM_LENGTH_UNSIGNED_CONTENT",
            "DKIM_TOO_MANY_SIGNATURES",
        }
    )
    budget = 10.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.keys = KeyCache()

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        parsed = tx.message.parsed
        by_name = parsed.by_name()
        fields = by_name.get("dkim-signature", [])
        if not fields:
            return [
                self.finding(
                    "DKIM_NONE", Result.NONE, "the message carries no DKIM signature",
                    method_result=True,
                )
            ]
        settings = ctx.config.dkim
        findings: list[Finding] = []
        if len(fields) > settings.max_signatures:
            findings.append(
                self.finding(
                    "DKIM_TOO_MANY_SIGNATURES", Result.POLICY,
                    f"the message carries {len(fields)} DKIM signatures; only the first "
                    f"{settings.max_signatures} were checked",
                )
            )
            fields = fields[: settings.max_signatures]
        candidates = [self._prepare(f, ctx.now, settings) for f in fields]
        names = dict.fromkeys(c.sig.key_name for c in candidates if c.sig and not c.problem)
        lookups = await self._lookup(ctx, list(names))
        view = MessageView(parsed.fields, parsed.canonical, start=parsed.body_offset,
                           by_name=by_name)
        for c in candidates:
            findings.extend(self._evaluate(c, lookups, view, settings))
        return findings

    async def _lookup(
        self, ctx: CheckContext, names: list[str]
    ) -> dict[str, Lookup | BaseException]:
        """Key records by name: warm cache entries directly, the rest queried concurrently."""
        found: dict[str, Lookup | BaseException] = {}
        missing = []
        for name in names:
            hit = ctx.resolver.cached(name, "TXT")
            if hit is None:
                missing.append(name)
            else:
                found[name] = hit
        if missing:
            answers = await asyncio.gather(
                *(ctx.resolver.query(n, "TXT") for n in missing), return_exceptions=True
            )
            found.update(zip(missing, answers, strict=True))
        return found

    def _prepare(self, f: HeaderField, now: float, settings: DkimConfig) -> _Candidate:
        try:
            tags = parse_tag_list(f.raw_value)
        except Problem as exc:
            return _Candidate(f, {}, problem=exc)
        c = _Candidate(f, tags)
        try:
            c.sig = parse_signature(tags, now)
        except Problem as exc:
            c.problem = exc
            return c
        if "from" not in c.sig.headers:
            c.from_unsigned = True
            if settings.require_from_signed:
                c.problem = Problem(
                    Result.PERMERROR, "From not signed",
                    "the signature does not cover the From header field (RFC 6376 §6.1.1)",
                )
        return c

    def _key(self, sig: Signature, lookup: Lookup | BaseException) -> PublicKey:
        name = sig.key_name
        if isinstance(lookup, BaseException):
            raise Problem(
                Result.TEMPERROR, "key unavailable", f"the key lookup at {name} failed: {lookup}"
            )
        if lookup.status is Status.TEMPERROR:
            raise Problem(
                Result.TEMPERROR, "key unavailable",
                f"the DNS lookup of the key at {name} failed ({lookup.error or 'no answer'})",
            )
        if lookup.status is Status.NXDOMAIN or not lookup.records:
            raise Problem(
                Result.PERMERROR, "no key for signature", f"there is no key record at {name}"
            )
        key = self.keys.select(lookup.records)
        check_key(sig, key)
        return key

    def _evaluate(
        self, c: _Candidate, lookups: dict[str, Lookup | BaseException], view: MessageView,
        settings: DkimConfig,
    ) -> list[Finding]:
        out: list[Finding] = []
        sig = c.sig
        domain = sig.domain if sig else _text(c.tags.get("d", b"")).lower()
        if c.from_unsigned:
            out.append(
                self.finding(
                    "DKIM_FROM_NOT_SIGNED", Result.POLICY,
                    f"the DKIM signature by {domain} does not cover the From header field, so "
                    "anyone could change the visible sender without breaking it",
                )
            )
        verification: Verification | None = None
        key: PublicKey | None = None
        problem = c.problem
        if sig is not None and problem is None:
            try:
                key = self._key(sig, lookups[sig.key_name])
                verification = verify(sig, key, view, c.field, settings.min_rsa_bits)
            except Problem as exc:
                problem = exc
        if problem is not None:
            result, reason, detail = problem.result, problem.reason, problem.detail
        else:
            assert verification is not None
            result, reason, detail = verification.result, verification.reason, verification.detail
        if key is not None and key.key_type == "rsa" and key.bits < settings.min_rsa_bits:
            out.append(
                self.finding(
                    "DKIM_WEAK_KEY", Result.POLICY,
                    f"{domain} signs with a {key.bits}-bit RSA key; at least "
                    f"{settings.min_rsa_bits} bits are required (RFC 8301)",
                )
            )
        out.insert(0, self._method_result(c, domain, result, reason, detail, key))
        if verification is not None and verification.unsigned_octets and result in (
            Result.PASS, Result.POLICY,
        ):
            out.append(
                self.finding(
                    "DKIM_LENGTH_UNSIGNED_CONTENT", Result.POLICY,
                    f"the signature by {domain} covers only the first {sig.length if sig else 0} "
                    f"octets of the body; {verification.unsigned_octets} octets after them are "
                    "not signed and could have been added by anyone",
                    advice="The end of this message is not covered by the sender's signature; "
                    "text or links there may have been added by someone else.",
                )
            )
        return out

    def _method_result(
        self, c: _Candidate, domain: str, result: Result, reason: str, detail: str,
        key: PublicKey | None,
    ) -> Finding:
        tags = c.tags
        selector = c.sig.selector if c.sig else _text(tags.get("s", b"")).lower()
        who = f"DKIM signature by {domain or 'an unnamed domain'}"
        if selector:
            who += f" (selector {selector})"
        text = f"{who} {_PREFIX[result]}: {detail}"
        if key is not None and key.testing:
            text += " (the domain marks this key as testing, t=y)"
        properties = [("header.d", domain)]
        if "i" in tags:
            identity = c.sig.identity if c.sig else None
            properties.append(("header.i", _clean(identity) if identity else _text(tags["i"])))
        b = tags.get("b", b"")
        b_head = b[:40].translate(None, _FWS)  # the first 8 characters without folding
        if len(b_head) < 8:
            b_head = b.translate(None, _FWS)
        properties += [
            ("header.s", selector),
            ("header.a", c.sig.algorithm if c.sig else _text(tags.get("a", b"")).lower()),
            ("header.b", _text(b_head[:8])),
        ]
        advice = _ADVICE.get(result)
        return self.finding(
            _SYMBOLS[result], result, text,
            advice=advice.format(d=domain or "the sender") if advice else "",
            method_result=True, properties=tuple([p for p in properties if p[1]]), reason=reason,
        )


def _text(value: bytes) -> str:
    return _clean(value.decode("ascii", "replace"))


def _clean(text: str) -> str:
    """Text fit for a header field or a log line: printable ASCII only, bounded length."""
    if not (text.isascii() and text.isprintable() and " " not in text):
        text = "".join(ch for ch in text if "!" <= ch <= "~")
    return text[:255]
