"""One async DNS resolver for every check: TTL and negative cache, timeouts, zone files.

A lookup never raises for DNS trouble. It returns a `Lookup` whose status says what happened:
``ok`` (records, possibly none = NODATA), ``nxdomain`` (the name does not exist) or
``temperror`` (we could not ask: timeout, SERVFAIL, refused). Callers decide what that means.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import yaml

RDTYPES = ("A", "AAAA", "MX", "TXT", "PTR", "CNAME", "SPF")


class Status(enum.StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"
    TEMPERROR = "temperror"


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome of one query.

    ``records`` by type: A/AAAA: address strings; MX: ``(preference, host)``; TXT/SPF: the
    character-strings of each record joined, as bytes; PTR/CNAME: host names. Host names are
    lower-case without the trailing dot.
    """

    name: str
    rdtype: str
    status: Status
    records: tuple[Any, ...] = ()
    ttl: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def void(self) -> bool:
        """RFC 7208 4.6.4: NXDOMAIN or an answer with no records."""
        return self.status is Status.NXDOMAIN or (self.ok and not self.records)


class Backend(Protocol):
    """Where answers come from: real DNS or a zone file."""

    async def lookup(self, name: str, rdtype: str) -> Lookup: ...


def normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


def valid_name(name: str) -> bool:
    """Whether a name can be asked for at all (labels 1..63 octets, total ≤ 253)."""
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return "" not in labels and max(map(len, labels)) <= 63


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    negative_hits: int = 0


@dataclass(slots=True)
class Resolver:
    """Caching front of a backend; shares in-flight queries; enforces a per-query timeout."""

    backend: Backend
    timeout: float = 5.0
    max_entries: int = 100_000
    negative_ttl: float = 300.0
    min_ttl: float = 1.0
    max_ttl: float = 86_400.0
    clock: Any = time.monotonic
    stats: CacheStats = field(default_factory=CacheStats)
    _cache: OrderedDict[tuple[str, str], tuple[float, Lookup]] = field(default_factory=OrderedDict)
    _inflight: dict[tuple[str, str], asyncio.Future[Lookup]] = field(default_factory=dict)

    async def query(self, name: str, rdtype: str) -> Lookup:
        name = normalize(name)
        hit = self.cached(name, rdtype)
        if hit is not None:
            return hit
        self.stats.misses += 1
        if not valid_name(name):
            return Lookup(name, rdtype, Status.NXDOMAIN, error="invalid domain name")
        key = (name, rdtype)
        task = self._inflight.get(key)
        if task is None:
            # The lookup runs as its own task: a caller that is cancelled (its check ran out
            # of time) must not cancel the answer other callers are waiting for.
            task = asyncio.ensure_future(self._fetch(name, rdtype))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _fetch(self, name: str, rdtype: str) -> Lookup:
        try:
            result = await asyncio.wait_for(self.backend.lookup(name, rdtype), self.timeout)
        except TimeoutError:
            result = Lookup(name, rdtype, Status.TEMPERROR, error="timed out")
        except Exception as exc:  # a backend bug must not become "no record"
            result = Lookup(name, rdtype, Status.TEMPERROR, error=f"resolver error: {exc}")
        self._store((name, rdtype), result)
        return result

    def cached(self, name: str, rdtype: str) -> Lookup | None:
        """A fresh cached answer, or None. Synchronous: for libraries that cannot await."""
        key = (name, rdtype)  # callers mostly pass normalized names: try the name as given
        entry = self._cache.get(key)
        if entry is None:
            key = (normalize(name), rdtype)
            if key[0] == name:
                return None
            entry = self._cache.get(key)
            if entry is None:
                return None
        expires, result = entry
        if expires < self.clock():
            del self._cache[key]
            return None
        stats = self.stats
        stats.hits += 1
        if result.status is not Status.OK or not result.records:
            stats.negative_hits += 1
        return result

    def _store(self, key: tuple[str, str], result: Lookup) -> None:
        if result.status is Status.TEMPERROR:
            return
        ttl = result.ttl if result.ok and result.records else min(result.ttl or self.negative_ttl,
                                                                   self.negative_ttl)
        ttl = max(self.min_ttl, min(ttl, self.max_ttl))
        self._cache[key] = (self.clock() + ttl, result)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    # Typed conveniences.
    async def txt(self, name: str) -> Lookup:
        return await self.query(name, "TXT")

    async def a(self, name: str) -> Lookup:
        return await self.query(name, "A")

    async def aaaa(self, name: str) -> Lookup:
        return await self.query(name, "AAAA")

    async def mx(self, name: str) -> Lookup:
        return await self.query(name, "MX")

    async def ptr(self, name: str) -> Lookup:
        return await self.query(name, "PTR")

    async def exists(self, name: str) -> Lookup:
        """Whether a domain exists (RFC 9989 np=, App. A.4): it does unless the A, AAAA and MX
        queries all say NXDOMAIN; a name with only other records (NODATA) exists."""
        results = await asyncio.gather(self.a(name), self.aaaa(name), self.mx(name))
        if any(r.ok for r in results):
            return Lookup(name, "EXISTS", Status.OK, records=(True,))
        if any(r.status is Status.TEMPERROR for r in results):
            errors = "; ".join(r.error for r in results if r.error)
            return Lookup(name, "EXISTS", Status.TEMPERROR, error=errors)
        return Lookup(name, "EXISTS", Status.NXDOMAIN)


# --- real DNS -------------------------------------------------------------------------------


class DnspythonBackend:
    """Real DNS through dnspython's async resolver."""

    def __init__(self, nameservers: Iterable[str] = (), timeout: float = 5.0) -> None:
        configure = not list(nameservers)
        self._resolver = dns.asyncresolver.Resolver(configure=configure)
        if not configure:
            self._resolver.nameservers = list(nameservers)
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(timeout, 2.0)
        self._resolver.cache = None

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        try:
            answer = await self._resolver.resolve(name + ".", rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(name, rdtype, Status.NXDOMAIN)
        except (dns.resolver.LifetimeTimeout, dns.exception.Timeout):
            return Lookup(name, rdtype, Status.TEMPERROR, error="timed out")
        except dns.resolver.NoNameservers as exc:
            return Lookup(name, rdtype, Status.TEMPERROR, error=f"no nameserver answered: {exc}")
        except (dns.name.LabelTooLong, dns.name.NameTooLong, dns.name.EmptyLabel):
            return Lookup(name, rdtype, Status.NXDOMAIN, error="invalid domain name")
        except dns.exception.DNSException as exc:
            return Lookup(name, rdtype, Status.TEMPERROR, error=str(exc))
        rrset = answer.rrset
        if rrset is None:
            ttl = _negative_ttl(answer)
            return Lookup(name, rdtype, Status.OK, (), ttl)
        return Lookup(name, rdtype, Status.OK, tuple(_convert(rdtype, r) for r in rrset), rrset.ttl)


def _negative_ttl(answer: dns.resolver.Answer) -> float:
    for rrset in answer.response.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return float(min(rrset.ttl, rrset[0].minimum))
    return 300.0


def _host(name: Any) -> str:
    return normalize(str(name))


def _convert(rdtype: str, rdata: Any) -> Any:
    if rdtype in ("A", "AAAA"):
        return rdata.address
    if rdtype == "MX":
        return (rdata.preference, _host(rdata.exchange))
    if rdtype in ("TXT", "SPF"):
        return b"".join(rdata.strings)
    if rdtype in ("PTR", "CNAME"):
        return _host(rdata.target)
    return rdata.to_text()


# --- zone files -----------------------------------------------------------------------------


class ZoneError(ValueError):
    """A zone file that cannot be read or understood."""


class ZoneBackend:
    """Answers from YAML zone data in the RFC 7208 test-suite ``zonedata`` format.

    ``name: [ {TYPE: value}, ..., TIMEOUT ]``. Names absent are NXDOMAIN; a name listing
    ``TIMEOUT`` times out for every query. SPF entries are also served as TXT when the name has
    no TXT entry (the suite's convention). CNAMEs are followed.
    """

    def __init__(self, zones: Mapping[str, Any], ttl: float = 300.0) -> None:
        self.ttl = ttl
        self.records: dict[str, dict[str, list[Any]]] = {}
        self.timeouts: set[str] = set()
        for raw_name, entries in (zones or {}).items():
            self._add(str(raw_name), entries)
        for records in self.records.values():
            if "SPF" in records and "TXT" not in records:
                records["TXT"] = list(records["SPF"])

    def _add(self, raw_name: str, entries: Any) -> None:
        name = normalize(raw_name)
        records = self.records.setdefault(name, {})
        if entries is None:
            return
        if not isinstance(entries, list):
            raise ZoneError(f"zone entry {raw_name!r}: expected a list of records")
        for entry in entries:
            if entry == "TIMEOUT":
                self.timeouts.add(name)
                continue
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ZoneError(f"zone entry {raw_name!r}: bad record {entry!r}")
            ((rdtype, value),) = entry.items()
            rdtype = str(rdtype).upper()
            if rdtype not in RDTYPES:
                raise ZoneError(f"zone entry {raw_name!r}: unsupported type {rdtype}")
            records.setdefault(rdtype, []).append(_zone_value(raw_name, rdtype, value))

    @classmethod
    def from_file(cls, path: str | Path) -> ZoneBackend:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ZoneError(f"cannot read zone file {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ZoneError(f"zone file {path} is not UTF-8: {exc}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ZoneError(f"zone file {path} is not valid YAML: {exc}") from exc
        if isinstance(data, dict) and "zonedata" in data:
            data = data["zonedata"]
        if data is not None and not isinstance(data, dict):
            raise ZoneError(f"zone file {path}: expected a mapping of names to records")
        return cls(data or {})

    async def lookup(self, name: str, rdtype: str) -> Lookup:
        return self.lookup_now(name, rdtype)

    def lookup_now(self, name: str, rdtype: str, depth: int = 0) -> Lookup:
        if name in self.timeouts:
            return Lookup(name, rdtype, Status.TEMPERROR, error="timed out")
        records = self.records.get(name)
        if records is None:
            return Lookup(name, rdtype, Status.NXDOMAIN)
        if rdtype in records:
            return Lookup(name, rdtype, Status.OK, tuple(records[rdtype]), self.ttl)
        if "CNAME" in records and rdtype != "CNAME" and depth < 8:
            return self.lookup_now(records["CNAME"][0], rdtype, depth + 1)
        return Lookup(name, rdtype, Status.OK, (), self.ttl)


def _zone_value(raw_name: str, rdtype: str, value: Any) -> Any:
    if rdtype in ("TXT", "SPF"):
        parts = value if isinstance(value, list) else [value]
        return b"".join(_txt_bytes(p) for p in parts)
    if rdtype == "MX":
        if not isinstance(value, list) or len(value) != 2:
            raise ZoneError(f"zone entry {raw_name!r}: MX needs [preference, host]")
        return (int(value[0]), normalize(str(value[1])))
    if rdtype in ("PTR", "CNAME"):
        return normalize(str(value))
    return str(value)


def _txt_bytes(part: Any) -> bytes:
    if isinstance(part, bytes):
        return part
    text = str(part)
    try:
        return text.encode("latin-1")  # YAML "\xEF" escapes mean raw octets
    except UnicodeEncodeError:
        return text.encode("utf-8")


class ZoneResolver(Resolver):
    """A `Resolver` that answers from YAML zone data instead of the network."""

    def __init__(self, zones: Mapping[str, Any] | ZoneBackend, **kwargs: Any) -> None:
        backend = zones if isinstance(zones, ZoneBackend) else ZoneBackend(zones)
        super().__init__(backend, **kwargs)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> ZoneResolver:
        return cls(ZoneBackend.from_file(path), **kwargs)


def make_resolver(
    zone_file: str | None, nameservers: Iterable[str] = (), timeout: float = 5.0,
    cache_size: int = 100_000, negative_ttl: float = 300.0,
) -> Resolver:
    """The resolver the configuration asks for: a zone file if set, else real DNS."""
    if zone_file:
        return ZoneResolver.from_file(
            zone_file, timeout=timeout, max_entries=cache_size, negative_ttl=negative_ttl
        )
    return Resolver(
        DnspythonBackend(nameservers, timeout),
        timeout=timeout,
        max_entries=cache_size,
        negative_ttl=negative_ttl,
    )
