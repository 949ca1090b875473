"""The reference point: plain dkimpy + pyspf + a minimal DMARC by hand, DNS from the zone data.

What a careful Python milter would do without mailward: `dkim.DKIM.verify` on every signature,
`spf.check2` for the MAIL FROM identity, `dkim.arc_verify` when there is an ARC chain, and an
RFC 7489-style DMARC lookup (with RFC 9989 np=) using the public suffix list. DNS answers come
from an in-process dict (the zone data), so this is the "cached" baseline: no DNS cost at all.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dkim
import spf
from dkim.util import InvalidTagValueList, parse_tag_value
from publicsuffixlist import PublicSuffixList

from mailward.dns import ZoneBackend, normalize


@dataclass(slots=True)
class BaselineResult:
    spf: str
    dkim: list[tuple[str, bool]]  # (d=, verified) per signature
    arc: str | None
    dmarc: str  # pass | fail | none | permerror
    policy: str | None
    disposition: str


class ZoneDns:
    """The zone data in the shapes dkimpy's ``dnsfunc`` and pyspf's ``DNSLookup`` expect."""

    def __init__(self, backend: ZoneBackend) -> None:
        self.records = backend.records

    def _resolve(self, name: str, rdtype: str, depth: int = 0) -> list[Any] | None:
        entry = self.records.get(name)
        if entry is None:
            return None
        if rdtype in entry:
            return entry[rdtype]
        if "CNAME" in entry and depth < 8:
            return self._resolve(entry["CNAME"][0], rdtype, depth + 1)
        return []

    def txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy: the first TXT record of ``name`` (bytes), or None."""
        key = normalize(name.decode("ascii", "replace") if isinstance(name, bytes) else name)
        records = self._resolve(key, "TXT")
        return records[0] if records else None

    def spf_lookup(self, name: str, qtype: str, tcpfallback: bool = True,
                   timeout: float = 30) -> list[tuple[tuple[str, str], Any]]:
        """pyspf: ``[((name, type), value), ...]`` as its dnspython adapter returns."""
        key = normalize(name)
        entry = self.records.get(key)
        if entry is None:
            return []
        if qtype not in entry and "CNAME" in entry:
            return [((key, "CNAME"), entry["CNAME"][0])]
        values = entry.get(qtype, [])
        if qtype in ("TXT", "SPF"):
            return [((key, qtype), tuple(v[i : i + 255] for i in range(0, len(v), 255)))
                    for v in values]
        return [((key, qtype), v) for v in values]

    def exists(self, name: str) -> bool:
        entry = self.records.get(normalize(name))
        return bool(entry) and any(t in entry for t in ("A", "AAAA", "MX"))


@contextlib.contextmanager
def pyspf_dns(zone: ZoneDns) -> Iterator[None]:
    """Route pyspf's DNS through the zone data (pyspf's documented hook: ``spf.DNSLookup``)."""
    saved = spf.DNSLookup
    spf.DNSLookup = zone.spf_lookup
    try:
        yield
    finally:
        spf.DNSLookup = saved


class Baseline:
    """dkimpy + pyspf + DMARC by hand; one instance evaluates many messages."""

    def __init__(self, backend: ZoneBackend, trusted_sealers: list[str]) -> None:
        self.zone = ZoneDns(backend)
        self.psl = PublicSuffixList()
        self.trusted = {d.lower() for d in trusted_sealers}

    def org(self, domain: str) -> str:
        return self.psl.privatesuffix(domain) or domain

    def evaluate(self, raw: bytes, ip: str, helo: str, mail_from: str) -> BaselineResult:
        spf_result, _explanation = spf.check2(i=ip, s=mail_from, h=helo)
        verifier = dkim.DKIM(raw, minkey=1024)
        signatures = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"]
        dkim_results = []
        for index, value in enumerate(signatures):
            try:
                domain = parse_tag_value(value).get(b"d", b"").decode("ascii", "replace")
            except InvalidTagValueList:
                domain = ""
            try:
                ok = bool(verifier.verify(idx=index, dnsfunc=self.zone.txt))
            except dkim.DKIMException:
                ok = False
            dkim_results.append((domain.lower(), ok))
        from_values = [v for n, v in verifier.headers if n.lower() == b"from"]
        addresses = email.utils.getaddresses([v.decode("utf-8", "replace") for v in from_values])
        from_domain = ""
        if len(addresses) == 1 and "@" in addresses[0][1]:
            from_domain = addresses[0][1].rpartition("@")[2].lower().rstrip(".")
        dmarc, policy = self._dmarc(from_domain, spf_result, mail_from or f"x@{helo}",
                                    dkim_results)
        arc = None
        if any(n.lower() == b"arc-seal" for n, _v in verifier.headers):
            arc = self._arc(raw)
        return BaselineResult(spf_result, dkim_results, arc, dmarc, policy,
                              self._disposition(dmarc, policy, spf_result, arc))

    def _dmarc_record(self, domain: str) -> tuple[dict[bytes, bytes] | None, bool]:
        """(tags, found at the From domain itself) or (None, False)."""
        org = self.org(domain)
        for name, own in ((domain, True), (org, False)):
            if not own and org == domain:
                break
            text = self.zone.txt(f"_dmarc.{name}")
            if text and text.startswith(b"v=DMARC1"):
                try:
                    return parse_tag_value(text.replace(b" ", b"")), own
                except InvalidTagValueList:
                    return {}, own
        return None, False

    def _dmarc(self, from_domain: str, spf_result: str, mail_from: str,
               dkim_results: list[tuple[str, bool]]) -> tuple[str, str | None]:
        if not from_domain:
            return "permerror", None
        tags, own = self._dmarc_record(from_domain)
        if tags is None:
            return "none", None
        if b"p" not in tags:
            return "permerror", None
        org_from = self.org(from_domain)
        strict_dkim = tags.get(b"adkim") == b"s"
        strict_spf = tags.get(b"aspf") == b"s"
        for domain, ok in dkim_results:
            if ok and (domain == from_domain if strict_dkim else self.org(domain) == org_from):
                return "pass", None
        spf_domain = mail_from.rpartition("@")[2].lower()
        if spf_result == "pass" and (
            spf_domain == from_domain if strict_spf else self.org(spf_domain) == org_from
        ):
            return "pass", None
        policy = tags[b"p"]
        if not own:
            policy = tags.get(b"sp", policy)
            if b"np" in tags and not self.zone.exists(from_domain):
                policy = tags[b"np"]
        return "fail", policy.decode("ascii", "replace")

    def _arc(self, raw: bytes) -> str:
        cv, results, _reason = dkim.arc_verify(raw, dnsfunc=self.zone.txt)
        if cv == dkim.CV_Pass and results:
            sealer = results[0].get("as-domain", b"")
            sealer = sealer.decode() if isinstance(sealer, bytes) else str(sealer)
            return "pass-trusted" if sealer.lower() in self.trusted else "pass"
        return cv.decode() if isinstance(cv, bytes) else str(cv)

    def _disposition(self, dmarc: str, policy: str | None, spf_result: str,
                     arc: str | None) -> str:
        if dmarc == "fail":
            if arc == "pass-trusted":
                return "accept"
            return {"reject": "reject", "quarantine": "quarantine"}.get(policy or "", "tag")
        if dmarc == "permerror" or (dmarc == "none" and spf_result == "fail"):
            return "tag"
        return "accept"
