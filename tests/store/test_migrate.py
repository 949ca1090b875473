"""Migrations: Store.open brings any database to head; the migrated schema equals the models."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, inspect

import mailward
from mailward.store import Store, migrate
from mailward.store.engine import make_engine
from mailward.store.models import Base

HEAD = "0002"
REVISION_FILES = ["0001_initial.py", "0002_campaign_urls.py"]


def schema_differences(
    engine: Engine, metadata: MetaData
) -> list[tuple[Any, ...] | list[tuple[Any, ...]]]:
    """compare_metadata's diffs: ("add_column", ...) tuples, or lists of ("modify_*", ...) ones."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine on a new database that Store.open has migrated."""
    Store.open(store_url, instance="mx1.test").close()
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def test_models_and_migrated_schema_agree(engine: Engine) -> None:
    assert migrate.current_revision(engine) == migrate.head_revision() == HEAD
    assert schema_differences(engine, Base.metadata) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["events"].append_column(Column("extra", Integer, index=True))
    diffs = schema_differences(engine, changed)
    assert [d[0] for d in diffs] == ["add_column", "add_index"]


def test_every_table_is_created(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert {
        "connections",
        "transactions",
        "recipients",
        "findings",
        "deliveries",
        "auth_events",
        "users",
        "user_addresses",
        "user_reports",
        "quarantine",
        "alerts",
        "events",
    } <= tables


def test_open_again_is_a_no_op(store_url: str) -> None:
    for _ in range(2):
        Store.open(store_url, instance="again").close()
    engine = make_engine(store_url)
    try:
        assert migrate.current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert schema_differences(engine, Base.metadata) == []


def test_hubs_opening_a_new_database_together_migrate_it_once(store_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one(i: int) -> None:
        try:
            start.wait()
            Store.open(store_url, instance=f"mx{i}").close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = make_engine(store_url)
    try:
        assert schema_differences(engine, Base.metadata) == []
    finally:
        engine.dispose()


def test_scripts_live_inside_the_package() -> None:
    package = Path(next(iter(mailward.__path__))).resolve()
    location = migrate.SCRIPT_LOCATION
    assert location.is_relative_to(package)
    assert (location / "env.py").is_file()
    assert (location / "script.py.mako").is_file()
    assert sorted(p.name for p in (location / "versions").glob("*.py")) == REVISION_FILES


def test_no_alembic_ini_needed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "mailward.store", "upgrade", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "alembic.ini").exists()
    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) == HEAD
    finally:
        engine.dispose()
