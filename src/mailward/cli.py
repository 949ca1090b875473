"""The `mailward` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from mailward import config as config_mod
from mailward.dns import ZoneError, make_resolver
from mailward.model import Connection, Envelope, Message, Transaction


class UsageError(Exception):
    """A usage problem: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailward", description="Anti-spoofing mail hub")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="verify one message file and show the verdict")
    check.add_argument("message", help="message file (RFC 5322), or - for standard input")
    check.add_argument("--ip", help="IP address of the client that delivered the message")
    check.add_argument("--helo", help="HELO/EHLO name the client gave")
    check.add_argument("--mail-from", default=None, help="SMTP MAIL FROM (empty = null sender)")
    check.add_argument("--rcpt", action="append", default=[], help="SMTP RCPT TO (repeatable)")
    check.add_argument("--zone-file", help="answer DNS from this YAML zone file")
    check.add_argument("--config", help="TOML configuration file")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument("--now", type=float, help="evaluate as of this Unix time (signatures)")
    check.add_argument(
        "--no-history", action="store_true",
        help="do not ask the central log whether the sender wrote before (first contact); "
        "by default it is asked when the configured store exists",
    )

    serve = sub.add_parser("serve", help="run the hub: SMTP listeners, spool and delivery")
    serve.add_argument("--config", help="TOML configuration file")

    users = sub.add_parser("users", help="manage the accounts that may submit mail")
    users_sub = users.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = users_sub.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--address", action="append", default=[], help="owned address (repeat)")
    add.add_argument("--alias", action="append", default=[], help="alias it may send as")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    users_sub.add_parser("remove", help="delete an account").add_argument("name")
    passwd = users_sub.add_parser("passwd", help="change a password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    users_sub.add_parser("list", help="list accounts and their addresses")
    _with_config(users_sub)

    keys = sub.add_parser("keys", help="DKIM signing keys of the site's domains")
    keys_sub = keys.add_subparsers(dest="action", required=True, parser_class=_Parser)
    gen = keys_sub.add_parser("generate", help="create RSA-2048 and Ed25519 keys for a domain")
    gen.add_argument("domain")
    gen.add_argument("--selector", help="selector prefix (default mwYYYYMM); r/e appended")
    keys_sub.add_parser("list", help="print the DNS records of every key")
    _with_config(keys_sub)

    queue = sub.add_parser("queue", help="the delivery queue")
    queue_sub = queue.add_subparsers(dest="action", required=True, parser_class=_Parser)
    queue_sub.add_parser("list", help="queued messages")
    queue_sub.add_parser("flush", help="retry every queued message now")
    queue_sub.add_parser("remove", help="drop a queued message").add_argument("queue_id")
    _with_config(queue_sub)

    quarantine = sub.add_parser("quarantine", help="quarantined messages: list, show, release, "
                                "delete")
    quarantine_sub = quarantine.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = quarantine_sub.add_parser("list", help="messages waiting for a decision")
    listing.add_argument("--all", action="store_true", help="released and deleted ones too")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    quarantine_sub.add_parser("show", help="why a message was held, its envelope and header"
                              ).add_argument("queue_id")
    quarantine_sub.add_parser("release", help="deliver a held message to its recipients"
                              ).add_argument("queue_id")
    quarantine_sub.add_parser("delete", help="drop a held message").add_argument("queue_id")
    _with_config(quarantine_sub)

    trace = sub.add_parser(
        "trace", help="where a message came from: Received chain, authentication, central log"
    )
    trace.add_argument(
        "message", nargs="?", help="message file (also one forwarded as an attachment), or -"
    )
    trace.add_argument("--queue-id", action="append", default=[], help="look up this queue id")
    trace.add_argument(
        "--message-id", action="append", default=[], help="look up this Message-ID"
    )
    trace.add_argument(
        "--outer", action="store_true",
        help="trace the file's own headers even when it carries an attached message",
    )
    trace.add_argument("--config", help="TOML configuration file")
    trace.add_argument("--json", action="store_true", help="print one JSON object")

    log = sub.add_parser("log", help="the central log: search it, find a message's campaign")
    log_sub = log.add_subparsers(dest="action", required=True, parser_class=_Parser)
    search = log_sub.add_parser("search", help="logged messages matching every filter")
    search.add_argument("--since", help="from this time: ISO (UTC unless offset) or age (2h, 7d)")
    search.add_argument("--until", help="before this time: ISO or age")
    search.add_argument("--sender", help="envelope sender or From address")
    search.add_argument("--recipient", help="envelope recipient")
    search.add_argument("--domain", help="domain of the sender, From or a recipient")
    search.add_argument("--ip", help="client IP address")
    search.add_argument("--subject", help="Subject contains this (any case)")
    search.add_argument("--disposition", choices=["accept", "tag", "quarantine", "reject",
                                                   "tempfail", "submitted"])
    search.add_argument("--symbol", help="a finding's symbol, e.g. DMARC_FAIL_REJECT")
    search.add_argument("--message-id", help="Message-ID, with or without <>")
    search.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    search.add_argument("--json", action="store_true", help="print one JSON object")
    campaign = log_sub.add_parser(
        "campaign", help="every message of one message's campaign, with every recipient"
    )
    campaign.add_argument("id", help="queue id or Message-ID of one message of the campaign")
    campaign.add_argument("--window", default="72h", help="before and after that message (72h)")
    campaign.add_argument("--by", default="sender,subject,body,url",
                          help="what a message must share with it (comma-separated)")
    campaign.add_argument("--limit", type=int, default=1000, help="messages per criterion")
    campaign.add_argument("--json", action="store_true", help="print one JSON object")
    _with_config(log_sub)

    identities = sub.add_parser(
        "identities", help="protected identities: import from LDAP, list, test a display name"
    )
    identities_sub = identities.add_subparsers(dest="action", required=True, parser_class=_Parser)
    identities_sub.add_parser("sync", help="import the protected identities from the directory now")
    identities_sub.add_parser("list", help="every protected identity the identity check uses")
    identities_sub.add_parser(
        "match", help="which protected identity a display name imitates"
    ).add_argument("name", help='display name, e.g. "J. Smith"')
    _with_config(identities_sub)

    cfg = sub.add_parser("config", help="print every configuration key with its default")
    cfg.add_argument("--config", help="validate this TOML file")
    return parser


def _with_config(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    """Every action of an administration command takes --config."""
    for action in subparsers.choices.values():
        action.add_argument("--config", help="TOML configuration file")


ADMIN_COMMANDS = ("log", "identities", "quarantine", "users", "keys", "queue")
AdminAction = Callable[[config_mod.Config, argparse.Namespace], int]


def _admin_action(command: str) -> tuple[AdminAction, tuple[type[Exception], ...]]:
    """An administration command's function and the errors it reports in one line (exit 1);
    its module is imported only when it runs."""
    if command == "log":
        from mailward import logsearch

        return partial(logsearch.run, out=sys.stdout), (logsearch.LogError,)
    if command == "identities":
        from mailward import identities_command
        from mailward.directory import DirectoryError

        return (partial(identities_command.run, out=sys.stdout),
                (DirectoryError, config_mod.ConfigError))
    from mailward import admin

    if command == "quarantine":
        from mailward import quarantine_command

        return partial(quarantine_command.run, out=sys.stdout), (admin.AdminError,)
    return getattr(admin, command), (admin.AdminError,)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "check":
            return _check(args)
        if args.command == "config":
            return _config(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "trace":
            return _trace(args)
        if args.command in ADMIN_COMMANDS:
            action, errors = _admin_action(args.command)
            config = _load_config(args.config)
            try:
                return action(config, args)
            except errors as exc:
                print(f"mailward: {exc}", file=sys.stderr)
                return 1
    except UsageError as exc:
        print(f"mailward: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 2


def _load_config(path: str | None) -> config_mod.Config:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None


def _read_message(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _check(args: argparse.Namespace) -> int:
    from mailward.pipeline import Pipeline

    config = _load_config(args.config)
    raw = _read_message(args.message)
    zone_file = args.zone_file or config.dns.zone_file
    if args.ip is not None:
        import ipaddress

        try:
            ipaddress.ip_address(args.ip)
        except ValueError:
            raise UsageError(f"--ip: {args.ip!r} is not an IP address") from None
    try:
        resolver = make_resolver(
            zone_file, config.dns.nameservers, config.dns.timeout, config.dns.cache_size,
            config.dns.negative_ttl,
        )
    except ZoneError as exc:
        raise UsageError(str(exc)) from None
    with contextlib.ExitStack() as cleanup:
        history = None if args.no_history else _open_history(config, cleanup)
        try:
            pipeline = Pipeline(config, resolver, history=history)
        except config_mod.ConfigError as exc:
            raise UsageError(str(exc)) from None
        return _check_message(args, pipeline, raw)


def _open_history(config: config_mod.Config, cleanup: contextlib.ExitStack) -> Any:
    """The sender history from the configured store, when there is one to read (a store URL,
    or the default SQLite file already written by a hub); None otherwise."""
    from mailward.history import StoreHistory
    from mailward.store import Store
    from mailward.store.engine import DEFAULT_DB_NAME

    data_dir = Path(config.server.data_dir)
    if not config.store.url and not (data_dir / DEFAULT_DB_NAME).exists():
        return None
    try:
        store = cleanup.enter_context(Store.from_config(config.store, data_dir=data_dir))
    except Exception as exc:  # the verdict is still worth having without the history
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"mailward: the central log cannot be read ({reason}); first contact is not "
              "checked", file=sys.stderr)
        return None
    return StoreHistory(store, config.identity.first_contact_hours)


def _check_message(args: argparse.Namespace, pipeline: Any, raw: bytes) -> int:
    from mailward.report import human_report, json_report

    message = Message(raw)
    mail_from = args.mail_from
    if mail_from is None:
        parsed_from = message.parsed.from_addresses
        mail_from = parsed_from[0].address if parsed_from else ""
    tx = Transaction(
        Connection(ip=args.ip, helo=args.helo), Envelope(mail_from, list(args.rcpt)), message
    )
    evaluation = asyncio.run(pipeline.evaluate(tx, now=args.now))
    if args.json:
        print(json.dumps(json_report(evaluation), indent=2, ensure_ascii=False))
    else:
        print(human_report(evaluation, message))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from mailward import trace_command

    if not (args.message or args.queue_id or args.message_id):
        raise UsageError("trace: give a message file, --queue-id or --message-id")
    config = _load_config(args.config)
    raw = _read_message(args.message) if args.message else None
    return trace_command.run(
        config, raw, source=args.message, queue_ids=args.queue_id,
        message_ids=args.message_id, as_json=args.json, unwrap=not args.outer,
    )


def _serve(args: argparse.Namespace) -> int:
    import logging

    from mailward.serve import run

    config = _load_config(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # aiosmtpd logs every command line at INFO; our one line per transaction is the record
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        run(config)
    except (OSError, ZoneError, config_mod.ConfigError) as exc:
        print(f"mailward: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.config:
        from mailward import banner

        try:
            banner.check_texts(_load_config(args.config))
        except config_mod.ConfigError as exc:
            raise UsageError(str(exc)) from None
        print(f"{args.config}: valid")
        return 0
    for key, text, default in config_mod.documented_keys():
        print(f"{key} = {json.dumps(default)}\n    {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
