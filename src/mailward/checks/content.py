"""Check `content`: social-engineering requests in what the reader sees.

Phrase rules (EN, DE, FR, ES) over the decoded text of every text part (HTML converted):
password instructions, requests for credentials, codes and secret files, account threats,
urgency, secrecy and bank-detail changes; links whose visible text names another domain than
their target, links to lookalike domains, login forms. A request from a sender that is not
authenticated, or that the identity check found impersonating someone, adds a combination finding.
"""

from __future__ import annotations

import re

from mailward.checks.base import Check, CheckContext
from mailward.config import Config
from mailward.lookalike import DomainMatcher, Folder, Lookalike
from mailward.message import decode_words
from mailward.model import Finding, Result, Transaction
from mailward.phrases import Hit, PhraseRules
from mailward.sender import SenderAuth, SiteDomains, sender_auth
from mailward.textparts import Link, TextView, extract

# Identity findings that mean "the sender pretends to be someone else", in plain words.
_POSING_WORDS = {
    "IDENTITY_DISPLAY_NAME_PROTECTED": "uses the name of one of our people or teams",
    "IDENTITY_DISPLAY_NAME_ADDRESS": "shows a different address in its name",
    "IDENTITY_DISPLAY_NAME_OWN_ADDRESS": "shows one of our or our partners' addresses in its name",
    "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED": "uses our own domain without proof",
    "IDENTITY_LOOKALIKE_DOMAIN": "writes from a lookalike domain",
    "IDENTITY_HOMOGLYPH_DOMAIN": "writes from a domain spelled with lookalike letters",
}
# Phrase findings that ask the reader to hand something over or to act on an account.
REQUESTS = ("CONTENT_PASSWORD_SET", "CONTENT_CREDENTIAL_REQUEST",
            "CONTENT_SENSITIVE_FILE_REQUEST", "CONTENT_PAYMENT_CHANGE")
PHRASE_SYMBOLS = frozenset(
    {
        *REQUESTS,
        "CONTENT_ACCOUNT_THREAT",
        "CONTENT_URGENCY",
        "CONTENT_SECRECY",
    }
)
_SHOWN_DOMAIN = re.compile(
    r"^(?:https?://)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?(?=$|[/:?#])",
    re.IGNORECASE,
)
_SPECIAL_TLDS = frozenset({"example", "test", "invalid", "localhost", "local", "internal"})
MAX_LINK_REPORTS = 3

_WHAT = {
    "CONTENT_PASSWORD_SET": "it tells you to set your password to a given value",
    "CONTENT_CREDENTIAL_REQUEST": "it asks for a password, login details or a security code",
    "CONTENT_SENSITIVE_FILE_REQUEST": "it asks for a password file, key file or other secrets",
    "CONTENT_ACCOUNT_THREAT": "it threatens to suspend, lock or delete an account",
    "CONTENT_URGENCY": "it pushes you to act at once or by a deadline",
    "CONTENT_SECRECY": "it asks you to keep it secret or not to check with others",
    "CONTENT_PAYMENT_CHANGE": "it asks to change bank or payment details",
}
_ADVICE = {
    "CONTENT_PASSWORD_SET": (
        "Our administrators will never ask you to set your password to a given value. Do not "
        "do it; report the message."
    ),
    "CONTENT_CREDENTIAL_REQUEST": (
        "Never give your password or a security code to anyone, by mail, phone or a link in a "
        "message. Report the message."
    ),
    "CONTENT_SENSITIVE_FILE_REQUEST": (
        "Do not send password files, keys or other secrets by mail, whoever asks. Check the "
        "request with the person through a channel you already know."
    ),
    "CONTENT_ACCOUNT_THREAT": (
        "Threats that an account will be closed unless you act now are a common trick. Do not "
        "use the links in the message; ask the help desk you already know."
    ),
    "CONTENT_URGENCY": "Pressure to act at once is a common trick: take the time to check.",
    "CONTENT_SECRECY": (
        "A request to keep something secret from colleagues is a warning sign: check it with "
        "them."
    ),
    "CONTENT_PAYMENT_CHANGE": (
        "Confirm any change of bank or payment details by phone with a number you already "
        "know, never with the contact details in the message."
    ),
}
ADVICE_REQUEST = (
    "This request comes from a sender who did not prove who they are. Do not answer it or act "
    "on it; report the message."
)
ADVICE_EXTERNAL = (
    "This request comes from outside our organization. Check it through a channel you already "
    "know before you act."
)
ADVICE_LINK_MISMATCH = (
    "A link shows one address but leads to another. Do not click it; type the address you know "
    "yourself."
)
ADVICE_LINK_LOOKALIKE = (
    "A link leads to a site made to look like {target}. Do not click it or enter anything there."
)
ADVICE_LOGIN_FORM = (
    "The message contains a form that asks for a password. Never enter your password in a form "
    "that came by mail."
)


class ContentCheck(Check):
    """Social-engineering requests, deceptive links and login forms (see the module docstring)."""

    name = "content"
    symbols = frozenset(
        {
            *PHRASE_SYMBOLS,
            "CONTENT_LINK_MISMATCH",
            "CONTENT_LINK_MISMATCH_PROTECTED",
            "CONTENT_LINK_LOOKALIKE",
            "CONTENT_LOGIN_FORM",
            "CONTENT_REQUEST_IMPERSONATION",
            "CONTENT_REQUEST_UNAUTHENTICATED",
            "CONTENT_REQUEST_EXTERNAL_SENDER",
        }
    )
    depends = ("spf", "dkim", "dmarc", "identity")
    budget = 2.0

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from publicsuffixlist import PublicSuffixList

        self.scan_limit = max(1000, config.content.scan_limit)
        self.rules = PhraseRules.load(config.content.languages, PHRASE_SYMBOLS)
        self.site = SiteDomains.of(config.site.domains)
        self.folder = Folder()
        self.psl = PublicSuffixList()
        self.domains = DomainMatcher(
            [*self.site.domains, *config.identity.partner_domains], self.folder, self.psl
        )

    async def run(self, tx: Transaction, ctx: CheckContext) -> list[Finding]:
        parsed = tx.message.parsed
        view = extract(parsed, self.scan_limit)
        subject = decode_words(parsed.first("Subject") or "")
        text = self.folder.fold_words(subject + "\n" + view.text)
        hits = self.rules.scan(text)
        findings = [self._phrase(symbol, hit) for symbol, hit in hits.items()]
        findings.extend(self._links(view))
        if view.login_forms:
            form = view.login_forms[0]
            target = f", posting to {form.action[:120]}" if form.action else ""
            findings.append(
                self.finding(
                    "CONTENT_LOGIN_FORM",
                    Result.POLICY,
                    f"it contains a form asking for a password (in {form.where}{target})",
                    advice=ADVICE_LOGIN_FORM,
                    properties=(("form.where", form.where),),
                )
            )
        requests = [s for s in REQUESTS if s in hits]
        if view.login_forms:
            requests.append("CONTENT_LOGIN_FORM")
        if requests:
            combined = self._combination(tx, ctx, requests)
            if combined is not None:
                findings.append(combined)
        return findings

    def _phrase(self, symbol: str, hit: Hit) -> Finding:
        return self.finding(
            symbol,
            Result.POLICY,
            f"{_WHAT[symbol]} (\"{hit.excerpt}\")",
            advice=_ADVICE[symbol],
            properties=(("rule", hit.rule.name), ("language", hit.rule.language)),
            reason=hit.rule.name,
        )

    # --- links --------------------------------------------------------------------------

    def _links(self, view: TextView) -> list[Finding]:
        mismatches: list[tuple[Link, str]] = []
        lookalikes: list[tuple[Link, Lookalike]] = []
        for link in view.links:
            if not link.host:
                continue
            found = self.domains.lookalike(link.host)
            if found is not None and len(lookalikes) < MAX_LINK_REPORTS:
                lookalikes.append((link, found))
            shown = self._shown_domain(link.text)
            if (
                shown
                and len(mismatches) < MAX_LINK_REPORTS
                and self.domains.org(shown) != self.domains.org(link.host)
            ):
                mismatches.append((link, shown))
        out = []
        if mismatches:
            ours = [(link, shown) for link, shown in mismatches if self.domains.owner(shown)]
            symbol = "CONTENT_LINK_MISMATCH_PROTECTED" if ours else "CONTENT_LINK_MISMATCH"
            mismatches = ours or mismatches
            detail = "; ".join(
                f"a link shows {shown} but leads to {link.host}" for link, shown in mismatches
            )
            out.append(
                self.finding(
                    symbol,
                    Result.POLICY,
                    detail,
                    advice=ADVICE_LINK_MISMATCH,
                    properties=(
                        ("link.shown", mismatches[0][1]),
                        ("link.host", mismatches[0][0].host),
                    ),
                )
            )
        if lookalikes:
            detail = "; ".join(f"a link leads to {la.describe()}" for _, la in lookalikes)
            first = lookalikes[0][1]
            out.append(
                self.finding(
                    "CONTENT_LINK_LOOKALIKE",
                    Result.POLICY,
                    detail,
                    advice=ADVICE_LINK_LOOKALIKE.format(target=first.target),
                    properties=(("link.host", first.shown), ("lookalike.target", first.target)),
                    reason=first.kind,
                )
            )
        return out

    def _shown_domain(self, text: str) -> str | None:
        """The domain a link's visible text names, if the text is a URL or a domain name."""
        text = text.strip().strip("<>\"'()[]").lower()
        if not text or " " in text or "." not in text or "@" in text:
            return None
        match = _SHOWN_DOMAIN.match(text)
        if match is None:
            return None
        explicit = text.startswith(("http://", "https://", "www."))
        domain = match.group(0).split("://")[-1].rstrip(".")
        tld = domain.rpartition(".")[2]
        if not explicit and match.end() != len(text.rstrip("/")):
            return None
        if tld in _SPECIAL_TLDS or self.psl.publicsuffix(domain, accept_unknown=False):
            return domain
        return None

    # --- the combination ----------------------------------------------------------------

    def _combination(
        self, tx: Transaction, ctx: CheckContext, requests: list[str]
    ) -> Finding | None:
        auth = sender_auth(tx, ctx, self.site, self.domains.org)
        if auth.as_site:
            return None  # the same words from an authenticated internal sender: findings only
        posing = sorted(
            {f.symbol for f in ctx.results.get("identity", ()) if f.symbol in _POSING_WORDS}
        )
        what = _WHAT.get(requests[0], "it contains a form that asks for a password")
        properties = tuple(("request", r) for r in requests)
        if posing:
            return self.finding(
                "CONTENT_REQUEST_IMPERSONATION",
                Result.POLICY,
                f"{what}, and the sender " + " and ".join(_POSING_WORDS[p] for p in posing),
                advice=ADVICE_REQUEST,
                properties=properties,
            )
        if not auth.authenticated:
            return self.finding(
                "CONTENT_REQUEST_UNAUTHENTICATED",
                Result.POLICY,
                f"{what}, and the sender did not prove who they are ({_how(auth)})",
                advice=ADVICE_REQUEST,
                properties=properties,
            )
        return self.finding(
            "CONTENT_REQUEST_EXTERNAL_SENDER",
            Result.POLICY,
            f"{what}, from outside our organization ({auth.from_domain})",
            advice=ADVICE_EXTERNAL,
            properties=properties,
        )


def _how(auth: SenderAuth) -> str:
    return "the check could not be completed" if auth.unknown else auth.how
