"""Store fixtures: every store test runs on an SQLite file and on a real PostgreSQL server.

The PostgreSQL server is a throwaway cluster (initdb in a temp directory, loopback port, its own
socket directory), started once per session from Debian's binaries and stopped at the end. Each
test gets a fresh database in it. Missing binaries fail the run: scripts/install-test-deps
installs them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailward.passwords import PasswordHashing
from mailward.store import Store
from mailward.store.engine import make_engine
from mailward.store.models import Base
from tests.pg import PgServer

BACKENDS = ["sqlite", "postgresql"]


def fast_hashing() -> PasswordHashing:
    """Real argon2id with the cheapest parameters, so user tests stay fast."""
    return PasswordHashing(time_cost=1, memory_cost=8, parallelism=1)


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
