"""The identity check through `mailward check --json`: protected display names, addresses in
display names, the site's own domain, lookalike domains, Reply-To and Return-Path, and first
contact (with a real store as the sender history)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailward.store import Store
from tests.helpers import check_json, run_cli, symbols
from tests.integration.hubproc import free_port

CONFIG = """
[site]
authserv_id = "mx.ourcorp.example"
domains = ["ourcorp.example"]
[identity]
protected_names = ["System Administrator", "IT Support", "Help Desk", "Jane Smith"]
partner_domains = ["paybank.test"]
"""
SITE_IP = "198.51.100.7"
OUTSIDE_IP = "192.0.2.1"  # authorized by freemail.test and the attackers' own domains
ATTACKER_DOMAINS = [
    "freemail.test", "other.test", "esp.test", "0urcorp.example", "ourcorp-example.com",
    "ourc0rp.example", "ourcorp-support.example", "ourcorp.example.login-check.test",
    "login-check.test", "ourcorp.com",
    "xn--urcorp-vqf.example", "paybnak.test", "our-corp.example",
]


def zones() -> dict[str, Any]:
    z: dict[str, Any] = {
        "ourcorp.example": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}],
        "_dmarc.ourcorp.example": [{"TXT": "v=DMARC1; p=none"}],
    }
    for domain in ATTACKER_DOMAINS:
        z[domain] = [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}]
        z[f"_dmarc.{domain}"] = [{"TXT": "v=DMARC1; p=none"}]
    return z


def message(from_: str, *, headers: str = "", body: str = "Hello,\n\nsee you at ten.\n") -> bytes:
    text = (
        f"From: {from_}\nTo: staff@ourcorp.example\nSubject: Hello\n"
        "Date: Fri, 27 Nov 2026 09:00:00 +0000\nMessage-ID: <t1@example.net>\n"
        f"{headers}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}"
    )
    return text.replace("\n", "\r\n").encode("utf-8")


def run(tmp_path: Path, from_: str, *, ip: str = OUTSIDE_IP, mail_from: str | None = None,
        headers: str = "", config: str = CONFIG) -> dict[str, Any]:
    return check_json(tmp_path, message(from_, headers=headers), zones(), ip=ip,
                      mail_from=mail_from, config=config)


def finding(report: dict[str, Any], symbol: str) -> dict[str, Any]:
    found = [f for f in report["findings"] if f["symbol"] == symbol]
    assert len(found) == 1, (symbol, symbols(report))
    return found[0]


def identity_symbols(report: dict[str, Any]) -> set[str]:
    return {f["symbol"] for f in report["findings"] if f["check"] == "identity"}


# --- display names of protected people and roles ---------------------------------------------


@pytest.mark.parametrize(
    "shown",
    [
        "Jane Smith",
        "Jane  Smith",
        "J. Smith",
        "Smith, Jane",
        "JANE SMÍTH",
        "Jаne Smith",  # Cyrillic a
        "Ｊａｎｅ Smith",  # full-width letters
        "IT-Support Team",
        "ITSupport",
        "Sys Admin",
        "the System Administrators",
        "HelpDesk",
        "=?utf-8?b?SGVscCBEZXNr?=",  # "Help Desk", RFC 2047 encoded
    ],
)
def test_protected_name_from_outside_is_tagged(tmp_path: Path, shown: str) -> None:
    report = run(tmp_path, f'"{shown}" <someone@freemail.test>' if "=?" not in shown
                 else f"{shown} <someone@freemail.test>")
    f = finding(report, "IDENTITY_DISPLAY_NAME_PROTECTED")
    assert "outside address, freemail.test" in f["detail"]
    assert f["advice"] and "report" in f["advice"]
    # the impersonator's own domain authenticates (SPF and DMARC pass), yet the name alone tags
    assert "DMARC_PASS" in symbols(report)
    assert report["verdict"]["disposition"] == "tag"


@pytest.mark.parametrize("shown", ["Joe Smith", "Janet Smith", "Support", "Jane", "IT", "Desk"])
def test_other_names_are_not_protected(tmp_path: Path, shown: str) -> None:
    report = run(tmp_path, f'"{shown}" <someone@freemail.test>')
    assert identity_symbols(report) == set()
    assert report["verdict"]["disposition"] == "accept"


def test_protected_name_from_the_site_authenticated_is_fine(tmp_path: Path) -> None:
    report = run(tmp_path, '"IT Support" <it@ourcorp.example>', ip=SITE_IP)
    assert "DMARC_PASS" in symbols(report)
    assert identity_symbols(report) == set()


def test_protected_name_with_site_address_not_authenticated(tmp_path: Path) -> None:
    report = run(tmp_path, '"IT Support" <it@ourcorp.example>', ip=OUTSIDE_IP)
    f = finding(report, "IDENTITY_DISPLAY_NAME_PROTECTED")
    assert "not confirmed to come from our mail system" in f["detail"]
    assert "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED" in symbols(report)


# --- email addresses inside display names ----------------------------------------------------


def test_display_name_with_our_address_from_elsewhere(tmp_path: Path) -> None:
    report = run(tmp_path, '"security@ourcorp.example" <x77@freemail.test>')
    f = finding(report, "IDENTITY_DISPLAY_NAME_OWN_ADDRESS")
    assert "security@ourcorp.example" in f["detail"] and "x77@freemail.test" in f["detail"]
    assert report["verdict"]["disposition"] == "tag"


def test_display_name_with_another_address(tmp_path: Path) -> None:
    report = run(tmp_path, '"bob@other.test" <x77@freemail.test>')
    assert identity_symbols(report) == {"IDENTITY_DISPLAY_NAME_ADDRESS"}


@pytest.mark.parametrize(
    "from_",
    ['"x77@freemail.test" <x77@freemail.test>', '"X77@news.freemail.test" <x77@freemail.test>'],
)
def test_display_name_with_the_same_address_or_organization(tmp_path: Path, from_: str) -> None:
    assert identity_symbols(run(tmp_path, from_)) == set()


# --- the site's own domain --------------------------------------------------------------------


def test_own_domain_without_authentication(tmp_path: Path) -> None:
    report = run(tmp_path, "<admin@ourcorp.example>", ip=OUTSIDE_IP)
    f = finding(report, "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED")
    assert "ourcorp.example" in f["detail"] and "DMARC fail" in f["detail"]
    # our own domain used from outside without proof is rejected by default (verdict.forced)
    assert report["verdict"]["disposition"] == "reject"
    assert report["verdict"]["forced_by"] in (
        "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED", "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED"
    )


def test_own_subdomain_without_authentication(tmp_path: Path) -> None:
    report = run(tmp_path, "<admin@mail.ourcorp.example>", ip=OUTSIDE_IP)
    assert "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED" in symbols(report)


def test_own_domain_authenticated(tmp_path: Path) -> None:
    report = run(tmp_path, "<admin@ourcorp.example>", ip=SITE_IP)
    assert identity_symbols(report) == set()
    assert report["verdict"]["disposition"] == "accept"


def test_without_dmarc_an_aligned_spf_pass_authenticates(tmp_path: Path) -> None:
    config = CONFIG + '[checks]\nenabled = ["spf", "dkim", "identity", "content"]\n'
    assert identity_symbols(run(tmp_path, "<admin@ourcorp.example>", ip=SITE_IP,
                                config=config)) == set()
    outside = run(tmp_path, "<admin@ourcorp.example>", ip=OUTSIDE_IP, config=config)
    assert "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED" in identity_symbols(outside)


# --- lookalike domains ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "target", "words"),
    [
        ("0urcorp.example", "ourcorp.example", "look-alike"),
        ("ourc0rp.example", "ourcorp.example", "look-alike"),
        ("ourcorp-example.com", "ourcorp.example", "real domain written into"),
        ("ourcorp-support.example", "ourcorp.example", "words added"),
        ("ourcorp.example.login-check.test", "ourcorp.example", "in front of an unrelated"),
        ("ourcorp.com", "ourcorp.example", "another ending"),
        ("our-corp.example", "ourcorp.example", "hyphens"),
        ("paybnak.test", "paybank.test", "a letter or two"),
    ],
)
def test_lookalike_domains(tmp_path: Path, domain: str, target: str, words: str) -> None:
    report = run(tmp_path, f"<service@{domain}>")
    f = finding(report, "IDENTITY_LOOKALIKE_DOMAIN")
    assert target in f["detail"] and words in f["detail"]
    assert target in f["advice"]
    assert report["verdict"]["disposition"] == "tag"


@pytest.mark.parametrize("written", ["оurcorp.example", "xn--urcorp-vqf.example"])
def test_homoglyph_domain(tmp_path: Path, written: str) -> None:
    report = run(tmp_path, f"<admin@{written}>", mail_from="admin@xn--urcorp-vqf.example")
    f = finding(report, "IDENTITY_HOMOGLYPH_DOMAIN")
    assert "оurcorp.example" in f["detail"] and "another alphabet" in f["detail"]
    assert report["verdict"]["disposition"] == "tag"


@pytest.mark.parametrize("domain", ["freemail.test", "corp.example", "ourcorp.example"])
def test_not_lookalikes(tmp_path: Path, domain: str) -> None:
    report = run(tmp_path, f"<someone@{domain}>", ip=SITE_IP if "ourcorp" in domain else OUTSIDE_IP)
    assert not identity_symbols(report) & {"IDENTITY_LOOKALIKE_DOMAIN", "IDENTITY_HOMOGLYPH_DOMAIN"}


def test_lookalike_in_reply_to(tmp_path: Path) -> None:
    report = run(tmp_path, "<someone@freemail.test>", headers="Reply-To: <it@0urcorp.example>\n")
    f = finding(report, "IDENTITY_LOOKALIKE_DOMAIN")
    assert "Reply-To" in f["detail"]


# --- Reply-To and Return-Path -----------------------------------------------------------------


def test_reply_to_other_organization(tmp_path: Path) -> None:
    report = run(tmp_path, '"Jane Smith" <jane@freemail.test>',
                 headers="Reply-To: <jane.smith@other.test>\n")
    f = finding(report, "IDENTITY_REPLY_TO_DIVERGENT")
    assert "jane.smith@other.test" in f["detail"] and "freemail.test" in f["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        "Reply-To: <desk@help.freemail.test>\n",
        "Reply-To: <list@lists.other.test>\nList-Id: The list <list.lists.other.test>\n",
        "Reply-To: <list@other.test>\nList-Post: <mailto:list@other.test>\n",
    ],
)
def test_reply_to_same_organization_or_mailing_list(tmp_path: Path, headers: str) -> None:
    report = run(tmp_path, "<jane@freemail.test>", headers=headers)
    assert "IDENTITY_REPLY_TO_DIVERGENT" not in symbols(report)


def test_return_path_other_organization(tmp_path: Path) -> None:
    report = run(tmp_path, "<news@freemail.test>", mail_from="bounce-77@esp.test")
    f = finding(report, "IDENTITY_RETURN_PATH_DIVERGENT")
    assert "bounce-77@esp.test" in f["detail"]


def test_return_path_same_organization(tmp_path: Path) -> None:
    report = run(tmp_path, "<news@freemail.test>", mail_from="bounce@bounces.freemail.test")
    assert "IDENTITY_RETURN_PATH_DIVERGENT" not in symbols(report)


# --- protected identities from a CSV file -----------------------------------------------------


def csv_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return CONFIG + f'protected_file = "{path}"\n'


def test_protected_file(tmp_path: Path) -> None:
    config = csv_config(
        tmp_path, "name,email,department\nBob Builder,bob.private@freemail.test,Board\n"
        "Émile Zola,,Press\n"
    )
    report = check_json(tmp_path, message('"Bob Builder" <bob77@freemail.test>'), zones(),
                        config=config)
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in symbols(report)
    report = check_json(tmp_path, message('"Emile ZOLA" <ez@freemail.test>'), zones(),
                        config=config)
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in symbols(report)
    # the person's own known address, authenticated: no finding
    report = check_json(tmp_path, message('"Bob Builder" <bob.private@freemail.test>'),
                        zones(), config=config)
    assert identity_symbols(report) == set()


@pytest.mark.parametrize(
    ("text", "error"),
    [("email,dept\nx@y.test,a\n", "'name' column"), (None, "cannot read")],
)
def test_protected_file_errors(tmp_path: Path, text: str | None, error: str) -> None:
    config = csv_config(tmp_path, text) if text is not None else (
        CONFIG + f'protected_file = "{tmp_path / "absent.csv"}"\n')
    (tmp_path / "m.eml").write_bytes(message("<a@freemail.test>"))
    (tmp_path / "c.toml").write_text(config)
    code, _, err = run_cli(["check", str(tmp_path / "m.eml"), "--config", str(tmp_path / "c.toml")])
    assert code == 2 and "identity.protected_file" in err and error in err


# --- robustness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "from_",
    [
        "",
        "undisclosed-recipients:;",
        '"IT Support" <>',
        "<a@freemail.test>, \"Jane Smith\" <b@other.test>",
        "\"=?x-unknown?q?=FF=FE?=\" <a@freemail.test>",
        "\"J\u0000ne\" <a@[192.0.2.1]>",
    ],
)
def test_odd_from_fields_never_crash(tmp_path: Path, from_: str) -> None:
    report = run(tmp_path, from_)
    assert "IDENTITY_TEMPERROR" not in symbols(report)


# --- first contact: an address never seen before writing as a protected identity ---------------

HOUR = 3600.0


def history_config(tmp_path: Path, extra: str = "") -> str:
    return CONFIG + extra + f'[server]\ndata_dir = "{tmp_path / "var"}"\n'


def open_store(tmp_path: Path) -> Store:
    return Store.open(data_dir=tmp_path / "var")


def logged(store: Store, n: int, *, from_address: str, disposition: str, hours_ago: float,
           recipients: tuple[str, ...] = ("staff@ourcorp.example",)) -> None:
    store.record_transaction(
        queue_id=f"Q{n}", mail_from=from_address, recipients=recipients,
        disposition=disposition, from_address=from_address,
        received_at=datetime.now(UTC) - timedelta(hours=hours_ago),
    )


def run_with_history(tmp_path: Path, from_: str, config: str | None = None) -> dict[str, Any]:
    return check_json(tmp_path, message(from_), zones(), ip=OUTSIDE_IP,
                      config=config or history_config(tmp_path), history=True)


def test_first_contact_of_a_protected_name(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:  # the log knows other senders, not this one
        logged(store, 1, from_address="colleague@other.test", disposition="accept",
               hours_ago=500)
    report = run_with_history(tmp_path, '"IT Support" <it.desk@freemail.test>')
    f = finding(report, "IDENTITY_FIRST_CONTACT")
    assert f["detail"] == ("it.desk@freemail.test has never written to us before and uses the "
                           "name 'IT Support'")
    assert "never written to us before" in f["advice"]
    assert f["score"] > 0
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in identity_symbols(report)


@pytest.mark.parametrize(
    ("disposition", "hours_ago", "first"),
    [
        ("accept", 100, False),  # delivered days ago: an established correspondent
        ("tag", 100, False),  # delivered with a banner: still delivered
        ("accept", 1, True),  # an hour ago: a campaign's first messages do not vouch
        ("quarantine", 100, True),  # never reached anyone
        ("reject", 100, True),
        ("submitted", 1, False),  # our users wrote to the address
    ],
)
def test_first_contact_history(tmp_path: Path, disposition: str, hours_ago: float,
                               first: bool) -> None:
    sender = "Jane.Smith.Home@freemail.test"
    with open_store(tmp_path) as store:
        if disposition == "submitted":  # alice wrote to the address
            logged(store, 1, from_address="alice@ourcorp.example", disposition="submitted",
                   hours_ago=hours_ago, recipients=(sender,))
        else:
            logged(store, 1, from_address=sender, disposition=disposition, hours_ago=hours_ago)
    report = run_with_history(tmp_path, f'"Jane Smith" <{sender.lower()}>')
    assert ("IDENTITY_FIRST_CONTACT" in identity_symbols(report)) is first
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in identity_symbols(report)


def test_first_contact_age_is_configurable(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        logged(store, 1, from_address="jane@freemail.test", disposition="accept", hours_ago=1)
    report = run_with_history(tmp_path, '"Jane Smith" <jane@freemail.test>',
                              history_config(tmp_path, "first_contact_hours = 0.5\n"))
    assert "IDENTITY_FIRST_CONTACT" not in identity_symbols(report)


def test_first_contact_only_for_protected_identities(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    report = run_with_history(tmp_path, '"Joe Bloggs" <joe@freemail.test>')
    assert identity_symbols(report) == set()
    # nor for the site's own authenticated mail
    report = check_json(tmp_path, message('"IT Support" <it@ourcorp.example>'), zones(),
                        ip=SITE_IP, config=history_config(tmp_path), history=True)
    assert identity_symbols(report) == set()


def test_without_a_store_there_is_no_history(tmp_path: Path) -> None:
    report = run_with_history(tmp_path, '"IT Support" <it.desk@freemail.test>')
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in identity_symbols(report)
    assert "IDENTITY_FIRST_CONTACT" not in identity_symbols(report)
    assert not (tmp_path / "var").exists()  # checking a message creates no store
    open_store(tmp_path).close()
    report = check_json(tmp_path, message('"IT Support" <it.desk@freemail.test>'), zones(),
                        config=history_config(tmp_path), history=False)  # --no-history
    assert "IDENTITY_FIRST_CONTACT" not in identity_symbols(report)


def test_unreadable_history_is_a_temperror_not_a_pass(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        logged(store, 1, from_address="it.desk@freemail.test", disposition="accept",
               hours_ago=500)
    with sqlite3.connect(tmp_path / "var" / "mailward.db") as db:  # the log breaks
        db.execute("ALTER TABLE transactions RENAME TO transactions_gone")
    report = run_with_history(tmp_path, '"IT Support" <it.desk@freemail.test>')
    f = finding(report, "IDENTITY_HISTORY_TEMPERROR")
    assert f["result"] == "temperror"
    assert "could not tell whether it.desk@freemail.test has written" in f["detail"]
    assert "IDENTITY_FIRST_CONTACT" not in identity_symbols(report)
    assert report["verdict"]["disposition"] == "tag"  # the other findings still count


def test_unreachable_store_is_said_and_the_check_goes_on(tmp_path: Path) -> None:
    port = free_port()
    config = history_config(tmp_path, f'[store]\nurl = "postgresql+psycopg://x@127.0.0.1:{port}/x"\n')
    (tmp_path / "m.eml").write_bytes(message('"IT Support" <it.desk@freemail.test>'))
    (tmp_path / "z.yaml").write_text(yaml.safe_dump(zones()))
    (tmp_path / "c.toml").write_text(config)
    code, out, err = run_cli(["check", str(tmp_path / "m.eml"), "--json", "--config",
                              str(tmp_path / "c.toml"), "--zone-file", str(tmp_path / "z.yaml"),
                              "--ip", OUTSIDE_IP])
    assert code == 0
    assert "central log cannot be read" in err and "first contact is not checked" in err
    assert "Traceback" not in err
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in identity_symbols(json.loads(out))
