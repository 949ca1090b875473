"""Two hub processes writing to one PostgreSQL: one search shows both instances' mail."""

from __future__ import annotations

import json
import smtplib
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.integration.hubproc import MAILWARD, HubProcess
from tests.pg import PgServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZONES = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")


def test_two_hubs_one_postgresql(tmp_path: Path, pg_server: PgServer) -> None:
    url = pg_server.url(pg_server.create_database())
    hubs = []
    for name in ("mx1", "mx2"):
        hub = HubProcess(tmp_path / name, ZONES, extra_config=f'[store]\nurl = "{url}"\n')
        (tmp_path / name).mkdir()
        hub.write_config()
        text = hub.config_path.read_text().replace(
            'hostname = "mx.ourcorp.example"', f'hostname = "{name}.ourcorp.example"')

        def write_config(hub: HubProcess = hub, text: str = text) -> None:
            hub.config_path.write_text(text)

        hub.write_config = write_config  # type: ignore[method-assign]
        hubs.append(hub.start())
    try:
        for n, hub in enumerate(hubs):
            with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as c:
                c.ehlo("mail.partner.test")
                c.sendmail("billing@partner.test", [f"via{n}@ourcorp.example"], GENUINE)
        deadline = time.monotonic() + 15
        found: list[dict[str, Any]] = []
        while len(found) < 2 and time.monotonic() < deadline:
            proc = subprocess.run([MAILWARD, "log", "search", "--sender", "billing@partner.test",
                                   "--json", "--config", str(hubs[0].config_path)],
                                  capture_output=True, text=True, timeout=60, check=True)
            found = json.loads(proc.stdout)["transactions"]
            time.sleep(0.2)
    finally:
        for hub in hubs:
            hub.stop()
    assert {t["instance"] for t in found} == {"mx1.ourcorp.example", "mx2.ourcorp.example"}
    assert {r for t in found for r in t["recipients"]} == {"via0@ourcorp.example",
                                                           "via1@ourcorp.example"}
