"""`mailward log search` and `mailward log campaign` through the real CLI on a hand-made SQLite
store: every filter, human and JSON output, times and ages, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailward.campaign import normalized_urls
from mailward.logsearch import LogError, parse_duration, parse_time
from mailward.model import Finding, Result
from mailward.store import Store
from tests.helpers import run_cli

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose store holds a forged message, a lookalike campaign and more."""
    data = tmp_path_factory.mktemp("site")
    (data / "mailward.toml").write_text(f'[server]\ndata_dir = "{data}"\n')
    with Store.open(f"sqlite:///{data / 'mailward.db'}", instance="mx1.test") as store:
        attacker = store.record_connection(peer_ip="203.0.113.66", helo="mail.attacker.test")
        partner = store.record_connection(peer_ip="2001:db8::25", helo="mail.partner.test")
        rows: list[dict[str, Any]] = [
            {
                "queue_id": "A1", "connection_id": attacker, "hours": 0,
                "mail_from": "ceo@ourcorp.example", "from_address": "ceo@ourcorp.example",
                "recipients": ["staff@ourcorp.example"],
                "subject": "=?utf-8?q?Change_your_password?=", "disposition": "reject",
                "score": 21.0, "forced_by": "DMARC_FAIL_REJECT",
                "findings": [
                    Finding("spf", "SPF_FAIL", Result.FAIL, score=3.0, detail="not permitted"),
                    Finding("dmarc", "DMARC_FAIL_REJECT", Result.FAIL, score=18.0),
                    Finding("dkim", "DKIM_NONE", Result.NONE, score=0.0),
                ],
                "body_sha256": "a" * 64, "urls": ["https://login.evil.example/reset"],
            },
            {
                "queue_id": "A2", "connection_id": attacker, "hours": 1,
                "mail_from": "it@0urcorp.example", "from_address": "helpdesk@0urcorp.example",
                "recipients": ["alice@ourcorp.example", "bob@ourcorp.example",
                               "carol@ourcorp.example"],
                "subject": "Mailbox full\x1b[31m!", "disposition": "quarantine", "score": 12.5,
                "findings": [
                    Finding("identity", "IDENTITY_LOOKALIKE", Result.POLICY, score=6.0),
                    Finding("content", "CONTENT_CREDENTIALS", Result.POLICY, score=6.5),
                ],
                "body_sha256": "a" * 64,
            },
            {
                "queue_id": "P1", "connection_id": partner, "hours": 2,
                "mail_from": "billing@partner.test", "from_address": "billing@partner.test",
                "recipients": ["alice@ourcorp.example"], "subject": "Invoice 1000",
                "disposition": "accept", "score": -1.0,
                "findings": [Finding("dkim", "DKIM_PASS", Result.PASS, score=-1.0)],
                "body_sha256": "b" * 64, "urls": ["https://partner.test/invoices"],
            },
            {
                "queue_id": "A3", "connection_id": None, "hours": 3,
                "mail_from": "other@elsewhere.test", "from_address": "other@elsewhere.test",
                "recipients": ["dave@ourcorp.example"], "subject": "Read this",
                "disposition": "tag", "score": 5.0, "findings": [],
                "body_sha256": "c" * 64,
                "urls": normalized_urls(["https://login.evil.example/reset?user=dave"]),
            },
        ]
        for row in rows:
            hours = row.pop("hours")
            store.record_transaction(
                message_id=f"<{row['queue_id'].lower()}@mail.example>",
                received_at=T0 + timedelta(hours=hours), **row,
            )
        store.record_delivery(queue_id="A3", recipient="dave@ourcorp.example",
                              status="delivered", at=T0 + timedelta(hours=3))
    return data


def log(site: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(["log", *argv, "--config", str(site / "mailward.toml")])


def search_ids(site: Path, *argv: str) -> list[str]:
    code, out, err = log(site, "search", "--json", *argv)
    assert code == 0, err
    document = json.loads(out)
    assert document["count"] == len(document["transactions"])
    return [t["queue_id"] for t in document["transactions"]]


# -- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1d12h", timedelta(hours=36)),
        ("1.5h", timedelta(minutes=90)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_time(text, NOW) == NOW - expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-04", datetime(2026, 5, 4, tzinfo=UTC)),
        ("2026-05-04T08:30", datetime(2026, 5, 4, 8, 30, tzinfo=UTC)),  # no offset: UTC
        ("2026-05-04T08:30Z", datetime(2026, 5, 4, 8, 30, tzinfo=UTC)),
        ("2026-05-04T10:30+02:00", datetime(2026, 5, 4, 8, 30, tzinfo=UTC)),
        ("2026-05-04 08:30:15", datetime(2026, 5, 4, 8, 30, 15, tzinfo=UTC)),
    ],
)
def test_iso_times(text: str, expected: datetime) -> None:
    got = parse_time(text, NOW)
    assert got == expected and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "2h ago", "h", "", "-2h", "2026-13-01", "5"])
def test_bad_times(text: str) -> None:
    with pytest.raises(LogError):
        parse_time(text, NOW)


# -- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["A3", "P1", "A2", "A1"]),
        (["--sender", "CEO@ourcorp.example"], ["A1"]),
        (["--sender", "helpdesk@0urcorp.example"], ["A2"]),  # the From address
        (["--recipient", "alice@ourcorp.example"], ["P1", "A2"]),
        (["--domain", "partner.test"], ["P1"]),
        (["--ip", "203.0.113.66"], ["A2", "A1"]),
        (["--ip", "2001:DB8:0::25"], ["P1"]),
        (["--subject", "MAILBOX"], ["A2"]),
        (["--disposition", "quarantine"], ["A2"]),
        (["--symbol", "DMARC_FAIL_REJECT"], ["A1"]),
        (["--message-id", "p1@mail.example"], ["P1"]),
        (["--message-id", "<a3@mail.example>"], ["A3"]),
        (["--since", "2026-05-04T09:00"], ["A3", "P1", "A2"]),
        (["--until", "2026-05-04T09:00"], ["A1"]),  # exclusive
        (["--since", "2026-05-04T10:00+01:00", "--until", "2026-05-04T11:00Z"], ["P1", "A2"]),
        (["--since", "100000d"], ["A3", "P1", "A2", "A1"]),  # an age
        (["--since", "1h"], []),  # all of it is older than an hour
        (["--limit", "2"], ["A3", "P1"]),
        (["--ip", "203.0.113.66", "--recipient", "staff@ourcorp.example"], ["A1"]),
    ],
)
def test_search_filters(site: Path, argv: list[str], expected: list[str]) -> None:
    assert search_ids(site, *argv) == expected


def test_search_json_holds_the_whole_record(site: Path) -> None:
    code, out, _ = log(site, "search", "--json", "--sender", "ceo@ourcorp.example")
    assert code == 0
    (a1,) = json.loads(out)["transactions"]
    assert a1["received_at"] == "2026-05-04T08:00:00Z"
    assert (a1["client_ip"], a1["helo"], a1["instance"]) == (
        "203.0.113.66", "mail.attacker.test", "mx1.test",
    )
    assert a1["subject"] == "Change your password"  # RFC 2047 decoded
    assert a1["recipients"] == ["staff@ourcorp.example"]
    assert (a1["disposition"], a1["score"]) == ("reject", 21.0)
    assert a1["forced_by"] == "DMARC_FAIL_REJECT"
    assert a1["top_symbols"] == ["DMARC_FAIL_REJECT", "SPF_FAIL"]  # positive, highest first
    assert a1["findings"][0] == {
        "check": "spf", "symbol": "SPF_FAIL", "result": "fail", "score": 3.0,
        "detail": "not permitted",
    }
    assert a1["message_id"] == "<a1@mail.example>" and a1["body_sha256"] == "a" * 64


def test_search_human_lines(site: Path) -> None:
    code, out, _ = log(site, "search", "--since", "2026-05-04", "--limit", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        '2026-05-04T11:00:00Z A3 - <other@elsewhere.test> -> dave@ourcorp.example "Read this" '
        "tag 5.0 -"
    )
    assert lines[2] == (
        "2026-05-04T09:00:00Z A2 203.0.113.66 <it@0urcorp.example> From:helpdesk@0urcorp.example"
        ' -> alice@ourcorp.example,bob@ourcorp.example(+1) "Mailbox full?[31m!" quarantine 12.5 '
        "CONTENT_CREDENTIALS,IDENTITY_LOOKALIKE"
    )
    assert "\x1b" not in out  # no terminal escapes from the network
    assert lines[-1] == "3 message(s) (--limit reached: there may be more)"


def test_search_without_results(site: Path) -> None:
    assert log(site, "search", "--sender", "nobody@nowhere.test") == (0, "0 message(s)\n", "")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["search", "--since", "last week"], 1, "neither an ISO time"),
        (["search", "--limit", "0"], 1, "limit must be between"),
        (["search", "--disposition", "maybe"], 2, "invalid choice"),
        (["campaign", "NOPE"], 1, "no logged message with queue id or Message-ID 'NOPE'"),
        (["campaign", "A1", "--by", "colour"], 1, "unknown criteria colour"),
        (["campaign", "A1", "--window", "forever"], 1, "not a duration"),
        (["campaign"], 2, "required"),
    ],
)
def test_errors(site: Path, argv: list[str], code: int, message: str) -> None:
    got_code, out, err = log(site, *argv)
    assert got_code == code and out == ""
    assert message in err and err.startswith("mailward: ")


# -- campaign ---------------------------------------------------------------------------------


def test_campaign_json(site: Path) -> None:
    code, out, err = log(site, "campaign", "a1@mail.example", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["seed"] == "A1" and found["message_id"] == "<a1@mail.example>"
    assert found["window"] == {"since": "2026-05-01T08:00:00Z", "until": "2026-05-07T08:00:00Z"}
    assert found["searched"] == {
        "sender": ["ceo@ourcorp.example"],
        "subject": ["=?utf-8?q?Change_your_password?="],
        "body": ["a" * 64],
        "url": ["https://login.evil.example/reset"],
    }
    assert [(m["queue_id"], m["matched_by"]) for m in found["messages"]] == [
        ("A3", ["url"]),
        ("A2", ["body"]),
        ("A1", ["seed", "sender", "subject", "body", "url"]),
    ]
    assert found["count"] == 3 and found["truncated"] is False
    assert found["messages"][0]["shared_urls"] == ["https://login.evil.example/reset"]
    assert found["messages"][1]["recipient_status"] == {
        "alice@ourcorp.example": "quarantined",
        "bob@ourcorp.example": "quarantined",
        "carol@ourcorp.example": "quarantined",
    }
    assert [(r["address"], r["reached"]) for r in found["recipients"]] == [
        ("alice@ourcorp.example", False),
        ("bob@ourcorp.example", False),
        ("carol@ourcorp.example", False),
        ("dave@ourcorp.example", True),
        ("staff@ourcorp.example", False),
    ]
    assert found["recipients"][3]["messages"] == [{"queue_id": "A3", "status": "delivered"}]


def test_campaign_human(site: Path) -> None:
    code, out, _ = log(site, "campaign", "A1", "--by", "body,url", "--window", "1d")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "Campaign of A1 (<a1@mail.example>), messages received 2026-05-03T08:00:00Z .. "
        "2026-05-05T08:00:00Z"
    )
    assert lines[1] == f"  same body: {'a' * 64}  -> 2 message(s)"
    assert lines[2] == "  same url: https://login.evil.example/reset  -> 2 message(s)"
    assert lines[3] == "3 message(s) to 5 recipient(s), 1 of them reached"
    assert any(line.startswith("  2026-05-04T11:00:00Z A3 ") and line.endswith("[url]")
               for line in lines)
    assert "  * dave@ourcorp.example: A3 delivered" in lines
    assert "    staff@ourcorp.example: A1 refused" in lines
