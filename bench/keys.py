"""Deterministic DKIM keys for the benchmark corpus: RSA-2048 and Ed25519 from a seed, cached.

RSA primes come from a seeded Miller-Rabin search, so the same seed always gives the same keys
(and, with a fixed signing clock, byte-identical signed messages). Keys are cached as JSON
under bench/out/ because the prime search costs about a third of a second per key.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_PUBLIC_EXPONENT = 65537
_SMALL_PRIMES = [p for p in range(3, 5000) if all(p % q for q in range(2, int(p**0.5) + 1))]
_PRIMORIAL = math.prod(_SMALL_PRIMES)


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One signing key: ``algorithm`` is dkimpy's name, ``private`` what `dkim.sign` takes,
    ``public`` the base64 value of the key record's ``p=`` tag."""

    algorithm: str  # "rsa-sha256" or "ed25519-sha256"
    private: str
    public: str

    @property
    def key_type(self) -> str:
        return "rsa" if self.algorithm.startswith("rsa") else "ed25519"

    def txt_record(self) -> str:
        return f"v=DKIM1; k={self.key_type}; p={self.public}"


def _probable_prime(n: int, rng: random.Random, rounds: int = 6) -> bool:
    """Miller-Rabin; 6 rounds on random 1024-bit candidates err with probability < 2^-100."""
    if math.gcd(n, _PRIMORIAL) != 1:
        return n in _SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng: random.Random, bits: int) -> int:
    while True:
        candidate = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits: full-size n
        if (candidate - 1) % _PUBLIC_EXPONENT and _probable_prime(candidate, rng):
            return candidate


def rsa_key(rng: random.Random, bits: int = 2048) -> DkimKey:
    """An RSA key derived only from ``rng``."""
    p = _prime(rng, bits // 2)
    q = _prime(rng, bits // 2)
    while q == p:
        q = _prime(rng, bits // 2)
    n = p * q
    d = pow(_PUBLIC_EXPONENT, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(_PUBLIC_EXPONENT, n),
    )
    key = numbers.private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey("rsa-sha256", pem.decode("ascii"), base64.b64encode(spki).decode("ascii"))


def ed25519_key(rng: random.Random) -> DkimKey:
    """An Ed25519 key (RFC 8463) derived only from ``rng``."""
    seed = rng.getrandbits(256).to_bytes(32, "big")
    signing = nacl.signing.SigningKey(seed)
    return DkimKey(
        "ed25519-sha256",
        base64.b64encode(seed).decode("ascii"),
        base64.b64encode(bytes(signing.verify_key)).decode("ascii"),
    )


def derive(seed: int, name: str, algorithm: str) -> DkimKey:
    """The key called ``name`` of ``seed``: always the same one."""
    rng = random.Random(f"{seed}/{name}/{algorithm}")
    return rsa_key(rng) if algorithm == "rsa-sha256" else ed25519_key(rng)


_PLACEHOLDER = DkimKey("rsa-sha256", "", "AAAA")


class KeyStore:
    """Named keys derived from (seed, name), loaded from and saved to a JSON cache file.

    With ``collect=True`` it hands out placeholders and records which keys are wanted, so a
    first pass over the world can list them and `generate` can derive them in parallel.
    """

    def __init__(self, seed: int, cache: Path, collect: bool = False) -> None:
        self.seed = seed
        self.cache = cache
        self.collect = collect
        self.wanted: list[tuple[str, str]] = []
        self._keys: dict[str, DkimKey] = {}
        self._dirty = False
        if cache.exists():
            for name, fields in json.loads(cache.read_text()).items():
                self._keys[name] = DkimKey(**fields)

    def get(self, name: str, algorithm: str) -> DkimKey:
        key = self._keys.get(name)
        if key is None or key.algorithm != algorithm:
            if self.collect:
                self.wanted.append((name, algorithm))
                return _PLACEHOLDER
            key = derive(self.seed, name, algorithm)
            self._keys[name] = key
            self._dirty = True
        return key

    def generate(self, wanted: list[tuple[str, str]]) -> None:
        """Derive the missing keys among ``wanted`` on every core."""
        missing = [(n, a) for n, a in wanted if n not in self._keys]
        if not missing:
            return
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            keys = pool.map(derive, [self.seed] * len(missing), *zip(*missing, strict=True))
            for (name, _algorithm), key in zip(missing, keys, strict=True):
                self._keys[name] = key
        self._dirty = True

    def save(self) -> None:
        if self._dirty:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({n: asdict(k) for n, k in sorted(self._keys.items())}))
            tmp.replace(self.cache)
            self._dirty = False
