"""Helpers for tests: run `mailward check --json` on a message with given zone data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import yaml

from mailward import cli


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def check_json(
    tmp_path: Path,
    message: bytes | str,
    zones: dict[str, Any] | None = None,
    *,
    ip: str = "192.0.2.1",
    helo: str = "mail.example.net",
    mail_from: str | None = None,
    rcpt: str = "staff@ourcorp.example",
    config: str | None = None,
    now: float | None = None,
    history: bool = False,
) -> dict[str, Any]:
    """Write the message, zones and config to files, run `mailward check --json`, parse it.
    The central log is not asked about the sender unless ``history`` (the test's config then
    names the store)."""
    msg_path = tmp_path / "message.eml"
    msg_path.write_bytes(message.encode() if isinstance(message, str) else message)
    zone_path = tmp_path / "zones.yaml"
    zone_path.write_text(yaml.safe_dump(zones or {}))
    argv = ["check", str(msg_path), "--json", "--zone-file", str(zone_path), "--ip", ip,
            "--helo", helo, "--rcpt", rcpt]
    if mail_from is not None:
        argv += ["--mail-from", mail_from]
    if config is not None:
        cfg_path = tmp_path / "mailward.toml"
        cfg_path.write_text(config)
        argv += ["--config", str(cfg_path)]
    if now is not None:
        argv += ["--now", str(now)]
    if not history:
        argv.append("--no-history")
    code, out, err = run_cli(argv)
    assert code == 0, err
    return json.loads(out)


def symbols(report: dict[str, Any]) -> set[str]:
    return {f["symbol"] for f in report["findings"]}
