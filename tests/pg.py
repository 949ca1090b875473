"""A throwaway PostgreSQL cluster for tests: initdb in a temp directory, loopback port, its own
socket directory; started once per session from Debian's binaries and stopped at the end.
Missing binaries fail the run: scripts/install-test-deps installs them."""

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

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


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
