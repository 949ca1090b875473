"""Store fixtures: every store test runs on an SQLite file and on a real PostgreSQL server.

The PostgreSQL server is a throwaway cluster (initdb in a temp directory, loopback port, its own
socket directory), started once per session from Debian's binaries and stopped at the end. Each
test gets a fresh database in it. Missing binaries fail the run: scripts/install-test-deps
installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from mailward.passwords import PasswordHashing
from mailward.store import Store
from mailward.store.engine import make_engine
from mailward.store.models import Base

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
BACKENDS = ["sqlite", "postgresql"]


def fast_hashing() -> PasswordHashing:
    """Real argon2id with the cheapest parameters, so user tests stay fast."""
    return PasswordHashing(time_cost=1, memory_cost=8, parallelism=1)


def _pg_bindir() -> Path | None:
    found = [
        Path(p)
        for p in glob.glob(PG_BIN_GLOB)
        if all((Path(p) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres"))
    ]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running throwaway PostgreSQL cluster (superuser ``postgres``, trust auth)."""

    port: int
    socket_dir: Path
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"mailward_test_{next(self._names)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log and log.exists() else ""
        pytest.fail(
            f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail(
            f"PostgreSQL server binaries not found ({PG_BIN_GLOB}/initdb): "
            "run scripts/install-test-deps (it installs the Debian package postgresql)",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="mailward-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "no 'postgres' user: run scripts/install-test-deps (package postgresql)",
                pytrace=False,
            )
        os.chown(root, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    _run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        "initdb",
    )
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data)]
    _run([*pg_ctl, "-l", str(log), "-o", options, "-w", "-t", "60", "start"], "pg_ctl start", log)
    try:
        yield PgServer(port=port, socket_dir=root)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each store test runs once per backend."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database (not migrated) on the backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


@pytest.fixture(scope="session")
def pg_shared_url(pg_server: PgServer) -> str:
    """One migrated PostgreSQL database that the ``store`` fixture empties before each test
    (creating and migrating a database per test would cost almost a second each)."""
    url = pg_server.url(pg_server.create_database())
    Store.open(url, instance="setup").close()
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that the ``store`` fixture copies (cheaper than migrating)."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    Store.open(f"sqlite:///{path}", instance="setup").close()  # closing checkpoints the WAL
    return path


def _empty(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated, empty store on the backend (instance name ``mx1.test``)."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "store.db")
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_shared_url")
        _empty(url)
    opened = Store.open(url, instance="mx1.test", hashing=fast_hashing())
    yield opened
    opened.close()
