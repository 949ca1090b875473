"""Alembic, configured in code: the schema is brought to the newest revision on open.

No alembic.ini is needed: the scripts live in ``migrations/`` inside the package (and the wheel).
Several hubs may open one database at once: on PostgreSQL the upgrade runs under an advisory
lock, on SQLite inside one ``BEGIN IMMEDIATE`` transaction, so exactly one of them migrates.

For developers, after changing ``models.py``::

    python -m mailward.store revision "what changed"   # autogenerate against a scratch DB
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from mailward.store.engine import WRITE_OPTION, make_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every hub using the database.
PG_MIGRATION_LOCK = 0x6D61696C77617264  # "mailward"


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic configuration pointing at the packaged scripts (and ``engine``'s URL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of ``engine`` to ``revision``, in one transaction, once."""
    cfg = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def revision(message: str) -> None:
    """Autogenerate a new revision in ``migrations/versions`` from the models (developers)."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            upgrade(engine)
            cfg = alembic_config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.revision(cfg, message=message, autogenerate=True)
        finally:
            engine.dispose()
