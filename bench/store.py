"""The store benchmark: events written per second (SQLite and PostgreSQL) and search latency over
one million logged transactions.

    .venv/bin/python bench/store.py [--rows 1000000] [--backends sqlite,postgresql]
                                    [--messages 5000] [--paced-seconds 10] [--queries 20]

Writes: a fresh database per backend, the hub's ``EventWriter``, and per message the events the
hub writes (connection, its update and close, the transaction with 2 recipients, 8 findings and
2 links, 2 deliveries, an AUTH attempt every fifth message): first as fast as possible (events/s,
CPU per event in this process), then paced at the hub benchmark's target load (350 msg/s) to
show the writer keeps up (its backlog and how long the final flush takes).

Searches: 1,000,000 generated transactions (with ~2 M recipients, 3 M findings, 1 M links and
330 k connections) are bulk-loaded once (SQLite executemany, PostgreSQL COPY, indexes built after
the load) and cached: ``bench/out/store-<rows>.db`` and the PostgreSQL cluster directory
``bench/out/pg-store-<rows>/``. Then ``Store.find_transactions(limit=100)`` (what
``mailward log search`` runs) is timed for each indexed search (sender, recipient, client IP,
Message-ID, a one-hour time range) on values picked at random, plus ``log campaign`` and two
unindexed searches for reference. Target: under 200 ms for an indexed search.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mailward.campaign import find_campaign
from mailward.model import Finding, Result
from mailward.store import Store

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TARGET_SEARCH_MS = 200.0
HUB_TARGET_MSG_S = 350.0  # bench/smtp.py's end-to-end target
T_END = datetime(2026, 6, 30, tzinfo=UTC)
SPAN = timedelta(days=90)
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite
LOG_TABLES = ("connections", "transactions", "recipients", "findings", "transaction_urls")
FINDINGS = [
    ("spf", "SPF_PASS", "pass", -1.0, "192.0.2.10 is permitted by sender.example's SPF record"),
    ("dkim", "DKIM_PASS", "pass", -1.0, "signature d=sender.example s=mw202605 verified"),
    ("dmarc", "DMARC_PASS", "pass", -2.0, "aligned with sender.example (p=reject)"),
    ("arc", "ARC_NONE", "none", 0.0, "no ARC chain"),
    ("spf", "SPF_FAIL", "fail", 3.0, "203.0.113.66 is not permitted by the SPF record"),
    ("dmarc", "DMARC_FAIL_REJECT", "fail", 18.0, "not aligned; the domain asks for reject"),
    ("identity", "IDENTITY_LOOKALIKE", "policy", 6.0, "0urcorp.example looks like ourcorp.example"),
    ("content", "CONTENT_CREDENTIALS", "policy", 6.5, "asks the reader for a password"),
]


# -- a throwaway (or cached) PostgreSQL cluster ---------------------------------------------


def _pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL server binaries not found: run scripts/install-test-deps")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pg_cluster(root: Path) -> Iterator[Callable[[str], str]]:
    """A PostgreSQL cluster in ``root`` (made on first use, kept), started on a free loopback
    port and stopped at the end; yields ``url(database)``."""
    bindir = _pg_bindir()
    as_postgres: list[str] = []
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A",
             "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True,
        )
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB "
        "-c max_wal_size=4GB"
    )
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-l", str(log), "-o", options, "-w", "-t", "120", "start"],
                   check=True, capture_output=True)
    try:
        yield lambda database: f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, check=False)


def pg_admin(url: str, statement: str) -> None:
    import psycopg

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(statement)


# -- writes -------------------------------------------------------------------------------------


def write_messages(recorder: Any, count: int, start: int, now: datetime) -> int:
    """Record ``count`` messages the way the hub does; returns the number of events."""
    events = 0
    findings = [Finding(c, s, Result(r), d, score=sc) for c, s, r, sc, d in FINDINGS]
    for n in range(start, start + count):
        conn = recorder.record_connection(peer_ip=f"198.51.{n % 250}.{n % 200 + 1}", opened_at=now)
        recorder.update_connection(conn, helo=f"mail{n % 97}.sender.example", tls_version="TLSv1.3")
        recipients = [f"u{n % 5000}@ourcorp.example", f"u{(n * 7) % 5000}@ourcorp.example"]
        recorder.record_transaction(
            queue_id=f"W{n:09d}", connection_id=conn, mail_from=f"s{n % 1000}@sender.example",
            recipients=recipients, disposition="accept", score=-4.0, findings=findings,
            message_id=f"<{n}.bench@sender.example>", header_from=f"S <s{n % 1000}@sender.example>",
            from_address=f"s{n % 1000}@sender.example", subject=f"Invoice {n}", size=12_000,
            body_sha256=f"{n:064x}", received_at=now,
            urls=[f"https://sender.example/i/{n}", "https://sender.example/logo"],
        )
        for rcpt in recipients:
            recorder.record_delivery(queue_id=f"W{n:09d}", recipient=rcpt, status="delivered",
                                     reply="250 2.0.0 ok", at=now)
        recorder.close_connection(conn, closed_at=now)
        events += 6
        if n % 5 == 0:
            recorder.record_auth(ip="192.0.2.5", user=f"user{n % 50}", mechanism="PLAIN",
                                 success=True, at=now)
            events += 1
    return events


def bench_writes(url: str, messages: int, paced_seconds: float) -> dict[str, float]:
    with Store.open(url, instance="bench") as store:
        writer = store.writer()
        now = datetime.now(UTC)
        cpu, wall = time.process_time(), time.perf_counter()
        events = write_messages(writer, messages, 0, now)
        writer.flush()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        result = {"events": events, "events_per_s": events / wall,
                  "messages_per_s": messages / wall, "cpu_us_per_event": cpu / events * 1e6}
        # paced: the hub benchmark's target load, submitted every 10 ms
        sent, backlog = 0, 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < paced_seconds:
            due = int(elapsed * HUB_TARGET_MSG_S) - sent
            if due > 0:
                write_messages(writer, due, messages + sent, now)
                sent += due
            backlog = max(backlog, writer.pending())
            time.sleep(0.01)
        flushed = time.perf_counter()
        writer.flush()
        result.update(paced_msg_s=sent / paced_seconds, paced_max_backlog_jobs=backlog,
                      paced_final_flush_s=time.perf_counter() - flushed)
        writer.close()
        assert writer.failed == 0 and writer.dropped == 0, (writer.failed, writer.dropped)
    return result


# -- one million transactions -------------------------------------------------------------------


@dataclass
class Generated:
    """Columns of each log table as tuples (in the tables' column order below)."""

    tables: dict[str, list[tuple[Any, ...]]]


COLUMNS = {
    "connections": ("id", "instance", "peer_ip", "rdns", "helo", "tls_version", "tls_cipher",
                    "auth_user", "opened_at", "closed_at"),
    "transactions": ("id", "queue_id", "connection_id", "received_at", "message_id", "mail_from",
                     "mail_from_domain", "header_from", "from_address", "from_domain", "reply_to",
                     "subject", "size", "body_sha256", "disposition", "score", "forced_by"),
    "recipients": ("id", "transaction_id", "address", "domain"),
    "findings": ("id", "transaction_id", "check_name", "symbol", "result", "score", "detail"),
    "transaction_urls": ("id", "transaction_id", "url"),
}


def _skewed(rng: random.Random, size: int) -> int:
    """An index in [0, size) with a long tail: a few values are frequent, most are rare."""
    return int(size * rng.random() ** 3)


def _row_id(when: datetime, rng: random.Random) -> str:
    return f"{int(when.timestamp() * 1e9):016x}{rng.getrandbits(64):016x}"


def generate(rows: int, seed: int = 1) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Yield (table, rows) in chunks of about 50,000 transactions, in time order."""
    rng = random.Random(seed)
    step = SPAN / rows
    start = T_END - SPAN
    dispositions = ["accept"] * 85 + ["tag"] * 7 + ["quarantine"] * 4 + ["reject"] * 4
    counters = {"recipients": 0, "findings": 0, "transaction_urls": 0}
    chunk: dict[str, list[tuple[Any, ...]]] = {t: [] for t in COLUMNS}
    connection: tuple[Any, ...] | None = None
    left_on_connection = 0
    bodies: list[str] = []
    for i in range(rows):
        when = start + step * i
        if left_on_connection == 0:
            ip_index = _skewed(rng, 50_000)
            connection = (
                _row_id(when, rng), "mx1.bench", f"10.{ip_index >> 16}.{(ip_index >> 8) & 255}."
                f"{ip_index & 255}", f"host{ip_index}.net{ip_index % 900}.example",
                f"host{ip_index}.example", "TLSv1.3", "TLS_AES_256_GCM_SHA384", None, when,
                when + timedelta(seconds=2),
            )
            chunk["connections"].append(connection)
            left_on_connection = rng.randint(1, 5)
        left_on_connection -= 1
        assert connection is not None
        sender_index = _skewed(rng, 200_000)
        domain = f"d{sender_index % 20_000}.example"
        mail_from = f"user{sender_index}@{domain}"
        from_address = mail_from if rng.random() < 0.8 else f"user{_skewed(rng, 200_000)}@{domain}"
        if bodies and rng.random() < 0.05:
            body = rng.choice(bodies)  # the same body again: a campaign
        else:
            body = f"{rng.getrandbits(256):064x}"
            if len(bodies) < 10_000:
                bodies.append(body)
        disposition = rng.choice(dispositions)
        forced = "DMARC_FAIL_REJECT" if disposition == "reject" else None
        tid = _row_id(when, rng)
        chunk["transactions"].append((
            tid, f"Q{i:08d}", connection[0], when, f"<{i:x}.{rng.getrandbits(40):x}@{domain}>",
            mail_from, domain, f"User {sender_index} <{from_address}>", from_address, domain,
            None, f"Subject number {_skewed(rng, 50_000)}", rng.randint(2_000, 60_000), body,
            disposition, rng.uniform(-5, 25), forced,
        ))
        for _ in range(rng.choice((1, 1, 2, 3))):
            counters["recipients"] += 1
            if rng.random() < 0.9:
                address, rdomain = f"u{_skewed(rng, 5_000)}@ourcorp.example", "ourcorp.example"
            else:
                address, rdomain = f"x{rng.randint(0, 99_999)}@partner.example", "partner.example"
            chunk["recipients"].append((counters["recipients"], tid, address, rdomain))
        for check, symbol, result, score, detail in rng.sample(FINDINGS, 3):
            counters["findings"] += 1
            chunk["findings"].append((counters["findings"], tid, check, symbol, result, score,
                                      detail))
        for _ in range(rng.choice((0, 1, 1, 2))):
            counters["transaction_urls"] += 1
            url = f"https://{domain}/p/{_skewed(rng, 100_000)}"
            chunk["transaction_urls"].append((counters["transaction_urls"], tid, url))
        if (i + 1) % 50_000 == 0 or i + 1 == rows:
            for table in COLUMNS:
                yield table, chunk[table]
            chunk = {t: [] for t in COLUMNS}


def _sqlite_values(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(v.astimezone(UTC).strftime(SQLITE_TIME) if isinstance(v, datetime) else v
                 for v in row)


def load_sqlite(path: Path, rows: int) -> None:
    Store.open(f"sqlite:///{path}", instance="bench").close()  # the schema, by the migrations
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL AND "
            f"tbl_name IN ({','.join('?' * len(LOG_TABLES))})", LOG_TABLES,
        ).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        db.execute("BEGIN")
        for table, batch in generate(rows):
            cols = COLUMNS[table]
            db.executemany(
                f"INSERT INTO {table} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                [_sqlite_values(r) for r in batch],
            )
        db.execute("COMMIT")
        for _, sql in indexes:
            db.execute(sql)
        db.execute("ANALYZE")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def load_postgresql(url: str, rows: int) -> None:
    import psycopg

    Store.open(url, instance="bench").close()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=database) as db:
        db.execute("SET maintenance_work_mem = '512MB'")
        indexes = db.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND "
            "tablename = ANY(%s) AND indexname NOT LIKE 'pk_%%'", [list(LOG_TABLES)],
        ).fetchall()
        foreign = db.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
            "pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            [list(LOG_TABLES)],
        ).fetchall()
        for table, name, _ in foreign:
            db.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        with db.cursor() as cur:
            for table, batch in generate(rows):
                with cur.copy(f"COPY {table} ({','.join(COLUMNS[table])}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
        for _, definition in indexes:
            db.execute(definition)
        for table, name, definition in foreign:
            db.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        db.commit()
        db.autocommit = True
        db.execute("VACUUM ANALYZE")


def loaded_rows(url: str) -> int:
    from sqlalchemy import func, select

    from mailward.store.engine import make_engine
    from mailward.store.models import TransactionRow

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            table = TransactionRow.__table__
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    except Exception:
        return -1
    finally:
        engine.dispose()


# -- searches -----------------------------------------------------------------------------------


REPEAT = 3


def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Milliseconds of the fastest of ``runs`` calls after the first (untimed) one."""
    result = call()
    best = float("inf")
    for _ in range(runs - 1):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best * 1000, result


def bench_searches(url: str, rows: int, queries: int, seed: int = 7) -> dict[str, list[float]]:
    rng = random.Random(seed)
    results: dict[str, list[float]] = {}
    with Store.open(url, instance="bench") as store:
        samples = [store.transaction(f"Q{rng.randrange(rows):08d}") for _ in range(queries)]
        kinds: dict[str, Callable[[Any], dict[str, Any]]] = {
            "sender": lambda t: {"sender": t.mail_from},
            "recipient": lambda t: {"recipient": t.recipients[0]},
            "client ip": lambda t: {"client_ip": t.client_ip},
            "message-id": lambda t: {"message_id": t.message_id},
            "time range (1 h)": lambda t: {"since": t.received_at,
                                           "until": t.received_at + timedelta(hours=1)},
            "sender + 7 days": lambda t: {"sender": t.mail_from,
                                          "since": t.received_at - timedelta(days=7)},
            "domain (unindexed OR)": lambda t: {"domain": t.mail_from.rpartition("@")[2]},
            "subject substring (scan)": lambda t: {"subject": t.subject.split()[-1] + "x"},
        }
        # each sample: one untimed run (pages in memory, as on a server that has been
        # searching), then the best of REPEAT timed runs (other load on the machine aside)
        for name, filters in kinds.items():
            results[name] = [
                timed(lambda t=t, f=filters: store.find_transactions(**f(t)), REPEAT + 1)[0]
                for t in samples if t is not None
            ]
        results["log campaign (72 h)"] = [
            timed(lambda t=t: find_campaign(store, t.queue_id), REPEAT + 1)[0]
            for t in samples if t is not None
        ]
    return results


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def print_searches(backend: str, results: dict[str, list[float]]) -> bool:
    ok = True
    print(f"\nSearch latency, {backend} (find_transactions limit=100, ms, warm, best of "
          f"{REPEAT} per sample; load average {os.getloadavg()[0]:.1f}):")
    print(f"  {'search':<26} {'median':>8} {'p95':>8} {'max':>8}")
    for name, values in results.items():
        indexed = "scan" not in name and "unindexed" not in name
        mark = ""
        if indexed:
            good = percentile(values, 0.95) < TARGET_SEARCH_MS
            ok = ok and good
            mark = "  ok" if good else f"  OVER {TARGET_SEARCH_MS:.0f} ms"
        print(f"  {name:<26} {statistics.median(values):8.1f} {percentile(values, 0.95):8.1f} "
              f"{max(values):8.1f}{mark}")
    return ok


def print_writes(writes: dict[str, float], args: argparse.Namespace) -> None:
    print(f"Writes through the EventWriter: {writes['events']:.0f} events "
          f"({args.messages} messages) at {writes['events_per_s']:,.0f} events/s = "
          f"{writes['messages_per_s']:,.0f} messages/s; "
          f"{writes['cpu_us_per_event']:.0f} µs CPU per event in the caller+writer")
    print(f"  paced at the hub target {HUB_TARGET_MSG_S:.0f} msg/s for "
          f"{args.paced_seconds:g} s: {writes['paced_msg_s']:.0f} msg/s offered, largest "
          f"backlog {writes['paced_max_backlog_jobs']:.0f} jobs, final flush "
          f"{writes['paced_final_flush_s'] * 1000:.0f} ms "
          f"({'keeps up' if writes['paced_final_flush_s'] < 1 else 'FALLS BEHIND'})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--messages", type=int, default=5000, help="messages in the write test")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--queries", type=int, default=20, help="samples per search")
    parser.add_argument("--no-writes", action="store_true", help="only the searches")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for backend in backends:
        with contextlib_backend(backend, args.rows) as (write_url, search_url):
            print(f"\n== {backend} ==", flush=True)
            if not args.no_writes:
                print_writes(bench_writes(write_url, args.messages, args.paced_seconds), args)
            have = loaded_rows(search_url)
            if have != args.rows:
                print(f"Generating {args.rows:,} transactions (cached afterwards)...", flush=True)
                started = time.perf_counter()
                if backend == "sqlite":
                    path = Path(search_url.removeprefix("sqlite:///"))
                    path.unlink(missing_ok=True)
                    load_sqlite(path, args.rows)
                else:
                    database = search_url.rsplit("/", 1)[1]
                    pg_admin(search_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                    pg_admin(search_url, f'CREATE DATABASE "{database}"')
                    load_postgresql(search_url, args.rows)
                print(f"  loaded in {time.perf_counter() - started:.0f} s")
            else:
                print(f"Using the cached {args.rows:,} transactions")
            all_ok = print_searches(backend, bench_searches(search_url, args.rows,
                                                            args.queries)) and all_ok
    print(f"\nTarget: indexed searches under {TARGET_SEARCH_MS:.0f} ms (p95): "
          + ("met" if all_ok else "NOT met"))


@contextmanager
def contextlib_backend(backend: str, rows: int) -> Iterator[tuple[str, str]]:
    """(URL of a fresh database for the write test, URL of the cached search database)."""
    if backend == "sqlite":
        scratch = Path(tempfile.mkdtemp(prefix="mailward-bench-"))
        try:
            yield f"sqlite:///{scratch / 'writes.db'}", f"sqlite:///{OUT / f'store-{rows}.db'}"
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    if backend != "postgresql":
        sys.exit(f"unknown backend {backend!r}")
    with pg_cluster(OUT / f"pg-store-{rows}") as url:
        pg_admin(url("postgres"), 'DROP DATABASE IF EXISTS "writes" WITH (FORCE)')
        pg_admin(url("postgres"), 'CREATE DATABASE "writes"')
        try:
            yield url("writes"), url(f"search_{rows}")
        finally:
            pg_admin(url("postgres"), 'DROP DATABASE IF EXISTS "writes" WITH (FORCE)')


if __name__ == "__main__":
    main()
