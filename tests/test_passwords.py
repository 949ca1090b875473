"""argon2id hashing helpers: hash format, verification, rehash flag, unknown-user cost."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from mailward.passwords import PasswordHashing, Verification

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def test_hash_is_argon2id_with_the_parameters() -> None:
    hashed = PasswordHashing(**CHEAP).hash("s3cret")
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "s3cret" not in hashed
    assert hashed != PasswordHashing(**CHEAP).hash("s3cret")  # salted


def test_default_parameters_follow_rfc_9106() -> None:
    hashed = PasswordHashing().hash("x")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_verify() -> None:
    hashing = PasswordHashing(**CHEAP)
    hashed = hashing.hash("s3cret")
    assert hashing.verify(hashed, "s3cret") == Verification(True)
    assert hashing.verify(hashed, "S3cret") == Verification(False)
    assert hashing.verify(hashed, "") == Verification(False)


@pytest.mark.parametrize("broken", ["", "plain-text", "$argon2id$v=19$m=8,t=1,p=1$", "$2b$12$x"])
def test_broken_or_foreign_hashes_fail_without_raising(broken: str) -> None:
    assert PasswordHashing(**CHEAP).verify(broken, "s3cret") == Verification(False)


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty password"):
        PasswordHashing(**CHEAP).hash("")


def test_new_parameters_ask_for_a_rehash() -> None:
    old = PasswordHashing(**CHEAP).hash("s3cret")
    stronger = PasswordHashing(time_cost=2, memory_cost=16, parallelism=1)
    outcome = stronger.verify(old, "s3cret")
    assert outcome.ok and outcome.new_hash is not None
    assert outcome.new_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert stronger.verify(outcome.new_hash, "s3cret") == Verification(True)
    assert stronger.verify(old, "wrong") == Verification(False)  # no rehash on failure


def test_argon2i_hashes_are_upgraded_to_argon2id() -> None:
    from argon2 import Type

    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.I).hash("pw")
    outcome = PasswordHashing(**CHEAP).verify(legacy, "pw")
    assert outcome.ok and outcome.new_hash is not None and outcome.new_hash.startswith("$argon2id$")


def test_unknown_user_costs_one_real_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hashed: str, password: str) -> bool:
        calls.append(hashed)
        return real_verify(self, hashed, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    hashing = PasswordHashing(**CHEAP)
    for _ in range(3):
        assert hashing.verify(None, "s3cret") == Verification(False)
    assert len(calls) == 3
    assert len(set(calls)) == 1 and calls[0].startswith("$argon2id$v=19$m=8,t=1,p=1$")
