"""`mailward identities`: import the protected identities from the LDAP directory, list the ones
the identity check uses, and show which one a display name imitates."""

from __future__ import annotations

import argparse
from typing import TextIO

from mailward import directory, protected
from mailward.config import Config
from mailward.lookalike import Folder, NameMatcher, ProtectedName


def run(config: Config, args: argparse.Namespace, *, out: TextIO) -> int:
    """Carry out ``mailward identities sync|list|match`` (the CLI's ``args``); returns the exit
    status. Raises `directory.DirectoryError` when the import fails and `ConfigError` when a
    file of identities cannot be read."""
    if args.action == "sync":
        return sync(config, out)
    if args.action == "list":
        return list_identities(config, out)
    return match(config, args.name, out)


def sync(config: Config, out: TextIO) -> int:
    count = directory.sync(config)
    print(
        f"imported {count} identities from {config.directory.url} into "
        f"{protected.directory_cache(config)}",
        file=out,
    )
    return 0


def describe(identity: ProtectedName) -> str:
    """One identity on one line: the name, then its addresses (if any) after a tab."""
    if not identity.addresses:
        return identity.name
    return f"{identity.name}\t{' '.join(sorted(identity.addresses))}"


def list_identities(config: Config, out: TextIO) -> int:
    by_source = protected.load_by_source(config)
    for identities in by_source.values():
        for identity in identities:
            print(describe(identity), file=out)
    print(file=out)
    for source, identities in by_source.items():
        where = ""
        if source == protected.PROTECTED_FILE:
            where = f" ({config.identity.protected_file})"
        elif source == protected.DIRECTORY_IMPORT:
            cache = protected.directory_cache(config)
            where = f" ({cache})" if cache.exists() else (
                " (not imported yet: run mailward identities sync)"
            )
        print(f"{len(identities):>7} from {source}{where}", file=out)
    total = sum(len(identities) for identities in by_source.values())
    print(f"{total:>7} protected identities in all", file=out)
    return 0


def match(config: Config, name: str, out: TextIO) -> int:
    matcher = NameMatcher(protected.load(config), Folder())
    found = matcher.match(name)
    if found is None:
        print("no protected identity matches", file=out)
        return 1
    print(describe(found), file=out)
    return 0
