"""The LDAP import of protected identities against a real slapd (tests/slapd.py): paging past
the server's size limit, UTF-8 names, several addresses, filters, TLS, every failure as one clear
line without the password; `sync` keeping the last good import; `mailward identities`."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest

from mailward import protected
from mailward.config import Config, DirectoryConfig, IdentityConfig, ServerConfig
from mailward.directory import DirectoryError, fetch_identities, sync
from mailward.lookalike import ProtectedName
from tests.helpers import run_cli
from tests.slapd import (
    GENERATED_PEOPLE,
    PEOPLE_BASE,
    ROLES,
    ROLES_BASE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    SIZE_LIMIT,
    SUFFIX,
    SlapdServer,
    people,
)

WRONG_PASSWORD = "not-the-Password-42"


def expected_identities() -> set[ProtectedName]:
    """What an import of the whole directory must give: cn and displayName of every person
    with its addresses, and the roles (no addresses)."""
    out = {ProtectedName(role) for role in ROLES}
    for person in people():
        for name in filter(None, (person.cn, person.display_name)):
            out.add(ProtectedName(name, frozenset(person.mail)))
    return out


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "ldap.password"
    path.write_text(f"{SERVICE_PASSWORD}\nthe second line is not the password\n")
    return path


@pytest.fixture
def directory(slapd_server: SlapdServer, password_file: Path) -> DirectoryConfig:
    """The whole directory, read by the service account over plain LDAP."""
    return DirectoryConfig(
        url=slapd_server.url, bind_dn=SERVICE_DN, password_file=str(password_file), base=SUFFIX
    )


def site(tmp_path: Path, directory: DirectoryConfig, names: list[str] | None = None) -> Config:
    return Config(
        server=ServerConfig(data_dir=str(tmp_path / "var")),
        identity=IdentityConfig(protected_names=names or []),
        directory=directory,
    )


def failure(directory: DirectoryConfig, **changes: Any) -> str:
    """The message of the DirectoryError the import with ``changes`` raises."""
    with pytest.raises(DirectoryError) as caught:
        fetch_identities(dataclasses.replace(directory, **changes))
    return str(caught.value)


# -- what is imported ---------------------------------------------------------------------------


def test_the_server_cuts_a_plain_search_at_its_size_limit(slapd_server: SlapdServer) -> None:
    """The premise of the next test: without paging, 500 of the 1,203 people."""
    server = ldap3.Server("127.0.0.1", port=slapd_server.port, get_info=ldap3.NONE)
    connection = ldap3.Connection(server, SERVICE_DN, SERVICE_PASSWORD, auto_bind=True)
    try:
        connection.search(PEOPLE_BASE, "(objectClass=inetOrgPerson)", attributes=["cn"])
        assert connection.result["description"] == "sizeLimitExceeded"
        assert connection.response is not None
        assert len(connection.response) == SIZE_LIMIT
    finally:
        connection.unbind()


def test_import_pages_past_the_size_limit_and_gets_every_identity(
    directory: DirectoryConfig,
) -> None:
    identities = fetch_identities(directory)
    assert len(identities) == len(set(identities))  # no duplicates
    assert set(identities) == expected_identities()
    imported_people = {i.name for i in identities if i.addresses} & {p.cn for p in people()}
    assert len(imported_people) == GENERATED_PEOPLE + 3  # the generated and the accented ones


def test_utf8_names_and_several_addresses_come_through_intact(
    directory: DirectoryConfig,
) -> None:
    identities = fetch_identities(directory)
    assert ProtectedName("Zoë Müller", frozenset({"zoe.mueller@ourcorp.example"})) in identities
    assert ProtectedName("François Lefèvre",
                         frozenset({"francois.lefevre@ourcorp.example"})) in identities
    # displayName equal to cn: one identity, not two
    assert [i.name for i in identities].count("José Núñez") == 1
    jane = frozenset({"jane.smith@ourcorp.example", "jsmith@ourcorp.example"})
    assert ProtectedName("Jane Smith", jane) in identities
    assert ProtectedName("Smith, Jane", jane) in identities  # her displayName
    assert all(isinstance(i.name, str) for i in identities)


def test_filter_and_attributes_select_what_is_imported(directory: DirectoryConfig) -> None:
    smiths = fetch_identities(dataclasses.replace(
        directory, filter="(&(objectClass=inetOrgPerson)(sn=Smith))", name_attributes=["cn"],
    ))
    assert len(smiths) == 40
    assert all(i.name.endswith(" Smith") and i.addresses for i in smiths)
    roles = fetch_identities(dataclasses.replace(directory, base=ROLES_BASE))
    assert sorted(i.name for i in roles) == sorted(ROLES)


def test_anonymous_bind_sees_only_what_the_acl_allows(directory: DirectoryConfig) -> None:
    """The ACL lets anyone read the roles but only the service account read the people: an
    anonymous import gets the roles alone, and where it can read nothing it fails (an empty
    import would silently drop every protected person)."""
    anonymous = dataclasses.replace(directory, bind_dn="", password_file="")
    assert sorted(i.name for i in fetch_identities(anonymous)) == sorted(ROLES)
    message = failure(anonymous, filter="(objectClass=inetOrgPerson)")
    assert "an anonymous bind may read" in message and "nothing imported" in message
    message = failure(anonymous, base=PEOPLE_BASE)
    assert message.startswith(f"directory.base: no entry {PEOPLE_BASE}")


@pytest.mark.parametrize("how", ["ldaps", "starttls"])
def test_tls_with_the_site_ca(
    directory: DirectoryConfig, slapd_server: SlapdServer, how: str
) -> None:
    url = slapd_server.ldaps_url if how == "ldaps" else f"ldap://localhost:{slapd_server.port}"
    over_tls = dataclasses.replace(
        directory, url=url, starttls=how == "starttls", ca_file=str(slapd_server.ca_file)
    )
    assert set(fetch_identities(over_tls)) == expected_identities()


# -- failures: one line, no password ------------------------------------------------------------


def test_wrong_password_names_the_bind_not_the_password(
    directory: DirectoryConfig, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text(WRONG_PASSWORD + "\n")
    message = failure(directory, password_file=str(wrong))
    assert f"refused the bind as {SERVICE_DN}: invalidCredentials" in message
    assert WRONG_PASSWORD not in message and SERVICE_PASSWORD not in message
    assert "\n" not in message


def test_closed_port_fails_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    started = time.monotonic()
    message = failure(DirectoryConfig(base=SUFFIX), url=f"ldap://127.0.0.1:{port}")
    assert message == f"cannot connect to the directory at 127.0.0.1:{port}: Connection refused"
    assert time.monotonic() - started < 2


def test_a_password_sent_in_clear_is_warned_about(
    password_file: Path, directory: DirectoryConfig, caplog: pytest.LogCaptureFixture
) -> None:
    fetch_identities(directory)  # on loopback: nothing to say
    assert "unencrypted" not in caplog.text
    remote = DirectoryConfig(url="ldap://192.0.2.1:389", bind_dn=SERVICE_DN, base=SUFFIX,
                             password_file=str(password_file), timeout=0.5)
    with pytest.raises(DirectoryError):  # a documentation address: nothing answers
        fetch_identities(remote)
    assert f"the bind password for {SERVICE_DN} goes to 192.0.2.1:389 unencrypted" in caplog.text
    assert SERVICE_PASSWORD not in caplog.text


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_does_not_answer_times_out(silent_server: int) -> None:
    started = time.monotonic()
    message = failure(DirectoryConfig(base=SUFFIX, timeout=1.0),
                      url=f"ldap://127.0.0.1:{silent_server}")
    assert message.endswith("timed out") and f"127.0.0.1:{silent_server}" in message
    assert time.monotonic() - started < 4


def test_missing_base_and_bad_filter(directory: DirectoryConfig) -> None:
    message = failure(directory, base=f"ou=nobody,{SUFFIX}")
    assert message.startswith(f"directory.base: no entry ou=nobody,{SUFFIX}")
    message = failure(directory, filter="(cn=Jane")
    assert message == "directory.filter: '(cn=Jane' is not a valid LDAP filter"


@pytest.mark.parametrize(
    "case", ["ldaps-without-ca", "ldaps-by-address", "starttls-without-ca", "ldaps-to-ldap-port"]
)
def test_tls_failures(directory: DirectoryConfig, slapd_server: SlapdServer, case: str) -> None:
    tls, port, ca = slapd_server.tls_port, slapd_server.port, str(slapd_server.ca_file)
    cases: dict[str, tuple[dict[str, object], str]] = {
        # the server's certificate is from the test CA, for the name localhost only
        "ldaps-without-ca": ({"url": slapd_server.ldaps_url},
                             f"TLS with the directory at localhost:{tls} failed: "
                             "self-signed certificate in certificate chain"),
        "ldaps-by-address": ({"url": f"ldaps://127.0.0.1:{tls}", "ca_file": ca},
                             f"TLS with the directory at 127.0.0.1:{tls} failed: IP address "
                             "mismatch, certificate is not valid for '127.0.0.1'."),
        "starttls-without-ca": ({"url": f"ldap://localhost:{port}", "starttls": True},
                                f"TLS with the directory at localhost:{port} failed: "
                                "self-signed certificate in certificate chain"),
        "ldaps-to-ldap-port": ({"url": f"ldaps://localhost:{port}", "ca_file": ca},
                               f"TLS with the directory at localhost:{port} failed: "),
    }
    changes, expected = cases[case]
    assert failure(directory, **changes).startswith(expected)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": ""}, "directory.url is empty"),
        ({"url": "https://ldap.ourcorp.example"}, "directory.url: 'https://ldap.ourcorp"),
        ({"url": "ldap://ldap.ourcorp.example:70000"}, "has an invalid port"),
        ({"base": " "}, "directory.base is empty"),
        ({"password_file": "/nonexistent/ldap.password"},
         "directory.password_file: cannot read /nonexistent/ldap.password"),
        ({"password_file": ""}, "directory.password_file is empty"),
        ({"ca_file": "/nonexistent/ca.pem", "starttls": True},
         "directory.ca_file: cannot read /nonexistent/ca.pem"),
    ],
)
def test_configuration_mistakes(
    directory: DirectoryConfig, changes: dict[str, object], message: str
) -> None:
    assert message in failure(directory, **changes)


# -- sync: the file protected.load reads --------------------------------------------------------


def test_sync_writes_the_import_that_load_then_includes(
    directory: DirectoryConfig, tmp_path: Path
) -> None:
    config = site(tmp_path, directory, ["CEO Office"])
    assert sync(config) == len(expected_identities())
    cache = protected.directory_cache(config)
    assert os.listdir(cache.parent) == [cache.name]  # written beside, renamed: no leftovers
    loaded = protected.load(config)
    assert ProtectedName("CEO Office") in loaded
    assert set(loaded) - {ProtectedName("CEO Office")} == expected_identities()


def test_a_failed_sync_keeps_the_last_good_import(
    directory: DirectoryConfig, tmp_path: Path
) -> None:
    config = site(tmp_path, directory)
    sync(config)
    cache = protected.directory_cache(config)
    before = cache.read_bytes(), cache.stat().st_mtime_ns
    wrong = tmp_path / "wrong.password"
    wrong.write_text(WRONG_PASSWORD)
    broken = dataclasses.replace(config, directory=dataclasses.replace(
        directory, password_file=str(wrong)))
    with pytest.raises(DirectoryError):
        sync(broken)
    assert (cache.read_bytes(), cache.stat().st_mtime_ns) == before
    assert len(protected.load(broken)) == len(expected_identities())


# -- mailward identities ------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mailward.toml"
    path.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n{text}')
    return str(path)


def directory_toml(directory: DirectoryConfig) -> str:
    return (
        f'[directory]\nurl = "{directory.url}"\nbind_dn = "{directory.bind_dn}"\n'
        f'password_file = "{directory.password_file}"\nbase = "{directory.base}"\n'
    )


def test_cli_sync_then_list_and_match(directory: DirectoryConfig, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[identity]\nprotected_names = ["CEO Office"]\n' + directory_toml(directory)
    )
    code, out, err = run_cli(["identities", "list", "--config", config])
    assert code == 0, err
    assert "0 from the directory import (not imported yet: run mailward identities sync)" in out

    code, out, err = run_cli(["identities", "sync", "--config", config])
    cache = tmp_path / "var" / protected.DIRECTORY_CACHE
    count = len(expected_identities())
    assert (code, err) == (0, "")
    assert out == f"imported {count} identities from {directory.url} into {cache}\n"

    code, out, err = run_cli(["identities", "list", "--config", config])
    assert code == 0, err
    lines = out.splitlines()
    assert "CEO Office" in lines and "IT Support" in lines
    assert "Zoë Müller\tzoe.mueller@ourcorp.example" in lines
    assert "Jane Smith\tjane.smith@ourcorp.example jsmith@ourcorp.example" in lines
    assert lines[-3:] == [
        "      1 from identity.protected_names",
        f"{count:>7} from the directory import ({cache})",
        f"{count + 1:>7} protected identities in all",
    ]

    code, out, _ = run_cli(["identities", "match", "Zoe Muller", "--config", config])
    assert (code, out) == (0, "Zoë Müller\tzoe.mueller@ourcorp.example\n")


@pytest.mark.parametrize(
    ("display_name", "expected"),
    [
        ("J. Smith", "Jane Smith\n"),
        ("Smith, Jane", "Jane Smith\n"),
        ("IT-Support Team", "IT Support\n"),
        ("Mary Jones", "no protected identity matches\n"),
    ],
)
def test_cli_match_folds_like_the_identity_check(
    tmp_path: Path, display_name: str, expected: str
) -> None:
    config = write_config(tmp_path, '[identity]\nprotected_names = ["Jane Smith", "IT Support"]\n')
    code, out, err = run_cli(["identities", "match", display_name, "--config", config])
    assert (code, out, err) == (0 if "no protected" not in expected else 1, expected, "")


def test_cli_errors_are_one_line_with_exit_1(directory: DirectoryConfig, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text(WRONG_PASSWORD)
    config = write_config(tmp_path, directory_toml(
        dataclasses.replace(directory, password_file=str(wrong))))
    code, out, err = run_cli(["identities", "sync", "--config", config])
    assert (code, out) == (1, "")
    assert err.startswith("mailward: the directory at 127.0.0.1:") and err.count("\n") == 1
    assert "invalidCredentials" in err and WRONG_PASSWORD not in err and "Traceback" not in err
    assert not (tmp_path / "var" / protected.DIRECTORY_CACHE).exists()

    no_directory = write_config(tmp_path, "")
    code, out, err = run_cli(["identities", "sync", "--config", no_directory])
    assert (code, err) == (1, "mailward: directory.url is empty: no directory to import from\n")
