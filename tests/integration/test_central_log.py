"""The central log end to end: real SMTP traffic, then trace, log search, campaign and alerts."""

from __future__ import annotations

import base64
import json
import smtplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailward import config as config_mod
from mailward.store import Store, StoredAlert
from tests.integration.hubproc import MAILWARD, HubProcess, unverified_tls

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GENUINE = (EXAMPLES / "genuine-partner.eml").read_bytes().replace(b"\n", b"\r\n")
FORGED = (EXAMPLES / "forged-ceo.eml").read_bytes().replace(b"\n", b"\r\n")
PASSWORD = "correct horse battery"


def phishing(sender: str, n: int) -> bytes:
    return (
        f"From: Account Team <{sender}>\r\nTo: undisclosed-recipients:;\r\n"
        f"Subject: Your mailbox is almost full\r\nMessage-ID: <phish-{n}@bulk.test>\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Click <a href="http://mailbox-upgrade.test/login?id=' + str(n)
        + '">here</a> to keep your mail.</p>\r\n'
    ).encode()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    zones = yaml.safe_load((EXAMPLES / "zones.yaml").read_text())
    zones["bulk.test"] = [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}]
    workdir = tmp_path_factory.mktemp("hub")
    process = HubProcess(workdir, zones, extra_config=(
        '[alerts]\nto = ["admin@ourcorp.example"]\nfailed_logins_before_success = 3\n'
        f'[events]\njsonl_path = "{workdir / "events.jsonl"}"\n'
    ))
    process.add_user("alice", "alice@ourcorp.example", PASSWORD)
    process.start()
    traffic(process)
    yield process
    process.stop()


def traffic(hub: HubProcess) -> None:
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, local_hostname="mail.attacker.test",
                      timeout=30) as c:
        with pytest.raises(smtplib.SMTPDataError):
            c.sendmail("ceo@ourcorp.example", ["staff@ourcorp.example"], FORGED)
        c.rset()
        c.sendmail("billing@partner.test", ["staff@ourcorp.example"], GENUINE)
        for n in range(4):  # one campaign: 4 messages, 20 recipients
            c.sendmail(f"news{n}@bulk.test",
                       [f"user{n * 5 + i}@ourcorp.example" for i in range(5)], phishing(
                           f"news{n}@bulk.test", n))
    context = unverified_tls()
    for attempt in range(3):  # a burst of failed logins ...
        with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as c:
            c.starttls(context=context)
            c.ehlo("client.test")
            plain = base64.b64encode(f"\0alice\0guess-{attempt}".encode()).decode()
            assert c.docmd("AUTH", "PLAIN " + plain)[0] == 535
    with smtplib.SMTP("127.0.0.1", hub.submission_port, timeout=30) as c:  # ... then success
        c.starttls(context=context)
        c.login("alice", PASSWORD)


def cli(hub: HubProcess, *args: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:  # the store writer commits in batches: give it a moment
        proc = subprocess.run([MAILWARD, *args, "--json", "--config", str(hub.config_path)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_log_search_finds_the_forgery_by_symbol(hub: HubProcess) -> None:
    found = cli(hub, "log", "search", "--symbol", "DMARC_FAIL_REJECT")
    (tx,) = found["transactions"]
    assert tx["disposition"] == "reject" and tx["mail_from"] == "ceo@ourcorp.example"
    assert tx["client_ip"] == "127.0.0.1"
    accepted = cli(hub, "log", "search", "--sender", "billing@partner.test")
    assert [t["disposition"] for t in accepted["transactions"]] == ["accept"]


def test_trace_of_the_forgery_from_the_central_log(hub: HubProcess) -> None:
    report = cli(hub, "trace", "--message-id", "<20261127091200.4711@ourcorp.example>")
    (tx,) = report["transactions"]
    assert tx["verdict"]["disposition"] == "reject"
    assert tx["verdict"]["forced_by"] == "DMARC_FAIL_REJECT"
    assert tx["connection"]["helo"] == "mail.attacker.test"
    assert "SPF_FAIL" in {f["symbol"] for f in tx["findings"]}


def test_trace_of_a_delivered_message_names_its_origin(hub: HubProcess,
                                                        tmp_path: Path) -> None:
    (delivered,) = hub.maildir("staff@ourcorp.example")
    path = tmp_path / "delivered.eml"
    path.write_bytes(delivered)
    report = cli(hub, "trace", str(path))
    assert report["origin"]["ip"] == "127.0.0.1"
    assert report["origin"]["helo"] == "mail.attacker.test"
    assert report["hops"][0]["zone"] == "entry"  # our own hub received it from outside
    (entry,) = [r for r in report["authentication_results"] if r["at_entry"]]
    assert {"method": "dmarc", "result": "pass"}.items() <= next(
        r for r in entry["results"] if r["method"] == "dmarc"
    ).items()
    assert report["transactions"][0]["verdict"]["disposition"] == "accept"


def test_campaign_lists_every_recipient(hub: HubProcess) -> None:
    first = cli(hub, "log", "search", "--sender", "news0@bulk.test")["transactions"][0]
    campaign = cli(hub, "log", "campaign", first["queue_id"])
    assert campaign["count"] == 4
    assert len(campaign["recipients"]) == 20
    assert {"subject", "url"} <= {c for m in campaign["messages"] for c in m["matched_by"]}


def test_login_after_failures_raises_an_alert_and_mails_the_admins(hub: HubProcess) -> None:
    store = Store.from_config(config_mod.load(hub.config_path).store, data_dir=hub.data_dir)
    try:
        deadline = time.monotonic() + 15
        alerts: list[StoredAlert] = []
        while not alerts and time.monotonic() < deadline:
            alerts = [a for a in store.alerts() if a.kind == "login_after_failures"]
            time.sleep(0.2)
    finally:
        store.close()
    assert alerts and alerts[0].user == "alice"
    notices = hub.maildir("admin@ourcorp.example")
    assert notices and b"alice" in notices[0]


def test_metrics_endpoint(hub: HubProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{hub.web_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'mailward_messages_total{disposition="reject"} 1.0' in text
    assert "mailward_dns_cache" in text


def test_events_go_out_as_json_lines_without_bodies_or_secrets(hub: HubProcess) -> None:
    path = hub.workdir / "events.jsonl"
    deadline = time.monotonic() + 15
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if path.exists():
            events = [json.loads(line) for line in path.read_text().splitlines()]
        if any(e["kind"] == "alert" for e in events):
            break
        time.sleep(0.2)
    kinds = {e["kind"] for e in events}
    assert {"transaction", "auth", "alert"} <= kinds, kinds
    forged = [e for e in events if e["kind"] == "transaction"
              and e.get("mail_from") == "ceo@ourcorp.example"]
    assert forged and forged[0]["verdict"]["disposition"] == "reject"
    text = path.read_text()
    assert "meeting with the auditors" not in text  # the forged message's body never leaves
    assert PASSWORD not in text and "guess-1" not in text
