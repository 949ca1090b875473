"""Sender history for the first-contact finding: has the site dealt with this address before?

A check asks through the `SenderHistory` protocol it finds in its context, so it never touches
the store itself; `StoreHistory` answers from the central log (in a thread, so the event loop
never waits on the database).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mailward.store import Store

log = logging.getLogger(__name__)


class Contact(enum.StrEnum):
    """What the history says of a sender address."""

    KNOWN = "known"  # the site's users wrote to it, or its mail was delivered long enough ago
    FIRST = "first"  # never dealt with before
    UNAVAILABLE = "unavailable"  # the history could not be read (an explicit temperror)


class SenderHistory(Protocol):
    """Answers whether the site has dealt with an address before ``now`` (epoch seconds)."""

    async def contact(self, address: str, now: float) -> Contact: ...


class StoreHistory:
    """`SenderHistory` from the central store.

    An address is known when a message the site's users submitted went to it, or when mail with
    it in From was delivered (accepted or tagged) at least ``min_age_hours`` before ``now``: a
    campaign's first messages, minutes old, do not vouch for its later ones. Known answers are
    remembered for ``cache_seconds`` (an address stays known); first contacts are asked again.
    A lookup gets ``timeout`` seconds, well inside the identity check's budget, so a slow store
    costs the first-contact finding (a temperror), never the check's other findings.
    """

    def __init__(
        self, store: Store, min_age_hours: float, *, cache_size: int = 10_000,
        cache_seconds: float = 3600.0, timeout: float = 0.5,
    ) -> None:
        self.store = store
        self.min_age = min_age_hours * 3600.0
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._known: OrderedDict[str, float] = OrderedDict()  # address -> when learned

    async def contact(self, address: str, now: float) -> Contact:
        address = address.strip().lower()
        if not address:
            return Contact.FIRST
        learned = self._known.get(address)
        if learned is not None and time.monotonic() - learned < self.cache_seconds:
            self._known.move_to_end(address)
            return Contact.KNOWN
        before = datetime.fromtimestamp(now - self.min_age, UTC)
        # asyncio.wait, not asyncio.timeout: a check's first wait happens inside the caller's
        # task (see checks.base.Check), and a timeout bound to that task would cancel it
        lookup = asyncio.ensure_future(asyncio.to_thread(
            self.store.known_correspondent, address, delivered_before=before))
        done, _ = await asyncio.wait({lookup}, timeout=self.timeout)
        if not done:
            lookup.cancel()
            log.warning("sender history of %s unavailable: no answer within %.1fs", address,
                        self.timeout)
            return Contact.UNAVAILABLE
        try:
            known = lookup.result()
        except Exception as exc:  # the store is down or broken: say so, do not guess
            log.warning("sender history of %s unavailable: %s", address, exc)
            return Contact.UNAVAILABLE
        if not known:
            return Contact.FIRST
        self._known[address] = time.monotonic()
        self._known.move_to_end(address)
        while len(self._known) > self.cache_size:
            self._known.popitem(last=False)
        return Contact.KNOWN
