"""The protected identities: configured names, a CSV file, and the LDAP directory's import."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path

from mailward.config import Config, ConfigError
from mailward.lookalike import ProtectedName

HEADER = ("name", "email")
DIRECTORY_CACHE = "directory-identities.csv"
# where identities come from, as `load_by_source` names them
CONFIGURED = "identity.protected_names"
PROTECTED_FILE = "identity.protected_file"
DIRECTORY_IMPORT = "the directory import"


def directory_cache(config: Config) -> Path:
    """Where the last good import from the LDAP directory is kept (a CSV file in the data
    directory, written by ``mailward identities sync`` and by the running hub)."""
    return Path(config.server.data_dir) / DIRECTORY_CACHE


def load(config: Config) -> list[ProtectedName]:
    """Every protected identity of the site: ``identity.protected_names``, the CSV file
    ``identity.protected_file`` and, when ``directory.url`` is set, the directory's last import
    (absent until the first import: the others still apply)."""
    return [name for names in load_by_source(config).values() for name in names]


def load_by_source(config: Config) -> dict[str, list[ProtectedName]]:
    """`load`'s identities by where they come from: the configured names, the protected file
    and the directory import (a key only for the sources configured)."""
    by_source = {
        CONFIGURED: [
            ProtectedName(n.strip()) for n in config.identity.protected_names if n.strip()
        ]
    }
    if config.identity.protected_file:
        by_source[PROTECTED_FILE] = read_csv(config.identity.protected_file, PROTECTED_FILE)
    if config.directory.url:
        cache = directory_cache(config)
        by_source[DIRECTORY_IMPORT] = (
            read_csv(str(cache), DIRECTORY_IMPORT) if cache.exists() else []
        )
    return by_source


def sources(config: Config) -> list[Path]:
    """The files `load` reads (a changed one means the identities must be loaded again)."""
    out = []
    if config.identity.protected_file:
        out.append(Path(config.identity.protected_file))
    if config.directory.url:
        out.append(directory_cache(config))
    return out


def read_csv(path: str, what: str = "identity.protected_file") -> list[ProtectedName]:
    """Protected identities from a CSV file: a header row naming a ``name`` column and,
    optionally, an ``email`` column (addresses the person uses; several split by ; or space)."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{what}: {path} is not a UTF-8 CSV file: {exc}") from None
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    if "name" not in header:
        raise ConfigError(
            f"{what}: {path}: the first row must name the columns, "
            "with a 'name' column (and optionally 'email')"
        )
    name_col = header.index("name")
    email_col = header.index("email") if "email" in header else None
    out = []
    for row in rows[1:]:
        if len(row) <= name_col or not row[name_col].strip():
            continue
        addresses: frozenset[str] = frozenset()
        if email_col is not None and len(row) > email_col:
            addresses = frozenset(a.lower() for a in re.split(r"[;,\s]+", row[email_col]) if a)
        out.append(ProtectedName(row[name_col].strip(), addresses))
    return out


def write_csv(path: Path, names: Iterable[ProtectedName]) -> int:
    """Replace ``path`` atomically (written beside it, fsynced, renamed) with ``names`` in the
    format `read_csv` reads; returns how many rows were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for protected in names:
                writer.writerow((protected.name, " ".join(sorted(protected.addresses))))
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return count
