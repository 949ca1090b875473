"""rspamd as a side-by-side peer, as /work/shared/peers/rspamd/README.md prescribes.

`RspamdPeer` installs rspamd if missing, copies the peer's local.d/override.d files into
/etc/rspamd/, starts bench/dns_server.py on 127.0.0.1:5353 with the corpus zone data, starts
``rspamd -f`` and waits for 127.0.0.1:11333, POSTs each message to /checkv2 (IP, Helo, From,
Rcpt headers) at a given concurrency, reads rspamd's CPU from /proc (utime+stime of the main
process and its workers) and stops everything it started, by process id, when done.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from corpus import Corpus, Item

PEER_DIR = Path("/work/shared/peers/rspamd")
CONFIG_DIRS = {"rspamd-local.d": Path("/etc/rspamd/local.d"),
               "rspamd-override.d": Path("/etc/rspamd/override.d")}
HOST, SCAN_PORT, DNS_PORT = "127.0.0.1", 11333, 5353
START_TIMEOUT = 240.0  # rspamd reads its config and compiles hyperscan databases on start
REQUEST_TIMEOUT = 60.0
MAX_ERRORS = 50
_TICKS = os.sysconf("SC_CLK_TCK")
_BENCH = Path(__file__).resolve().parent

# rspamd symbol -> the RFC 8601 DMARC result word it stands for
DMARC_WORDS = {
    "DMARC_POLICY_ALLOW": "pass", "DMARC_POLICY_ALLOW_WITH_FAILURES": "pass",
    "DMARC_POLICY_REJECT": "fail", "DMARC_POLICY_QUARANTINE": "fail",
    "DMARC_POLICY_SOFTFAIL": "fail", "DMARC_NA": "none", "DMARC_BAD_POLICY": "permerror",
    "DMARC_DNSFAIL": "temperror",
}
# rspamd action -> the closest mailward disposition
ACTIONS = {"no action": "accept", "greylist": "tempfail", "add header": "tag",
           "rewrite subject": "tag", "soft reject": "tempfail", "reject": "reject"}


class PeerError(RuntimeError):
    """rspamd could not be installed, started or asked."""


@dataclass(slots=True)
class PeerOutcome:
    action: str
    disposition: str
    dmarc: str | None
    symbols: tuple[str, ...]


@dataclass(slots=True)
class PeerPass:
    concurrency: int
    messages: int
    wall: float
    cpu: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def cpu_ms(self) -> float:
        return self.cpu / max(1, self.messages) * 1000

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def outcome(answer: dict[str, Any]) -> PeerOutcome:
    symbols = tuple(sorted(answer.get("symbols", {})))
    dmarc = next((DMARC_WORDS[s] for s in symbols if s in DMARC_WORDS), None)
    action = str(answer.get("action", "?"))
    return PeerOutcome(action, ACTIONS.get(action, action), dmarc, symbols)


class RspamdPeer:
    """Owns the rspamd and DNS server processes for the length of a ``with`` block."""

    def __init__(self, corpus: Corpus, out_dir: Path, log: Any = print) -> None:
        self.corpus = corpus
        self.out_dir = out_dir
        self.log = log
        self.rspamd: subprocess.Popen[bytes] | None = None
        self.dns: subprocess.Popen[str] | None = None
        self._rspamd_log: TextIO | None = None
        self.version = ""

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> RspamdPeer:
        try:
            self.install()
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def install(self) -> None:
        if shutil.which("rspamd") is None:
            self.log("rspamd not installed: apt-get install -y rspamd")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            done = subprocess.run(["apt-get", "install", "-y", "rspamd"], env=env,
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0 or shutil.which("rspamd") is None:
                raise PeerError(f"apt-get install rspamd failed: {done.stderr[-500:]}")
        for source, target in CONFIG_DIRS.items():
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted((PEER_DIR / source).iterdir()):
                destination = target / path.name
                if not destination.exists() or destination.read_bytes() != path.read_bytes():
                    shutil.copyfile(path, destination)
        version = subprocess.run(["rspamd", "--version"], capture_output=True, text=True,
                                 check=False)
        self.version = version.stdout.strip().splitlines()[0] if version.stdout else "rspamd"

    def start(self) -> None:
        for port in (SCAN_PORT, DNS_PORT):
            if _port_open(port):
                raise PeerError(f"{HOST}:{port} is already in use; stop that process first")
        run_dir = Path("/run/rspamd")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "_rspamd", "_rspamd")
        self.dns = subprocess.Popen(
            [sys.executable, str(_BENCH / "dns_server.py"), "--zones",
             str(self.corpus.directory / "zones.yaml"), "--port", str(DNS_PORT)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.dns.stdout is not None
        line = self.dns.stdout.readline().strip()
        if line != "ready":
            raise PeerError(f"DNS server did not start: {line}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._rspamd_log = (self.out_dir / "rspamd-console.log").open("w")
        self.rspamd = subprocess.Popen(["rspamd", "-f", "-u", "_rspamd", "-g", "_rspamd"],
                                       stdout=self._rspamd_log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while not _port_open(SCAN_PORT):
            if self.rspamd.poll() is not None:
                raise PeerError(f"rspamd exited with {self.rspamd.returncode}; see "
                                f"{self.out_dir / 'rspamd-console.log'}")
            if time.monotonic() - started > START_TIMEOUT:
                raise PeerError(f"rspamd did not listen on {SCAN_PORT} in {START_TIMEOUT:.0f} s")
            time.sleep(0.5)
        self._settle(started)
        self.log(f"{self.version} listening on {HOST}:{SCAN_PORT} after "
                 f"{time.monotonic() - started:.0f} s")

    def _settle(self, started: float) -> None:
        """Wait until rspamd stops compiling (hyperscan) so start-up CPU is not measured."""
        quiet = 0
        previous = self.cpu_seconds()
        while quiet < 3 and time.monotonic() - started < START_TIMEOUT:
            time.sleep(1.0)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - previous < 0.03 else 0
            previous = now

    def stop(self) -> None:
        """Stop what this object started (rspamd main process, then the DNS server)."""
        if self.rspamd is not None and self.rspamd.poll() is None:
            self.rspamd.send_signal(signal.SIGTERM)
            try:
                self.rspamd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.rspamd.kill()
                self.rspamd.wait(timeout=10)
        if self.dns is not None and self.dns.poll() is None:
            self.dns.send_signal(signal.SIGTERM)
            try:
                self.dns.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.dns.kill()
                self.dns.wait(timeout=10)
        if self._rspamd_log is not None:
            self._rspamd_log.close()
            self._rspamd_log = None

    # --- measuring ---------------------------------------------------------------------------

    def _rdns(self, ip: str) -> str:
        """The PTR name of ``ip`` in the corpus zone data, or "unknown" (Postfix's word)."""
        entries = self.corpus.zones.get(ipaddress.ip_address(ip).reverse_pointer) or []
        names = [e["PTR"] for e in entries if isinstance(e, dict) and "PTR" in e]
        return str(names[0]) if names else "unknown"

    def processes(self) -> list[int]:
        """rspamd's main process and all its descendants (workers, controller, helpers)."""
        if self.rspamd is None:
            return []
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _read_stat(int(entry))
                if stat is not None:
                    parents[int(entry)] = int(stat[1])
        family = {self.rspamd.pid}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        return sorted(family)

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.processes():
            stat = _read_stat(pid)
            if stat is not None:
                total += int(stat[11]) + int(stat[12])  # utime, stime (fields 14, 15)
        return total / _TICKS

    def run_pass(self, concurrency: int) -> tuple[PeerPass, list[PeerOutcome | None]]:
        """POST every message once with ``concurrency`` requests in flight."""
        outcomes: list[PeerOutcome | None] = [None] * len(self.corpus.items)
        latencies: list[float] = []
        errors: list[str] = []
        order = list(range(len(self.corpus.items)))[::-1]

        async def worker() -> None:
            while order and len(errors) < MAX_ERRORS:
                index = order.pop()
                started = time.perf_counter()
                try:
                    item = self.corpus.items[index]
                    answer = await asyncio.wait_for(
                        _check(item, self.corpus.messages[index], self._rdns(item.ip)),
                        REQUEST_TIMEOUT)
                except (OSError, TimeoutError, ValueError) as exc:
                    errors.append(f"{self.corpus.items[index].id}: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - started)
                outcomes[index] = outcome(answer)

        async def run() -> None:
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        cpu, wall = self.cpu_seconds(), time.perf_counter()
        asyncio.run(run())
        wall, cpu = time.perf_counter() - wall, self.cpu_seconds() - cpu
        if len(errors) >= MAX_ERRORS:
            raise PeerError(f"rspamd: {len(errors)} failed requests, e.g. {errors[:3]}")
        return PeerPass(concurrency, len(latencies), wall, cpu, latencies, len(errors)), outcomes


async def _check(item: Item, raw: bytes, hostname: str) -> dict[str, Any]:
    """POST one message; ``hostname`` is the client's reverse DNS name, as an MTA passes it."""
    reader, writer = await asyncio.open_connection(HOST, SCAN_PORT)
    try:
        head = ["POST /checkv2 HTTP/1.1", f"Host: {HOST}", f"IP: {item.ip}",
                f"Hostname: {hostname}", f"Helo: {item.helo}", f"From: {item.mail_from}",
                *(f"Rcpt: {r}" for r in item.rcpt), f"Queue-Id: {item.id}",
                f"Content-Length: {len(raw)}", "Connection: close"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + raw)
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise ValueError(f"HTTP status {status.strip()!r}")
        length = None
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await (reader.readexactly(length) if length is not None else reader.read())
        return json.loads(body)
    finally:
        writer.close()


def _read_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields after "pid (comm) "; [0] is state


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0
