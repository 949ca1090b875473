"""DKIM signing keys of the site's domains: generate, store, publish, load for signing.

Keys live under ``DATA_DIR/dkim/DOMAIN/``: ``SELECTOR.rsa.pem`` (RSA-2048, PEM) and
``SELECTOR.ed25519.key`` (the base64 32-byte seed, as dkimpy wants it). Every domain is
dual-signed: one RSA and one Ed25519 signature (RFC 8463 recommends both during transition).
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str  # rsa-sha256 | ed25519-sha256
    private: bytes  # PEM for RSA, base64 seed for Ed25519
    dns_txt: str

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _rsa_txt(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def _ed25519_txt(key: ed25519.Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()


class KeyStore:
    """The site's DKIM keys on disk."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "dkim"
        self._loaded: dict[str, tuple[int, list[SigningKey]]] = {}

    def generate(self, domain: str, selector: str | None = None) -> list[SigningKey]:
        """Create an RSA-2048 and an Ed25519 key for ``domain``; refuse to overwrite."""
        domain = domain.lower().rstrip(".")
        base = selector or time.strftime("mw%Y%m")
        directory = self.root / domain
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ed_key = ed25519.Ed25519PrivateKey.generate()
        rsa_pem = rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        seed = ed_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        rsa_sel, ed_sel = f"{base}r", f"{base}e"
        try:
            _write_private(directory / f"{rsa_sel}.rsa.pem", rsa_pem)
            _write_private(directory / f"{ed_sel}.ed25519.key", base64.b64encode(seed))
        except FileExistsError:
            raise FileExistsError(f"keys with selector {base} exist already for {domain}") from None
        return [
            SigningKey(domain, rsa_sel, "rsa-sha256", rsa_pem, _rsa_txt(rsa_key)),
            SigningKey(domain, ed_sel, "ed25519-sha256", base64.b64encode(seed),
                       _ed25519_txt(ed_key)),
        ]

    def keys_for(self, domain: str) -> list[SigningKey]:
        """The newest RSA and Ed25519 key of ``domain`` (empty when it has none); read from
        disk again only when the domain's key directory changed."""
        directory = self.root / domain.lower().rstrip(".")
        try:
            stamp = directory.stat().st_mtime_ns
        except OSError:
            return []
        cached = self._loaded.get(directory.name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        keys = self._read(directory)
        self._loaded[directory.name] = (stamp, keys)
        return keys

    def _read(self, directory: Path) -> list[SigningKey]:
        domain = directory.name
        out = []
        rsa_files = sorted(directory.glob("*.rsa.pem"), key=lambda p: p.stat().st_mtime)
        ed_files = sorted(directory.glob("*.ed25519.key"), key=lambda p: p.stat().st_mtime)
        if rsa_files:
            pem = rsa_files[-1].read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            out.append(SigningKey(domain, rsa_files[-1].name.split(".")[0], "rsa-sha256", pem,
                                  _rsa_txt(key)))
        if ed_files:
            seed_b64 = ed_files[-1].read_bytes().strip()
            ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))
            out.append(SigningKey(domain, ed_files[-1].name.split(".")[0], "ed25519-sha256",
                                  seed_b64, _ed25519_txt(ed_key)))
        return out

    def domains(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.exists() \
            else []
