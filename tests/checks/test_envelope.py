"""Our own domain in MAIL FROM from outside: rejected unless SPF or DMARC vouches for it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import check_json, symbols

SITE = '[site]\ndomains = ["ourcorp.example"]\nauthserv_id = "mx.ourcorp.example"\n'
ZONES = {
    "ourcorp.example": [{"TXT": "v=spf1 ip4:198.51.100.0/24 -all"}, {"A": "198.51.100.10"}],
    "_dmarc.ourcorp.example": [{"TXT": "v=DMARC1; p=none"}],
    "partner.test": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
}


def message(sender: str) -> str:
    return f"From: {sender}\r\nTo: staff@ourcorp.example\r\nSubject: hi\r\n\r\nHello\r\n"


def test_site_envelope_from_outside_is_rejected(tmp_path: Path) -> None:
    # From is a partner address, so only the envelope claims to be ours; DMARC p=none would
    # not force anything: the envelope rule does.
    report = check_json(tmp_path, message("paula@partner.test"), ZONES, ip="203.0.113.9",
                        mail_from="it@ourcorp.example", config=SITE)
    assert "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED" in symbols(report)
    assert report["verdict"]["disposition"] == "reject"
    assert report["verdict"]["reasons"][0].startswith(
        "forced: ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED"
    )


def test_site_envelope_with_spf_pass_is_fine(tmp_path: Path) -> None:
    report = check_json(tmp_path, message("it@ourcorp.example"), ZONES, ip="198.51.100.7",
                        mail_from="it@ourcorp.example", config=SITE)
    assert "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED" not in symbols(report)
    assert report["verdict"]["disposition"] == "accept"


def test_site_from_header_without_dmarc_pass_is_rejected_by_default(tmp_path: Path) -> None:
    report = check_json(tmp_path, message("it@ourcorp.example"), ZONES, ip="203.0.113.9",
                        mail_from="bounce@partner.test", config=SITE)
    assert "IDENTITY_SITE_DOMAIN_UNAUTHENTICATED" in symbols(report)
    assert report["verdict"]["disposition"] == "reject"


def test_the_action_is_configurable(tmp_path: Path) -> None:
    soft = SITE + '[verdict.forced]\nENVELOPE_SITE_DOMAIN_UNAUTHENTICATED = "quarantine"\n'
    report = check_json(tmp_path, message("paula@partner.test"), ZONES, ip="203.0.113.9",
                        mail_from="it@ourcorp.example", config=soft)
    assert report["verdict"]["disposition"] == "quarantine"


def test_forced_table_merges_over_defaults_and_score_unforces(tmp_path: Path) -> None:
    off = SITE + '[verdict.forced]\nENVELOPE_SITE_DOMAIN_UNAUTHENTICATED = "score"\n'
    report = check_json(tmp_path, message("paula@partner.test"), ZONES, ip="203.0.113.9",
                        mail_from="it@ourcorp.example", config=off)
    assert report["verdict"]["forced_by"] is None
    assert "ENVELOPE_SITE_DOMAIN_UNAUTHENTICATED" in symbols(report)
