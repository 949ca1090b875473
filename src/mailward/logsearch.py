"""`mailward log search` and `mailward log campaign`: the central log read by an administrator,
one line per message for people, one JSON object for scripts.

Times given without a UTC offset are UTC, and every time printed is UTC; ``--since 2h`` means
two hours ago.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mailward.campaign import CRITERIA, DEFAULT_WINDOW, Campaign, find_campaign
from mailward.message import decode_words

if TYPE_CHECKING:
    from mailward.config import Config
    from mailward.store import Store, StoredTransaction

DISPOSITIONS = ("accept", "tag", "quarantine", "reject", "tempfail", "submitted")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_AGE = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TOP_SYMBOLS = 3


class LogError(Exception):
    """A log command that cannot be carried out; printed as one line, exit status 1."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d``, ``1w`` or combinations like ``1d12h``."""
    compact = text.strip().replace(" ", "")
    pieces = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in pieces).lower() != compact.lower():
        raise LogError(f"{text!r} is not a duration like 30m, 2h, 7d or 1w")
    return timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in pieces))


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO 8601 date or time (UTC unless it carries an offset) or an age (``2h`` = two
    hours before ``now``)."""
    value = text.strip()
    if _AGE.fullmatch(value):
        return now - parse_duration(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LogError(
            f"{text!r} is neither an ISO time (2026-05-04T08:00) nor an age (2h, 7d)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def run(
    config: Config,
    args: argparse.Namespace,
    *,
    out: TextIO,
    now: datetime | None = None,
    open_store: Callable[[Config], Store] | None = None,
) -> int:
    """Carry out ``mailward log search|campaign`` (the CLI's ``args``); returns the exit status."""
    now = now or datetime.now(UTC)
    store = (open_store or _open_store)(config)
    try:
        if args.action == "search":
            return _search(store, args, out, now)
        return _campaign(store, args, out)
    finally:
        store.close()


def _open_store(config: Config) -> Store:
    from mailward.store import Store

    return Store.from_config(config.store, data_dir=Path(config.server.data_dir))


def _search(store: Store, args: argparse.Namespace, out: TextIO, now: datetime) -> int:
    filters: dict[str, Any] = {
        "since": parse_time(args.since, now) if args.since else None,
        "until": parse_time(args.until, now) if args.until else None,
        "sender": args.sender,
        "recipient": args.recipient,
        "domain": args.domain,
        "client_ip": args.ip,
        "subject": args.subject,
        "disposition": args.disposition,
        "symbol": args.symbol,
        "message_id": args.message_id,
    }
    try:
        found = store.find_transactions(
            limit=args.limit, **{k: v for k, v in filters.items() if v is not None}
        )
    except ValueError as exc:
        raise LogError(str(exc)) from None
    if args.json:
        document = {"count": len(found), "transactions": [transaction_json(t) for t in found]}
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return 0
    for tx in found:
        out.write(transaction_line(tx) + "\n")
    more = " (--limit reached: there may be more)" if len(found) == args.limit else ""
    out.write(f"{len(found)} message(s){more}\n")
    return 0


def _campaign(store: Store, args: argparse.Namespace, out: TextIO) -> int:
    window = parse_duration(args.window) if args.window else DEFAULT_WINDOW
    by = [c.strip() for c in args.by.split(",") if c.strip()] if args.by else list(CRITERIA)
    try:
        found = find_campaign(store, args.id, window=window, by=by, limit=args.limit)
    except ValueError as exc:
        raise LogError(str(exc)) from None
    if found is None:
        raise LogError(f"no logged message with queue id or Message-ID {args.id!r}")
    if args.json:
        out.write(json.dumps(campaign_json(found), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(campaign_text(found))
    return 0


# -- formatting --------------------------------------------------------------------------------


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _decoded(text: str) -> str:
    """RFC 2047 words decoded, anything unencodable replaced (so printing never fails)."""
    return decode_words(text).encode("utf-8", "replace").decode("utf-8")


def _printable(text: str | None, limit: int = 60) -> str:
    """Network text made safe for a terminal (no escape sequences), decoded and clipped."""
    if not text:
        return ""
    shown = _CONTROL.sub("?", " ".join(_decoded(text).split()))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def top_symbols(tx: StoredTransaction, count: int = TOP_SYMBOLS) -> list[str]:
    """The symbols that weighed most in the verdict (positive scores, highest first)."""
    scored = sorted((f for f in tx.findings if f.score > 0), key=lambda f: -f.score)
    return list(dict.fromkeys(f.symbol for f in scored))[:count]


def transaction_json(tx: StoredTransaction) -> dict[str, Any]:
    """Everything the log holds about one message, as JSON values."""
    return {
        "queue_id": tx.queue_id,
        "received_at": _time(tx.received_at),
        "instance": tx.instance,
        "client_ip": tx.client_ip,
        "rdns": tx.rdns,
        "helo": tx.helo,
        "auth_user": tx.auth_user,
        "message_id": tx.message_id,
        "mail_from": tx.mail_from,
        "header_from": tx.header_from,
        "from_address": tx.from_address,
        "reply_to": tx.reply_to,
        "subject": _decoded(tx.subject) if tx.subject else tx.subject,
        "size": tx.size,
        "body_sha256": tx.body_sha256,
        "disposition": tx.disposition,
        "score": tx.score,
        "forced_by": tx.forced_by,
        "recipients": list(tx.recipients),
        "top_symbols": top_symbols(tx),
        "findings": [
            {
                "check": f.check,
                "symbol": f.symbol,
                "result": f.result,
                "score": f.score,
                "detail": f.detail,
            }
            for f in tx.findings
        ],
    }


def transaction_line(tx: StoredTransaction) -> str:
    """One line: time, queue id, client IP, sender, recipients, subject, disposition, score,
    top symbols."""
    sender = f"<{_printable(tx.mail_from, 80)}>"
    if tx.from_address and tx.from_address != tx.mail_from:
        sender += f" From:{_printable(tx.from_address, 80)}"
    rcpts = ",".join(_printable(r, 80) for r in tx.recipients[:2]) or "-"
    if len(tx.recipients) > 2:
        rcpts += f"(+{len(tx.recipients) - 2})"
    symbols = ",".join(top_symbols(tx)) or "-"
    subject = _printable(tx.subject)
    return (
        f"{_time(tx.received_at)} {tx.queue_id} {tx.client_ip or '-'} {sender} -> {rcpts} "
        f'"{subject}" {tx.disposition} {tx.score:.1f} {symbols}'
    )


def campaign_json(found: Campaign) -> dict[str, Any]:
    """The campaign as one JSON object: what was searched, every message (with what it
    shares with the seed) and every recipient (with what became of each copy)."""
    return {
        "seed": found.seed.queue_id,
        "message_id": found.seed.message_id,
        "window": {"since": _time(found.since), "until": _time(found.until)},
        "searched": {c: list(v) for c, v in found.searched.items()},
        "truncated": found.truncated,
        "count": len(found.messages),
        "messages": [
            {
                **transaction_json(m.transaction),
                "matched_by": list(m.matched_by),
                "shared_urls": list(m.urls),
                "recipient_status": dict(m.statuses),
            }
            for m in found.messages
        ],
        "recipients": [
            {
                "address": r.address,
                "reached": r.reached,
                "messages": [{"queue_id": q, "status": s} for q, s in r.messages],
            }
            for r in found.recipients
        ],
    }


def campaign_text(found: Campaign) -> str:
    """The campaign for people: what was searched, one line per message, one per recipient."""
    seed = found.seed
    reached = sum(1 for r in found.recipients if r.reached)
    lines = [
        f"Campaign of {seed.queue_id} ({_printable(seed.message_id, 80) or 'no Message-ID'}), "
        f"messages received {_time(found.since)} .. {_time(found.until)}",
    ]
    for criterion, values in found.searched.items():
        shown = ", ".join(_printable(v, 80) for v in values[:5])
        if len(values) > 5:
            shown += f" (+{len(values) - 5})"
        lines.append(f"  same {criterion}: {shown}  -> {found.count(criterion)} message(s)")
    if not found.searched:
        lines.append("  nothing to search by (no sender, subject, body or links)")
    lines.append(
        f"{len(found.messages)} message(s) to {len(found.recipients)} recipient(s), "
        f"{reached} of them reached"
        + (" (a criterion hit --limit: there may be more)" if found.truncated else "")
    )
    lines.append("")
    lines.append("Messages (newest first):")
    for m in found.messages:
        lines.append(f"  {transaction_line(m.transaction)}  [{','.join(m.matched_by)}]")
    lines.append("")
    lines.append("Recipients:")
    for r in found.recipients:
        copies = ", ".join(f"{q} {s}" for q, s in r.messages)
        lines.append(f"  {'*' if r.reached else ' '} {_printable(r.address, 100)}: {copies}")
    lines.append("(* = at least one copy reached the mailbox or is on its way)")
    return "\n".join(lines) + "\n"
