"""Password hashing for hub users: argon2id via argon2-cffi, rehash on new parameters.

Only hashes are ever stored. ``PasswordHashing.verify`` takes the same time whether or not the
user exists (pass ``None`` as the stored hash) so a login probe cannot tell names apart.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106 "second recommended option" (argon2-cffi's defaults): 64 MiB, t=3, p=4.
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_COST_KIB = 65536
DEFAULT_PARALLELISM = 4


@dataclass(frozen=True, slots=True)
class Verification:
    """Outcome of a password check; ``new_hash`` is set when the stored hash should be replaced."""

    ok: bool
    new_hash: str | None = None


class PasswordHashing:
    """argon2id hashing with fixed parameters; one instance per store."""

    def __init__(
        self,
        *,
        time_cost: int = DEFAULT_TIME_COST,
        memory_cost: int = DEFAULT_MEMORY_COST_KIB,
        parallelism: int = DEFAULT_PARALLELISM,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        """The argon2id hash (PHC string) of ``password``; refuses an empty password."""
        if not password:
            raise ValueError("empty password")
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check ``password`` against ``stored_hash`` (None = unknown user: always fails).

        A broken or foreign hash string fails instead of raising.
        """
        if stored_hash is None:
            self._burn(password)
            return Verification(False)
        try:
            self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return Verification(False)
        if self._hasher.check_needs_rehash(stored_hash):
            return Verification(True, self._hasher.hash(password))
        return Verification(True)

    def _burn(self, password: str) -> None:
        """Spend the time of one real verification against a throwaway hash."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash("mailward-unknown-user")
        with contextlib.suppress(VerificationError):
            self._hasher.verify(self._dummy_hash, password)
