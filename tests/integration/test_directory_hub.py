"""The running hub with an LDAP directory (a real slapd): the people are imported at start and a
message using one of their names from outside is flagged; the directory going away keeps the
last import."""

from __future__ import annotations

import re
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailward.store import Store
from tests.integration.hubproc import HubProcess, example_zones
from tests.slapd import PEOPLE_BASE, SERVICE_DN, SERVICE_PASSWORD, SlapdServer


def directory_config(url: str, password_file: Path, refresh: float = 3600) -> str:
    return (
        f'[directory]\nurl = "{url}"\nbind_dn = "{SERVICE_DN}"\n'
        f'password_file = "{password_file}"\nbase = "{PEOPLE_BASE}"\nrefresh = {refresh}\n'
        "[identity]\nreload_interval = 0.2\n"
    )


@pytest.fixture
def hub(tmp_path: Path, slapd_server: SlapdServer) -> Iterator[HubProcess]:
    zones = example_zones()
    secret = tmp_path / "ldap.secret"
    secret.write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    process = HubProcess(tmp_path / "hub", zones, workers=2,
                         extra_config=directory_config(slapd_server.url, secret))
    process.workdir.mkdir()
    process.start()
    yield process
    assert process.stop() == 0, process.log()


def impersonation(hub: HubProcess, shown: str, n: int) -> set[str]:
    """Send a message using the name ``shown`` from outside; the identity check's symbols."""
    sender = f"someone{n}@freemail.test"
    body = (f'From: "{shown}" <{sender}>\r\nTo: staff@ourcorp.example\r\nSubject: hi {n}\r\n'
            f"Message-ID: <d{n}@freemail.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n").encode()
    with smtplib.SMTP("127.0.0.1", hub.inbound_port, timeout=30) as client:
        client.sendmail(sender, ["staff@ourcorp.example"], body, mail_options=["SMTPUTF8"]
                        if not shown.isascii() else [])
    deadline = time.monotonic() + 15
    with Store.open(data_dir=hub.data_dir) as store:
        while time.monotonic() < deadline:
            found = store.find_transactions(sender=sender)
            if found:
                return {f.symbol for f in found[0].findings if f.check == "identity"}
            time.sleep(0.1)
    raise AssertionError(f"message {n} not logged:\n{hub.log()}")


def wait_log(hub: HubProcess, text: str) -> str:
    deadline = time.monotonic() + 15
    while text not in hub.log():
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{hub.log()}"
        time.sleep(0.1)
    return hub.log()


def test_directory_people_are_protected(hub: HubProcess) -> None:
    log = wait_log(hub, "listening")
    # 1,203 people: each cn, and each displayName that differs from it
    assert re.search(r"imported 1603 protected identities from ldap://", log)
    assert log.count("imported ") == 1  # once at start, not again by the refresh job
    assert "s3rvice" not in log  # the bind password is never logged
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in impersonation(hub, "Zoë Müller", 1)
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" in impersonation(hub, "Smith, Jane", 2)
    assert "IDENTITY_DISPLAY_NAME_PROTECTED" not in impersonation(hub, "Nobody Special", 3)


def test_unreachable_directory_keeps_the_last_import(tmp_path: Path,
                                                     slapd_server: SlapdServer) -> None:
    zones = example_zones()
    secret = tmp_path / "ldap.secret"
    secret.write_text(SERVICE_PASSWORD + "\n", encoding="utf-8")
    workdir = tmp_path / "hub"
    workdir.mkdir()
    first = HubProcess(workdir, zones, extra_config=directory_config(slapd_server.url, secret))
    first.start()
    assert "imported 1603" in wait_log(first, "listening")
    assert first.stop() == 0, first.log()
    # the directory moves away; the hub starts, says so, and keeps the people it had
    second = HubProcess(workdir, zones, extra_config=directory_config(
        "ldap://127.0.0.1:1", secret, refresh=0.5))
    second.start()
    try:
        assert "keeping the last import" in wait_log(second, "directory import failed")
        assert "IDENTITY_DISPLAY_NAME_PROTECTED" in impersonation(second, "Zoë Müller", 4)
    finally:
        assert second.stop() == 0, second.log()
