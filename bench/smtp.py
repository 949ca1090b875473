"""End-to-end SMTP benchmark: the hub with every default check vs Postfix's smtp-sink.

Usage: ``.venv/bin/python bench/smtp.py [--messages 3000] [--clients 50] [--workers N]``

Starts `mailward serve` on loopback with the example site's zone data (SPF, DKIM, DMARC all
evaluated; DNS cache warmed first), drives it with N concurrent pipelining SMTP clients written on
raw asyncio streams (cheap, so the load generator steals little of the 2 cores), waits until every
accepted message is in its Maildir, and prints messages/second accepted and delivered end to end
plus the latency per message (from the final dot to the 250). The same load against
``smtp-sink`` (the ceiling: an SMTP server that does nothing) runs in the same invocation, and the
added latency is the difference of the percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MAILWARD = str(Path(sys.executable).with_name("mailward"))
MESSAGE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def read_reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


async def client(
    port: int, seqs: list[int], latencies: list[float], failures: list[int],
    interval: float = 0.0,
) -> None:
    """One SMTP connection sending ``seqs``; with ``interval``, one message per interval."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await read_reply(reader)
    writer.write(b"EHLO mail.partner.test\r\n")
    await read_reply(reader)
    loop = asyncio.get_running_loop()
    next_at = loop.time() + interval * (seqs[0] % 7) / 7 if seqs else 0.0  # spread starts
    for seq in seqs:
        if interval:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
        body = b"X-Seq: %d\r\n" % seq + MESSAGE
        writer.write(
            b"MAIL FROM:<billing@partner.test>\r\nRCPT TO:<user%d@ourcorp.example>\r\nDATA\r\n"
            % (seq % 100)
        )
        codes = [await read_reply(reader) for _ in range(3)]
        if codes != [250, 250, 354]:
            failures.append(seq)
            writer.write(b"RSET\r\n")
            await read_reply(reader)
            continue
        writer.write(body + b".\r\n")
        started = time.perf_counter()
        code = await read_reply(reader)
        latencies.append(time.perf_counter() - started)
        if code != 250:
            failures.append(seq)
    writer.write(b"QUIT\r\n")
    await read_reply(reader)
    writer.close()


async def load(
    port: int, total: int, clients: int, rate: float = 0.0, first: int = 0
) -> tuple[float, list[float], list[int]]:
    """``total`` messages over ``clients`` connections: as fast as possible, or at ``rate``
    messages per second in all (each client paced at clients/rate seconds)."""
    latencies: list[float] = []
    failures: list[int] = []
    interval = clients / rate if rate else 0.0
    started = time.perf_counter()
    await asyncio.gather(*(
        client(port, list(range(first + i, first + total, clients)), latencies, failures,
               interval)
        for i in range(clients)
    ))
    return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def count_delivered(maildir: Path) -> int:
    if not maildir.exists():
        return 0
    total = 0
    for box in maildir.iterdir():
        with contextlib.suppress(FileNotFoundError):  # being created right now
            total += len(os.listdir(box / "new"))
    return total


def run_hub(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    port = free_port()
    zones = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    (workdir / "zones.yaml").write_text(yaml.safe_dump(zones))
    config = workdir / "mailward.toml"
    config.write_text(
        f'[site]\nauthserv_id = "mx.ourcorp.example"\ndomains = ["ourcorp.example"]\n'
        f'[server]\ndata_dir = "{workdir / "var"}"\n'
        + f"workers = {args.workers}\n"
        + f'[dns]\nzone_file = "{workdir / "zones.yaml"}"\n'
        f'[smtp]\nhostname = "mx.ourcorp.example"\ninbound_listen = "127.0.0.1:{port}"\n'
        'submission_listen = ""\nsubmission_tls_listen = ""\nmax_connections_per_ip = 500\n'
    )
    log = (workdir / "hub.log").open("wb")
    proc = subprocess.Popen([MAILWARD, "serve", "--config", str(config)], stdout=log,
                            stderr=subprocess.STDOUT)
    spy = None
    try:
        wait_port(port)
        asyncio.run(load(port, 50, 5))  # warm the DNS cache and the code paths
        maildir = workdir / "var" / "maildir"
        while count_delivered(maildir) < 50:
            time.sleep(0.05)
        cpu0, user0 = _cpu_of(proc.pid), _cpu_of(proc.pid, split=True)
        if args.profile:  # attach py-spy to the hub for the duration of the load
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record",
                                    "--pid", str(proc.pid), "--subprocesses", "--rate", "250",
                                    "--gil",
                                    "-o", args.profile, "--format", "raw"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        started = time.perf_counter()
        elapsed, latencies, failures = asyncio.run(load(port, args.messages, args.clients))
        accepted = len(latencies) - len(failures)
        deadline = time.monotonic() + 300
        while count_delivered(maildir) < 50 + accepted and time.monotonic() < deadline:
            time.sleep(0.02)
        end_to_end = time.perf_counter() - started
        delivered = count_delivered(maildir) - 50
        cpu = _cpu_of(proc.pid) - cpu0
        user = _cpu_of(proc.pid, split=True) - user0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        _, paced, paced_failures = asyncio.run(
            load(port, args.paced_messages, args.clients, args.rate, first=10**6)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()
    return {
        "elapsed": elapsed, "end_to_end": end_to_end, "accepted": accepted,
        "failures": len(failures),
        "delivered": delivered,
        "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
        "cpu_ms": cpu * 1000 / max(1, accepted),
        "user_ms": user * 1000 / max(1, accepted),
        "paced_p50": percentile(paced, 50), "paced_p99": percentile(paced, 99),
        "paced_failures": len(paced_failures),
    }


def _cpu_of(pid: int, split: bool = False) -> float:
    """utime+stime in seconds of a process and all its children (worker processes)."""
    total = 0.0
    user = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            user += int(fields[11]) / tick
        except (OSError, IndexError, ValueError):
            pass
    return user if split else total


def run_sink(args: argparse.Namespace) -> dict[str, float] | None:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(sink).exists():
        print("smtp-sink not found (Debian package postfix); the ceiling is not measured")
        return None
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # smtp-sink refuses to run as root
    proc = subprocess.Popen([sink, *user, "-c", f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        elapsed, latencies, failures = asyncio.run(load(port, args.messages, args.clients))
        _, paced, _ = asyncio.run(load(port, args.paced_messages, args.clients, args.rate))
    finally:
        proc.terminate()
        proc.wait(10)
    return {"elapsed": elapsed, "accepted": len(latencies) - len(failures),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "paced_p50": percentile(paced, 50), "paced_p99": percentile(paced, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=250.0,
                        help="offered load (messages/s) of the latency phase")
    parser.add_argument("--paced-messages", type=int, default=1500,
                        help="messages sent in the latency phase")
    parser.add_argument("--workers", type=int, default=0, help="hub processes; 0 = one per core")
    parser.add_argument("--profile", metavar="SVG", help="record the hub with py-spy into SVG")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailward-bench-") as tmp:
        hub = run_hub(args, Path(tmp))
    sink = run_sink(args)
    cores = os.cpu_count()
    print(f"\nSMTP end to end: {args.messages} messages of {len(MESSAGE)} bytes, "
          f"{args.clients} concurrent clients, {cores} cores (load generator included)")
    rate = hub["delivered"] / hub["end_to_end"]
    print(f"  mailward  accepted {hub['accepted']:.0f} ({hub['failures']:.0f} refused), "
          f"delivered {hub['delivered']:.0f}: {rate:7.1f} msg/s accepted and delivered "
          f"({hub['accepted'] / hub['elapsed']:.1f} msg/s accepted); "
          f"latency p50 {hub['p50']:.1f} ms, p99 {hub['p99']:.1f} ms; "
          f"hub CPU {hub['cpu_ms']:.2f} ms/message ({hub['user_ms']:.2f} user, "
          f"{hub['cpu_ms'] - hub['user_ms']:.2f} system)")
    if sink is not None:
        sink_rate = sink["accepted"] / sink["elapsed"]
        print(f"  smtp-sink accepted {sink['accepted']:.0f}: {sink_rate:7.1f} msg/s; "
              f"latency p50 {sink['p50']:.1f} ms, p99 {sink['p99']:.1f} ms (ceiling)")
        print(f"  at full load the latency is queueing: added p50 {hub['p50'] - sink['p50']:.1f} "
              f"ms, p99 {hub['p99'] - sink['p99']:.1f} ms")
        print(f"\nLatency at an offered load of {args.rate:g} msg/s from {args.clients} clients "
              f"({args.paced_messages} messages):")
        print(f"  mailward  p50 {hub['paced_p50']:.1f} ms, p99 {hub['paced_p99']:.1f} ms "
              f"({hub['paced_failures']:.0f} refused); smtp-sink p50 {sink['paced_p50']:.1f} ms, "
              f"p99 {sink['paced_p99']:.1f} ms")
        print(f"  added latency p50 {hub['paced_p50'] - sink['paced_p50']:.1f} ms, "
              f"p99 {hub['paced_p99'] - sink['paced_p99']:.1f} ms (target: p99 added < 50 ms)")
        print(f"\nTargets: >= 350 msg/s accepted and delivered end to end "
              f"(measured {rate:.0f}); p99 added latency < 50 ms at {args.clients} clients")


if __name__ == "__main__":
    main()
