"""Campaigns: the logged messages that share a sender, Subject, body or link with one message,
and every recipient they reached, so an administrator can warn those people or purge the mail.

Grouping is one step from the message named (the seed): a message belongs to its campaign when
it was received within the window around the seed and has the seed's envelope sender or From
address, the seed's Subject, the seed's body fingerprint (SHA-256 of the body) or one of the
seed's links. Every message says which of these it shares (``matched_by``), so mail that only
shares a busy sender address can be told apart from copies of the same body.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from mailward.store.models import URL_LENGTH

if TYPE_CHECKING:
    from mailward.message import ParsedHeaders
    from mailward.store import Store, StoredDelivery, StoredTransaction

DEFAULT_WINDOW = timedelta(hours=72)
CRITERIA = ("sender", "subject", "body", "url")
SEED = "seed"
SAME_MESSAGE_ID = "message-id"
# the fingerprint of an empty body (sha256 of nothing): joins no campaign
EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
MAX_MESSAGE_URLS = 50  # links kept per message for grouping
_DEFAULT_PORTS = {"http": 80, "https": 443}
# dispositions whose message never reached anyone
REFUSED = frozenset({"reject", "tempfail"})
# per-recipient statuses meaning the message is (or is being) delivered to that recipient
REACHED = frozenset({"accepted", "delivered", "deferred", "submitted"})


@dataclass(frozen=True, slots=True)
class CampaignMessage:
    """One message of a campaign: what it shares with the seed and what became of it for each
    recipient (``refused``, ``quarantined``, ``accepted``, or the last delivery status)."""

    transaction: StoredTransaction
    matched_by: tuple[str, ...]
    urls: tuple[str, ...]
    statuses: tuple[tuple[str, str], ...]  # (recipient, status) in envelope order


@dataclass(frozen=True, slots=True)
class CampaignRecipient:
    """One address that a message of the campaign was sent to."""

    address: str
    messages: tuple[tuple[str, str], ...]  # (queue id, status), newest first

    @property
    def reached(self) -> bool:
        """Whether at least one of these messages was (or is being) delivered to it."""
        return any(status in REACHED for _, status in self.messages)


@dataclass(frozen=True, slots=True)
class Campaign:
    """The seed, what was searched for, the messages found (newest first) and recipients."""

    seed: StoredTransaction
    since: datetime
    until: datetime
    searched: dict[str, tuple[str, ...]]  # criterion -> the seed's values
    messages: list[CampaignMessage]
    recipients: list[CampaignRecipient]
    truncated: bool  # some criterion matched more messages than the limit

    def count(self, criterion: str) -> int:
        """How many messages share ``criterion`` with the seed."""
        return sum(1 for m in self.messages if criterion in m.matched_by)


def normalize_url(href: str) -> str | None:
    """The form a link is grouped by: ``scheme://host[:port]/path``, host in lower case (IDNA
    for international names), no user info, query or fragment, default port and a lone "/"
    dropped. None for anything that is not an http(s) link with a host."""
    split = _split_url(href)
    return None if split is None else split[0]


_NETLOC_END = re.compile(r"[/?#\\]")
_PATH_END = re.compile(r"[?#]")
_BAD_HOST = re.compile(r"[^a-z0-9.\-_\[\]:]")


def _split_url(href: str) -> tuple[str, str] | None:
    """(normalized URL, host) of an http(s) link, or None."""
    text = href.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        if not text.startswith("//"):
            return None
        scheme, rest = "http", text[2:]
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return None
    cut = _NETLOC_END.search(rest)
    netloc, tail = (rest, "") if cut is None else (rest[: cut.start()], rest[cut.start() :])
    hostport = netloc.rpartition("@")[2].lower()
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            return None
        port_text = after[1:]
    else:
        host, _, port_text = hostport.partition(":")
    if port_text and not (port_text.isdigit() and int(port_text[:6]) <= 65535):
        return None
    host = host.rstrip(".")
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if not host or _BAD_HOST.search(host):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port_text and int(port_text) != _DEFAULT_PORTS[scheme]:
        netloc += f":{int(port_text)}"
    path = tail if tail[:1] == "/" else ""
    cut = _PATH_END.search(path)
    if cut is not None:
        path = path[: cut.start()]
    if path == "/":
        path = ""
    return f"{scheme}://{netloc}{path}"[:URL_LENGTH], host


def _is_site_host(host: str, site_domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in site_domains)


def normalized_urls(hrefs: Iterable[str], site_domains: Iterable[str] = ()) -> list[str]:
    """Distinct normalized links, in order, without links to the site's own domains (they are
    in every internal signature and would join unrelated mail); at most MAX_MESSAGE_URLS."""
    site = [d.lower().rstrip(".") for d in site_domains]
    out: list[str] = []
    seen: set[str] = set()
    for href in dict.fromkeys(hrefs):
        split = _split_url(href)
        if split is None or split[0] in seen or _is_site_host(split[1], site):
            continue
        seen.add(split[0])
        out.append(split[0])
        if len(out) >= MAX_MESSAGE_URLS:
            break
    return out


def message_urls(parsed: ParsedHeaders, site_domains: Iterable[str] = ()) -> list[str]:
    """The links of a message, normalized for ``record_transaction(urls=...)``: http(s) URLs in
    its text and HTML parts (transfer encodings decoded), attachments skipped.

    A plain scan for "://" rather than an HTML parse (about 0.05 ms for a 30 KB message; the
    content check's full ``textparts.extract`` costs ten times that): when that check's
    ``TextView`` is at hand, pass its links to ``normalized_urls`` instead.
    """
    from mailward.textparts import MimeParts

    found: list[str] = []
    for part in MimeParts(parsed):
        if part.attachment or part.ctype not in ("text/plain", "text/html", ""):
            continue
        found.extend(_scan_links(part.text()))
        if len(found) >= _MAX_RAW_LINKS:
            break
    return normalized_urls(found, site_domains)


_MAX_RAW_LINKS = 500
_URL_TAIL = re.compile(r"[^\s<>\"'()\[\]{}]+")


def _scan_links(text: str) -> list[str]:
    """http(s) URLs in text or HTML source (an href's quote ends the URL like a space)."""
    out: list[str] = []
    i = text.find("://")
    while i >= 0 and len(out) < _MAX_RAW_LINKS:
        if text[i - 5 : i].lower() == "https":
            start = i - 5
        elif text[i - 4 : i].lower() == "http":
            start = i - 4
        else:
            start = -1
        if start >= 0 and (start == 0 or not text[start - 1].isalnum()):
            match = _URL_TAIL.match(text, i + 3)
            if match is not None:
                out.append(text[start : match.end()].rstrip(".,;:!?"))
                i = match.end() - 3
        i = text.find("://", i + 3)
    return out


def find_seed(store: Store, ident: str) -> list[StoredTransaction]:
    """The messages ``ident`` names: the one with that queue id, else every one with that
    Message-ID (with or without angle brackets), oldest first."""
    ident = ident.strip()
    if not ident:
        return []
    found = store.transaction(ident)
    if found is not None:
        return [found]
    same = store.find_transactions(message_id=ident, limit=100)
    return sorted(same, key=lambda t: (t.received_at, t.id))


def find_campaign(
    store: Store,
    ident: str,
    *,
    window: timedelta = DEFAULT_WINDOW,
    by: Sequence[str] = CRITERIA,
    limit: int = 1000,
) -> Campaign | None:
    """The campaign of the message with queue id or Message-ID ``ident`` (None if no such
    message is logged): messages within ``window`` before or after it sharing any criterion
    in ``by`` (at most ``limit`` per criterion)."""
    unknown = [c for c in by if c not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criteria {', '.join(unknown)}; use {', '.join(CRITERIA)}")
    if window <= timedelta(0):
        raise ValueError("the window must be positive")
    seeds = find_seed(store, ident)
    if not seeds:
        return None
    seed = seeds[0]
    seed_urls = tuple(store.transaction_urls([seed.id]).get(seed.id, ()))
    searched = _searched(seed, seed_urls, by)
    since, until = seed.received_at - window, seed.received_at + window
    matches = store.related_transaction_ids(
        since=since,
        until=until,
        senders=searched.get("sender", ()),
        subjects=searched.get("subject", ()),
        body_sha256s=searched.get("body", ()),
        urls=searched.get("url", ()),
        limit=limit,
    )
    truncated = _truncated(matches, limit)
    matched: dict[str, set[str]] = {tid: set(c) for tid, c in matches.items()}
    matched.setdefault(seed.id, set()).add(SEED)
    for other in seeds[1:]:
        matched.setdefault(other.id, set()).add(SAME_MESSAGE_ID)
    transactions = store.transactions_by_ids(list(matched))
    urls = store.transaction_urls(list(matched)) if "url" in searched else {}
    deliveries = store.deliveries_of([t.queue_id for t in transactions])
    messages = [
        CampaignMessage(
            t,
            tuple(c for c in (SEED, SAME_MESSAGE_ID, *CRITERIA) if c in matched[t.id]),
            tuple(u for u in urls.get(t.id, ()) if u in seed_urls),
            _statuses(t, deliveries.get(t.queue_id, ())),
        )
        for t in transactions
    ]
    return Campaign(seed, since, until, searched, messages, _recipients(messages), truncated)


def _searched(
    seed: StoredTransaction, urls: Sequence[str], by: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    values: dict[str, tuple[str, ...]] = {
        "sender": tuple(dict.fromkeys(a for a in (seed.mail_from, seed.from_address) if a)),
        "subject": (seed.subject,) if seed.subject and seed.subject.strip() else (),
        "body": (seed.body_sha256,)
        if seed.body_sha256 and seed.body_sha256 != EMPTY_BODY_SHA256
        else (),
        "url": tuple(urls),
    }
    return {c: values[c] for c in CRITERIA if c in by and values[c]}


def _truncated(matches: dict[str, set[str]], limit: int) -> bool:
    per_criterion: dict[str, int] = {}
    for criteria in matches.values():
        for c in criteria:
            per_criterion[c] = per_criterion.get(c, 0) + 1
    # "sender" runs two queries (envelope, From) of `limit` each
    return any(n >= limit for n in per_criterion.values())


def _statuses(
    tx: StoredTransaction, deliveries: Sequence[StoredDelivery]
) -> tuple[tuple[str, str], ...]:
    last = {d.recipient: d.status for d in deliveries}  # attempts come in order
    if tx.disposition in REFUSED:
        default = "refused"
    elif tx.disposition == "quarantine":
        default = "quarantined"
    elif tx.disposition == "submitted":
        default = "submitted"
    else:
        default = "accepted"
    return tuple(
        (r, default if default in ("refused", "quarantined") else last.get(r, default))
        for r in tx.recipients
    )


def _recipients(messages: Sequence[CampaignMessage]) -> list[CampaignRecipient]:
    by_address: dict[str, list[tuple[str, str]]] = {}
    for message in messages:  # newest first
        for address, status in message.statuses:
            by_address.setdefault(address, []).append((message.transaction.queue_id, status))
    return [CampaignRecipient(a, tuple(by_address[a])) for a in sorted(by_address)]
