"""A small authoritative DNS server (UDP and TCP) answering from a YAML zone file, for rspamd.

Run as ``python bench/dns_server.py --zones ZONES.yaml [--port 5353]``: it binds 127.0.0.1 only,
prints ``ready`` once listening and serves until SIGTERM. Answers are built with dnspython from
`mailward.dns.ZoneBackend` (CNAMEs followed, NXDOMAIN for absent names) and cached as wire bytes
keyed by the query minus its ID, so a repeated question costs a dict lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
import sys
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from mailward.dns import ZoneBackend, normalize

TTL = 3600
MAX_CACHED = 200_000


def _rdata(rdtype: str, value: Any) -> dns.rdata.Rdata:
    klass = dns.rdataclass.IN
    if rdtype in ("TXT", "SPF"):
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [b""]
        return dns.rdtypes.ANY.TXT.TXT(klass, dns.rdatatype.TXT, chunks)
    if rdtype == "MX":
        return dns.rdata.from_text(klass, dns.rdatatype.MX, f"{value[0]} {value[1]}.")
    if rdtype in ("PTR", "CNAME"):
        return dns.rdata.from_text(klass, dns.rdatatype.from_text(rdtype), f"{value}.")
    return dns.rdata.from_text(klass, dns.rdatatype.from_text(rdtype), str(value))


class ZoneAnswers:
    """Turns query wire bytes into response wire bytes from the zone data."""

    def __init__(self, backend: ZoneBackend) -> None:
        self.backend = backend
        self._cache: dict[tuple[bytes, int], bytes] = {}
        self.queries = 0

    def answer(self, wire: bytes, limit: int) -> bytes | None:
        """The response to ``wire`` fitting in ``limit`` bytes (TC set when it does not)."""
        self.queries += 1
        key = (wire[2:], limit)
        cached = self._cache.get(key)
        if cached is not None:
            return wire[:2] + cached[2:]
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        response = self._respond(query)
        if response is None:  # TIMEOUT in the zone data: stay silent
            return None
        size = max(512, min(limit, query.payload if query.edns >= 0 else 512))
        try:
            out = response.to_wire(max_size=size)
        except dns.exception.TooBig:
            response.answer.clear()
            response.flags |= dns.flags.TC
            out = response.to_wire(max_size=size)
        if len(self._cache) < MAX_CACHED:
            self._cache[key] = out
        return out

    def _respond(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        name = normalize(question.name.to_text())
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name in self.backend.timeouts:
            return None
        owner = question.name
        for _depth in range(8):
            entry = self.backend.records.get(name)
            if entry is None:
                if not response.answer:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            if rdtype in entry:
                response.answer.append(self._rrset(owner, rdtype, entry[rdtype]))
                return response
            if "CNAME" not in entry:
                return response  # NODATA
            target = entry["CNAME"][0]
            response.answer.append(self._rrset(owner, "CNAME", [target]))
            name, owner = target, dns.name.from_text(target + ".")
        return response

    @staticmethod
    def _rrset(owner: dns.name.Name, rdtype: str, values: list[Any]) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
        for value in values:
            rrset.add(_rdata(rdtype, value), TTL)
        return rrset


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answers: ZoneAnswers) -> None:
        self.answers = answers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        out = self.answers.answer(data, 4096)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


async def _tcp_client(answers: ZoneAnswers, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(10_000):  # bounded: one connection, at most this many queries
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            out = answers.answer(await reader.readexactly(length), 65_535)
            if out is None:
                break
            writer.write(struct.pack("!H", len(out)) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(zone_file: str, host: str, port: int) -> None:
    answers = ZoneAnswers(ZoneBackend.from_file(zone_file))
    loop = asyncio.get_running_loop()
    transport, _protocol = await loop.create_datagram_endpoint(
        lambda: _Udp(answers), local_addr=(host, port))
    server = await asyncio.start_server(
        lambda r, w: _tcp_client(answers, r, w), host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        transport.close()
        server.close()
        print(f"answered {answers.queries} queries", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--zones", required=True, help="YAML zone file (mailward format)")
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"],
                        help="loopback address to bind")
    parser.add_argument("--port", type=int, default=5353)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.zones, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
