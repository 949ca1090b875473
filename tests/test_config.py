"""Configuration: defaults with no file, typed keys, unknown keys named, every key documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailward import config

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
