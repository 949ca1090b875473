"""The resolver: zone files, caching, negative caching, timeouts, in-flight sharing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailward.dns import Lookup, Resolver, Status, ZoneBackend, ZoneError, ZoneResolver

ZONES = {
    "example.com": [
        {"TXT": "v=spf1 -all"},
        {"A": "192.0.2.1"},
        {"MX": [10, "mx.example.com"]},
    ],
    "multi.example.com": [{"TXT": ["part one ", "part two"]}],
    "spfonly.example.com": [{"SPF": "v=spf1 +all"}],
    "alias.example.com": [{"CNAME": "example.com"}],
    "slow.example.com": ["TIMEOUT"],
    "empty.example.com": [],
}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_zone_answers_nxdomain_nodata_timeout() -> None:
    resolver = ZoneResolver(ZONES)

    async def go() -> list[Lookup]:
        return [
            await resolver.txt("example.com."),
            await resolver.txt("EXAMPLE.com"),
            await resolver.txt("nope.example.com"),
            await resolver.a("empty.example.com"),
            await resolver.txt("slow.example.com"),
            await resolver.mx("example.com"),
            await resolver.txt("multi.example.com"),
            await resolver.txt("spfonly.example.com"),
            await resolver.a("alias.example.com"),
        ]

    txt, upper, nx, nodata, slow, mx, multi, spf, alias = run(go())
    assert txt.records == (b"v=spf1 -all",) and upper.records == txt.records
    assert nx.status is Status.NXDOMAIN and nx.void
    assert nodata.ok and nodata.records == () and nodata.void
    assert slow.status is Status.TEMPERROR
    assert mx.records == ((10, "mx.example.com"),)
    assert multi.records == (b"part one part two",)
    assert spf.records == (b"v=spf1 +all",)
    assert alias.records == ("192.0.2.1",)


def test_cache_hits_and_negative_cache() -> None:
    backend = ZoneBackend(ZONES)
    calls: list[tuple[str, str]] = []

    class Counting:
        async def lookup(self, name: str, rdtype: str) -> Lookup:
            calls.append((name, rdtype))
            return await backend.lookup(name, rdtype)

    now = [1000.0]
    resolver = Resolver(Counting(), negative_ttl=60, clock=lambda: now[0])

    async def go() -> None:
        await resolver.txt("example.com")
        await resolver.txt("example.com")
        await resolver.txt("nope.example.com")
        await resolver.txt("nope.example.com")

    run(go())
    assert calls == [("example.com", "TXT"), ("nope.example.com", "TXT")]
    assert resolver.stats.hits == 2 and resolver.stats.negative_hits == 1
    now[0] += 61  # negative entry expired, positive (ttl 300) still fresh
    run(go())
    assert calls[-1] == ("nope.example.com", "TXT") and len(calls) == 3


def test_temperror_is_never_cached_and_timeout_is_enforced() -> None:
    class Hanging:
        async def lookup(self, name: str, rdtype: str) -> Lookup:
            await asyncio.sleep(10)
            raise AssertionError("unreachable")

    resolver = Resolver(Hanging(), timeout=0.05)
    result = run(resolver.txt("example.com"))
    assert result.status is Status.TEMPERROR and "timed out" in result.error
    assert resolver.cached("example.com", "TXT") is None


def test_backend_crash_is_temperror_not_nxdomain() -> None:
    class Broken:
        async def lookup(self, name: str, rdtype: str) -> Lookup:
            raise RuntimeError("boom")

    result = run(Resolver(Broken()).txt("example.com"))
    assert result.status is Status.TEMPERROR


def test_concurrent_queries_share_one_lookup() -> None:
    calls = 0

    class Slow:
        async def lookup(self, name: str, rdtype: str) -> Lookup:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            return Lookup(name, rdtype, Status.OK, (b"x",), 60)

    resolver = Resolver(Slow())

    async def go() -> list[Lookup]:
        return await asyncio.gather(*(resolver.txt("example.com") for _ in range(20)))

    results = run(go())
    assert calls == 1 and all(r.records == (b"x",) for r in results)


def test_invalid_names_are_nxdomain_without_asking() -> None:
    resolver = ZoneResolver({})
    assert run(resolver.txt("a" * 64 + ".example.com")).status is Status.NXDOMAIN
    assert run(resolver.txt("a..example.com")).status is Status.NXDOMAIN


def test_exists_combines_a_aaaa_mx() -> None:
    resolver = ZoneResolver(ZONES)
    assert run(resolver.exists("example.com")).ok
    assert run(resolver.exists("multi.example.com")).ok  # only TXT: NODATA, still exists
    assert run(resolver.exists("nope.example.com")).status is Status.NXDOMAIN
    assert run(resolver.exists("slow.example.com")).status is Status.TEMPERROR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "expected a mapping"),
        ("example.com: {TXT: x}", "expected a list"),
        ("example.com: [{BOGUS: x}]", "unsupported type"),
        ("example.com: [{MX: 5}]", "MX needs"),
        ("example.com: [: :", "not valid YAML"),
    ],
)
def test_bad_zone_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text(text)
    with pytest.raises(ZoneError, match=message):
        ZoneBackend.from_file(path)


def test_unreadable_zone_file(tmp_path: Path) -> None:
    with pytest.raises(ZoneError, match="cannot read"):
        ZoneBackend.from_file(tmp_path / "missing.yaml")


def test_suite_document_with_zonedata_key(tmp_path: Path) -> None:
    path = tmp_path / "zones.yaml"
    path.write_text("zonedata:\n  example.org:\n    - TXT: hello\n")
    assert run(ZoneResolver.from_file(path).txt("example.org")).records == (b"hello",)


def test_cancelled_caller_does_not_cancel_shared_lookup() -> None:
    class Slow:
        async def lookup(self, name: str, rdtype: str) -> Lookup:
            await asyncio.sleep(0.05)
            return Lookup(name, rdtype, Status.OK, (b"x",), 60)

    resolver = Resolver(Slow())

    async def go() -> Lookup:
        first = asyncio.create_task(resolver.txt("example.com"))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(resolver.txt("example.com"))
        await asyncio.sleep(0.01)
        first.cancel()
        return await second

    assert run(go()).records == (b"x",)


def test_cache_reads_take_names_as_written_or_normalized() -> None:
    resolver = ZoneResolver(ZONES)
    first = run(resolver.query("Example.COM.", "TXT"))
    assert resolver.cached("example.com", "TXT") is first
    assert resolver.cached(" Example.Com. ", "TXT") is first
    assert resolver.cached("EXAMPLE.COM", "A") is None  # not asked yet
    assert resolver.cached("other.example", "TXT") is None
    run(resolver.query("nothing.example.com", "TXT"))
    assert resolver.cached("Nothing.Example.Com", "TXT") is not None
    assert (resolver.stats.hits, resolver.stats.negative_hits) == (3, 1)
