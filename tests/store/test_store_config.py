"""The [store] configuration section and Store.from_config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailward import config
from mailward.store import Store
from tests.store.conftest import fast_hashing


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "mailward.toml"
    path.write_text(text)
    return config.load(path)


def test_defaults() -> None:
    store = config.load(None).store
    assert (store.url, store.retention_days, store.keep_raw) == ("", 90, "quarantine-and-reported")


def test_values_are_read(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[store]\nurl = "postgresql+psycopg://mailward@db/mailward"\n'
        'retention_days = 30\nkeep_raw = "none"\n',
    )
    assert cfg.store.url == "postgresql+psycopg://mailward@db/mailward"
    assert cfg.store.retention_days == 30 and cfg.store.keep_raw == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[store]\nkeep_raw = "all"\n', "store.keep_raw: 'all' is not one of"),
        ("[store]\nretention_days = 0\n", "store.retention_days: must be at least 1"),
        ('[store]\nretention_days = "90"\n', "store.retention_days: expected an integer"),
        ("[store]\ndsn = 'x'\n", "unknown configuration key store.dsn"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=message) as caught:
        load(tmp_path, text)
    assert str(tmp_path / "mailward.toml") in str(caught.value)


def test_store_from_config(store_url: str) -> None:
    section = config.StoreConfig(url=store_url, retention_days=7, keep_raw="quarantine")
    with Store.from_config(section, instance="mx9", hashing=fast_hashing()) as store:
        assert (store.retention_days, store.keep_raw, store.instance) == (7, "quarantine", "mx9")
        assert store.keeps_raw("quarantine") and not store.keeps_raw("report")


def test_empty_url_means_sqlite_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.from_config(config.StoreConfig()) as store:
        assert store.backend == "sqlite"
    assert (tmp_path / "var" / "mailward.db").is_file()
