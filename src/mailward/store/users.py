"""Hub users: names, argon2id password hashes, owned addresses and aliases.

Hashing (slow on purpose) happens outside database transactions. The password itself is never
written, logged or put in an exception message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from mailward.passwords import PasswordHashing
from mailward.store import limits
from mailward.store.records import (
    AddressTaken,
    StoreError,
    UnknownUser,
    UserAddress,
    UserExists,
    UserRecord,
)
from mailward.store.tables import ADDRESSES, USERS


def _name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > limits.NAME or not cleaned.isprintable():
        raise ValueError(f"unusable user name {name!r}")
    return cleaned


def _address(address: str) -> str:
    cleaned = limits.address(address) or ""
    local, _, domain = cleaned.rpartition("@")
    if not local or not domain or not cleaned.isprintable() or " " in cleaned:
        raise ValueError(f"not a mail address: {address!r}")
    return cleaned


def _user_id(conn: Connection, name: str) -> int:
    user_id = conn.execute(select(USERS.c.id).where(USERS.c.name == name)).scalar()
    if user_id is None:
        raise UnknownUser(f"no user {name!r}")
    return int(user_id)


def _add_addresses(conn: Connection, user_id: int, addresses: dict[str, bool]) -> None:
    if not addresses:
        return
    taken = conn.execute(
        select(ADDRESSES.c.address).where(ADDRESSES.c.address.in_(list(addresses)))
    ).scalars()
    taken_list = sorted(taken)
    if taken_list:
        raise AddressTaken("address already assigned: " + ", ".join(taken_list))
    conn.execute(
        ADDRESSES.insert(),
        [{"user_id": user_id, "address": a, "alias": alias} for a, alias in addresses.items()],
    )


def add_user(
    writes: Engine,
    hashing: PasswordHashing,
    name: str,
    password: str,
    addresses: Iterable[str] = (),
    aliases: Iterable[str] = (),
) -> None:
    name = _name(name)
    wanted = {_address(a): False for a in addresses}
    for alias in aliases:
        wanted.setdefault(_address(alias), True)
    password_hash = hashing.hash(password)
    try:
        with writes.begin() as conn:
            exists = conn.execute(select(USERS.c.id).where(USERS.c.name == name)).scalar()
            if exists is not None:
                raise UserExists(f"user {name!r} exists")
            user_id = conn.execute(
                USERS.insert().returning(USERS.c.id),
                {
                    "name": name,
                    "password_hash": password_hash,
                    "created_at": datetime.now(UTC),
                    "disabled": False,
                },
            ).scalar_one()
            _add_addresses(conn, user_id, wanted)
    except IntegrityError:
        raise StoreError(f"user {name!r} or one of its addresses was added meanwhile") from None


def remove_user(writes: Engine, name: str) -> bool:
    """Delete the user and its addresses; False if there was no such user."""
    with writes.begin() as conn:
        user_id = conn.execute(select(USERS.c.id).where(USERS.c.name == name)).scalar()
        if user_id is None:
            return False
        conn.execute(delete(ADDRESSES).where(ADDRESSES.c.user_id == user_id))
        conn.execute(delete(USERS).where(USERS.c.id == user_id))
    return True


def set_password(writes: Engine, hashing: PasswordHashing, name: str, password: str) -> None:
    password_hash = hashing.hash(password)
    with writes.begin() as conn:
        done = conn.execute(
            update(USERS).where(USERS.c.name == name).values(password_hash=password_hash)
        ).rowcount
    if not done:
        raise UnknownUser(f"no user {name!r}")


def set_disabled(writes: Engine, name: str, disabled: bool) -> None:
    with writes.begin() as conn:
        done = conn.execute(
            update(USERS).where(USERS.c.name == name).values(disabled=disabled)
        ).rowcount
    if not done:
        raise UnknownUser(f"no user {name!r}")


def verify_password(
    reads: Engine, writes: Engine, hashing: PasswordHashing, name: str, password: str
) -> bool:
    """True only for an existing, enabled user with this password (same cost either way)."""
    with reads.connect() as conn:
        row = conn.execute(
            select(USERS.c.password_hash, USERS.c.disabled).where(USERS.c.name == name)
        ).first()
    stored = None if row is None else row.password_hash
    outcome = hashing.verify(stored, password)
    if not outcome.ok or row is None:
        return False
    if outcome.new_hash is not None:
        # Parameters changed since this hash was made: replace it, unless it changed meanwhile.
        with writes.begin() as conn:
            conn.execute(
                update(USERS)
                .where(USERS.c.name == name, USERS.c.password_hash == stored)
                .values(password_hash=outcome.new_hash)
            )
    return not row.disabled


def add_address(writes: Engine, name: str, address: str, alias: bool = False) -> None:
    with writes.begin() as conn:
        _add_addresses(conn, _user_id(conn, name), {_address(address): alias})


def remove_address(writes: Engine, address: str) -> bool:
    with writes.begin() as conn:
        done = conn.execute(
            delete(ADDRESSES).where(ADDRESSES.c.address == _address(address))
        ).rowcount
    return bool(done)


def addresses_of(reads: Engine, name: str) -> list[UserAddress]:
    with reads.connect() as conn:
        user_id = _user_id(conn, name)
        rows = conn.execute(
            select(ADDRESSES.c.address, ADDRESSES.c.alias)
            .where(ADDRESSES.c.user_id == user_id)
            .order_by(ADDRESSES.c.alias, ADDRESSES.c.address)
        )
        return [UserAddress(r.address, r.alias) for r in rows]


def owner_of(reads: Engine, address: str) -> str | None:
    """The user who owns ``address`` or has it as an alias."""
    with reads.connect() as conn:
        return conn.execute(
            select(USERS.c.name)
            .join(ADDRESSES, ADDRESSES.c.user_id == USERS.c.id)
            .where(ADDRESSES.c.address == _address(address))
        ).scalar()


def list_users(reads: Engine) -> list[UserRecord]:
    with reads.connect() as conn:
        users = conn.execute(
            select(USERS.c.id, USERS.c.name, USERS.c.created_at, USERS.c.disabled).order_by(
                USERS.c.name
            )
        ).all()
        owned: dict[int, list[UserAddress]] = {}
        for r in conn.execute(
            select(ADDRESSES.c.user_id, ADDRESSES.c.address, ADDRESSES.c.alias).order_by(
                ADDRESSES.c.alias, ADDRESSES.c.address
            )
        ):
            owned.setdefault(r.user_id, []).append(UserAddress(r.address, r.alias))
    return [UserRecord(u.name, u.created_at, u.disabled, tuple(owned.get(u.id, ()))) for u in users]
