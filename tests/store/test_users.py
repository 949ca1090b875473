"""Users: argon2id hashes only, addresses and aliases, rehash on new parameters, the same
cost for unknown users, and the cleartext password never stored or logged."""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mailward.passwords import PasswordHashing
from mailward.store import (
    AddressTaken,
    Store,
    UnknownUser,
    UserAddress,
    UserExists,
)
from mailward.store.engine import make_engine
from mailward.store.models import Base, UserRow

SECRET = "Tr0ub4dor&3-very-secret"


def stored_hash(store: Store, name: str) -> str:
    engine = make_engine(store.url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(select(UserRow.password_hash).where(UserRow.name == name)).scalar()
            )
    finally:
        engine.dispose()


def everything_stored(store: Store) -> str:
    """Every value of every row of every table, as one text."""
    engine = make_engine(store.url)
    out: list[str] = []
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for row in conn.execute(table.select()):
                    out.extend(repr(v) for v in row)
    finally:
        engine.dispose()
    return "\n".join(out)


def test_add_list_and_addresses(store: Store) -> None:
    store.add_user(
        "alice",
        SECRET,
        addresses=["Alice@OurCorp.example"],
        aliases=["postmaster@ourcorp.example", "alice@ourcorp.example"],  # owned wins
    )
    store.add_user("bob", "pw-bob")
    assert store.addresses_of("alice") == [
        UserAddress("alice@ourcorp.example", alias=False),
        UserAddress("postmaster@ourcorp.example", alias=True),
    ]
    listed = store.list_users()
    assert [(u.name, u.disabled, u.addresses) for u in listed] == [
        ("alice", False, tuple(store.addresses_of("alice"))),
        ("bob", False, ()),
    ]
    assert listed[0].created_at.tzinfo is not None
    assert not hasattr(listed[0], "password_hash")
    assert store.owner_of("POSTMASTER@ourcorp.example") == "alice"
    assert store.owner_of("nobody@ourcorp.example") is None


def test_address_changes(store: Store) -> None:
    store.add_user("alice", SECRET, addresses=["alice@ourcorp.example"])
    store.add_user("bob", "pw-bob")
    store.add_address("bob", "bob@ourcorp.example")
    store.add_address("bob", "sales@ourcorp.example", alias=True)
    with pytest.raises(AddressTaken, match=r"alice@ourcorp\.example"):
        store.add_address("bob", "ALICE@ourcorp.example")
    with pytest.raises(UnknownUser):
        store.add_address("carol", "carol@ourcorp.example")
    assert store.remove_address("sales@ourcorp.example") is True
    assert store.remove_address("sales@ourcorp.example") is False
    assert store.addresses_of("bob") == [UserAddress("bob@ourcorp.example", alias=False)]


def test_refusals(store: Store) -> None:
    store.add_user("alice", SECRET, addresses=["alice@ourcorp.example"])
    with pytest.raises(UserExists):
        store.add_user("alice", "other")
    with pytest.raises(AddressTaken):
        store.add_user("mallory", "pw", aliases=["alice@ourcorp.example"])
    assert [u.name for u in store.list_users()] == ["alice"]  # nothing of mallory was kept
    with pytest.raises(ValueError, match="empty password"):
        store.add_user("carol", "")
    with pytest.raises(ValueError, match="user name"):
        store.add_user(" ", "pw")
    with pytest.raises(ValueError, match="not a mail address"):
        store.add_user("carol", "pw", addresses=["carol"])
    with pytest.raises(UnknownUser):
        store.addresses_of("nobody")
    with pytest.raises(UnknownUser):
        store.set_password("nobody", "pw")
    with pytest.raises(UnknownUser):
        store.disable_user("nobody")


def test_verify_password(store: Store) -> None:
    store.add_user("alice", SECRET)
    assert store.verify_password("alice", SECRET) is True
    assert store.verify_password("alice", SECRET.upper()) is False
    assert store.verify_password("alice", "") is False
    assert store.verify_password("nobody", SECRET) is False


def test_set_password_disable_and_remove(store: Store) -> None:
    store.add_user("alice", SECRET, addresses=["alice@ourcorp.example"])
    store.set_password("alice", "new-secret")
    assert store.verify_password("alice", SECRET) is False
    assert store.verify_password("alice", "new-secret") is True
    store.disable_user("alice")
    assert store.verify_password("alice", "new-secret") is False
    assert store.list_users()[0].disabled is True
    store.disable_user("alice", disabled=False)
    assert store.verify_password("alice", "new-secret") is True
    assert store.remove_user("alice") is True
    assert store.remove_user("alice") is False
    assert store.verify_password("alice", "new-secret") is False
    assert store.owner_of("alice@ourcorp.example") is None  # addresses went with the user


def test_only_an_argon2id_hash_is_stored(store: Store) -> None:
    store.add_user("alice", SECRET)
    assert stored_hash(store, "alice").startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_rehash_when_parameters_change(store: Store) -> None:
    store.add_user("alice", SECRET)
    old = stored_hash(store, "alice")
    stronger = PasswordHashing(time_cost=2, memory_cost=16, parallelism=1)
    with Store.open(store.url, hashing=stronger) as upgraded:
        assert upgraded.verify_password("alice", "wrong") is False
        assert stored_hash(store, "alice") == old  # a failed login changes nothing
        assert upgraded.verify_password("alice", SECRET) is True
        new = stored_hash(store, "alice")
        assert new != old and new.startswith("$argon2id$v=19$m=16,t=2,p=1$")
        assert upgraded.verify_password("alice", SECRET) is True
        assert stored_hash(store, "alice") == new  # no rehash when nothing changed


def test_the_cleartext_password_is_never_stored_or_logged(
    store: Store, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statement logging on
    try:
        store.add_user("alice", SECRET, addresses=["alice@ourcorp.example"])
        store.set_password("alice", SECRET + "2")
        store.verify_password("alice", SECRET + "2")
        store.verify_password("nobody", SECRET)
        stronger = PasswordHashing(time_cost=2, memory_cost=16, parallelism=1)
        with Store.open(store.url, hashing=stronger) as upgraded:
            upgraded.verify_password("alice", SECRET + "2")  # rehash path
            upgraded.record_auth(ip="192.0.2.1", user="alice", mechanism="PLAIN", success=True)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert caplog.records, "statement logging was expected to produce records"
    assert SECRET not in caplog.text
    assert "$argon2id$" not in caplog.text  # parameters (hashes) are hidden in logs too
    assert SECRET not in everything_stored(store)
    if store.backend == "sqlite":
        database = Path(store.url.removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):  # the file, its WAL and SHM
            assert SECRET.encode() not in path.read_bytes(), path


def test_unknown_users_cost_about_as_much_as_known_ones(store_url: str) -> None:
    """A login probe cannot tell existing names by the time the answer takes."""
    costly = PasswordHashing(time_cost=2, memory_cost=4096, parallelism=1)
    with Store.open(store_url, hashing=costly) as store:
        store.add_user("alice", SECRET)

        def seconds(name: str) -> float:
            start = time.perf_counter()
            assert store.verify_password(name, "wrong password") is False
            return time.perf_counter() - start

        seconds("nobody")  # the first call makes the dummy hash
        known = statistics.median(seconds("alice") for _ in range(5))
        unknown = statistics.median(seconds("nobody") for _ in range(5))
    assert 0.5 < unknown / known < 2.0, (known, unknown)
