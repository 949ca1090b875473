"""`mailward trace`: a message's origin trace joined with the central log's records of it, in
plain words for an administrator or as JSON for scripts."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mailward.trace import (
    ENTRY,
    INSIDE,
    OUTSIDE,
    WARNING,
    MethodResult,
    Trace,
    plain_time,
    trace_message,
)

if TYPE_CHECKING:
    from mailward.config import Config
    from mailward.store import Store, StoredTransaction

MAX_LOOKUP = 100  # transactions shown per Message-ID
WIDTH = 100  # columns of the plain-words report


@dataclass(slots=True)
class LogLookup:
    """What the central log holds for the message: matching transactions, ids asked for but not
    found, and why the log could not be read (if so)."""

    transactions: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unavailable: str | None = None


def run(
    config: Config,
    raw: bytes | None,
    *,
    source: str | None = None,
    queue_ids: list[str] | None = None,
    message_ids: list[str] | None = None,
    as_json: bool = False,
    unwrap: bool = True,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Trace ``raw`` (if given), look the message up in the store, print; the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    asked = bool(queue_ids or message_ids)
    trace = trace_message(raw, config, unwrap=unwrap) if raw is not None else None
    q_ids = list(queue_ids or [])
    m_ids = list(message_ids or [])
    implied_q: list[str] = []
    implied_m: list[str] = []
    if trace is not None:
        implied_q = trace.queue_ids()
        implied_m = [trace.message_id] if trace.message_id else []
    lookup = lookup_log(config, q_ids, m_ids, implied_q, implied_m)
    if as_json:
        print(json.dumps(json_report(trace, lookup, source), indent=2, ensure_ascii=False),
              file=out)
    else:
        print(human_report(trace, lookup, source), file=out)
    if asked and lookup.unavailable:
        print(f"mailward: {lookup.unavailable}", file=err)
        return 1
    for what in lookup.missing:
        print(f"mailward: no transaction in the central log with {what}", file=err)
    return 1 if lookup.missing else 0


# -- the central log ----------------------------------------------------------------------------


def open_store(config: Config) -> tuple[Store | None, str | None]:
    """The store, or None and why. An absent default SQLite file is not created for a mere
    file trace."""
    from mailward.store import Store
    from mailward.store.engine import DEFAULT_DB_NAME

    data_dir = Path(config.server.data_dir)
    if not config.store.url and not (data_dir / DEFAULT_DB_NAME).exists():
        return None, f"no central store at {data_dir / DEFAULT_DB_NAME}"
    try:
        return Store.from_config(config.store, data_dir=data_dir), None
    except Exception as exc:  # any database trouble: say so, the header trace still stands
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return None, f"cannot open the central store: {first}"


def lookup_log(
    config: Config,
    queue_ids: list[str],
    message_ids: list[str],
    implied_queue_ids: Sequence[str] = (),
    implied_message_ids: Sequence[str] = (),
) -> LogLookup:
    """Transactions by queue id and Message-ID; ``implied_*`` come from the traced headers and
    are not reported as missing."""
    lookup = LogLookup()
    if not (queue_ids or message_ids or implied_queue_ids or implied_message_ids):
        return lookup
    store, why = open_store(config)
    if store is None:
        lookup.unavailable = why
        return lookup
    found: dict[str, tuple[StoredTransaction, list[str]]] = {}

    def add(txs: list[StoredTransaction], how: str) -> None:
        for tx in txs:
            found.setdefault(tx.id, (tx, []))[1].append(how)

    try:
        for qid in [*queue_ids, *implied_queue_ids]:
            tx = store.transaction(qid)
            if tx is not None:
                add([tx], "queue-id")
            elif qid in queue_ids:
                lookup.missing.append(f"queue id {qid}")
        for mid in [*message_ids, *implied_message_ids]:
            txs = store.find_transactions(message_id=mid, limit=MAX_LOOKUP)
            add(txs, "message-id")
            if not txs and mid in message_ids:
                lookup.missing.append(f"Message-ID {mid}")
        ordered = sorted(found.values(), key=lambda item: item[0].received_at)
        lookup.transactions = [
            _transaction(store, tx, sorted(set(how))) for tx, how in ordered
        ]
    except Exception as exc:  # database trouble mid-way
        lookup.unavailable = f"cannot read the central store: {str(exc).splitlines()[0][:200]}"
    finally:
        store.close()
    return lookup


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _transaction(store: Store, tx: StoredTransaction, matched_by: list[str]) -> dict[str, Any]:
    conn = store.connection(tx.connection_id) if tx.connection_id else None
    connection: dict[str, Any] = {
        "id": tx.connection_id, "ip": tx.client_ip, "rdns": tx.rdns, "helo": tx.helo,
        "tls_version": None, "tls_cipher": None, "auth_user": tx.auth_user,
        "opened_at": None, "closed_at": None,
    }
    if conn is not None:
        connection.update(
            ip=conn.peer_ip, rdns=conn.rdns, helo=conn.helo, tls_version=conn.tls_version,
            tls_cipher=conn.tls_cipher, auth_user=conn.auth_user,
            opened_at=_when(conn.opened_at), closed_at=_when(conn.closed_at),
        )
    return {
        "queue_id": tx.queue_id,
        "matched_by": matched_by,
        "received_at": _when(tx.received_at),
        "instance": tx.instance,
        "connection": connection,
        "envelope": {"mail_from": tx.mail_from, "recipients": list(tx.recipients)},
        "message": {
            "message_id": tx.message_id, "from": tx.header_from, "reply_to": tx.reply_to,
            "subject": tx.subject, "size": tx.size, "body_sha256": tx.body_sha256,
        },
        "verdict": {"disposition": tx.disposition, "score": tx.score,
                    "forced_by": tx.forced_by},
        "findings": [
            {"check": f.check, "symbol": f.symbol, "result": f.result, "score": f.score,
             "detail": f.detail}
            for f in tx.findings
        ],
        "deliveries": [
            {"recipient": d.recipient, "attempt": d.attempt, "status": d.status,
             "reply": d.reply, "at": _when(d.at)}
            for d in store.deliveries(tx.queue_id)
        ],
    }


# -- output -------------------------------------------------------------------------------------


def json_report(trace: Trace | None, lookup: LogLookup, source: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {"source": source}
    if trace is not None:
        report.update(trace.as_dict())
    else:
        report.update(message=None, forwarded=None, origin=None, hops=[], anomalies=[],
                      notes=[], authentication_results=[], arc=None)
    report["transactions"] = lookup.transactions
    report["store"] = {"available": lookup.unavailable is None, "note": lookup.unavailable,
                       "missing": lookup.missing}
    return report


def _time(value: str | datetime | None) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return plain_time(value)


def _wrap(text: str, indent: str, first: str | None = None) -> list[str]:
    first = indent if first is None else first
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False) or [first]


def human_report(trace: Trace | None, lookup: LogLookup, source: str | None) -> str:
    lines: list[str] = []
    if trace is not None:
        lines += _trace_lines(trace, source)
    lines += _log_lines(lookup)
    return "\n".join(lines).strip("\n") + "\n"


def _origin_sentence(trace: Trace) -> list[str]:
    o = trace.origin
    if o is None:
        return ["Nothing can be said about where this message came from: no Received header "
                "names a sending host."]
    if o.internal:
        where = f"on {o.received_by}" if o.received_by else "on one of your hosts"
        text = f"This message was created inside your site, {where}"
        if o.ip:
            text += f" (handed over by your trusted host {o.ip})"
        return [text + f", at {_time(o.time)}."]
    helo = f"a host calling itself {o.helo}" if o.helo else "a host that gave no name"
    rdns = (f"reverse DNS name {o.rdns}" if o.rdns
            else "no reverse DNS name was recorded for the address")
    lines = [
        f"This message entered the internet at {o.ip or 'an unknown address'}, {helo} "
        f"({rdns})."
    ]
    if o.verified:
        how = ""
        if o.tls is not None:
            how = f" over an encrypted connection ({o.tls.version})" if o.tls.version else (
                " over an encrypted connection")
        lines.append(f"Your host {o.received_by} received it from there at {_time(o.time)}{how}.")
    else:
        lines.append(
            f"This is only what the newest Received header claims ({o.received_by or 'unnamed'}"
            f" at {_time(o.time)}): none was written by your own hosts, so it cannot be checked."
        )
    if o.authenticated:
        lines.append(
            f"The sender logged in{' as ' + o.auth_user if o.auth_user else ''} before sending: "
            "it is one of your users' accounts (check it was not stolen if the mail is bad)."
        )
    return lines


_PLAIN: dict[tuple[str, str], str] = {
    ("spf", "pass"): "the sending server is allowed to send mail for {d}",
    ("spf", "fail"): "the sending server is NOT allowed to send mail for {d}",
    ("spf", "softfail"): "{d} says the sending server is probably not allowed to send its mail",
    ("spf", "neutral"): "{d} does not say whether the sending server may send its mail",
    ("spf", "none"): "{d} publishes no list of servers allowed to send its mail",
    ("dkim", "pass"): "signed by {d}; the signature is valid",
    ("dkim", "fail"): "signed by {d}, but the signature does not match: altered or forged",
    ("dkim", "none"): "the message is not signed",
    ("dmarc", "pass"): "the From domain {d} is authenticated",
    ("dmarc", "fail"): "the From domain {d} is NOT authenticated: it is not really from there",
    ("dmarc", "none"): "{d} publishes no DMARC policy, so forgery cannot be ruled out",
    ("arc", "pass"): "forwarded through servers that vouch for the original checks",
    ("arc", "fail"): "the forwarding chain (ARC) is broken",
    ("arc", "none"): "not forwarded with ARC",
}


def plain_result(r: MethodResult) -> str:
    """One authentication result in plain words."""
    d = {
        "spf": (r.prop("smtp.mailfrom") or r.prop("smtp.helo") or "").rpartition("@")[2],
        "dkim": r.prop("header.d") or r.prop("header.i") or "",
        "dmarc": r.prop("header.from") or "",
    }.get(r.method, "") or "the domain"
    if r.result == "temperror":
        return "could not be checked (DNS trouble at the time)"
    if r.result == "permerror":
        return f"the record {d} publishes is broken"
    text = _PLAIN.get((r.method, r.result), r.reason or r.comment or "")
    return text.replace("{d}", d)


def _trace_lines(trace: Trace, source: str | None) -> list[str]:
    lines = [f"Trace of {source or 'the message'}"]
    if trace.forwarded is not None:
        f = trace.forwarded
        lines += _wrap(
            f"This file is a message forwarded by {f.sender or 'someone'} "
            f"(\"{f.subject or ''}\"); the trace below is of the original it carries"
            + (" (only its headers)." if f.how == "headers" else "."), "", ""
        )
    m = trace.message
    lines += _wrap(
        f"Message: \"{m.get('subject') or ''}\" from {m.get('from') or 'nobody'}, "
        f"Message-ID {m.get('message_id') or 'none'}, dated {m.get('date') or 'nothing'}",
        "  ", "",
    )
    lines += ["", "Where it came from"]
    for text in _origin_sentence(trace):
        lines += _wrap(text, "  ")
    warnings = [a for a in trace.anomalies if a.severity == WARNING]
    notices = [a for a in trace.anomalies if a.severity != WARNING]
    if warnings:
        lines += ["", "Warnings"]
        for a in warnings:
            lines += _wrap(a.detail, "    ", "  ! ")
    if notices or trace.notes:
        lines += ["", "Also noted"]
        for text in [*(a.detail for a in notices), *trace.notes]:
            lines += _wrap(text, "    ", "  - ")
    if trace.hops:
        lines += ["", f"Path, newest first ({len(trace.hops)} Received headers)"]
        label = {INSIDE: "inside", ENTRY: "ENTRY", OUTSIDE: "outside"}
        for th in trace.hops:
            h = th.hop
            client = h.helo or h.rdns or "(no client)"
            if h.ip:
                client += f" [{h.ip}]"
            lines.append(
                f"  {th.number:>2} {label.get(th.zone, th.zone):<10} {h.by or '?'} <- {client}"
                f"  {_time(h.timestamp) if h.timestamp else 'no date'}"
                + ("  (unreadable)" if h.unparsed else "")
            )
        lines += _wrap("inside = between your own hosts; ENTRY = where it came in; outside = "
                       "written by other servers, cannot be verified", "     ")
    entry = [a for a in trace.authentication_results if a.at_entry] or (
        trace.authentication_results[:1])
    if entry:
        lines += ["", f"What your hub checked when it arrived ({entry[0].authserv_id})"]
        for r in entry[0].results:
            lines.append(f"  {r.method.upper():<6} {r.result:<9} {plain_result(r)}")
    if trace.arc.instances or trace.arc.problems:
        lines += ["", f"Forwarding custody (ARC, not verified here): {trace.arc.chain}"]
        for inst in trace.arc.instances:
            lines.append(
                f"  {inst.instance}. sealed by {inst.sealer or '?'} (cv={inst.cv or '?'})"
                + (f", which recorded: {', '.join(f'{r.method}={r.result}' for r in inst.results)}"
                   if inst.results else "")
            )
        lines += [f"  - {p}" for p in trace.arc.problems]
    return lines


def _log_lines(lookup: LogLookup) -> list[str]:
    lines = [""]
    if lookup.unavailable:
        return [*lines, f"Central log: {lookup.unavailable}."]
    if not lookup.transactions:
        return [*lines, "Central log: no record of this message."]
    lines.append(f"In the central log ({len(lookup.transactions)} transaction(s))")
    for t in lookup.transactions:
        c = t["connection"]
        v = t["verdict"]
        lines.append(f"  Queue id {t['queue_id']}, received {_time(t['received_at'])}"
                     f" by {t['instance'] or 'this site'}")
        client = c["ip"] or "unknown address"
        parts = [f"reverse DNS {c['rdns']}" if c["rdns"] else "no reverse DNS",
                 f"HELO {c['helo']}" if c["helo"] else "no HELO"]
        if c["tls_version"]:
            parts.append(f"TLS {c['tls_version']}")
        if c["auth_user"]:
            parts.append(f"logged in as {c['auth_user']}")
        lines.append(f"    connection: {client}, {', '.join(parts)}")
        rcpts = ", ".join(t["envelope"]["recipients"]) or "nobody"
        lines.append(f"    envelope: {t['envelope']['mail_from'] or '<>'} -> {rcpts}")
        forced = f", forced by {v['forced_by']}" if v["forced_by"] else ""
        lines.append(f"    verdict: {v['disposition']} (score {v['score']:.1f}{forced})")
        for f in t["findings"]:
            lines.append(f"    finding: {f['symbol']} ({f['check']}={f['result']}, "
                         f"{f['score']:+.1f}) {f['detail']}")
        if not t["deliveries"]:
            lines.append("    deliveries: none recorded")
        for d in t["deliveries"]:
            lines.append(f"    delivery: {d['recipient']} {d['status']} (attempt {d['attempt']},"
                         f" {_time(d['at'])}) {d['reply']}".rstrip())
    return lines
