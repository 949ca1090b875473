"""Origin tracing: trust boundary and origin, anomalies, results at entry, ARC custody,
forwarded messages, and `mailward trace` (JSON and plain words) joined with the central log."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailward import config as config_mod
from mailward.model import Finding, Result
from mailward.store import Store
from mailward.trace import (
    DOWNSTREAM,
    ENTRY,
    INSIDE,
    NOTICE,
    OUTSIDE,
    WARNING,
    Trace,
    TrustPolicy,
    is_non_public,
    trace_message,
)
from tests.helpers import run_cli

SETTINGS: dict[str, Any] = {
    "site": {"authserv_id": "mx.ourcorp.example", "domains": ["ourcorp.example"]},
    "smtp": {"hostname": "mx.ourcorp.example"},
    "trace": {"trusted_relays": ["10.0.0.0/24", "relay.ourcorp.example", ".back.ourcorp.example"]},
}
CONFIG = config_mod.from_dict(SETTINGS)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "received"
T0 = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)

HUB = (
    "Received: from mail.attacker.test (unknown [203.0.113.66])\r\n"
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
    "\tby mx.ourcorp.example (mailward) with ESMTPS id Q1\r\n"
    "\tfor <staff@ourcorp.example>;\r\n\tSun, 01 Mar 2026 12:00:05 GMT"
)
OUR_AR = (
    "Authentication-Results: mx.ourcorp.example;\r\n"
    "\tspf=fail smtp.mailfrom=ceo@ourcorp.example;\r\n\tdkim=none;\r\n"
    "\tdmarc=fail (p=reject dis=none) header.from=ourcorp.example policy.dmarc=reject"
)
BODY_HEADERS = (
    'From: "The CEO" <ceo@ourcorp.example>',
    "To: staff@ourcorp.example",
    "Subject: Urgent: change your password",
    "Message-ID: <abc@attacker.test>",
    "Date: Sun, 01 Mar 2026 11:59:00 +0000",
)


def rcv(client: str, by: str, when: str = "Sun, 01 Mar 2026 11:58:00 +0000") -> str:
    return f"Received: from {client}\r\n\tby {by} with ESMTP id X; {when}"


def message(*headers: str, body: str = "Set your password to Summer2026.\r\n") -> bytes:
    return ("\r\n".join([*headers, *BODY_HEADERS]) + "\r\n\r\n" + body).encode()


def trace(*headers: str, **kwargs: Any) -> Trace:
    return trace_message(message(*headers), kwargs.pop("config", CONFIG), **kwargs)


def kinds(t: Trace, severity: str | None = None) -> list[tuple[str, int | None]]:
    return [(a.kind, a.hop) for a in t.anomalies if severity in (None, a.severity)]


# -- boundary and origin ------------------------------------------------------------------------


def test_origin_is_the_client_of_the_first_hop_leaving_the_trusted_hosts() -> None:
    t = trace(
        rcv("relay.ourcorp.example (relay.ourcorp.example [10.0.0.5])",
            "mx.ourcorp.example (mailward)", "Sun, 01 Mar 2026 12:00:06 +0000"),
        rcv("mail.partner.test (mail.partner.test [192.0.2.25])",
            "relay.ourcorp.example (Postfix)", "Sun, 01 Mar 2026 12:00:05 +0000"),
        rcv("[192.168.1.20] (unknown [198.51.100.20])", "mail.partner.test",
            "Sun, 01 Mar 2026 11:59:58 +0000"),
    )
    assert [h.zone for h in t.hops] == [INSIDE, ENTRY, OUTSIDE]
    assert [h.trusted for h in t.hops] == [True, False, False]
    o = t.origin
    assert o is not None
    assert (o.hop, o.ip, o.helo, o.rdns, o.time) == (
        2, "192.0.2.25", "mail.partner.test", "mail.partner.test", T0)
    assert (o.received_by, o.verified, o.internal) == ("relay.ourcorp.example", True, False)
    assert t.anomalies == [] and t.notes == []


def test_our_hub_is_trusted_without_configuration() -> None:
    cfg = config_mod.from_dict({"smtp": {"hostname": "mx.ourcorp.example"}})
    t = trace(HUB, rcv("x (x [10.0.0.5])", "mail.attacker.test"), config=cfg)
    assert [h.zone for h in t.hops] == [ENTRY, OUTSIDE]
    assert t.origin is not None and t.origin.verified and t.origin.ip == "203.0.113.66"
    assert t.origin.tls is not None and t.origin.tls.version == "TLSv1.3"


def test_hosts_named_by_domain_suffix_are_trusted() -> None:
    t = trace(
        rcv("mx2.back.ourcorp.example (mx2.back.ourcorp.example [192.0.2.200])",
            "mx.ourcorp.example", "Sun, 01 Mar 2026 12:00:06 +0000"),
        rcv("mail.partner.test (mail.partner.test [192.0.2.25])",
            "mx2.back.ourcorp.example", "Sun, 01 Mar 2026 12:00:05 +0000"),
    )
    assert [h.zone for h in t.hops] == [INSIDE, ENTRY]


def test_headers_added_after_the_hub_are_downstream() -> None:
    t = trace(
        rcv("mx.ourcorp.example (mx.ourcorp.example [10.0.1.2])", "store.ourcorp.example",
            "Sun, 01 Mar 2026 12:00:07 +0000"),
        HUB,
    )
    assert [h.zone for h in t.hops] == [DOWNSTREAM, ENTRY]
    assert t.origin is not None and t.origin.hop == 2
    assert any("store.ourcorp.example" in n and "after your hub" in n for n in t.notes)


def test_without_any_trusted_hop_the_origin_is_unverified() -> None:
    t = trace(
        rcv("mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41])",
            "mx.google.com", "Sun, 01 Mar 2026 12:00:05 +0000"),
        rcv("pc (pc [198.51.100.3])", "smtp.gmail.com"),
    )
    o = t.origin
    assert o is not None and not o.verified and o.hop == 1 and o.ip == "209.85.220.41"
    assert [h.zone for h in t.hops] == [ENTRY, OUTSIDE]
    assert any(n.startswith("None of the 2 Received headers") for n in t.notes)
    assert t.queue_ids() == []  # ids from unverified headers are not ours


def test_message_made_inside_the_site() -> None:
    t = trace(
        rcv("app.ourcorp.example (app.ourcorp.example [10.0.0.7])", "mx.ourcorp.example",
            "Sun, 01 Mar 2026 12:00:06 +0000"),
        "Received: by app.ourcorp.example (Postfix, from userid 33)\r\n"
        "\tid 4F1B2C; Sun, 01 Mar 2026 12:00:05 +0000 (UTC)",
    )
    assert [h.zone for h in t.hops] == [INSIDE, INSIDE]
    o = t.origin
    assert o is not None and o.internal and o.verified
    assert (o.hop, o.ip, o.received_by) == (2, None, "app.ourcorp.example")


def test_authenticated_submission_is_named_as_such() -> None:
    sub = (FIXTURES / "mailward-submission.txt").read_text().replace("\n", "\r\n").rstrip()
    t = trace(sub.replace("[192.168.0.10]", "laptop.ourcorp.example"))
    o = t.origin
    assert o is not None and o.authenticated and o.auth_user == "alice"
    assert o.ip == "2001:db8:77::15"
    assert kinds(t) == []  # an own user's laptop may use an own name


def test_qmail_queue_line_does_not_break_the_chain() -> None:
    t = trace(
        "Received: (qmail 4711 invoked from network); 1 Mar 2026 12:00:06 -0000",
        "Received: from unknown (HELO mail.attacker.test) (203.0.113.66)\r\n"
        "  by mx.ourcorp.example with SMTP; 1 Mar 2026 12:00:05 -0000",
    )
    # the queue line has no writer: the chain starts at the first hop by a trusted host
    assert [h.zone for h in t.hops] == [DOWNSTREAM, ENTRY]
    assert t.origin is not None and t.origin.helo == "mail.attacker.test"


# -- anomalies ----------------------------------------------------------------------------------


def test_time_going_backwards_beyond_the_skew() -> None:
    later = rcv("a (a [198.51.100.1])", "mail.attacker.test", "Sun, 01 Mar 2026 13:00:00 +0000")
    t = trace(HUB, later)
    assert kinds(t, WARNING) == [("time_backwards", 2)]
    assert "59 minutes after the later hop 1" in t.anomalies[0].detail
    slight = rcv("a (a [198.51.100.1])", "mail.attacker.test", "Sun, 01 Mar 2026 12:05:00 +0000")
    assert kinds(trace(HUB, slight)) == []
    assert kinds(trace(HUB, slight, skew=timedelta(minutes=1))) == [("time_backwards", 2)]


def test_sender_calling_itself_one_of_our_hosts() -> None:
    t = trace(HUB.replace("from mail.attacker.test", "from mx.ourcorp.example"))
    assert kinds(t, WARNING) == [("claims_our_host", 1)]
    assert "203.0.113.66" in t.anomalies[0].detail
    other = trace(HUB.replace("from mail.attacker.test", "from www.ourcorp.example"))
    assert kinds(other, WARNING) == [("claims_our_host", 1)]  # any name in site.domains


def test_forged_hop_below_the_boundary_claiming_our_hub() -> None:
    t = trace(HUB, rcv("intranet (intranet [198.51.100.9])", "mx.ourcorp.example (mailward)"))
    assert kinds(t, WARNING) == [("claims_our_host", 2)]
    assert "received by mx.ourcorp.example" in t.anomalies[0].detail


def test_private_addresses_below_the_boundary() -> None:
    t = trace(HUB, rcv("pc (pc [192.168.7.7])", "mail.attacker.test"),
              rcv("lo ([127.0.0.1])", "pc"))
    assert kinds(t, NOTICE) == [("private_address", 2), ("private_address", 3)]
    ours = trace(HUB, rcv("fileserver (fileserver [10.0.0.40])", "mail.attacker.test"))
    assert kinds(ours, WARNING) == [("private_address", 2)]
    assert "one of your own networks" in ours.anomalies[0].detail


def test_public_documentation_addresses_are_not_private() -> None:
    assert not is_non_public("203.0.113.66") and not is_non_public("2001:db8::1")
    assert all(map(is_non_public, ["10.1.1.1", "172.16.0.1", "192.168.0.1", "127.0.0.1",
                                   "169.254.1.1", "100.64.0.1", "::1", "fe80::1", "fd00::1"]))


def test_unparsable_hops() -> None:
    t = trace(HUB, "Received: nonsense without structure")
    assert kinds(t, NOTICE) == [("unparsed_hop", 2)]
    top = trace("Received: from x by mx.ourcorp.example; yesterday", HUB)
    assert ("unparsed_hop", 1) in kinds(top, WARNING)


def test_chain_longer_than_fifty() -> None:
    hops = [rcv(f"h{i} (h{i} [198.51.100.{i}])", f"h{i - 1}") for i in range(1, 51)]
    t = trace(HUB, *hops)
    assert len(t.hops) == 51
    assert ("too_many_hops", None) in kinds(t, WARNING)
    assert ("too_many_hops", None) not in kinds(trace(HUB, *hops[:49]))


def test_authentication_results_recorded_at_entry() -> None:
    t = trace(
        "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@other.example",
        OUR_AR, HUB,
    )
    (ar,) = t.authentication_results
    assert ar.at_entry and ar.authserv_id == "mx.ourcorp.example"
    got = [(r.method, r.result, dict(r.properties)) for r in ar.results]
    assert got == [
        ("spf", "fail", {"smtp.mailfrom": "ceo@ourcorp.example"}),
        ("dkim", "none", {}),
        ("dmarc", "fail", {"header.from": "ourcorp.example", "policy.dmarc": "reject"}),
    ]
    assert ar.results[2].comment == "p=reject dis=none"
    assert kinds(t) == []


def test_our_authserv_id_below_the_entry_is_forged() -> None:
    forged = "Authentication-Results: mx.ourcorp.example; dmarc=pass header.from=ourcorp.example"
    t = trace(OUR_AR, HUB, forged)
    assert [a.at_entry for a in t.authentication_results] == [True, False]
    assert kinds(t, WARNING) == [("forged_authentication_results", None)]


# -- ARC ----------------------------------------------------------------------------------------


def arc_set(i: int, sealer: str, cv: str) -> list[str]:
    return [
        f"ARC-Seal: i={i}; a=rsa-sha256; t=1772366400; cv={cv};\r\n\td={sealer}; s=arc; b=AAAA",
        f"ARC-Message-Signature: i={i}; a=rsa-sha256; c=relaxed/relaxed; d={sealer};\r\n"
        "\ts=arc; h=from:to:subject; bh=BBBB; b=CCCC",
        f"ARC-Authentication-Results: i={i}; {sealer};\r\n"
        "\tspf=pass smtp.mailfrom=ceo@partner.test; dkim=pass header.d=partner.test",
    ]


def test_arc_custody_is_parsed_not_verified() -> None:
    t = trace(*arc_set(2, "lists.example.org", "pass"), *arc_set(1, "forwarder.example", "none"),
              HUB)
    arc = t.arc
    assert arc.chain == "complete" and arc.problems == ()
    assert [(i.instance, i.sealer, i.cv, i.signer, i.authserv_id) for i in arc.instances] == [
        (1, "forwarder.example", "none", "forwarder.example", "forwarder.example"),
        (2, "lists.example.org", "pass", "lists.example.org", "lists.example.org"),
    ]
    assert arc.instances[0].time == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert [(r.method, r.result) for r in arc.instances[1].results] == [
        ("spf", "pass"), ("dkim", "pass")]


def test_arc_failed_and_broken_chains() -> None:
    failed = trace(*arc_set(2, "lists.example.org", "fail"), *arc_set(1, "f.example", "none"))
    assert failed.arc.chain == "failed"
    second = arc_set(2, "lists.example.org", "pass")
    broken = trace(second[0], second[2], *arc_set(1, "f.example", "none"))
    assert broken.arc.chain == "broken"
    assert any("ARC-Message-Signature" in p for p in broken.arc.problems)
    gap = trace(*arc_set(3, "lists.example.org", "pass"), *arc_set(1, "f.example", "none"))
    assert gap.arc.chain == "broken" and any("gaps" in p for p in gap.arc.problems)
    assert trace(HUB).arc.chain == "none"


# -- forwarded messages -------------------------------------------------------------------------

OUTER = (
    "Received: from [198.51.100.7] (unknown [198.51.100.7])\r\n\t(authenticated as alice)\r\n"
    "\tby mx.ourcorp.example (mailward) with ESMTPSA id Q2;\r\n\tMon, 02 Mar 2026 09:00:00 GMT\r\n"
    "From: Alice <alice@ourcorp.example>\r\nTo: security@ourcorp.example\r\n"
    "Subject: Fwd: Urgent: change your password\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
    "--B\r\nContent-Type: text/plain\r\n\r\nIs this real?\r\n--B\r\n"
)


def test_message_forwarded_as_attachment_is_unwrapped() -> None:
    original = message(OUR_AR, HUB)
    raw = (OUTER + "Content-Type: message/rfc822\r\n\r\n").encode() + original + b"\r\n--B--\r\n"
    t = trace_message(raw, CONFIG)
    assert t.forwarded is not None
    assert (t.forwarded.sender, t.forwarded.how) == ("Alice <alice@ourcorp.example>", "attachment")
    assert t.message["message_id"] == "<abc@attacker.test>"
    assert t.origin is not None and t.origin.ip == "203.0.113.66"
    assert len(t.hops) == 1 and t.authentication_results[0].at_entry


def test_eml_attachment_and_headers_only_part() -> None:
    import base64

    encoded = base64.encodebytes(message(HUB)).decode()
    eml = (OUTER + "Content-Type: application/octet-stream\r\n"
           "Content-Transfer-Encoding: base64\r\n"
           'Content-Disposition: attachment; filename="Urgent.eml"\r\n\r\n'
           + encoded + "\r\n--B--\r\n").encode()
    t = trace_message(eml, CONFIG)
    assert t.forwarded is not None and t.origin is not None and t.origin.ip == "203.0.113.66"
    headers = (OUTER + "Content-Type: text/rfc822-headers\r\n\r\n" + HUB + "\r\n"
               + "\r\n".join(BODY_HEADERS) + "\r\n\r\n--B--\r\n").encode()
    t = trace_message(headers, CONFIG)
    assert t.forwarded is not None and t.forwarded.how == "headers"
    assert t.origin is not None and t.origin.ip == "203.0.113.66"


def test_inline_forward_says_what_to_do() -> None:
    raw = (b"From: alice@ourcorp.example\r\nSubject: Fwd: Urgent\r\n\r\n"
           b"---------- Forwarded message ---------\r\nFrom: CEO\r\n")
    t = trace_message(raw, CONFIG)
    assert t.forwarded is None and t.origin is None
    assert any("forward it as an attachment" in n for n in t.notes)


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "300.1.2.3", "not a host", "fe80::zz", ""])
def test_bad_trusted_relays_are_configuration_errors(entry: str) -> None:
    with pytest.raises(config_mod.ConfigError, match=r"trace\.trusted_relays"):
        config_mod.from_dict({"trace": {"trusted_relays": [entry]}})


def test_trust_policy_matching() -> None:
    policy = TrustPolicy.build("MX.ourcorp.example.", ["192.0.2.7", "2001:db8::/32",
                                                      "*.back.ourcorp.example", "Relay.Example."],
                               ["ourcorp.example"])
    assert policy.trusts_name("mx.OURCORP.example") and policy.trusts_name("relay.example")
    assert policy.trusts_name("a.back.ourcorp.example")
    assert not policy.trusts_name("back.ourcorp.example.evil.test")
    assert policy.trusts_ip("192.0.2.7") and policy.trusts_ip("2001:db8:1::5")
    assert not policy.trusts_ip("192.0.2.8") and not policy.trusts_ip(None)
    assert policy.is_ours("www.ourcorp.example") and not policy.is_ours("ourcorp.example.test")
    assert not policy.is_ours("[192.0.2.7]")


# -- the command --------------------------------------------------------------------------------


def write_config(tmp_path: Path, data_dir: Path) -> Path:
    path = tmp_path / "mailward.toml"
    path.write_text(
        '[site]\nauthserv_id = "mx.ourcorp.example"\ndomains = ["ourcorp.example"]\n'
        '[smtp]\nhostname = "mx.ourcorp.example"\n'
        f'[server]\ndata_dir = "{data_dir}"\n'
        '[trace]\ntrusted_relays = ["10.0.0.0/24"]\n'
    )
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose store logged the forged message twice and another one."""
    directory = tmp_path_factory.mktemp("var")
    with Store.open(f"sqlite:///{directory / 'mailward.db'}", instance="mx1.test") as store:
        conn = store.record_connection(
            peer_ip="203.0.113.66", helo="mail.attacker.test", tls_version="TLSv1.3",
            tls_cipher="TLS_AES_256_GCM_SHA384", opened_at=T0,
        )
        store.record_transaction(
            queue_id="Q1", mail_from="ceo@ourcorp.example", recipients=["staff@ourcorp.example"],
            disposition="quarantine", score=12.5, connection_id=conn,
            message_id="<abc@attacker.test>", header_from='"The CEO" <ceo@ourcorp.example>',
            subject="Urgent: change your password", size=900, received_at=T0,
            findings=[Finding("spf", "SPF_FAIL", Result.FAIL, detail="not permitted", score=3.0)],
        )
        store.record_transaction(
            queue_id="Q7", mail_from="ceo@ourcorp.example", recipients=["boss@ourcorp.example"],
            disposition="tag", score=5.0, message_id="<abc@attacker.test>",
            received_at=T0 + timedelta(minutes=1),
        )
        store.record_delivery(
            queue_id="Q7", recipient="boss@ourcorp.example", status="delivered",
            reply="250 2.0.0 Ok", at=T0 + timedelta(minutes=2),
        )
        store.record_transaction(queue_id="Q9", mail_from="", recipients=["x@ourcorp.example"],
                                 disposition="accept", received_at=T0)
    return directory


def run_trace(tmp_path: Path, data_dir: Path, *args: str) -> tuple[int, str, str]:
    return run_cli(["trace", *args, "--config", str(write_config(tmp_path, data_dir))])


def test_cli_json_joins_the_central_log(tmp_path: Path, data_dir: Path) -> None:
    eml = tmp_path / "forged.eml"
    eml.write_bytes(message(OUR_AR, HUB, rcv("pc (pc [192.168.7.7])", "mail.attacker.test")))
    code, out, err = run_trace(tmp_path, data_dir, str(eml), "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["origin"] == {
        "hop": 1, "ip": "203.0.113.66", "helo": "mail.attacker.test", "rdns": None,
        "time": "2026-03-01T12:00:05+00:00", "received_by": "mx.ourcorp.example",
        "verified": True, "internal": False, "authenticated": False, "auth_user": None,
        "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"},
    }
    assert [(h["number"], h["trusted"], h["zone"], h["ip"]) for h in report["hops"]] == [
        (1, False, "entry", "203.0.113.66"), (2, False, "outside", "192.168.7.7")]
    assert [a["kind"] for a in report["anomalies"]] == ["private_address"]
    assert report["authentication_results"][0]["results"][2]["result"] == "fail"
    assert report["arc"]["chain"] == "none"
    txs = report["transactions"]
    assert [(t["queue_id"], t["matched_by"]) for t in txs] == [
        ("Q1", ["message-id", "queue-id"]), ("Q7", ["message-id"])]
    q1 = txs[0]
    assert q1["connection"]["ip"] == "203.0.113.66"
    assert q1["connection"]["tls_version"] == "TLSv1.3"
    assert q1["verdict"] == {"disposition": "quarantine", "score": 12.5, "forced_by": None}
    assert q1["findings"][0]["symbol"] == "SPF_FAIL"
    assert txs[1]["deliveries"][0]["status"] == "delivered"
    assert report["store"] == {"available": True, "note": None, "missing": []}


def test_cli_plain_words(tmp_path: Path, data_dir: Path) -> None:
    eml = tmp_path / "forged.eml"
    eml.write_bytes(message(OUR_AR, HUB.replace("from mail.attacker.test",
                                                "from mx.ourcorp.example")))
    code, out, _ = run_trace(tmp_path, data_dir, str(eml))
    assert code == 0
    flat = " ".join(out.split())
    assert ("This message entered the internet at 203.0.113.66, a host calling itself "
            "mx.ourcorp.example (no reverse DNS name was recorded for the address).") in flat
    assert "Your host mx.ourcorp.example received it from there at 2026-03-01 12:00:05 UTC" in flat
    assert "Warnings ! the sending host called itself mx.ourcorp.example" in flat
    assert "DMARC fail the From domain ourcorp.example is NOT authenticated" in flat
    assert "In the central log (2 transaction(s))" in out
    assert "verdict: quarantine (score 12.5)" in out
    assert "delivery: boss@ourcorp.example delivered (attempt 1" in out


def test_cli_forwarded_message_says_so(tmp_path: Path, data_dir: Path) -> None:
    eml = tmp_path / "report.eml"
    eml.write_bytes((OUTER + "Content-Type: message/rfc822\r\n\r\n").encode()
                    + message(HUB) + b"\r\n--B--\r\n")
    code, out, _ = run_trace(tmp_path, data_dir, str(eml))
    assert code == 0
    assert "This file is a message forwarded by Alice <alice@ourcorp.example>" in out
    code, out, _ = run_trace(tmp_path, data_dir, str(eml), "--json")
    report = json.loads(out)
    assert report["forwarded"]["how"] == "attachment"
    assert report["origin"]["ip"] == "203.0.113.66"
    code, out, _ = run_trace(tmp_path, data_dir, str(eml), "--json", "--outer")
    report = json.loads(out)
    assert report["forwarded"] is None
    assert report["origin"]["ip"] == "198.51.100.7" and report["origin"]["auth_user"] == "alice"


def test_cli_lookup_by_ids(tmp_path: Path, data_dir: Path) -> None:
    code, out, err = run_trace(tmp_path, data_dir, "--queue-id", "Q9", "--json")
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert [t["queue_id"] for t in report["transactions"]] == ["Q9"]
    assert report["origin"] is None and report["hops"] == []
    code, out, _ = run_trace(tmp_path, data_dir, "--message-id", "abc@attacker.test", "--json")
    assert [t["queue_id"] for t in json.loads(out)["transactions"]] == ["Q1", "Q7"]
    code, out, err = run_trace(tmp_path, data_dir, "--queue-id", "NOPE")
    assert code == 1 and err == "mailward: no transaction in the central log with queue id NOPE\n"
    assert "Central log: no record of this message." in out


def test_cli_without_a_store(tmp_path: Path) -> None:
    empty = tmp_path / "var"
    eml = tmp_path / "m.eml"
    eml.write_bytes(message(HUB))
    code, out, _ = run_trace(tmp_path, empty, str(eml), "--json")
    assert code == 0
    assert json.loads(out)["store"]["note"] == f"no central store at {empty / 'mailward.db'}"
    assert not (empty / "mailward.db").exists()  # a trace never creates a store
    code, _, err = run_trace(tmp_path, empty, "--queue-id", "Q1")
    assert code == 1 and err.startswith("mailward: no central store at")


def test_cli_usage_errors(tmp_path: Path) -> None:
    assert run_cli(["trace"])[0] == 2
    code, _, err = run_cli(["trace", str(tmp_path / "absent.eml")])
    assert code == 2 and err.startswith("mailward: cannot read")
    bad = tmp_path / "bad.toml"
    bad.write_text('[trace]\ntrusted_relays = ["10.0.0.0/99"]\n')
    code, _, err = run_cli(["trace", "--queue-id", "Q1", "--config", str(bad)])
    assert code == 2 and "trace.trusted_relays" in err and err.count("\n") == 1
