"""MTA-STS (RFC 8461): discover, fetch, cache and apply a recipient domain's TLS policy."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

from mailward.dns import Resolver, Status

MAX_POLICY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy: ``mode`` enforce|testing|none, MX patterns, max_age seconds."""

    policy_id: str
    mode: str
    mx: tuple[str, ...]
    max_age: int

    def allows(self, mx_host: str) -> bool:
        """RFC 8461 4.1: exact match or a ``*.`` wildcard matching one leftmost label."""
        host = mx_host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                suffix = pattern[1:]
                if host.endswith(suffix) and "." not in host[: -len(suffix)]:
                    return True
            elif host == pattern:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Lookup:
    """What is known about a domain's MTA-STS: a policy, none, or a temporary failure."""

    policy: Policy | None
    error: str = ""
    temporary: bool = False


class PolicyError(ValueError):
    pass


def parse_txt(record: bytes) -> str | None:
    """The ``id=`` of a valid ``v=STSv1`` TXT record, else None."""
    text = record.decode("ascii", "replace")
    fields = dict(
        part.strip().split("=", 1) for part in text.split(";") if "=" in part
    )
    if fields.get("v") != "STSv1" or not fields.get("id"):
        return None
    return fields["id"]


def parse_policy(text: str, policy_id: str) -> Policy:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        values.setdefault(key.strip(), []).append(value.strip())
    if values.get("version") != ["STSv1"]:
        raise PolicyError("policy version is not STSv1")
    mode = (values.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise PolicyError(f"bad mode {mode!r}")
    try:
        max_age = int((values.get("max_age") or [""])[0])
    except ValueError:
        raise PolicyError("bad max_age") from None
    mx = tuple(m.lower().rstrip(".") for m in values.get("mx", []))
    if mode != "none" and not mx:
        raise PolicyError("no mx patterns")
    return Policy(policy_id, mode, mx, min(max_age, 31_557_600))


@dataclass
class MtaStsResolver:
    """Finds the policy of a recipient domain, caching it for its max_age (RFC 8461 3.3)."""

    resolver: Resolver
    ssl_context: ssl.SSLContext
    https_port: int = 443
    timeout: float = 20.0
    _cache: dict[str, tuple[float, Policy]] = field(default_factory=dict)

    async def policy_for(self, domain: str) -> Lookup:
        domain = domain.lower().rstrip(".")
        txt = await self.resolver.txt(f"_mta-sts.{domain}")
        cached = self._cache.get(domain)
        if txt.status is Status.TEMPERROR:
            if cached and cached[0] > time.time():
                return Lookup(cached[1])
            return Lookup(None, "MTA-STS TXT lookup failed", temporary=True)
        ids = [i for i in (parse_txt(r) for r in txt.records) if i]
        if len(ids) != 1:
            if cached and cached[0] > time.time():
                return Lookup(cached[1])  # 5.1: keep using a cached, unexpired policy
            return Lookup(None)
        if cached and cached[1].policy_id == ids[0] and cached[0] > time.time():
            return Lookup(cached[1])
        try:
            text = await asyncio.wait_for(self._fetch(domain), self.timeout)
            policy = parse_policy(text, ids[0])
        except (OSError, TimeoutError, PolicyError, ssl.SSLError, UnicodeDecodeError) as exc:
            if cached and cached[0] > time.time():
                return Lookup(cached[1])
            # RFC 8461 5.1: a failed fetch with no cached policy means no policy is applied.
            return Lookup(None, f"policy fetch failed: {exc}")
        self._cache[domain] = (time.time() + policy.max_age, policy)
        return Lookup(policy)

    async def _fetch(self, domain: str) -> str:
        host = f"mta-sts.{domain}"
        answer = await self.resolver.a(host)
        if not answer.ok or not answer.records:
            raise OSError(f"{host} has no address")
        reader, writer = await asyncio.open_connection(
            answer.records[0], self.https_port, ssl=self.ssl_context, server_hostname=host
        )
        try:
            writer.write(
                f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\n"
                "Connection: close\r\nUser-Agent: mailward\r\n\r\n".encode()
            )
            await writer.drain()
            response = await reader.read(MAX_POLICY_BYTES + 4096)
        finally:
            writer.close()
        head, _, body = response.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"200":
            raise OSError(f"policy fetch answered {head[:60]!r}")
        if b"transfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return body[:MAX_POLICY_BYTES].decode("utf-8")


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)
