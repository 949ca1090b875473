"""Keeping a running hub's protected identities current: the directory import and file reloads.

One process (the one that delivers) imports from the LDAP directory every ``directory.refresh``
seconds into the import file; every process looks at its identity files every
``identity.reload_interval`` seconds and loads them again when one changed. A failed import or a
broken file is logged and the identities in use stay: the hub never runs without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from mailward import protected
from mailward.checks.identity import IdentityCheck
from mailward.config import Config, ConfigError

log = logging.getLogger("mailward.identities")

Stamp = tuple[tuple[int, int, int] | None, ...]


def first_import(config: Config) -> None:
    """At start, before any worker exists: import from the directory when there is no import
    yet, so the identities are there from the first message (a failure is only logged)."""
    if not config.directory.url or protected.directory_cache(config).exists():
        return
    from mailward import directory  # ldap3 is loaded only by sites with a directory

    try:
        count = directory.sync(config)
    except directory.DirectoryError as exc:
        log.warning("directory import failed: %s; the other protected identities apply", exc)
    else:
        log.info("imported %d protected identities from %s", count, config.directory.url)


class IdentityRefresher:
    """The background tasks of one process (see the module docstring)."""

    def __init__(self, config: Config, check: IdentityCheck | None, *, imports: bool) -> None:
        self.config = config
        self.check = check
        self.imports = imports and bool(config.directory.url)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.imports:
            self._tasks.append(asyncio.create_task(self._import_forever(), name="directory"))
        if self.check is not None and protected.sources(self.config):
            self._tasks.append(asyncio.create_task(self._watch_forever(), name="identities"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _import_forever(self) -> None:
        from mailward import directory

        url = self.config.directory.url
        refresh = self.config.directory.refresh
        with contextlib.suppress(OSError):  # an import younger than refresh is current
            age = time.time() - protected.directory_cache(self.config).stat().st_mtime
            await asyncio.sleep(max(0.0, refresh - age))
        while True:
            try:
                count = await asyncio.to_thread(directory.sync, self.config)
            except directory.DirectoryError as exc:
                log.warning("directory import failed: %s; keeping the last import", exc)
            except Exception:
                log.exception("directory import failed; keeping the last import")
            else:
                log.info("imported %d protected identities from %s", count, url)
            await asyncio.sleep(refresh)

    async def _watch_forever(self) -> None:
        assert self.check is not None
        paths = protected.sources(self.config)
        seen = stamp(paths)
        while True:
            await asyncio.sleep(self.config.identity.reload_interval)
            now = stamp(paths)
            if now == seen:
                continue
            seen = now
            try:
                count = await asyncio.to_thread(self.check.reload_protected)
            except ConfigError as exc:
                log.error("protected identities not reloaded: %s; keeping those in use", exc)
            except Exception:
                log.exception("protected identities not reloaded; keeping those in use")
            else:
                log.info("protected identities reloaded: %d", count)


def stamp(paths: Sequence[Path]) -> Stamp:
    """What tells a changed file: inode, size and modification time (None when absent)."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        info = None
        with contextlib.suppress(OSError):
            st = os.stat(path)
            info = (st.st_ino, st.st_size, st.st_mtime_ns)
        out.append(info)
    return tuple(out)
