"""Configuration: defaults with no file, typed keys, unknown keys named, every key documented."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from mailward import config
from tests.helpers import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailward.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    cfg = config.load(None)
    assert cfg.dkim.min_rsa_bits == 1024
    assert cfg.verdict.forced["DMARC_FAIL_REJECT"] == "reject"
    assert cfg.authserv_id  # the host name when not configured


def test_values_are_read_and_typed(tmp_path: Path) -> None:
    cfg = config.load(
        write(
            tmp_path,
            '[site]\nauthserv_id = "mx.ourcorp.example"\ndomains = ["ourcorp.example"]\n'
            "[verdict]\ntag = 3\n[scores]\nSPF_FAIL = 5\n",
        )
    )
    assert cfg.authserv_id == "mx.ourcorp.example"
    assert cfg.site.domains == ["ourcorp.example"]
    assert cfg.verdict.tag == 3.0 and isinstance(cfg.verdict.tag, float)
    assert cfg.scores == {"SPF_FAIL": 5.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[site]\nauthserv = 'x'\n", "unknown configuration key site.authserv"),
        ("[nosuch]\nx = 1\n", "unknown configuration key nosuch"),
        ("[dkim]\nmin_rsa_bits = 'big'\n", "dkim.min_rsa_bits: expected an integer"),
        ("[site]\ndomains = 'a'\n", "site.domains: expected a list"),
        ("site = 3\n", r"site: expected a \[site\] table"),
        ("[verdict]\nforced = {X = 'explode'}\n", "verdict.forced.X"),
        ("[verdict]\ntag = 20\n", "thresholds"),
        ("[site\n", "not valid TOML"),
        ("[spf]\nhelo_check = 1\n", "expected true or false"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load(write(tmp_path, text))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.toml")


def test_every_key_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    missing = [key for key, _, _ in config.documented_keys() if f"`{key}`" not in readme]
    assert missing == []


def test_every_toml_example_in_the_readme_is_a_valid_configuration() -> None:
    readme = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        config.from_dict(tomllib.loads(block), "README example")  # raises on an unknown key


def test_the_example_file_is_valid_and_protects_its_names(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "mailward.toml"
    loaded = config.load(str(example))
    assert "Jane Smith" in loaded.identity.protected_names
    message = tmp_path / "m.eml"
    message.write_bytes(b'From: "J. Smith" <jane.smith.ceo@freemail.test>\r\n'
                        b"To: staff@ourcorp.example\r\nSubject: hi\r\n\r\nCall me.\r\n")
    code, out, err = run_cli(["check", str(message), "--json", "--no-history",
                              "--config", str(example)])
    assert code == 0, err
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in {f["symbol"] for f in json.loads(out)["findings"]}
