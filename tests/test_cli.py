"""`mailward check` from the command line: exit codes, output shapes, examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FORGED = [
    "check", str(EXAMPLES / "forged-ceo.eml"), "--zone-file", str(EXAMPLES / "zones.yaml"),
    "--ip", "203.0.113.66", "--helo", "mail.attacker.test", "--mail-from", "ceo@ourcorp.example",
    "--rcpt", "staff@ourcorp.example", "--config", str(EXAMPLES / "mailward.toml"),
]
GENUINE = [
    "check", str(EXAMPLES / "genuine-partner.eml"), "--zone-file", str(EXAMPLES / "zones.yaml"),
    "--ip", "192.0.2.25", "--helo", "mail.partner.test", "--mail-from", "billing@partner.test",
    "--config", str(EXAMPLES / "mailward.toml"), "--now", "1795812900",
]


def test_forged_ceo_is_rejected_with_reasons_json() -> None:
    code, out, _ = run_cli([*FORGED, "--json"])
    assert code == 0
    report = json.loads(out)
    ar = report["authentication_results"]
    assert ar.startswith("mx.ourcorp.example;")
    assert "spf=fail" in ar and "smtp.mailfrom=ceo@ourcorp.example" in ar
    assert "dkim=none" in ar
    assert "dmarc=fail" in ar and "header.from=ourcorp.example" in ar
    assert "policy.dmarc=reject" in ar
    verdict = report["verdict"]
    assert verdict["disposition"] == "reject"
    assert verdict["reasons"][0].startswith("forced: DMARC_FAIL_REJECT")
    assert {"check", "symbol", "result", "score", "detail", "advice"} <= set(report["findings"][0])


def test_genuine_partner_is_accepted() -> None:
    code, out, _ = run_cli([*GENUINE, "--json"])
    report = json.loads(out)
    assert code == 0, out
    ar = report["authentication_results"]
    assert "spf=pass" in ar and "dmarc=pass" in ar
    assert "dkim=pass header.d=partner.test" in ar and "header.s=nov2026" in ar
    assert report["verdict"]["disposition"] == "accept"


def test_human_output_explains() -> None:
    code, out, _ = run_cli(FORGED)
    assert code == 0
    assert "Disposition: REJECT" in out
    assert "ourcorp.example did not send it" in out
    for method in ("spf", "dkim", "dmarc", "arc"):
        assert f"\n  {method}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "/nonexistent.eml"], "cannot read /nonexistent.eml"),
        (["check", str(EXAMPLES / "forged-ceo.eml"), "--ip", "not-an-ip"], "not an IP"),
        (["check", str(EXAMPLES / "forged-ceo.eml"), "--zone-file", "/nope.yaml"], "cannot read"),
        (["check", str(EXAMPLES / "forged-ceo.eml"), "--config", str(EXAMPLES / "zones.yaml")],
         "not valid TOML"),
        (["check"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], message: str) -> None:
    code, out, err = run_cli(argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_console_script_runs_as_a_process() -> None:
    exe = Path(sys.executable).with_name("mailward")
    proc = subprocess.run([str(exe), *FORGED, "--json"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verdict"]["disposition"] == "reject"
    proc = subprocess.run([str(exe), "check", "/nonexistent"], capture_output=True, timeout=60)
    assert proc.returncode == 2 and b"Traceback" not in proc.stderr


def test_config_command_lists_every_key() -> None:
    code, out, _ = run_cli(["config"])
    assert code == 0 and "dkim.min_rsa_bits = 1024" in out
