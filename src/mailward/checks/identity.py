"""Check `identity`: impersonation of the site's people, roles and domains.

Display names imitating protected people and roles, email addresses hidden in display names,
the site's own domain used without authenticating as the site, lookalike domains of the site
and its partners, Reply-To / Return-Path leading to another organization, and first contact: an
address the site has never dealt with writing as a protected identity (asked of the sender
history in the context, so the check never touches the store).
"""

from __future__ import annotations

import re

from mailward import protected
from mailward.checks.base import Check, CheckContext
from mailward.config import Config
from mailward.history import Contact
from mailward.lookalike import DomainMatcher, Folder, Lookalike, NameMatcher, ProtectedName
from mailward.message import Address, HeaderField, ParsedHeaders, parse_addresses
from mailward.model import Finding, Result, Transaction
from mailward.sender import SenderAuth, SiteDomains, sender_auth

_EMAIL_IN_NAME = re.compile(r"[a-z0-9._%+'=-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)
_ANGLE = re.compile(r"<([^<>]*)>")
_READ = frozenset({"reply-to", "list-id", "list-post", "return-path"})
MAX_FROM = 5

ADVICE_NAME = (
    "Our own people and teams write from our own addresses. Do not reply with information, open "
    "links or attachments, or follow instructions in this message; if it matters, contact them "
    "through an address or phone number you already know, and report the message."
)
ADVICE_FIRST_CONTACT = (
    "This address has never written to us before. If someone you know says they have a new "
    "address, confirm it with them by phone or through an address you already use before you "
    "act on the message."
)
ADVICE_OWN_DOMAIN = (
    "This message claims to come from our own organization but did not come through our mail "
    "system. Treat it as forged: do not reply, click links or follow its instructions, and "
    "report it."
)
ADVICE_LOOKALIKE = (
    "The sender's domain is made to look like {target} but belongs to someone else. Do not "
    "reply, click links or open attachments; contact {target} through an address or phone "
    "number you already know."
)
ADVICE_NAME_ADDRESS = (
    "The sender's name shows the address {shown}, but the message really comes from {real}. "
    "Check the real address before you answer or act."
)
ADVICE_REPLY_TO = (
    "Replies to this message would go to {reply}, not to the sender's organization ({sender}). "
    "Check the address before you answer."
)
ADVICE_RETURN_PATH = (
    "The message was sent through {path}, a different organization than the sender's ({sender})."
)


class IdentityCheck(Check):
    """Impersonation of protected people, roles and domains (see the module docstring)."""

    name = "identity"
    symbols = frozenset(
        {
            "IDENTITY_DISPLAY_NAME_PROTECTED",
            "IDENTITY_FIRST_CONTACT",
            "IDENTITY_HISTORY_TEMPERROR",
            "IDENTITY_DISPLAY_NAME_ADDRESS",
            "IDENTITY_DISPLAY_NAME_OWN_ADDRESS",
            "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED",
            "IDENTITY_LOOKALIKE_DOMAIN",
            "IDENTITY_HOMOGLYPH_DOMAIN",
            "IDENTITY_REPLY_TO_DIVERGENT",
            "IDENTITY_RETURN_PATH_DIVERGENT",
        }
    )
    depends = ("spf", "dkim", "dmarc")
    budget = 2.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from publicsuffixlist import PublicSuffixList

        cfg = config.identity
        self.site = SiteDomains.of(config.site.domains)
        self.folder = Folder()
        self.names = NameMatcher(protected.load(config), Folder())
        self.domains = DomainMatcher(
            [*self.site.domains, *cfg.partner_domains], self.folder, PublicSuffixList()
        )

    def reload_protected(self) -> int:
        """Load the protected identities again (their files changed) and use them from now on;
        returns how many there are. Raises ConfigError and keeps the ones in use when a file
        is broken. May run in a thread: the new matcher (with a folder of its own) replaces
        the old one in one assignment."""
        names = protected.load(self.config)
        self.names = NameMatcher(names, Folder())
        return len(names)

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        parsed = tx.message.parsed
        senders = parsed.from_addresses[:MAX_FROM]
        if not senders:
            return []
        auth = sender_auth(tx, ctx, self.site, self.domains.org)
        findings: list[Finding] = []
        for address in senders:
            found = self._display_name(address, auth)
            findings.extend(found)
            claimed = next((f for f in found if f.symbol == "IDENTITY_DISPLAY_NAME_PROTECTED"),
                           None)
            if claimed is not None and ctx.history is not None:
                first = await self._first_contact(address, claimed, ctx)
                if first is not None:
                    findings.append(first)
        from_domain = parsed.from_domain
        if from_domain and self.site.owns(from_domain) and not auth.as_site:
            findings.append(self._own_domain(from_domain, auth))
        fields = _fields(parsed)
        reply_to = parse_addresses([f.value for f in fields.get("reply-to", ())])[:MAX_FROM]
        path = _return_path(tx, fields)
        findings.extend(self._lookalikes(senders, reply_to, path))
        if from_domain:
            lists = self._list_orgs(fields)
            findings.extend(self._divergence(from_domain, reply_to, path, lists))
        return findings

    # --- display names ------------------------------------------------------------------

    def _display_name(self, address: Address, auth: SenderAuth) -> list[Finding]:
        shown = address.display_name.strip().strip("\"'")
        if not shown:
            return []
        out = []
        protected = self.names.match(shown)
        if protected is not None:
            finding = self._protected_name(shown, protected, address, auth)
            if finding is not None:
                out.append(finding)
        embedded = _EMAIL_IN_NAME.search(self.folder.fold(shown))
        if embedded is not None:
            hidden = embedded.group(0).lower().strip(".'")
            hidden_domain = hidden.rpartition("@")[2]
            real_domain = address.domain
            if hidden != address.address.lower() and (
                not real_domain or self.domains.org(hidden_domain) != self.domains.org(real_domain)
            ):
                ours = self.domains.owner(hidden_domain) is not None
                out.append(
                    self.finding(
                        f"IDENTITY_DISPLAY_NAME_{'OWN_ADDRESS' if ours else 'ADDRESS'}",
                        Result.POLICY,
                        f"the sender's name shows the address {hidden}, but the message comes "
                        f"from {address.address or 'no address'}",
                        advice=ADVICE_NAME_ADDRESS.format(shown=hidden, real=address.address),
                        properties=(("display.address", hidden), ("from", address.address)),
                    )
                )
        return out

    def _protected_name(
        self, shown: str, protected: ProtectedName, address: Address, auth: SenderAuth
    ) -> Finding | None:
        domain = address.domain
        outside = not self.site.owns(domain)
        if address.address.lower() in protected.addresses and auth.authenticated:
            return None  # the person's own known address, authenticated
        if not outside and auth.as_site:
            return None
        same = "" if _fold_eq(shown, protected.name) else f" (imitating '{protected.name}')"
        if outside:
            detail = (
                f"it uses the name '{shown}'{same} but was sent from an outside address, "
                f"{domain or address.address or 'no address'}"
            )
        else:
            detail = (
                f"it uses the name '{shown}'{same} with our address {address.address}, but was "
                f"not confirmed to come from our mail system ({auth.how})"
            )
        return self.finding(
            "IDENTITY_DISPLAY_NAME_PROTECTED",
            Result.POLICY,
            detail,
            advice=ADVICE_NAME,
            properties=(
                ("identity.name", protected.name),
                ("display.name", shown),
                ("from.domain", domain),
            ),
            reason="outside address" if outside else "not authenticated as the site",
        )

    async def _first_contact(
        self, address: Address, claimed: Finding, ctx: CheckContext
    ) -> Finding | None:
        """A finding when the sender history has never seen ``address`` (which writes as a
        protected identity); a temperror finding when the history cannot be read."""
        assert ctx.history is not None
        name = dict(claimed.properties).get("identity.name", "")
        shown = address.address or "no address"
        contact = await ctx.history.contact(address.address, ctx.now)
        if contact is Contact.KNOWN:
            return None
        if contact is Contact.UNAVAILABLE:
            return self.finding(
                "IDENTITY_HISTORY_TEMPERROR",
                Result.TEMPERROR,
                f"could not tell whether {shown} has written to us before: the sender history "
                "did not answer",
                properties=(("from", shown),),
            )
        return self.finding(
            "IDENTITY_FIRST_CONTACT",
            Result.POLICY,
            f"{shown} has never written to us before and uses the name '{name}'",
            advice=ADVICE_FIRST_CONTACT,
            properties=(("from", shown), ("identity.name", name)),
        )

    def _own_domain(self, domain: str, auth: SenderAuth) -> Finding:
        why = "the answer was temporarily unavailable" if auth.unknown else auth.how
        return self.finding(
            "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED",
            Result.POLICY,
            f"it uses our own domain {domain} in From but did not prove it comes from our mail "
            f"system ({why})",
            advice=ADVICE_OWN_DOMAIN,
            properties=(("from.domain", domain),),
        )

    # --- lookalike domains --------------------------------------------------------------

    def _lookalikes(
        self, senders: list[Address], reply_to: list[Address], path: str
    ) -> list[Finding]:
        seen: dict[str, tuple[str, Lookalike]] = {}
        candidates = [("From", a.domain) for a in senders] + [
            ("Reply-To", a.domain) for a in reply_to
        ]
        if path:
            candidates.append(("Return-Path", path.rpartition("@")[2].lower()))
        for header, domain in candidates:
            if domain and domain not in seen:
                found = self.domains.lookalike(domain)
                if found is not None:
                    seen[domain] = (header, found)
        out = []
        for symbol, homoglyph in (
            ("IDENTITY_HOMOGLYPH_DOMAIN", True),
            ("IDENTITY_LOOKALIKE_DOMAIN", False),
        ):
            hits = [(h, la) for h, la in seen.values() if la.homoglyph is homoglyph]
            if not hits:
                continue
            header, first = hits[0]
            detail = "; ".join(f"the {h} domain {la.describe()}" for h, la in hits)
            out.append(
                self.finding(
                    symbol,
                    Result.POLICY,
                    detail,
                    advice=ADVICE_LOOKALIKE.format(target=first.target),
                    properties=(
                        ("lookalike.domain", first.shown),
                        ("lookalike.target", first.target),
                        ("lookalike.header", header),
                    ),
                    reason=first.kind,
                )
            )
        return out

    # --- Reply-To and Return-Path -------------------------------------------------------

    def _list_orgs(self, fields: dict[str, list[HeaderField]]) -> set[str]:
        """Organizational domains of a mailing list the message came through (List-Id,
        List-Post): lists legitimately set Reply-To and the envelope sender to themselves."""
        out = set()
        for name in ("list-id", "list-post"):
            value = _first(fields, name)
            if not value:
                continue
            for inner in _ANGLE.findall(value) or [value]:
                host = inner.rpartition("@")[2] if "@" in inner else inner
                host = host.strip().rstrip(".").lower()
                if "." in host and " " not in host:
                    out.add(self.domains.org(host))
        return out

    def _divergence(
        self, from_domain: str, reply_to: list[Address], path: str, lists: set[str]
    ) -> list[Finding]:
        out = []
        from_org = self.domains.org(from_domain)
        for reply in reply_to:
            domain = reply.domain
            if not domain:
                continue
            org = self.domains.org(domain)
            if org != from_org and org not in lists:
                out.append(
                    self.finding(
                        "IDENTITY_REPLY_TO_DIVERGENT",
                        Result.POLICY,
                        f"replies would go to {reply.address}, another organization ({org}) "
                        f"than the sender's ({from_org})",
                        advice=ADVICE_REPLY_TO.format(reply=reply.address, sender=from_org),
                        properties=(("reply-to.domain", domain), ("from.domain", from_domain)),
                    )
                )
                break
        path_domain = path.rpartition("@")[2].lower() if path else ""
        if path_domain and "." in path_domain:
            org = self.domains.org(path_domain)
            if org != from_org and org not in lists:
                out.append(
                    self.finding(
                        "IDENTITY_RETURN_PATH_DIVERGENT",
                        Result.POLICY,
                        f"the envelope sender {path} is another organization ({org}) than the "
                        f"From domain's ({from_org})",
                        advice=ADVICE_RETURN_PATH.format(path=org, sender=from_org),
                        properties=(("return-path.domain", path_domain),),
                    )
                )
        return out


def _fields(parsed: ParsedHeaders) -> dict[str, list[HeaderField]]:
    """The header fields this check reads, by lower-case name, in one pass over the header."""
    out: dict[str, list[HeaderField]] = {}
    for f in parsed.fields:
        name = f.name.lower()
        if name in _READ:
            out.setdefault(name, []).append(f)
    return out


def _first(fields: dict[str, list[HeaderField]], name: str) -> str | None:
    found = fields.get(name)
    return found[0].value if found else None


def _return_path(tx: Transaction, fields: dict[str, list[HeaderField]]) -> str:
    """The envelope sender (MAIL FROM), else a Return-Path header; '' for the null sender."""
    if tx.envelope.mail_from:
        return tx.envelope.mail_from.strip("<>").strip()
    value = _first(fields, "return-path")
    if not value:
        return ""
    inner = _ANGLE.findall(value)
    return (inner[0] if inner else value).strip()


def _fold_eq(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())
