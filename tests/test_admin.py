"""`mailward users|keys|queue`: administration from the command line."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "mailward.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n')
    return str(path)


def with_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_users_lifecycle(config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_stdin(monkeypatch, "a long password\n")
    code, out, err = run_cli(["users", "add", "alice", "--address", "alice@ourcorp.example",
                              "--alias", "it@ourcorp.example", "--password-stdin",
                              "--config", config])
    assert (code, out.strip()) == (0, "user alice added"), err
    code, out, _ = run_cli(["users", "list", "--config", config])
    assert "alice: alice@ourcorp.example, it@ourcorp.example (alias)" in out
    with_stdin(monkeypatch, "a long password\n")
    code, _, err = run_cli(["users", "add", "alice", "--password-stdin", "--config", config])
    assert code == 1 and err.startswith("mailward: ") and err.count("\n") == 1
    with_stdin(monkeypatch, "short\n")
    code, _, err = run_cli(["users", "passwd", "alice", "--password-stdin", "--config", config])
    assert code == 1 and "at least 8" in err
    with_stdin(monkeypatch, "another long password\n")
    code, out, _ = run_cli(["users", "passwd", "alice", "--password-stdin", "--config", config])
    assert code == 0 and "changed" in out
    code, out, _ = run_cli(["users", "remove", "alice", "--config", config])
    assert code == 0
    code, _, err = run_cli(["users", "remove", "alice", "--config", config])
    assert code == 1 and "no user alice" in err


def test_password_is_never_printed_or_stored_in_clear(
    config: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_stdin(monkeypatch, "Sup3rSecretValue!\n")
    code, out, err = run_cli(["users", "add", "bob", "--password-stdin", "--config", config])
    assert code == 0 and "Sup3rSecretValue" not in out + err
    for path in (tmp_path / "var").rglob("*"):
        if path.is_file():
            assert b"Sup3rSecretValue" not in path.read_bytes(), path


def test_keys_generate_prints_dns_records(config: str) -> None:
    code, out, _ = run_cli(["keys", "generate", "ourcorp.example", "--selector", "s1",
                            "--config", config])
    assert code == 0
    assert 's1r._domainkey.ourcorp.example. IN TXT ( "v=DKIM1; k=rsa; p=' in out
    assert 's1e._domainkey.ourcorp.example. IN TXT ( "v=DKIM1; k=ed25519; p=' in out
    code, _, err = run_cli(["keys", "generate", "ourcorp.example", "--selector", "s1",
                            "--config", config])
    assert code == 1 and "exist already" in err
    code, out, _ = run_cli(["keys", "list", "--config", config])
    assert out.count("._domainkey.ourcorp.example.") == 2


def test_queue_commands_on_an_empty_queue(config: str) -> None:
    assert run_cli(["queue", "list", "--config", config])[1].strip() == "0 message(s) queued"
    code, _, err = run_cli(["queue", "remove", "NOSUCHID", "--config", config])
    assert code == 1 and "no queued message NOSUCHID" in err
