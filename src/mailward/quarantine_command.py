"""`mailward quarantine`: list, show, release and delete quarantined messages."""

from __future__ import annotations

import argparse
import getpass
import os
import time
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mailward.admin import AdminError, open_store, signal_hub
from mailward.config import Config
from mailward.spool import Recipient, Spool, SpoolEntry, SpoolError

if TYPE_CHECKING:
    from mailward.store import QuarantineEntry, Store, StoredTransaction

HEADER_LINES_SHOWN = 40


def run(config: Config, args: argparse.Namespace, *, out: TextIO) -> int:
    """Carry out ``mailward quarantine list|show|release|delete``; AdminError when it cannot."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailward.store import StoreError

    try:
        store = open_store(config)
    except (StoreError, SQLAlchemyError) as exc:
        raise AdminError(f"the central log cannot be opened: {_first_line(exc)}") from None
    try:
        if args.action == "list":
            return list_entries(store, out, everything=args.all, limit=args.limit)
        if args.action == "show":
            return show(store, args.queue_id, out)
        if args.action == "release":
            return release(config, store, args.queue_id, out)
        return delete(store, args.queue_id, out)
    except (StoreError, SQLAlchemyError) as exc:
        raise AdminError(f"the central log: {_first_line(exc)}") from None
    finally:
        store.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def list_entries(store: Store, out: TextIO, *, everything: bool, limit: int) -> int:
    entries = store.quarantined(pending_only=not everything, limit=limit)
    for entry in entries:
        tx = store.transaction(entry.queue_id)
        state = _state(entry)
        sender = tx.from_address or tx.mail_from if tx else "?"
        rcpts = ",".join(tx.recipients) if tx else "?"
        subject = (tx.subject or "") if tx else ""
        print(f"{entry.queue_id}  {entry.at:%Y-%m-%d %H:%M}  {state:<8} from=<{sender}> "
              f"to={rcpts} subject={subject!r}", file=out)
        print(f"    {entry.reason}", file=out)
    what = "message(s)" if everything else "message(s) waiting for a decision"
    print(f"{len(entries)} quarantined {what}", file=out)
    return 0


def show(store: Store, queue_id: str, out: TextIO) -> int:
    entry, tx = _find(store, queue_id)
    print(f"queue id:   {entry.queue_id} ({_state(entry)})", file=out)
    print(f"received:   {entry.at:%Y-%m-%d %H:%M:%S} UTC", file=out)
    if tx is not None:
        print(f"from:       {tx.header_from or tx.from_address or ''}", file=out)
        print(f"envelope:   <{tx.mail_from}> -> {', '.join(tx.recipients)}", file=out)
        print(f"client:     {tx.client_ip or '-'} ({tx.helo or '-'})", file=out)
        print(f"subject:    {tx.subject or ''}", file=out)
        print(f"score:      {tx.score:.1f}" + (f", forced by {tx.forced_by}"
                                              if tx.forced_by else ""), file=out)
    print(f"why:        {entry.reason}", file=out)
    if tx is not None and tx.findings:
        print("findings:", file=out)
        for finding in sorted(tx.findings, key=lambda f: -f.score):
            print(f"  {finding.score:+6.1f}  {finding.symbol:<34} {finding.detail}", file=out)
    try:
        raw = _raw_copy(entry)
    except AdminError as exc:
        print(f"message:    {exc}", file=out)
        return 0
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.decode("utf-8", "replace").splitlines()
    print("header:", file=out)
    for line in lines[:HEADER_LINES_SHOWN]:
        print(f"  {line}", file=out)
    if len(lines) > HEADER_LINES_SHOWN:
        print(f"  ... {len(lines) - HEADER_LINES_SHOWN} more lines", file=out)
    return 0


def release(config: Config, store: Store, queue_id: str, out: TextIO) -> int:
    """Queue the message for its recipients (the running hub is woken to deliver it) and mark
    it released; a message already released or deleted is refused."""
    entry, tx = _find(store, queue_id)
    if entry.released_at or entry.deleted_at:
        raise AdminError(f"{queue_id} was already {_state(entry)}")
    if tx is None or not tx.recipients:
        raise AdminError(f"{queue_id}: the log has no recipients for it; cannot release")
    raw = _raw_copy(entry)
    who = _operator()
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    stamp = (f"X-Mailward-Released: from quarantine by {who} on "
             f"{formatdate(localtime=False, usegmt=True)}").encode() + newline
    spool = Spool(Path(config.server.data_dir) / "spool")
    spool_entry = SpoolEntry(
        queue_id, tx.mail_from, [Recipient(r) for r in tx.recipients], time.time(),
        disposition="released", bounce_allowed=False, extra={"released_by": who},
    )
    if queue_id in spool.queued():
        raise AdminError(f"{queue_id} is already in the delivery queue")
    try:
        spool.enqueue(stamp + raw, spool_entry)
    except SpoolError as exc:
        raise AdminError(str(exc)) from None
    if not store.release_quarantine(queue_id):  # released by someone else meanwhile
        spool.remove(queue_id)
        raise AdminError(f"{queue_id} was released or deleted meanwhile")
    store.record_event("quarantine.released", {"by": who, "recipients": list(tx.recipients)},
                       queue_id)
    signal_hub(Path(config.server.data_dir))
    print(f"{queue_id} released: queued for {', '.join(tx.recipients)}", file=out)
    return 0


def delete(store: Store, queue_id: str, out: TextIO) -> int:
    """Mark the message deleted and remove its quarantined copy."""
    entry, _tx = _find(store, queue_id)
    if entry.released_at or entry.deleted_at:
        raise AdminError(f"{queue_id} was already {_state(entry)}")
    if not store.delete_quarantine(queue_id):
        raise AdminError(f"{queue_id} was released or deleted meanwhile")
    if entry.raw_path:
        try:
            os.unlink(entry.raw_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"mailward: {entry.raw_path} could not be removed: {exc.strerror}",
                  file=out)
    store.record_event("quarantine.deleted", {"by": _operator()}, queue_id)
    print(f"{queue_id} deleted", file=out)
    return 0


def _find(store: Store, queue_id: str) -> tuple[QuarantineEntry, StoredTransaction | None]:
    entry = store.quarantine_entry(queue_id)
    if entry is None:
        raise AdminError(f"no quarantined message {queue_id}")
    return entry, store.transaction(queue_id)


def _raw_copy(entry: QuarantineEntry) -> bytes:
    """The quarantined message: the hub's file, else the store's copy (store.keep_raw)."""
    if entry.raw_path:
        try:
            return Path(entry.raw_path).read_bytes()
        except OSError as exc:
            problem = f"{entry.raw_path}: {exc.strerror or exc}"
        else:
            problem = ""
    else:
        problem = "no file"
    if entry.raw is not None:
        return entry.raw
    raise AdminError(f"{entry.queue_id}: the quarantined copy is gone ({problem}) and the "
                     "store keeps none (store.keep_raw)")


def _state(entry: QuarantineEntry) -> str:
    if entry.deleted_at:
        return "deleted"
    if entry.released_at:
        return "released"
    return "held"


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"
