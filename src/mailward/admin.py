"""Administration commands: users, DKIM keys and the queue (`mailward users|keys|queue`)."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mailward.config import Config
from mailward.keys import KeyStore
from mailward.spool import Spool, SpoolError

if TYPE_CHECKING:
    from mailward.store import Store


class AdminError(Exception):
    """A command that cannot be carried out; printed as one line, exit status 1."""


def open_store(config: Config) -> Store:
    from mailward.store import Store

    return Store.from_config(config.store, data_dir=Path(config.server.data_dir))


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise AdminError("the passwords differ")
    else:
        raise AdminError("no terminal: give the password on standard input with --password-stdin")
    if len(password) < 8:
        raise AdminError("the password must have at least 8 characters")
    return password


def users(config: Config, args: argparse.Namespace) -> int:
    from mailward.store import StoreError

    store = open_store(config)
    try:
        if args.action == "add":
            store.add_user(args.name, read_password(args), args.address, args.alias)
            print(f"user {args.name} added")
        elif args.action == "remove":
            if not store.remove_user(args.name):
                raise AdminError(f"no user {args.name}")
            print(f"user {args.name} removed")
        elif args.action == "passwd":
            store.set_password(args.name, read_password(args))
            print(f"password of {args.name} changed")
        else:
            for user in store.list_users():
                owned = ", ".join(
                    a.address + (" (alias)" if a.alias else "") for a in user.addresses
                )
                state = " [disabled]" if user.disabled else ""
                print(f"{user.name}{state}: {owned or '(no addresses)'}")
    except (StoreError, ValueError) as exc:
        raise AdminError(str(exc)) from None
    finally:
        store.close()
    return 0


def keys(config: Config, args: argparse.Namespace) -> int:
    store = KeyStore(config.server.data_dir)
    if args.action == "generate":
        try:
            generated = store.generate(args.domain, args.selector)
        except FileExistsError as exc:
            raise AdminError(str(exc)) from None
        print(f"Keys for {args.domain} created. Publish these DNS TXT records:\n")
    else:
        generated = [k for d in store.domains() for k in store.keys_for(d)]
    for key in generated:
        print(f"{key.dns_name}. IN TXT ( {_txt_chunks(key.dns_txt)} )  ; {key.algorithm}")
    return 0


def _txt_chunks(text: str) -> str:
    return " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))


def queue(config: Config, args: argparse.Namespace) -> int:
    spool = Spool(Path(config.server.data_dir) / "spool")
    if args.action == "list":
        ids = spool.queued()
        for qid in ids:
            try:
                entry = spool.entry(qid)
            except SpoolError as exc:
                print(f"{qid}  (unreadable: {exc})")
                continue
            due = max(0, int(entry.next_attempt - time.time()))
            pending = ", ".join(r.address for r in entry.pending)
            last = next((r.last_reply for r in entry.recipients if r.last_reply), "")
            print(f"{qid}  {entry.direction:<8} from=<{entry.mail_from}> to={pending} "
                  f"attempts={entry.attempts} next_in={due}s {last}")
        print(f"{len(ids)} message(s) queued")
    elif args.action == "remove":
        if args.queue_id not in spool.queued():
            raise AdminError(f"no queued message {args.queue_id}")
        spool.remove(args.queue_id)
        print(f"{args.queue_id} removed from the queue")
    else:
        for qid in spool.queued():
            entry = spool.entry(qid)
            entry.next_attempt = 0.0
            spool.update(entry)
        signal_hub(Path(config.server.data_dir))
        print("queue flushed: every message will be retried now")
    return 0


def signal_hub(data_dir: Path) -> None:
    """Wake the running hub's delivery queue (SIGUSR1 to the pid in the data directory)."""
    pid_file = data_dir / "mailward.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGUSR1)
    except (OSError, ValueError):
        pass  # no hub running: the next start delivers them
