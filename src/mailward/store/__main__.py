"""``python -m mailward.store``: migrate a database, or autogenerate a revision (developers)."""

from __future__ import annotations

import argparse

from mailward.store import migrate
from mailward.store.engine import make_engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mailward.store")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="migrate the database at URL to the newest revision")
    up.add_argument("url")
    rev = sub.add_parser("revision", help="autogenerate a new revision from models.py")
    rev.add_argument("message")
    args = parser.parse_args(argv)
    if args.command == "revision":
        migrate.revision(args.message)
        return
    engine = make_engine(args.url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
