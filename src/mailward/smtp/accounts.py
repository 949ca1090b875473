"""Accounts for the submission listener, backed by the store (argon2 checks off the loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailward.store import Store


class StoreAccounts:
    """Who may log in, and which addresses (owned, aliases, shared roles) each may send as."""

    def __init__(self, store: Store, shared: Mapping[str, list[str]]) -> None:
        self.store = store
        self.shared = {addr.lower(): {u.lower() for u in users} for addr, users in shared.items()}

    async def verify(self, user: str, password: str) -> bool:
        return await asyncio.to_thread(self.store.verify_password, user, password)

    async def owns(self, user: str, address: str) -> bool:
        address = address.strip().lower()
        if user.lower() in self.shared.get(address, ()):
            return True
        owner = await asyncio.to_thread(self.store.owner_of, address)
        return owner is not None and owner.lower() == user.lower()
